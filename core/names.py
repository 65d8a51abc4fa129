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

#: What a file system allows for one name (bytes of UTF-8) — for the name *with* whatever
#: working suffix is appended to it while it downloads.
MAX_NAME_BYTES = 255
#: Final suffixes that mark a file as unfinished work of xdl or of the tools it drives
#: (`.part` and its `.part.meta`, wget/curl's `.wget.part`/`.curl.part`, yt-dlp's `.ytdl`,
#: `.temp` and `.part-FragN`, the planned `.lock` and `.origin`). A sanitised name never
#: ends in one, compared case-insensitively; `.part-Frag` stands for `.part-Frag<digits>`.
WORKING_SUFFIXES: tuple[str, ...] = (
    ".part",
    ".meta",
    ".lock",
    ".origin",
    ".ytdl",
    ".temp",
    ".part-Frag",
)
#: The suffixes xdl appends to a final name while downloading it (core/partfile.py).
APPENDED_SUFFIXES: tuple[str, ...] = (
    ".part",
    ".part.meta",
    ".wget.part",
    ".wget.part.meta",
    ".curl.part",
    ".curl.part.meta",
)
#: Bytes kept free for an appended working suffix: the longest today is 15
#: (`.curl.part.meta`); 32 leaves room for new ones (`.part.lock`, `NAME.normalizing.EXT`).
SUFFIX_RESERVE = 32
#: The most UTF-8 bytes a sanitised name has, so that NAME + any working suffix fits.
NAME_BUDGET = MAX_NAME_BYTES - SUFFIX_RESERVE
#: Double extensions kept whole when a name is shortened or numbered.
DOUBLE_EXTENSIONS: tuple[str, ...] = (".tar.gz", ".tar.bz2", ".tar.xz", ".tar.zst")
MAX_EXTENSION_BYTES = 16

assert max(len(s.encode()) for s in APPENDED_SUFFIXES) <= SUFFIX_RESERVE

_UNSAFE = re.compile(r'[\x00-\x1f\x7f-\x9f/\\:*?"<>|]')
_RESERVED_WINDOWS = re.compile(
    r"^(con|prn|aux|nul|conin\$|conout\$|com[0-9¹²³]|lpt[0-9¹²³])(\..*)?$", re.IGNORECASE
)
_WORKING_END = re.compile(
    r"\.(?:"
    + "|".join(re.escape(s[1:]) + (r"\d+" if s.endswith("-Frag") else "") for s in WORKING_SUFFIXES)
    + r")$",
    re.IGNORECASE,
)


def _drop_format_characters(name: str) -> str:
    """Without Unicode format characters (category Cf: bidi overrides and isolates,
    zero-width spaces and joiners, BOM, soft hyphen, tags...): they hide or reorder what a
    name shows (`invoice\\u202efdp.exe` displays as `invoiceexe.pdf`). Lone surrogates,
    which cannot be written as UTF-8, become `_`."""
    kept = []
    for ch in name:
        category = unicodedata.category(ch)
        if category == "Cf":
            continue
        kept.append("_" if category == "Cs" else ch)
    return "".join(kept)


def neutralise_working_suffix(name: str) -> str:
    """`name` made never to end in one of WORKING_SUFFIXES: trailing dots and spaces go,
    and the dot before such a suffix becomes `_` (`legit.bin.part` -> `legit.bin_part`,
    `x.part.meta` -> `x.part_meta`, `a.PART.` -> `a_PART`), repeated until stable."""
    while True:
        before = name
        name = name.rstrip(". ")
        match = _WORKING_END.search(name)
        if match:
            name = name[: match.start()] + "_" + name[match.start() + 1 :]
        if name == before:
            return name


def split_extension(name: str) -> tuple[str, str]:
    """(stem, extension) with a known double extension kept whole (`a.tar.gz` -> `a`,
    `.tar.gz`); an extension over MAX_EXTENSION_BYTES, or one without a stem, counts as
    none."""
    lower = name.lower()
    for double in DOUBLE_EXTENSIONS:
        if lower.endswith(double) and len(name) > len(double):
            return name[: -len(double)], name[-len(double) :]
    stem, ext = os.path.splitext(name)
    if len(ext.encode()) > MAX_EXTENSION_BYTES or ext == ".":
        return name, ""
    return stem, ext


