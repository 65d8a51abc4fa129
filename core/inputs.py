"""Reading inputs (SPEC §2): arguments, a batch file, or piped stdin, one item a line.

A line that is a JSON object contributes its `url` (or `webpage_url`, or `path` for
files), and its other fields ride along, so one xdl command's output pipes into the next.

Whatever a line holds, reading it never raises: an `Input` comes out with `error` set
(bad_input, unsupported_url) or, when `error` is None, one that every later step can
use: a JSON line's strings are text (no lone surrogate anywhere, in a key or a value),
its numbers fit in int64 or a finite float, it nests at most MAX_JSON_DEPTH levels, a
URL is http(s) and encodable, a path holds no NUL and can be encoded for the file system.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Any, Literal
from urllib.parse import unquote, urlsplit

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

#: The largest integer a JSON line may hold, in magnitude: int64, as PostgreSQL, SQLite
#: and most JSON readers keep them. A longer one is an attack on `int()` (4,300 digits
#: and up raise ValueError), never a size, a count or a time.
MAX_JSON_INT = 2**63 - 1

#: A UTF-16 surrogate alone: valid in a JSON escape (`"\\ud800"`) and in a Python str,
#: but no text. It cannot be encoded as UTF-8, so it reaches no file, URL or output.
SURROGATE = re.compile("[\ud800-\udfff]")
#: What a URL never holds as it is: control characters, DEL and spaces.
_NOT_IN_URL = re.compile("[\x00-\x20\x7f]")
#: An http(s) URL whose host is names of plain ASCII letters, digits and dashes: one
#: `urlsplit` finds a network scheme and a host in (a test holds it to that). Spelt out,
#: not IGNORECASE, under which `s` matches `ſ` too (`httpſ://` is no scheme).
_PLAIN_URL = re.compile(
    r"[hH][tT][tT][pP][sS]?://(?:[a-zA-Z0-9_~-]{1,63}\.)*[a-zA-Z0-9_~-]{1,63}\.?"
    r"(?::[0-9]*)?(?:[/?#]|\Z)"
)


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
    if not url.isascii() and SURROGATE.search(url):
        raise BadInput(f"not a URL (not valid UTF-8: a lone surrogate): {quote(url)}")
    if not url or _NOT_IN_URL.search(url):
        raise BadInput(f"not a URL: {quote(url)}")
    if _PLAIN_URL.match(url):  # what the checks below would pass, at a fourth of the cost
        return url
    return _check_parts(url)


def _check_parts(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError as e:
        raise BadInput(f"not a URL: {quote(url)} ({e})") from None
    scheme = parts.scheme.lower()
    if not scheme or (scheme not in NETWORK_SCHEMES and "." in url and not parts.netloc):
        raise BadInput(f"not a URL (no scheme such as https://): {quote(url)}")
    if scheme not in NETWORK_SCHEMES:
        raise UnsupportedUrl(f"unsupported scheme {quote(scheme)}: only http and https are fetched")
    host = parts.hostname
    if not host:
        raise BadInput(f"not a URL (no host): {quote(url)}")
    # A name (not an IPv6 address) as urllib3 reads it, escapes decoded: none of its
    # parts empty, none of an ASCII one's over 63 (what the IDNA codec refuses). Not with
    # a backslash: urllib3, as browsers, takes it for a slash, which ends the host.
    if ":" not in host and "\\" not in parts.netloc:
        name = unquote(host)
        names = name.removesuffix(".").split(".")
        if not all(names) or (name.isascii() and any(len(n) > 63 for n in names)):
            raise BadInput(f"not a URL (an empty or too long name in its host): {quote(url)}")
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


class _OutOfRange(ValueError):
    """A number in a JSON line that no field can mean (see `_loads`)."""


def _int(text: str) -> int:
    value = int(text) if len(text) <= 20 else None  # never int() of 100,000 digits
    if value is None or abs(value) > MAX_JSON_INT:
        raise _OutOfRange(f"a number out of range ({shorten(text, 24)})")
    return value


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _OutOfRange(f"a number out of range ({shorten(text, 24)})")
    return value


def _constant(name: str) -> float:
    raise _OutOfRange(f"{name} is not a JSON number")


def _loads(text: str) -> Any:
    """`json.loads`, refusing what no xdl line holds: NaN, Infinity, a number past int64
    or beyond a float (1e400 would be inf). Raises ValueError (JSONDecodeError for bad
    syntax) or RecursionError."""
    return json.loads(text, parse_int=_int, parse_float=_float, parse_constant=_constant)


def _unusable(obj: Any, limit: int) -> str | None:
    """Why a parsed JSON line cannot be used, else None: it nests lists/objects more than
    `limit` levels, or a key or string holds a lone surrogate. (No recursion.)"""
    stack: list[tuple[Any, int]] = [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > limit:
            return TOO_DEEP
        if isinstance(value, dict):
            items: Iterable[Any] = (*value.keys(), *value.values())
        elif isinstance(value, list):
            items = value
        else:
            continue
        for v in items:
            if isinstance(v, str):
                if not v.isascii() and SURROGATE.search(v):
                    return "JSON line holds a lone surrogate (\\ud800-\\udfff): not text"
            elif isinstance(v, dict | list):
                stack.append((v, depth + 1))
    return None


def check_path(path: str) -> str:
    """Return `path` when it can name a file, else raise `BadInput`: a NUL byte, or a
    character the file system cannot encode (a lone surrogate that is not one of the
    bytes `surrogateescape` kept from a non-UTF-8 argument)."""
    if "\x00" in path:
        raise BadInput(f"not a file name (holds a NUL byte): {quote(path)}")
    try:
        os.fsencode(path)
    except UnicodeEncodeError:
        raise BadInput(f"not a file name (not encodable): {quote(path)}") from None
    return path


def parse_line(line: str, kind: Kind = "url", origin: str = "argument") -> Input | None:
    """Turn one input line into an `Input`; None for blanks and `#` comments."""
    text = line.strip().lstrip("\ufeff")
    if not text or text.startswith("#"):
        return None
    fields: dict[str, Any] = {}
    if text.startswith("{"):
        try:
            obj = _loads(text)
        except json.JSONDecodeError as e:
            return Input(text, origin=origin, error=BadInput(f"invalid JSON line: {e.msg}"))
        except RecursionError:  # nested deeper than the parser goes
            return Input(text, origin=origin, error=BadInput(TOO_DEEP))
        except ValueError as e:  # _OutOfRange, or int()'s own digit limit
            return Input(text, origin=origin, error=BadInput(f"invalid JSON line: {e}"))
        if (why := _unusable(obj, MAX_JSON_DEPTH)) is not None:
            return Input(text, origin=origin, error=BadInput(why))
        if not isinstance(obj, dict):
            return Input(text, origin=origin, error=BadInput("JSON input must be an object"))
        keys = ("path", "output", "url") if kind == "path" else ("url", "webpage_url")
        found = next((obj[k] for k in keys if isinstance(obj.get(k), str) and obj[k]), None)
        if found is None:
            names = " or ".join(f"`{k}`" for k in keys)
            return Input(text, obj, origin, BadInput(f"JSON line has no {names}"))
        text, fields = found.strip(), obj
    try:
        check_url(text) if kind == "url" else check_path(text)
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


class Inputs(Iterator[Input]):
    """Inputs in SPEC order: arguments, then the batch file, then stdin (when given);
    `may_wait` says whether reading the rest may keep the reader waiting: a source not
    read to its end yet is a stream that can (a pipe, a terminal), not arguments or a
    regular file."""

    def __init__(
        self,
        args: Iterable[str],
        batch: IO[bytes] | None,
        batch_name: str,
        stdin: IO[bytes] | None,
        kind: Kind,
    ) -> None:
        sources: list[tuple[Iterable[tuple[str, str, XdlError | None]], bool]] = [
            (((a, "argument", None) for a in args), False)
        ]
        if batch is not None:
            sources.append((read_lines(batch, batch_name), _can_wait(batch)))
        if stdin is not None:
            sources.append((read_lines(stdin, "stdin"), _can_wait(stdin)))
        self._waits = [can_wait for _, can_wait in sources]  # of those not read to the end
        self._items = self._read([source for source, _ in sources], kind)

    @property
    def may_wait(self) -> bool:
        return any(self._waits)

    def __next__(self) -> Input:
        return next(self._items)

    def _read(
        self, sources: list[Iterable[tuple[str, str, XdlError | None]]], kind: Kind
    ) -> Iterator[Input]:
        for n, source in enumerate(sources):
            for line, origin, error in source:
                if error is not None:
                    yield Input(line, origin=origin, error=error)
                    continue
                item = parse_line(line, kind, origin)
                if item is not None:
                    yield item
            self._waits[n] = False  # read to its end


def _can_wait(stream: IO[bytes]) -> bool:
    """Whether reading `stream` can wait for its writer: anything but a regular file."""
    try:
        return not stat.S_ISREG(os.fstat(stream.fileno()).st_mode)
    except (OSError, AttributeError, ValueError):  # no descriptor (BytesIO): it cannot
        return False


def iter_inputs(
    args: Iterable[str],
    batch: IO[bytes] | None = None,
    batch_name: str = "-",
    stdin: IO[bytes] | None = None,
    kind: Kind = "url",
) -> Inputs:
    """Inputs in SPEC order: arguments, then the batch file, then stdin (when given)."""
    return Inputs(args, batch, batch_name, stdin, kind)
