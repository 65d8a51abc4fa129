"""Every input is judged alone: a hostile or broken line is one failed result line with a
stable code and a short message, and the batch goes on (SPEC §2-§4)."""

from __future__ import annotations

import io
import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from xdl.core import inputs
from xdl.core.inputs import MAX_JSON_DEPTH, check_url, iter_inputs, parse_line, shorten

DEEP = 5000
LONG_URL = "http://127.0.0.1:1/" + "a" * (1 << 20)

#: (command line, the good inputs' path on the loopback site): each gets two good
#: inputs around the bad one.
COMMANDS = [
    (("info", "--json"), "/watch.html"),
    (("fetch", "--dry-run"), "/files/report"),
    (("queue", "add"), "/files/report"),
]


def nested(depth: int, url: str = "http://127.0.0.1:1/x") -> str:
    return json.dumps({"url": url})[:-1] + ', "a": ' + "[" * depth + "]" * depth + "}"


def assert_judged_alone(ran: Any, good: list[str], bad_code: str = "bad_input") -> None:
    """Three lines, good / bad / good, exit 1, and no crash or flood on stderr."""
    assert ran.exit_code == 1, ran.stderr
    lines = ran.lines
    assert [line["ok"] for line in lines] == [True, False, True], ran.stdout[:2000]
    assert lines[0]["url"] == good[0] and lines[2]["url"] == good[1]
    assert lines[1]["error"]["code"] == bad_code
    assert len(lines[1]["error"]["message"]) <= 300
    assert "internal error" not in ran.stderr and "Traceback" not in ran.stderr
    # the input once as the line's prefix, at most once more in the message: ~200 chars each
    assert all(len(line) <= 500 for line in ran.stderr.splitlines()), "stderr echoes the input"


# --- the reader, table-driven -------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "code"),
    [
        (nested(DEEP), "bad_input"),  # deeper than json's C parser goes: RecursionError
        (nested(MAX_JSON_DEPTH + 1), "bad_input"),  # parses, but deeper than any real line
        (nested(MAX_JSON_DEPTH - 2), None),
        ('{"url": "http://e.com/x", "o": ' + '{"a": ' * DEEP + "1" + "}" * DEEP + "}", "bad_input"),
        ("http://e.com/" + "a" * 70000, "bad_input"),
        ("http://e.com/" + "a" * 60000, None),
        (json.dumps({"url": LONG_URL}), "bad_input"),
        # a host with an empty or over-long name: urllib3's LocationParseError, or the
        # idna codec's UnicodeError, came out as internal_error (the attack)
        ("http://a..b/x.bin", "bad_input"),
        ("https://" + "x" * 64 + ".example/", "bad_input"),
        ("https://" + "x" * 63 + ".example./", None),
        ("http://a%2e%2eb/x", "bad_input"),  # urllib3 decodes it: a..b
        ("http://ä..b/x", "bad_input"),
        ("http://ä.b/x", None),
    ],
    ids=[
        "deep-5000",
        "deep-over-cap",
        "deep-under-cap",
        "deep-objects",
        "url-70k",
        "url-60k",
        "json-url-1M",
        "host-empty-name",
        "host-name-64",
        "host-name-63",
        "host-escaped-dots",
        "host-non-ascii-empty-name",
        "host-non-ascii",
    ],
)
def test_hostile_lines_are_one_bad_input(line: str, code: str | None) -> None:
    item = parse_line(line)
    assert item is not None
    assert (item.error.code if item.error else None) == code
    if item.error:
        assert len(item.error.message) <= 300


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("short", "short"),
        ("x" * 200, "x" * 200),
        ("x" * 201, "x" * 199 + "\u2026"),
        ("é" * 5000, "é" * 199 + "\u2026"),
    ],
)
def test_shorten(text: str, shown: str) -> None:
    assert shorten(text) == shown


@pytest.mark.parametrize(
    ("text", "want"),
    [("http://e.com/a", "http://e.com/a"), ("\x00\x01ab", "\\x00\\x01ab"), ("\x00" * 500, None)],
)
def test_shown_escapes_control_characters(text: str, want: str | None) -> None:
    got = inputs.shown(text)
    assert got.isprintable() and len(got) <= 200
    assert want is None or got == want


@pytest.mark.parametrize(
    "url",
    [LONG_URL, "not a url " + "x" * 100000, "ftp://" + "x" * 100000, "http://" + "\x00" * 9000],
)
def test_url_messages_never_echo_more_than_a_short_quote(url: str) -> None:
    with pytest.raises(Exception) as caught:
        check_url(url)
    assert len(str(caught.value)) <= 300