def _cut(text: str, room: int) -> str:
    """The longest prefix of `text` within `room` UTF-8 bytes, never splitting a character,
    nor (when it can help it) a combining mark from the character it marks."""
    cut = text.encode()[: max(room, 0)].decode("utf-8", "ignore")
    rest = text[len(cut) :]
    kept = cut
    while kept and rest and unicodedata.category(rest[0]).startswith("M"):
        rest = kept[-1] + rest
        kept = kept[:-1]
    return kept or cut


def truncate_name(name: str, limit: int = NAME_BUDGET) -> str:
    """Cut `name` to `limit` UTF-8 bytes (NAME_BUDGET: room is left for a working suffix),
    shortening the stem and keeping an extension of up to MAX_EXTENSION_BYTES."""
    if len(name.encode()) <= limit:
        return name
    stem, ext = split_extension(name)
    room = limit - len(ext.encode())
    if not ext or room <= 0:
        return _cut(name, limit).rstrip()
    return _cut(stem, room).rstrip() + ext


def sanitize_filename(name: str, default: str = "download") -> str:
    """One path component that is safe to create in the output directory.

    Only the last component of a path is kept. No separators, no `..`, no control
    characters (C0, DEL, C1: replaced by `_`), no Unicode format characters (dropped), no
    leading dot or dash, NFC, never a Windows device name, never ending in one of
    WORKING_SUFFIXES, and at most NAME_BUDGET bytes (UTF-8) with the extension kept, so
    that the name plus any working suffix fits in MAX_NAME_BYTES. `default` when nothing
    is left.
    """
    name = _drop_format_characters(name or "")
    name = unicodedata.normalize("NFC", name)
    name = name.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    name = _UNSAFE.sub("_", name)
    name = re.sub(r"\s+", " ", name).strip()
    name = name.lstrip(".-_ ").rstrip(". ")
    if not name or set(name) <= {"_", "."}:
        name = default
    if _RESERVED_WINDOWS.match(name):
        name = "_" + name
    return neutralise_working_suffix(truncate_name(name))


def distinct_name(name: str, n: int) -> str:
    """The n-th other name for `name` when it is taken by a different source, as file
    managers and browsers number them: `report.pdf` -> `report (1).pdf`, `report (2).pdf`;
    `archive.tar.gz` -> `archive (1).tar.gz`. Pass the original name each time and count
    `n` up from 1 (0 gives `name` itself). Stays within NAME_BUDGET, shortening the stem."""
    if n < 0:
        raise ValueError(f"distinct_name: n must be >= 0, not {n}")
    if n == 0:
        return name
    stem, ext = split_extension(name)
    mark = f" ({n})"
    room = NAME_BUDGET - len(mark.encode()) - len(ext.encode())
    return neutralise_working_suffix(_cut(stem, room).rstrip() + mark + ext)


def _repair_utf8(name: str) -> str:
    """A raw UTF-8 `filename=` that the HTTP stack decoded as Latin-1 (`fÃ¼r` -> `für`),
    as browsers read it; anything else unchanged."""
    if name.isascii():
        return name
    try:
        return name.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return name


def filename_from_content_disposition(header: str | None) -> str | None:
    """The file name a Content-Disposition header suggests (RFC 6266, `filename*` first),
    sanitised; None when it suggests none, or none that survives sanitising."""
    if not header:
        return None
    extended = re.search(r"filename\*\s*=\s*([\w-]*)'[^']*'([^;\s]+)", header, re.IGNORECASE)
    if extended:  # RFC 6266: filename* wins over filename
        try:
            decoded = unquote(extended.group(2), encoding=extended.group(1) or "utf-8")
        except LookupError:
            decoded = unquote(extended.group(2))
        chosen = sanitize_filename(decoded.strip(), default="")
        if chosen:
            return chosen
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
    return sanitize_filename(_repair_utf8(name.strip()), default="") or None


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
    return neutralise_working_suffix(truncate_name(name + ext)) if ext else name


def inside(directory: str | os.PathLike[str], name: str) -> Path:
    """`directory/name`, refusing any result that is not strictly inside `directory`."""
    root = Path(directory).resolve()
    path = (root / name).resolve()
    if path == root or root not in path.parents:
        raise BadInput(f"refusing to write outside the output directory: {name!r}")
    return path
