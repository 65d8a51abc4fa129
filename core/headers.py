"""An answer's header lines made into http.client's `HTTPMessage` as http.client makes
them, without running the email package's parser when it is known what it would give.

http.client hands every answer's header block to `email.parser`: a seventh of the CPU
of a small file's request. When every line is a plain `Name: value` (a name of visible
ASCII, no folding, no line break inside) and no header could make the message a
multipart or a `message/*` one, that parser's answer is fixed by its own rules: each line
becomes (name, value with the blanks after the colon and the line end taken off), in
order, with an empty payload and no defect. Any other block goes to the email parser, as
before, and its answer (defects and all) is what is kept. The test holds both ways of
parsing to the same result (Hypothesis, and real answers' headers).
"""

from __future__ import annotations

import email.parser
import http.client
import re
from email import policy
from typing import Any

#: Every line `Name: value` and the block's end: what the email parser's header pattern
#: takes as a header line, with no character that it (or an older Python's line reader)
#: could take for a line break inside it.
_PLAIN = re.compile(r"(?:[\041-\071\073-\176]+:[^\r\n\x0b\x0c\x1c-\x1e\x85]*\r?\n)*(?:\r?\n)?")
#: A Content-Type that makes the email parser read the (empty) body as parts.
_PARTS = re.compile(r"multipart|message", re.IGNORECASE)

_email_parse_headers = http.client.parse_headers


def parse_headers(fp: Any, _class: type = http.client.HTTPMessage) -> Any:
    """`http.client.parse_headers`, the same message for the same bytes; one whose
    stream ended before the blank line that ends the headers has `cut_short` set."""
    lines = http.client._read_headers(fp)  # type: ignore[attr-defined]
    text = b"".join(lines).decode("iso-8859-1")
    if _class is http.client.HTTPMessage and _PLAIN.fullmatch(text) and not _PARTS.search(text):
        message: Any = http.client.HTTPMessage(policy=policy.compat32)
        message._headers = [
            (name, value.lstrip(" \t").rstrip("\r\n"))
            for name, _, value in (line.decode("iso-8859-1").partition(":") for line in lines[:-1])
        ]
        message.set_payload("")
    else:
        message = email.parser.Parser(_class=_class).parsestr(text)
    if not lines[-1]:  # the stream ended before the blank line that ends the headers
        message.cut_short = True  # (http.client takes it as whole: see http.get)
    return message


def install() -> None:
    """http.client (and so urllib3, requests and yt-dlp's urllib) parses through here,
    when its parsing is the one this module knows: `parse_headers(fp, _class)` reading
    with `_read_headers(fp)` (Pythons 3.10 to 3.13). A later one (CPython's main branch
    has `parse_headers(fp, _class, *, _max_headers)`) is left as it is."""
    if known_shape(http.client.parse_headers, getattr(http.client, "_read_headers", None)):
        http.client.parse_headers = parse_headers  # type: ignore[assignment]


def known_shape(parse: Any, read: Any) -> bool:
    """`parse` and `read` are the http.client functions this module stands in for."""
    if parse is parse_headers:
        return False  # installed already
    try:
        code, reads = parse.__code__, read.__code__
    except AttributeError:
        return False
    return bool(
        code.co_varnames[: code.co_argcount] == ("fp", "_class")
        and code.co_kwonlyargcount == 0
        and reads.co_argcount == 1
        and reads.co_kwonlyargcount == 0
    )
