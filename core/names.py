"""Safe file names (SPEC §5): from Content-Disposition, a URL, or anywhere, sanitised."""

from __future__ import annotations

import email.message
import mimetypes
import os
import re
import unicodedata
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .errors import BadInput

MAX_NAME_BYTES = 255
_UNSAFE = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]')
_RESERVED_WINDOWS = re.compile(r"^(con|prn|aux|nul|com\d|lpt\d)(\..*)?$", re.IGNORECASE)


def sanitize_filename(name: str, default: str = "download") -> str:
    """One path component that is safe to create in the output directory.

    No separators, no `..`, no control characters, no leading dot or dash, at most
    255 bytes (UTF-8) with the extension kept. Only the last component of a path is kept.
    """
    name = unicodedata.normalize("NFC", name or "")
    name = name.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    name = _UNSAFE.sub("_", name)
    name = re.sub(r"\s+", " ", name).strip()
    name = name.lstrip(".-_ ").rstrip(". ")
    if not name or set(name) <= {"_", "."}:
        name = default
    if _RESERVED_WINDOWS.match(name):
        name = "_" + name
    return truncate_name(name)


def truncate_name(name: str, limit: int = MAX_NAME_BYTES) -> str:
    """Cut `name` to `limit` UTF-8 bytes, keeping a short extension."""
    if len(name.encode()) <= limit:
        return name
    stem, ext = os.path.splitext(name)
    if len(ext.encode()) > 16:
        stem, ext = name, ""
    room = limit - len(ext.encode())
    cut = stem.encode()[:room].decode("utf-8", "ignore").rstrip()
    return cut + ext


def filename_from_content_disposition(header: str | None) -> str | None:
    """The file name a Content-Disposition header suggests (RFC 6266, `filename*` first),
    sanitised; None when it suggests none."""
    if not header:
        return None
    extended = re.search(r"filename\*\s*=\s*([\w-]*)'[^']*'([^;\s]+)", header, re.IGNORECASE)
    if extended:  # RFC 6266: filename* wins over filename
        try:
            decoded = unquote(extended.group(2), encoding=extended.group(1) or "utf-8")
        except LookupError:
            decoded = unquote(extended.group(2))
        if decoded.strip():
            return sanitize_filename(decoded.strip())
    name: str | None
    msg = email.message.Message()
    try:
        msg["content-disposition"] = header
        name = msg.get_filename()
    except (ValueError, LookupError, IndexError):
        name = None
    if not name:
        match = re.search(r'filename\s*=\s*"?([^";]+)"?', header, re.IGNORECASE)
        name = match.group(1) if match else None
    if not name:
        return None
    return sanitize_filename(name.strip())


def filename_from_url(url: str) -> str:
    """The last path segment of `url`, percent-decoded and sanitised (the host when empty)."""
    parts = urlsplit(url)
    segment = unquote(parts.path.rstrip("/").rsplit("/", 1)[-1])
    return sanitize_filename(segment, default=sanitize_filename(parts.hostname or "download"))


def with_extension(name: str, content_type: str | None) -> str:
    """Add the extension of `content_type` when `name` has none (report -> report.pdf)."""
    if os.path.splitext(name)[1] or not content_type:
        return name
    mime = content_type.split(";")[0].strip().lower()
    if mime in ("application/octet-stream", "", "binary/octet-stream"):
        return name
    ext = {"text/plain": ".txt", "text/html": ".html"}.get(mime) or mimetypes.guess_extension(mime)
    return truncate_name(name + ext) if ext else name


def inside(directory: str | os.PathLike[str], name: str) -> Path:
    """`directory/name`, refusing any result that is not strictly inside `directory`."""
    root = Path(directory).resolve()
    path = (root / name).resolve()
    if path == root or root not in path.parents:
        raise BadInput(f"refusing to write outside the output directory: {name!r}")
    return path