def test_binary_and_nul_lines_are_each_one_bad_input() -> None:
    rng = random.Random(7)
    noise = [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300))) for _ in range(20)]
    noise = [n.replace(b"\n", b"") or b"\xff" for n in noise]
    data = b"http://e.com/1\n\x00\x00\x00\nhttp://e.com/\x00x\n" + b"\n".join(noise)
    data += b"\nhttp://e.com/2\n"
    items = list(iter_inputs([], None, "-", io.BytesIO(data)))
    assert items[0].error is None and items[-1].error is None
    assert items[0].value == "http://e.com/1" and items[-1].value == "http://e.com/2"
    for item in items[1:-1]:
        assert item.error is not None and item.error.code in ("bad_input", "unsupported_url")


def test_a_line_longer_than_the_cap_is_one_bad_input(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inputs, "MAX_LINE_BYTES", 1000)
    data = b"http://e.com/1\n" + b"y" * 5000 + b"\nhttp://e.com/2\n"
    items = list(iter_inputs([], io.BytesIO(data), "list.txt"))
    assert [i.error.code if i.error else i.value for i in items] == [
        "http://e.com/1",
        "bad_input",
        "http://e.com/2",
    ]
    assert items[1].origin == "list.txt:2" and len(items[1].value) <= 200


# --- the commands ------------------------------------------------------------------------


@pytest.fixture
def qfile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "q" / "queue.json"
    monkeypatch.setenv("XDL_QUEUE", str(path))
    return path


@pytest.mark.parametrize(("args", "path"), COMMANDS, ids=[c[0][0] for c in COMMANDS])
@pytest.mark.parametrize(
    "bad",
    [nested(DEEP), nested(MAX_JSON_DEPTH * 5), LONG_URL],
    ids=["deep-json", "deep-json-parsable", "url-1M"],
)
def test_one_hostile_line_between_good_ones(
    xdl: Any, site: Any, qfile: Path, args: tuple[str, ...], path: str, bad: str
) -> None:
    good = [site.url(path), site.url(path) + "?2"]
    ran = xdl(*args, input=f"{good[0]}\n{bad}\n{good[1]}\n")
    assert_judged_alone(ran, good)
    if args[0] == "queue":
        stored = qfile.read_text()
        assert "[[[[" not in stored and "aaaaaaaa" not in stored


@pytest.mark.parametrize(("args", "path"), COMMANDS, ids=[c[0][0] for c in COMMANDS])
def test_binary_lines_between_good_ones(
    xdl: Any, site: Any, qfile: Path, args: tuple[str, ...], path: str
) -> None:
    good = [site.url(path), site.url(path) + "?2"]
    noise = b"\x00\x01\x02\xff\xfe" + os.urandom(64).replace(b"\n", b"") + b"\x00"
    ran = xdl(*args, input=good[0].encode() + b"\n" + noise + b"\n" + good[1].encode() + b"\n")
    assert_judged_alone(ran, good)


def test_a_long_url_never_reaches_wget(xdl: Any, site: Any) -> None:
    """A 1 MB URL used to fail as `OSError: Argument list too long: 'wget'`."""
    good = [site.url("/files/report"), site.url("/files/report") + "?2"]
    ran = xdl("fetch", "--strategy", "wget", input=f"{good[0]}\n{LONG_URL}\n{good[1]}\n")
    assert_judged_alone(ran, good)
    assert "too long" in ran.lines[1]["error"]["message"]


def test_deep_json_line_from_the_console_script(xdl_cmd: Any, site: Any) -> None:
    good = [site.url("/files/report"), site.url("/files/report") + "?2"]
    data = f"{good[0]}\n{nested(DEEP)}\n{good[1]}\n".encode()
    ran = xdl_cmd("fetch", "--dry-run", input=data)
    assert_judged_alone(ran, good)


# --- a redirect to a URL xdl never opens ------------------------------------------------


@pytest.fixture
def to_file(site: Any) -> str:
    """A loopback route that answers 302 Location: file:///etc/passwd."""

    @site.route("/redirect-to-file")
    def redirect(req: Any) -> None:
        req.send_response(302)
        req.send_header("Location", "file:///etc/passwd")
        req.send_header("Content-Length", "0")
        req.end_headers()

    return str(site.url("/redirect-to-file"))


