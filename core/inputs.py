"""Reading inputs (SPEC §2): arguments, a batch file, or piped stdin, one item a line.

A line that is a JSON object contributes its `url` (or `webpage_url`, or `path` for
files), and its other fields ride along, so one xdl command's output pipes into the next.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Any, Literal
from urllib.parse import urlsplit

from .errors import BadInput, UnsupportedUrl, XdlError

Kind = Literal["url", "path"]

NETWORK_SCHEMES = frozenset({"http", "https"})


@dataclass(frozen=True)
class Input:
    """One item to work on: a URL or a path, with fields from a JSON line and its origin."""

    value: str
    fields: Mapping[str, Any] = field(default_factory=dict)
    origin: str = "argument"
    error: XdlError | None = None

    def get(self, name: str, default: Any = None) -> Any:
        return self.fields.get(name, default)


def check_url(url: str) -> str:
    """Return `url` when xdl can fetch it, else raise `BadInput` / `UnsupportedUrl`."""
    if not url or any(ord(c) < 32 or c == "\x7f" for c in url) or " " in url:
        raise BadInput(f"not a URL: {url!r}")
    try:
        parts = urlsplit(url)
    except ValueError as e:
        raise BadInput(f"not a URL: {url!r} ({e})") from None
    scheme = parts.scheme.lower()
    if not scheme or (scheme not in NETWORK_SCHEMES and "." in url and not parts.netloc):
        raise BadInput(f"not a URL (no scheme such as https://): {url!r}")
    if scheme not in NETWORK_SCHEMES:
        raise UnsupportedUrl(f"unsupported scheme {scheme!r}: only http and https are fetched")
    if not parts.hostname:
        raise BadInput(f"not a URL (no host): {url!r}")
    return url


def parse_line(line: str, kind: Kind = "url", origin: str = "argument") -> Input | None:
    """Turn one input line into an `Input`; None for blanks and `#` comments."""
    text = line.strip().lstrip("\ufeff")
    if not text or text.startswith("#"):
        return None
    fields: dict[str, Any] = {}
    if text.startswith("{"):
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            return Input(text, origin=origin, error=BadInput(f"invalid JSON line: {e.msg}"))
        if not isinstance(obj, dict):
            return Input(text, origin=origin, error=BadInput("JSON input must be an object"))
        keys = ("path", "output", "url") if kind == "path" else ("url", "webpage_url")
        found = next((obj[k] for k in keys if isinstance(obj.get(k), str) and obj[k]), None)
        if found is None:
            names = " or ".join(f"`{k}`" for k in keys)
            return Input(text, obj, origin, BadInput(f"JSON line has no {names}"))
        text, fields = found.strip(), obj
    if kind == "url":
        try:
            check_url(text)
        except XdlError as e:
            return Input(text, fields, origin, e)
    return Input(text, fields, origin)


def read_lines(stream: IO[bytes], name: str) -> Iterator[tuple[str, str]]:
    """Yield (line, origin) from a binary stream; bad UTF-8 yields a marker, not a crash."""
    for number, raw in enumerate(stream, 1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            line = "\x00" + raw.decode("utf-8", "replace")
        yield line, f"{name}:{number}"


def iter_inputs(
    args: Iterable[str],
    batch: IO[bytes] | None = None,
    batch_name: str = "-",
    stdin: IO[bytes] | None = None,
    kind: Kind = "url",
) -> Iterator[Input]:
    """Inputs in SPEC order: arguments, then the batch file, then stdin (when given)."""
    sources: list[Iterable[tuple[str, str]]] = [((a, "argument") for a in args)]
    if batch is not None:
        sources.append(read_lines(batch, batch_name))
    if stdin is not None:
        sources.append(read_lines(stdin, "stdin"))
    for source in sources:
        for line, origin in source:
            if line.startswith("\x00"):
                shown = line[1:].strip()
                yield Input(shown, origin=origin, error=BadInput(f"{origin}: invalid UTF-8"))
                continue
            item = parse_line(line, kind, origin)
            if item is not None:
                yield item
