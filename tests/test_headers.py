"""An answer's headers, parsed without the email package when its answer is known
(core/headers.py), give the message the email parser gives, byte for byte: for any
header block (Hypothesis), for the odd ones the email parser handles its own way, and
for a real server's answer read through http.client."""

from __future__ import annotations

import email.parser
import http.client
import io
import os
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from xdl.core import headers

SETTINGS = settings(
    max_examples=int(os.environ.get("XDL_FUZZ_EXAMPLES", "300")), deadline=None, database=None
)


def by_email(block: bytes) -> Any:
    lines = http.client._read_headers(io.BytesIO(block))  # type: ignore[attr-defined]
    return email.parser.Parser(_class=http.client.HTTPMessage).parsestr(
        b"".join(lines).decode("iso-8859-1")
    )


def state(message: Any) -> dict[str, Any]:
    """All a message holds, its defects by kind and text (they are new objects)."""
    seen = dict(vars(message))
    seen.pop("cut_short", None)  # ours: said of a block the stream's end cut short
    seen["defects"] = [(type(d), str(d)) for d in message.defects]
    seen["items"] = message.items()
    if isinstance(message._payload, list):  # the parts of a multipart, as messages
        seen["_payload"] = [state(part) for part in message._payload]
    return seen


def same(block: bytes) -> Any:
    fast = headers.parse_headers(io.BytesIO(block))
    assert type(fast) is http.client.HTTPMessage
    assert state(fast) == state(by_email(block)), block
    return fast


#: What header blocks are made of, the odd parts often: folding, no colon, a `From `
#: line, line breaks of every kind, Latin-1 bytes, the parts that make a multipart.
PIECES = st.sampled_from(
    [b"Content-Type", b"content-length", b"X-A", b"Set-Cookie", b"From ", b"From", b":",
     b": ", b" ", b"\t", b"\r\n", b"\n", b"\r", b"\x0b", b"\x0c", b"\x1c", b"\x85", b"\xe9",
     b"\xff", b"\x00", b"text/html", b"multipart/byteranges; boundary=x", b"message/http",
     b"a=1; Path=/", b'attachment; filename="\xc3\xa9t\xc3\xa9.mp4"', b"2048", b";", b"="]
)  # fmt: skip
LINE = st.lists(PIECES, max_size=6).map(b"".join)
BREAKS = b"\r\n\x0b\x0c\x1c\x1d\x1e\x85"  # what one reader or another takes for a line's end
PLAIN_LINE = st.tuples(
    st.text("ABCXYZabcxyz-_0123456789!#$%&'*+.^`|~", min_size=1, max_size=12).map(str.encode),
    st.binary(max_size=30).filter(lambda v: not any(c in v for c in BREAKS)),
    st.sampled_from([b"\r\n", b"\n"]),
).map(lambda t: t[0] + b":" + t[1] + t[2])  # fmt: skip
END = st.sampled_from([b"\r\n", b"\n", b""])


@SETTINGS
@given(st.lists(LINE, max_size=8), END)
def test_any_block_gives_the_email_parsers_message(lines: list[bytes], end: bytes) -> None:
    same(b"".join(line + b"\r\n" for line in lines) + end + b"body that is not read")


@SETTINGS
@given(st.lists(PLAIN_LINE, max_size=12), END)
def test_plain_blocks_give_the_email_parsers_message(lines: list[bytes], end: bytes) -> None:
    same(b"".join(lines) + end)


def test_the_odd_blocks_the_email_parser_reads_its_own_way() -> None:
    for block in [
        b"\r\n",  # no header at all
        b"",  # the connection closed at once
        b"A: 1\r\nB: 2",  # the last line cut by the end of the stream
        b"Folded: one\r\n two\r\n\r\n",
        b"No colon here\r\nA: 1\r\n\r\n",
        b": no name\r\n\r\n",
        b" A: leading blank\r\n\r\n",
        b"From someone\r\nA: 1\r\n\r\n",
        b"A: 1\rB: 2\r\n\r\n",  # a lone CR is a line break to the email parser
        b"A: x\x85y\r\n\r\n",  # NEL, a line break to str.splitlines
        b"Content-Type: multipart/byteranges; boundary=3d6b6a416f9b5\r\n\r\n",
        b"content-type: Message/HTTP\r\n\r\n",
        b"A:   spaced  \r\nB:\t\ttabbed\r\nC:\r\nD:\r\r\n\r\n",
    ]:
        same(block)


def test_a_usual_answer_takes_the_short_way() -> None:
    """The short way is taken for the usual answer (else this module saves nothing), and
    its headers read as any caller reads them."""
    block = (
        b"Server: nginx/1.22.1\r\nDate: Mon, 07 Dec 2026 22:10:08 GMT\r\n"
        b"Content-Type: application/octet-stream\r\nContent-Length: 2048\r\n"
        b'ETag: "6572f3a1-800"\r\nSet-Cookie: a=1; Path=/\r\nSet-Cookie: b=2; Path=/\r\n'
        b'Content-Disposition: attachment; filename="\xc3\xa9t\xc3\xa9.mp4"\r\n'
        b"Accept-Ranges: bytes\r\n\r\n"
    )
    calls = []
    real = email.parser.Parser.parsestr
    email.parser.Parser.parsestr = lambda self, *a, **k: calls.append(a) or real(self, *a, **k)  # type: ignore[method-assign]
    try:
        message = same(block)
    finally:
        email.parser.Parser.parsestr = real  # type: ignore[method-assign]
    assert len(calls) == 1  # by_email's own call: the short way made none
    assert message.get_all("set-cookie") == ["a=1; Path=/", "b=2; Path=/"]
    assert message["content-length"] == "2048"
    assert message.get_content_type() == "application/octet-stream"