@pytest.mark.parametrize(
    "args",
    [
        ("fetch",),
        ("fetch", "--strategy", "http"),
        ("fetch", "--strategy", "wget"),
        ("info", "--json"),
        ("formats", "--json"),
        ("transcript",),
    ],
    ids=["fetch", "fetch-http", "fetch-wget", "info", "formats", "transcript"],
)
def test_a_redirect_to_a_file_url_is_unsupported_url(
    xdl: Any, site: Any, to_file: str, tmp_path: Path, args: tuple[str, ...]
) -> None:
    ran = xdl(*args, to_file, site.url("/watch.html"))
    assert "internal error" not in ran.stderr and "Traceback" not in ran.stderr
    assert ran.exit_code == 1, ran.stderr
    bad = ran.lines[0]
    assert bad["ok"] is False and bad["url"] == to_file
    assert bad["error"]["code"] == "unsupported_url"
    assert "file:///etc/passwd" in bad["error"]["message"]
    assert ran.lines[-1]["ok"] is True  # the next input still ran
    passwd = Path("/etc/passwd").read_bytes()[:64]
    assert passwd not in ran.stdout.encode()
    for written in tmp_path.rglob("*"):
        if written.is_file() and written.stat().st_size < 50_000_000:
            assert passwd not in written.read_bytes(), written


@pytest.mark.parametrize(
    ("message", "text"),
    [
        (
            "No connection adapters were found for 'file:///etc/passwd'",
            "refused a redirect or link to 'file:///etc/passwd'",
        ),
        (
            'Unable to handle request: Unsupported url scheme: "file" (Urllib)',
            "refused a redirect or link to 'file:'",
        ),
        ("something else", "refused a redirect or link: "),
    ],
)
def test_refused_names_the_target(message: str, text: str) -> None:
    error = inputs.refused(message)
    assert error.code == "unsupported_url" and error.final
    assert error.message.startswith(text)


# --- to-markdown: one bad caption file, the next one still converted ----------------------

VTT = "WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nStill converted.\n"


