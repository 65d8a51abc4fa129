"""Reading inputs (SPEC §2): arguments, a batch file, or piped stdin, one item a line.

A line that is a JSON object contributes its `url` (or `webpage_url`, or `path` for
files), and its other fields ride along, so one xdl command's output pipes into the next.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Any, Literal
from urllib.parse import urlsplit

from .errors import BadInput, UnsupportedUrl, XdlError

Kind = Literal["url", "path"]

NETWORK_SCHEMES = frozenset({"http", "https"})

#: The longest URL accepted, in bytes. Browsers and servers cap URLs at 8-64 KiB (a
#: longer one gets 414 URI Too Long); 64 KiB also stays under Linux's 128 KiB limit on
#: one command-line argument, which the wget and curl strategies pass the URL as.
MAX_URL_BYTES = 65536

#: How deeply a JSON input line may nest. xdl's own lines (even `info --raw`) nest a
#: handful of levels; deeper is not an input but an attack on a recursive reader.
MAX_JSON_DEPTH = 100

TOO_DEEP = f"JSON line nested more than {MAX_JSON_DEPTH} levels deep"

#: The longest input line read, in bytes (an `info --raw` line is a few MB at most);
#: a longer one is one failed input, and memory stays bounded (`-a /dev/zero`).
MAX_LINE_BYTES = 64 * 1024 * 1024

#: How much of an input a message quotes: enough to recognise it, never a flood.
QUOTE_CHARS = 200


@dataclass(frozen=True)
class Input:
    """One item to work on: a URL or a path, with fields from a JSON line and its origin."""

    value: str
    fields: Mapping[str, Any] = field(default_factory=dict)
    origin: str = "argument"
    error: XdlError | None = None

    def get(self, name: str, default: Any = None) -> Any:
        return self.fields.get(name, default)


def shorten(text: str, limit: int = QUOTE_CHARS) -> str:
    """`text` cut to `limit` characters with an ellipsis: how every message quotes an input."""
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def shown(text: str) -> str:
    """An input as a message shows it: shortened, control characters escaped."""
    short = shorten(text)
    return short if short.isprintable() else shorten(repr(text[: QUOTE_CHARS * 4])[1:-1])


def quote(text: str) -> str:
    """`text` in quotes with escapes (repr), shortened, for messages."""
    shown = repr(text[: QUOTE_CHARS * 4])
    return shown if len(shown) <= QUOTE_CHARS and len(text) <= QUOTE_CHARS * 4 else shorten(shown)


def check_url(url: str) -> str:
    """Return `url` when xdl can fetch it, else raise `BadInput` / `UnsupportedUrl`."""
    size = len(url.encode("utf-8", "surrogatepass"))
    if size > MAX_URL_BYTES:
        raise BadInput(f"URL too long: {size} bytes (at most {MAX_URL_BYTES})")
    if not url or any(ord(c) < 32 or c == "\x7f" for c in url) or " " in url:
        raise BadInput(f"not a URL: {quote(url)}")
    try:
        parts = urlsplit(url)
    except ValueError as e:
        raise BadInput(f"not a URL: {quote(url)} ({e})") from None
    scheme = parts.scheme.lower()
    if not scheme or (scheme not in NETWORK_SCHEMES and "." in url and not parts.netloc):
        raise BadInput(f"not a URL (no scheme such as https://): {quote(url)}")
    if scheme not in NETWORK_SCHEMES:
        raise UnsupportedUrl(f"unsupported scheme {quote(scheme)}: only http and https are fetched")
    if not parts.hostname:
        raise BadInput(f"not a URL (no host): {quote(url)}")
    return url


class RefusedUrl(UnsupportedUrl):
    """A redirect (or a link on a page) to a URL xdl never opens, such as
    file:///etc/passwd. Final: every downloader refuses it, so none other is tried."""

    final = True


def refused(message: str) -> RefusedUrl:
    """The error for a refused redirect target, quoting the target when `message` (the
    library's) names it."""
    found = re.search(r"""\b([a-zA-Z][\w+.-]*:/{0,3}[^\s'"]+)""", message.split(" for ", 1)[-1])
    scheme = re.search(r"""url scheme: ["']?(\w+)""", message, re.IGNORECASE)
    target = found.group(1) if found else f"{scheme.group(1)}:" if scheme else None
    shown = f" to {quote(target)}" if target else ""
    return RefusedUrl(f"refused a redirect or link{shown}: only http and https URLs are fetched")


def _too_deep(obj: Any, limit: int) -> bool:
    """Does `obj` nest lists/objects more than `limit` levels? (No recursion.)"""
    stack: list[tuple[Any, int]] = [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values() if isinstance(v, dict | list))
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value if isinstance(v, dict | list))
    return False


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
        except RecursionError:  # nested deeper than the parser goes
            return Input(text, origin=origin, error=BadInput(TOO_DEEP))
        if _too_deep(obj, MAX_JSON_DEPTH):
            return Input(text, origin=origin, error=BadInput(TOO_DEEP))
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


def read_lines(stream: IO[bytes], name: str) -> Iterator[tuple[str, str, XdlError | None]]:
    """Yield (line, origin, error) from a binary stream: bad UTF-8 or a line longer than
    MAX_LINE_BYTES is one failed input, not a crash, and memory stays bounded."""
    number = 0
    while raw := stream.readline(MAX_LINE_BYTES + 1):
        number += 1
        origin = f"{name}:{number}"
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            shown = shorten(raw[:QUOTE_CHARS].decode("utf-8", "replace"))
            yield shown, origin, BadInput(f"{origin}: line longer than {MAX_LINE_BYTES} bytes")
            while (rest := stream.readline(1 << 20)) and not rest.endswith(b"\n"):
                pass  # skip to the next line
            continue
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            shown = raw.decode("utf-8", "replace").strip()
            yield shown, origin, BadInput(f"{origin}: invalid UTF-8")
            continue
        yield line, origin, None


def iter_inputs(
    args: Iterable[str],
    batch: IO[bytes] | None = None,
    batch_name: str = "-",
    stdin: IO[bytes] | None = None,
    kind: Kind = "url",
) -> Iterator[Input]:
    """Inputs in SPEC order: arguments, then the batch file, then stdin (when given)."""
    sources: list[Iterable[tuple[str, str, XdlError | None]]] = [
        ((a, "argument", None) for a in args)
    ]
    if batch is not None:
        sources.append(read_lines(batch, batch_name))
    if stdin is not None:
        sources.append(read_lines(stdin, "stdin"))
    for source in sources:
        for line, origin, error in source:
            if error is not None:
                yield Input(line, origin=origin, error=error)
                continue
            item = parse_line(line, kind, origin)
            if item is not None:
                yield item