def test_http_client_parses_through_it(site: Any) -> None:
    """Installed (core/http.py does it on import): a real answer read by http.client."""
    import urllib.request

    import xdl.core.http  # noqa: F401

    assert http.client.parse_headers is headers.parse_headers
    with urllib.request.urlopen(f"{site.base}/media/clip-180p.mp4", timeout=10) as answer:
        assert answer.headers["Content-Type"] == "video/mp4"
        assert int(answer.headers["Content-Length"]) == len(answer.read())


def test_a_python_whose_header_parsing_differs_is_left_alone() -> None:
    """CPython's main branch reads `parse_headers(fp, _class, *, _max_headers)` with
    `_read_headers(fp, max_headers)`: put in place there, this module's two-argument
    function would fail every answer. It is installed only over the shape it knows."""
    original = headers._email_parse_headers
    read = http.client._read_headers  # type: ignore[attr-defined]

    def later(fp: Any, _class: Any = http.client.HTTPMessage, *, _max_headers: Any = None) -> Any:
        return original(fp, _class)

    def later_read(fp: Any, max_headers: Any) -> Any:
        return read(fp)

    assert headers.known_shape(original, read)
    assert not headers.known_shape(later, read)
    assert not headers.known_shape(original, later_read)
    assert not headers.known_shape(headers.parse_headers, read)  # ours already
    assert not headers.known_shape(original, None)


def test_a_block_the_stream_ended_is_said_to_be_cut_short() -> None:
    for block in [b"", b"A: 1\r\n", b"A: 1\r\nContent-Len", b"A: 1\r\n Folded"]:
        assert same(block).cut_short is True, block
    for block in [b"\r\n", b"A: 1\r\n\r\n", b"A: 1\n\n", b"No colon\r\n\r\n"]:
        assert not hasattr(same(block), "cut_short"), block


def test_fetch_of_an_answer_whose_headers_were_cut_keeps_no_file(tmp_path: Any, xdl: Any) -> None:
    """A server that closes the connection in the middle of its headers: http.client
    takes what came as the whole answer, with no length, so the body was the nothing
    after it: `ok` with a 0-byte file (the attack). Now a network error, nothing saved."""
    out = tmp_path / "out"

    def answer(asked: bytes) -> bytes:
        if asked.startswith(b"GET /moved"):  # a redirect cut inside its Location
            return b"HTTP/1.1 302 Found\r\nLocation: /a.b"
        if asked.startswith(b"GET /a.b "):
            return b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
        return CUT

    base, server = _raw_server(answer)
    try:
        urls = [f"{base}/a.bin", f"{base}/moved"]
        ran = xdl("fetch", "--strategy", "http", "--retries", "0", "-o", str(out), *urls)
    finally:
        server.close()
    assert ran.exit_code == 1 and len(ran.lines) == 2
    for line in ran.lines:  # the cut answer, and the redirect cut in its Location
        assert line["ok"] is False, line
        assert line["error"]["code"] == "network" and "headers" in line["error"]["message"]
    assert [p.name for p in out.iterdir() if not p.name.startswith(".")] == []


def test_a_probe_cut_in_its_headers_is_sent_again(tmp_path: Any, xdl: Any) -> None:
    """`--strategy http`: the first answer is cut in its headers, the second is whole.
    The probe is retried where it failed, as the body's requests are: `ok`, the bytes
    the server sent, two requests. With --retries 0 it is the one network error."""
    import hashlib

    body = b"whole at last\n" * 50
    asked: list[bytes] = []

    def answer(request: bytes) -> bytes:
        asked.append(request)
        if len(asked) % 2:  # the 1st, 3rd...: cut
            return CUT
        head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
        return head % len(body) + body

    base, server = _raw_server(answer)
    try:
        url = f"{base}/f.bin"
        ran = xdl("fetch", "--strategy", "http", "-o", str(tmp_path / "a"), url)
        tries = len(asked)
        once = xdl("fetch", "--strategy", "http", "--retries", "0", "-o", str(tmp_path / "b"), url)
    finally:
        server.close()
    assert ran.exit_code == 0, ran.lines
    (line,) = ran.lines
    assert line["ok"] is True and line["sha256"] == hashlib.sha256(body).hexdigest()
    assert (tmp_path / "a" / "f.bin").read_bytes() == body
    assert tries == 2
    assert once.exit_code == 1 and once.lines[0]["error"]["code"] == "network"
    assert not (tmp_path / "b" / "f.bin").exists()


#: An answer whose connection closes in the middle of its headers.
CUT = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"


def _raw_server(answer: Any) -> tuple[str, Any]:
    """A loopback server writing `answer(request bytes)` whole, then closing: its base
    URL, and its socket (closing it stops the server)."""
    import socket
    import threading

    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.sendall(answer(conn.recv(65536)))

    threading.Thread(target=serve, daemon=True).start()
    return f"http://127.0.0.1:{server.getsockname()[1]}", server