def deep_ttml(depth: int, tag: str = "div") -> str:
    inner = '<p begin="0s" end="1s">deep</p>'
    if tag == "span":
        inner = '<p begin="0s" end="1s">' + "<span>" * depth + "x" + "</span>" * depth + "</p>"
        depth = 1
    body = "<div>" * depth + inner + "</div>" * depth
    return f'<tt xmlns="http://www.w3.org/ns/ttml"><body>{body}</body></tt>'


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda p: p.write_text(deep_ttml(5000)), "parse_error"),
        (lambda p: p.write_text(deep_ttml(5000, "span")), "parse_error"),
        (lambda p: p.write_text(deep_ttml(201)), "parse_error"),
        (lambda p: p.mkdir(), "bad_input"),
        (lambda p: p.write_bytes(b"WEBVTT\n\n" + b" \n\n" * (1 << 19)), "too_large"),
    ],
    ids=["deep-divs", "deep-spans", "over-cap", "directory", "over-the-size-cap"],
)
def test_one_bad_caption_file_between_good_ones(
    xdl: Any, tmp_path: Path, make: Any, code: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from xdl.core import markdown

    monkeypatch.setattr(markdown, "MAX_CAPTION_BYTES", 1 << 20)  # 1 GiB really
    (tmp_path / "a.vtt").write_text(VTT)
    make(tmp_path / "bad.ttml")
    (tmp_path / "b.vtt").write_text(VTT)
    files = [str(tmp_path / n) for n in ("a.vtt", "bad.ttml", "b.vtt")]
    ran = xdl("to-markdown", *files)
    assert ran.exit_code == 1, ran.stderr
    assert [(r["ok"], r["path"]) for r in ran.lines] == [(ok, f) for ok, f in zip((1, 0, 1), files)]
    assert ran.lines[1]["error"]["code"] == code
    assert "internal error" not in ran.stderr
    assert (tmp_path / "b.md").read_text().strip() == "Still converted."


def test_a_ttml_file_nested_under_the_cap_still_converts(xdl: Any, tmp_path: Path) -> None:
    (tmp_path / "ok.ttml").write_text(deep_ttml(150))
    ran = xdl("to-markdown", str(tmp_path / "ok.ttml"))
    assert ran.exit_code == 0, ran.stderr
    assert (tmp_path / "ok.md").read_text().strip() == "deep"


@pytest.mark.parametrize("device", ["/dev/zero", "fifo"])
def test_an_endless_binary_source_fails_at_once(xdl_cmd: Any, tmp_path: Path, device: str) -> None:
    """`xdl to-markdown /dev/zero` read until MemoryError; a FIFO fed zeros forever too.
    Now the first bytes tell: binary, not captions."""
    (tmp_path / "b.vtt").write_text(VTT)
    path = device
    if device == "fifo":
        path = str(tmp_path / "endless")
        os.mkfifo(path)
        feeder = f"with open({path!r}, 'wb') as f:\n    while True: f.write(bytes(1 << 20))"
        proc = subprocess.Popen([sys.executable, "-c", feeder], stderr=subprocess.DEVNULL)
    try:
        out = str(tmp_path / "out")
        ran = xdl_cmd("to-markdown", "--output-dir", out, path, str(tmp_path / "b.vtt"), timeout=30)
    finally:
        if device == "fifo":
            proc.kill()
            proc.wait()
    assert ran.exit_code == 1, ran.stderr
    good = str(tmp_path / "b.vtt")
    assert [(r["ok"], r["path"]) for r in ran.lines] == [(False, path), (True, good)]
    assert ran.lines[0]["error"]["code"] == "not_captions"
    assert "binary" in ran.lines[0]["error"]["message"]
    assert (tmp_path / "out" / "b.md").read_text().strip() == "Still converted."


class _EndlessCaptions(io.RawIOBase):
    """A pipe that never ends, of captions that look real."""

    def __init__(self) -> None:
        self.sent = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        head = b"WEBVTT\n\n" if not self.sent else b""
        cue = b"00:00:01.000 --> 00:00:02.000\nsaid again and again\n\n"
        data = (head + cue * (len(buffer) // len(cue) + 1))[: len(buffer)]
        buffer[: len(data)] = data
        self.sent += len(data)
        return len(data)


def test_an_endless_stdin_document_is_too_large(xdl: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Converted as it is read, in bounded memory, until the cap (1 GiB; 4 MiB here)."""
    from xdl.core import markdown

    monkeypatch.setattr(markdown, "MAX_CAPTION_BYTES", 4 << 20)
    endless = _EndlessCaptions()
    ran = xdl("to-markdown", input=io.BufferedReader(endless))
    assert ran.exit_code == 1, ran.stderr
    assert ran.lines[0]["error"]["code"] == "too_large"
    assert "4 MiB" in ran.lines[0]["error"]["message"]
    assert endless.sent < 16 << 20  # it stopped soon after the cap


# --- lone surrogates, NUL, absurd numbers: one failed line, never a lost batch ----------

#: JSON lines as a program writes them: the surrogate as its escape, `\ud800`.
SURROGATE_URL = '{"url": "http://127.0.0.1:1/\\ud800"}'
SURROGATE_FIELD = '{"url": "http://127.0.0.1:1/x", "title": "a\\udfffb"}'
SURROGATE_KEY = '{"url": "http://127.0.0.1:1/x", "\\ud800": 1}'
HUGE_INT = '{"url": "http://127.0.0.1:1/x", "priority": ' + "1" * 5000 + "}"
PAST_INT64 = '{"url": "http://127.0.0.1:1/x", "priority": 9223372036854775808}'
PAST_FLOAT = '{"url": "http://127.0.0.1:1/x", "sha256": 1e400}'
NAN = '{"url": "http://127.0.0.1:1/x", "audio": NaN}'
ABSURD_LINES = [
    SURROGATE_URL,
    SURROGATE_FIELD,
    SURROGATE_KEY,
    HUGE_INT,
    PAST_INT64,
    PAST_FLOAT,
    NAN,
]
ABSURD_IDS = ["surrogate-url", "surrogate-field", "surrogate-key", "5000-digits", "past-int64",
              "1e400", "nan"]  # fmt: skip


@pytest.mark.parametrize("line", ABSURD_LINES, ids=ABSURD_IDS)
def test_absurd_json_lines_are_one_bad_input(line: str) -> None:
    item = parse_line(line)
    assert item is not None and item.error is not None, item
    assert item.error.code == "bad_input" and len(item.error.message) <= 300
    item.value.encode("utf-8")  # what the failed line echoes can be written


@pytest.mark.parametrize(
    ("line", "fine"),
    [
        ('{"url": "http://e.com/\\ud83d\\ude00"}', True),  # a pair: an emoji, not a surrogate
        ('{"url": "http://e.com/x", "n": 9223372036854775807, "f": 1.5e300}', True),
        ("http://e.com/\ud800", False),  # as an argument: the str itself
    ],
)
def test_what_is_text_stays_usable(line: str, fine: bool) -> None:
    item = parse_line(line)
    assert item is not None and (item.error is None) is fine


@pytest.mark.parametrize(
    ("path", "fine"),
    [("a\x00b.vtt", False), ("a\ud800.vtt", False), ("a\udcff.vtt", True), ("a b\n.vtt", True)],
    ids=["nul", "surrogate", "non-utf8-argument", "odd-but-a-name"],
)
def test_a_path_that_no_file_can_have_is_bad_input(path: str, fine: bool) -> None:
    """`\\udcff` is how Python keeps the byte 0xff of a non-UTF-8 file name given as an
    argument (surrogateescape): a real name, kept."""
    item = parse_line(path, "path")
    assert item is not None and (item.error is None) is fine
    if not fine:
        assert item.error is not None and item.error.code == "bad_input"


@pytest.mark.parametrize(
    ("args", "path"),
    [*COMMANDS, (("transcript", "-o", "subs"), "/watch.html")],
    ids=[*(c[0][0] for c in COMMANDS), "transcript"],
)
@pytest.mark.parametrize("bad", ABSURD_LINES[::3], ids=ABSURD_IDS[::3])
def test_an_absurd_line_between_good_ones(
    xdl: Any, site: Any, qfile: Path, args: tuple[str, ...], path: str, bad: str
) -> None:
    """A lone surrogate made every command exit 3 (`internal error: UnicodeEncodeError`)
    and `queue add` add none of its lines; 5000 digits made it a ValueError."""
    good = [site.url(path), site.url(path) + "?2"]
    ran = xdl(*args, input=f"{good[0]}\n{bad}\n{good[1]}\n")
    assert_judged_alone(ran, good)
    if args[0] == "queue":
        assert [t["url"] for t in json.loads(qfile.read_text())["tasks"]] == good


def test_to_markdown_judges_each_path_alone(xdl: Any, tmp_path: Path) -> None:
    """A NUL byte in a path made `to-markdown` exit 3 (`embedded null byte`)."""
    (tmp_path / "a.vtt").write_text(VTT)
    (tmp_path / "b.vtt").write_text(VTT)
    good = [str(tmp_path / "a.vtt"), str(tmp_path / "b.vtt")]
    lines = [json.dumps({"path": p}) for p in ("x\x00y.vtt", "x\ud800.vtt")]
    ran = xdl("to-markdown", input="\n".join([good[0], *lines, good[1]]) + "\n")
    assert ran.exit_code == 1, ran.stderr
    assert [r["ok"] for r in ran.lines] == [True, False, False, True]
    assert [r["error"]["code"] for r in ran.lines[1:3]] == ["bad_input", "bad_input"]
    assert "internal error" not in ran.stderr
    assert (tmp_path / "b.md").read_text().strip() == "Still converted."


def test_a_nul_in_a_file_argument_is_one_failed_line(xdl: Any, tmp_path: Path) -> None:
    """click's Path type stat()ed every argument first: ValueError, exit 3."""
    (tmp_path / "b.vtt").write_text(VTT)
    ran = xdl("to-markdown", "x\x00.vtt", str(tmp_path / "b.vtt"))
    assert ran.exit_code == 1, ran.stderr
    assert [r["ok"] for r in ran.lines] == [False, True]
    assert ran.lines[0]["error"]["code"] == "bad_input"


@pytest.mark.parametrize("text", ["\ud800", "a\udcffb", "\u2028", "x\x85y", "\u2029"])
def test_the_writer_escapes_what_would_break_a_line(text: str) -> None:
    """A lone surrogate cannot be written as UTF-8; NEL, U+2028 and U+2029 split a line
    for `str.splitlines` and old JSON readers. Each is written as its JSON escape."""
    from xdl.cli.output import Output

    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="utf-8", errors="strict", newline="\n")
    out = Output(stream=stream, key="path")
    out.fail(text, inputs.BadInput("bad"))
    out.emit({"ok": True, "path": "ok"})
    stream.flush()
    lines = raw.getvalue().decode("utf-8").splitlines()
    assert len(lines) == 2 and lines[0].isascii()
    assert json.loads(lines[0])["path"] == text and json.loads(lines[1])["ok"] is True


# --- caption files whose numbers or nesting no parser should trust -----------------------

DIGITS = "1" * 5000
TT = '<tt xmlns="http://www.w3.org/ns/ttml" xmlns:ttp="http://www.w3.org/ns/ttml#parameter"'
GOOD_P = '<p begin="1s" end="2s">kept</p>'


def _tt(p: str, params: str = "") -> str:
    return f"{TT} {params}><body><div>{p}{GOOD_P}</div></body></tt>"


def _json3(*events: str) -> str:
    good = '{"tStartMs": 1000, "dDurationMs": 1000, "segs": [{"utf8": "kept"}]}'
    return '{"wireMagic": "pb3", "events": [' + ",".join([*events, good]) + "]}"


@pytest.mark.parametrize(
    "doc",
    [
        f"1\n{DIGITS}:00:00,000 --> 00:00:02,000\nlost\n\n2\n00:00:01,000 --> 00:00:02,000\nkept\n",
        _tt(f'<p begin="{DIGITS}s" end="2s">lost</p>'),
        _tt(f'<p begin="{"9" * 400}s" end="2s">lost</p>'),  # a float past 1e308: inf
        _tt(f'<p begin="{DIGITS}:00.5" end="2s">lost</p>'),
        _tt(f'<p begin="00:00:01:{DIGITS}" end="2s">lost</p>'),
        _tt(GOOD_P.replace("kept", "also kept"), f'ttp:frameRateMultiplier="{DIGITS} 1"'),
        _tt('<p begin="30f" end="60f">also kept</p>', 'ttp:frameRate="nan" ttp:tickRate="-inf"'),
        f'<timedtext><body><p t="nan" d="1">lost</p><p t="{"9" * 400}">lost</p>'
        '<p t="1000" d="1000">kept</p></body></timedtext>',
        _json3('{"tStartMs": 1e400, "segs": [{"utf8": "lost"}]}'),
        _json3('{"tStartMs": ' + "9" * 4000 + ', "segs": [{"utf8": "lost"}]}'),
        _json3('{"tStartMs": "NaN", "segs": [{"utf8": "lost"}]}'),
        _json3('{"tStartMs": 0, "segs": [{"utf8": {"a": "lost"}}]}'),
    ],
    ids=[
        "srt-5000-digit-hours",
        "ttml-5000-digits",
        "ttml-inf",
        "ttml-5000-digit-minutes",
        "ttml-5000-digit-frames",
        "ttml-5000-digit-rate",
        "ttml-nan-rates",
        "srv3-nan-and-inf",
        "json3-1e400",
        "json3-4000-digits",
        "json3-nan",
        "json3-text-not-a-string",
    ],
)
def test_a_time_no_clock_can_show_is_an_unreadable_block(
    doc: str, xdl: Any, tmp_path: Path
) -> None:
    """Each raised (ValueError: int() of 5,000 digits; OverflowError; RecursionError) or
    made a time of inf or NaN that `--timestamps` then failed on: exit 3, batch lost.
    Now such a cue is set aside (counted, never silently) and the rest is read."""
    from xdl.core.captions import parse

    caps = parse(doc.encode())
    assert "kept" in " ".join(c.text for c in caps.cues)
    assert "lost" not in " ".join(c.text for c in caps.cues)
    (tmp_path / "odd.txt").write_text(doc)
    (tmp_path / "b.vtt").write_text(VTT)
    for fmt in ("--timestamps", "--no-speakers"):
        ran = xdl(
            "to-markdown", "--overwrite", fmt, str(tmp_path / "odd.txt"), str(tmp_path / "b.vtt")
        )
        assert ran.exit_code == 0, ran.stderr
        assert "kept" in (tmp_path / "odd.md").read_text()


def test_a_long_fraction_is_read_to_the_nanosecond() -> None:
    from xdl.core.captions import parse

    (cue,) = parse(f"1\n00:00:01,{DIGITS} --> 00:00:02,000\nhi\n".encode()).cues
    assert cue.start == pytest.approx(1.111111111) and cue.text == "hi"


@pytest.mark.parametrize("depth", [100_000, 5000])
def test_a_json3_file_nested_too_deep_is_a_parse_error(
    xdl: Any, tmp_path: Path, depth: int
) -> None:
    """RecursionError from json.loads: exit 3, `internal error`."""
    (tmp_path / "deep.json").write_text('{"events": ' + "[" * depth + "]" * depth + "}")
    (tmp_path / "b.vtt").write_text(VTT)
    ran = xdl("to-markdown", str(tmp_path / "deep.json"), str(tmp_path / "b.vtt"))
    assert ran.exit_code == 1, ran.stderr
    assert [r["ok"] for r in ran.lines] == [False, True]
    assert ran.lines[0]["error"]["code"] == "parse_error"
    assert "internal error" not in ran.stderr


def test_an_encoding_that_is_not_text_is_a_usage_error(xdl: Any, tmp_path: Path) -> None:
    """`hex` and `base64` are codecs, but of bytes to bytes: LookupError later, exit 3."""
    (tmp_path / "b.vtt").write_text(VTT)
    for name in ("hex", "base64", "rot13"):
        ran = xdl("to-markdown", "--encoding", name, str(tmp_path / "b.vtt"))
        assert ran.exit_code == 2, ran.stderr
        assert "not a text encoding" in ran.stderr and not ran.stdout


@pytest.mark.parametrize("name", ["utf-16", "utf-32"])
def test_utf16_named_without_byte_order_reads_the_bom(name: str, xdl: Any, tmp_path: Path) -> None:
    """`--encoding utf-16` on a file with a BOM: `UTF-16 stream does not start with BOM`."""
    (tmp_path / "a.vtt").write_bytes(VTT.encode(name))  # Python writes the BOM
    ran = xdl("to-markdown", "--encoding", name, "--stdout", str(tmp_path / "a.vtt"))
    assert ran.exit_code == 0, ran.stderr
    assert ran.stdout.strip() == "Still converted."


def test_a_codec_that_refuses_any_bytes_is_one_failed_line(xdl: Any, tmp_path: Path) -> None:
    (tmp_path / "a.vtt").write_bytes(b"WEBVTT\n\n00:00:00.000 --> 00:00:01.000\n\xff\n")
    ran = xdl("to-markdown", "--encoding", "idna", str(tmp_path / "a.vtt"))
    assert ran.exit_code == 1, ran.stderr
    assert ran.lines[0]["error"]["code"] == "bad_input"
    assert "internal error" not in ran.stderr


def test_chapters_a_site_wrote_wrong_are_left_out() -> None:
    """A chapter whose start is not a number raised ValueError in `transcript -F md`."""
    from xdl.core.markdown import chapters_of

    listed = [
        {"title": "one", "start_time": "soon"},
        {"title": "two", "start_time": 5},
        "not a chapter",
        {"title": 3, "start_time": 1},
        {"title": "three", "start_time": float("nan")},
        {"title": "four"},
    ]
    assert chapters_of({"chapters": listed}) == [(5.0, "two"), (0.0, "four")]
    assert chapters_of({"chapters": "nothing"}) == []


# --- memory: a WebVTT header is never read whole -------------------------------------------

#: The command in a fresh interpreter, then its own peak RSS: /proc's VmHWM, not
#: getrusage's ru_maxrss, which Linux carries over an exec from the parent (pytest).
PEAK_RSS = """
import re, sys
from xdl.cli.main import cli
code = cli.main(sys.argv[1:], prog_name="xdl", standalone_mode=False)
with open("/proc/self/status") as f:
    peak = re.search(r"VmHWM:\\s+(\\d+) kB", f.read()).group(1)
sys.stderr.write(f"peak_rss_kib={peak}\\n")
sys.exit(code)
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux's /proc")
def test_a_huge_webvtt_header_is_read_in_bounded_memory(tmp_path: Path) -> None:
    """`WEBVTT ` and 64 MiB on the same line was read whole, and copied: 150 MiB of
    peak memory (a 150 MB header line: 326 MB; 600 MB: 1.2 GB and 111 s). Now it is
    read past a piece at a time: the peak is the interpreter's own, ~40 MiB."""
    doc = tmp_path / "header.vtt"
    with doc.open("wb") as f:
        f.write(b"WEBVTT ")
        for _ in range(64):
            f.write(b"x" * (1 << 20))
        f.write(b"\n\n00:00:01.000 --> 00:00:02.000\nSaid after the header.\n")
    proc = subprocess.run(
        [sys.executable, "-c", PEAK_RSS, "to-markdown", "--stdout", str(doc)],
        capture_output=True,
        timeout=120,
        env={**os.environ, "XDL_HOME": str(tmp_path / "home")},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode().strip() == "Said after the header."
    peak = int(proc.stderr.decode().rsplit("peak_rss_kib=", 1)[1])
    assert peak < 100 << 10, f"peak RSS {peak >> 10} MiB for a 64 MiB header"


class _Endless(io.RawIOBase):
    """A pipe of one byte, forever, counting what was read."""

    def __init__(self, byte: bytes) -> None:
        self.byte = byte
        self.sent = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        buffer[: len(buffer)] = self.byte * len(buffer)
        self.sent += len(buffer)
        return len(buffer)


def test_text_without_a_cue_timing_is_not_captions_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Text with no timing was read up to the 64 MiB document cap, searched again at
    every piece (75 s and 164 MB for 200 MB of `x`), then called `too_large`. Its
    first MiB tells: not captions."""
    from xdl.core import captions, markdown

    monkeypatch.setattr(captions, "MAX_DOCUMENT_BYTES", 16 << 20)
    source = _Endless(b"x")
    with pytest.raises(captions.NotCaptions):
        markdown.render_stream(io.BufferedReader(source), markdown.Layout(), io.BytesIO())
    assert source.sent <= 8 << 20


def test_a_timing_past_the_first_mib_is_not_looked_for() -> None:
    from xdl.core.captions import DETECT_CHARS, NotCaptions, parse

    cue = b"1\n00:00:01,000 --> 00:00:02,000\nlate\n"
    assert parse(b"x" * (DETECT_CHARS - 100) + b"\n\n" + cue).cues[0].text == "late"
    with pytest.raises(NotCaptions):
        parse(b"x" * DETECT_CHARS + b"\n\n" + cue)


def test_a_bug_on_one_input_fails_that_input_only(
    xdl: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SPEC §3: the batch goes on, whatever one input meets; it used to end with exit 3
    (`internal error`) and no line for the inputs after it."""
    from xdl.core import markdown

    real = markdown.convert_file

    def convert_file(path: str, *args: Any, **kw: Any) -> Any:
        if path.endswith("bug.vtt"):
            raise RuntimeError("a bug")
        return real(path, *args, **kw)

    monkeypatch.setattr(markdown, "convert_file", convert_file)
    files = [tmp_path / n for n in ("a.vtt", "bug.vtt", "b.vtt")]
    for f in files:
        f.write_text(VTT)
    ran = xdl("to-markdown", *map(str, files))
    assert ran.exit_code == 1, ran.stderr
    assert [r["ok"] for r in ran.lines] == [True, False, True]
    assert ran.lines[1]["error"]["code"] == "internal_error"
    assert "RuntimeError: a bug" in ran.lines[1]["error"]["message"]
    assert "Traceback" not in ran.stderr
    assert (tmp_path / "b.md").exists()


def test_a_row_with_nan_is_still_json_that_xdl_reads_back() -> None:
    """`json.dumps` writes NaN and Infinity, which are not JSON (jq refuses them) and
    which xdl's own reader refuses: `info --raw | xdl fetch` would fail on its own line."""
    from xdl.cli.output import Output

    stream = io.StringIO()
    row = {"ok": True, "url": "http://e.com/x", "ratio": float("nan"), "n": [float("inf"), 1.5]}
    Output(stream=stream).emit(row)
    line = stream.getvalue()
    assert json.loads(line, parse_constant=lambda c: pytest.fail(c)) == {
        "ok": True, "url": "http://e.com/x", "ratio": None, "n": [None, 1.5]
    }  # fmt: skip
    item = parse_line(line.strip())
    assert item is not None and item.error is None


# --- one cue of megabytes on one line ------------------------------------------------------


class _Counting(str):
    """A cue text that counts the calls of its `count` (a scan of all of it)."""

    calls = 0

    def count(self, *args: Any) -> int:  # type: ignore[override]
        _Counting.calls += 1
        return super().count(*args)


def test_a_long_cue_is_scanned_once_not_once_a_paragraph() -> None:
    """Each new paragraph inside a cue counted the words of the whole cue again: a
    4 MB cue on one line took 28 s, 64 MB hours."""
    from xdl.core.captions import Cue
    from xdl.core.markdown import Layout, paragraphs

    text = _Counting(" ".join(["word"] * 20_000))
    _Counting.calls = 0
    paras = paragraphs([Cue(0.0, 100.0, text)], Layout(min_words=50, max_words=100))
    assert len(paras) == 200 and all(p.count == 100 for p in paras)
    assert paras[1].start == pytest.approx(0.5)  # still placed by its share of the words
    assert _Counting.calls <= 3


def test_a_long_line_converts_the_same_word_for_word(tmp_path: Path) -> None:
    """Past 64 Ki characters a line is cleaned and cut a stretch at a time: the same
    Markdown, without a string per word at once."""
    from xdl.core.captions import _spaced
    from xdl.core.markdown import Layout, count_words, markdown_of

    words = [f"w{i}\u3000" if i % 7 == 0 else f"w{i}" for i in range(40_000)]
    line = "  ".join(words) + " 你好世界"
    assert _spaced(line) == " ".join(line.split())
    assert count_words(line) == 40_004  # and each Han character a word
    doc = f"WEBVTT\n\n00:00:00.000 --> 00:01:00.000\n{line}\n".encode()
    text, done = markdown_of(doc, Layout(max_words=1000))
    assert done.words == 40_004 and text.split() == line.split()


def test_a_line_of_megabytes_is_too_large(xdl: Any, tmp_path: Path) -> None:
    """Cleaned and cut into words whole, a 64 MB line took 2 GB; past MAX_LINE_CHARS
    (4 Mi characters) it is `too_large`, and the next file is converted."""
    with (tmp_path / "long.vtt").open("wb") as f:
        f.write(b"WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n")
        for _ in range(6):
            f.write(b"ab " * (1 << 18))
    (tmp_path / "b.vtt").write_text(VTT)
    ran = xdl("to-markdown", str(tmp_path / "long.vtt"), str(tmp_path / "b.vtt"))
    assert ran.exit_code == 1, ran.stderr
    assert [r["ok"] for r in ran.lines] == [False, True]
    assert ran.lines[0]["error"]["code"] == "too_large"
    assert "a line of more than 4 Mi" in ran.lines[0]["error"]["message"]


def test_a_redirect_to_a_host_with_an_empty_name_is_bad_input(xdl: Any, tmp_path: Any) -> None:
    """urllib3's LocationParseError, raised following the redirect, came out bare:
    internal_error (the attack)."""
    import http.server
    import threading

    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", "http://a..b/x.bin")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/r"
        for strategy in ("http", "auto"):
            ran = xdl("fetch", "--strategy", strategy, "-o", str(tmp_path / "out"), url)
            (line,) = ran.lines
            assert ran.exit_code == 1 and line["error"]["code"] == "bad_input", line
            assert "a..b" in line["error"]["message"]
    finally:
        server.shutdown()
