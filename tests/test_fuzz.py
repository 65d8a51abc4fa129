"""Fuzzing the boundaries with Hypothesis (SPEC §3): whatever an input line holds (text
with lone surrogates, NUL and control characters; JSON of any shape, wrong types, deep
nesting, absurd numbers in any field), every command answers it with exactly one line
and goes on; whatever bytes a caption file holds, a reader gives a result or one of
xdl's own errors (a stable code), never another exception.

Each test is bounded (`max_examples`, no deadline) so that the suite stays fast; the
database is off, so a run leaves nothing behind and replays nothing. To search longer:
XDL_FUZZ_EXAMPLES=2000 pytest tests/test_fuzz.py.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xdl.cli.output import Output
from xdl.core import captions, errors, markdown, transcript
from xdl.core.inputs import parse_line
from xdl.core.markdown import Layout

FUZZ = settings(
    max_examples=int(os.environ.get("XDL_FUZZ_EXAMPLES", "25")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# --- input lines --------------------------------------------------------------------------

#: Any code point, lone surrogates included (Hypothesis leaves them out unless asked).
ANY_CHAR = st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=())
NASTY = st.sampled_from(["\ud800", "\udfff", "\udcff", "\x00", "\x7f", "\u202e", "\ufeff", "\r"])
TEXT = st.text(st.one_of(ANY_CHAR, NASTY), max_size=30)

#: Numbers no field can mean, as JSON text: past int()'s 4,300 digits, past int64, past
#: a float, and the constants Python's json reads though JSON has none.
ABSURD = st.sampled_from(
    ["1" * 5000, "-" + "9" * 25, "1e400", "-1e400", "NaN", "Infinity", "-Infinity",
     "1" * 400 + ".5", "0." + "0" * 5000 + "1", "18446744073709551616", "-0", "1E-400"]
)  # fmt: skip
DEEP = st.integers(90, 3000).map(lambda n: "[" * n + "]" * n)


def _string(text: str) -> str:
    """A JSON string: surrogates as `\\ud800` escapes (what a program would write)."""
    return json.dumps(text)


SCALAR = st.one_of(
    st.sampled_from(["null", "true", "false", "0", "1", "-1", '""', "[]", "{}"]),
    st.integers().map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(json.dumps),
    TEXT.map(_string),
    ABSURD,
)
VALUE = (
    st.recursive(
        SCALAR,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4).map(lambda xs: "[" + ",".join(xs) + "]"),
            st.lists(st.tuples(TEXT.map(_string), inner), max_size=4).map(
                lambda kv: "{" + ",".join(f"{k}:{v}" for k, v in kv) + "}"
            ),
        ),
        max_leaves=8,
    )
    | DEEP
)

#: The fields xdl reads from a line, and some it passes along.
FIELDS = [
    "url", "webpage_url", "path", "output", "sha256", "template", "audio", "title", "id",
    "ok", "playlist", "playlist_title", "channel", "uploader", "priority", "ext", "lang",
]  # fmt: skip


def json_line(good: str | None) -> st.SearchStrategy[str]:
    """A JSON object line: known fields with any value (a usable URL or path among them
    sometimes: `good`), unknown keys too."""
    value = VALUE if good is None else st.one_of(VALUE, st.just(_string(good)))
    key = st.one_of(st.sampled_from(FIELDS), TEXT).map(_string)
    return st.lists(st.tuples(key, value), max_size=6).map(
        lambda kv: "{" + ", ".join(f"{k}: {v}" for k, v in kv) + "}"
    )


def lines(good: str | None) -> st.SearchStrategy[list[str]]:
    """Input lines, each one input: never blank or a comment (those answer nothing), no
    line feed inside (that would make two)."""
    one = st.one_of(json_line(good), TEXT.map(lambda t: "x" + t))
    return st.lists(one.map(lambda t: t.replace("\n", " ")), min_size=1, max_size=4)


def stdin_bytes(texts: list[str], raw: bytes) -> bytes:
    """The lines as piped bytes: surrogates as the bytes a careless writer would send
    (invalid UTF-8), one line of raw bytes after them."""
    out = [t.encode("utf-8", "surrogatepass") for t in texts]
    out.append(b"x" + raw.replace(b"\n", b" "))
    return b"\n".join(out) + b"\n"


def assert_one_line_each(ran: Any, count: int) -> list[dict[str, Any]]:
    """`count` result lines, each a JSON object with `ok`; exit 0 or 1; no crash."""
    assert "internal error" not in ran.stderr, ran.stderr[-2000:]
    assert "Traceback" not in ran.stderr, ran.stderr[-2000:]
    assert ran.exit_code in (0, 1), (ran.exit_code, ran.stderr[-2000:])
    rows = ran.lines
    assert len(rows) == count, (ran.stdout[-3000:], ran.stderr[-2000:])
    for row in rows:
        assert isinstance(row.get("ok"), bool)
        assert row["ok"] or row["error"]["code"] not in ("error", "internal_error")
    return rows


@pytest.fixture
def caption_file(tmp_path: Path) -> str:
    path = tmp_path / "good.vtt"
    path.write_text("WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nFuzzed.\n")
    return str(path)


def commands(site: Any, tmp_path: Path, caption_file: str) -> dict[str, tuple[list[str], str]]:
    """command -> (its arguments, the usable URL or path a line sometimes holds)."""
    return {
        "fetch": (
            ["fetch", "--dry-run", "--retries", "0", "-o", str(tmp_path / "f")],
            site.url("/files/report"),
        ),
        "info": (["info", "--json"], site.url("/watch.html")),
        "transcript": (["transcript", "-o", str(tmp_path / "t")], site.url("/watch.html")),
        "to-markdown": (
            ["to-markdown", "--output-dir", str(tmp_path / "md"), "--overwrite"],
            caption_file,
        ),
        "queue-add": (["queue", "add", "--queue", str(tmp_path / "queue.json")], site.url("/x")),
    }


NAMES = ["fetch", "info", "transcript", "to-markdown", "queue-add"]


@pytest.mark.parametrize("name", NAMES)
def test_any_piped_line_is_one_result_line(
    xdl: Any, site: Any, tmp_path: Path, caption_file: str, name: str
) -> None:
    args, good = commands(site, tmp_path, caption_file)[name]

    @FUZZ
    @given(texts=lines(good), raw=st.binary(max_size=40))
    def run(texts: list[str], raw: bytes) -> None:
        data = stdin_bytes(texts, raw)
        assert_one_line_each(xdl(*args, input=data), len(texts) + 1)

    run()


@pytest.mark.parametrize("name", NAMES)
def test_any_argument_is_one_result_line(
    xdl: Any, site: Any, tmp_path: Path, caption_file: str, name: str
) -> None:
    """Arguments reach the reader as str, not bytes: lone surrogates and NUL as they are."""
    args, good = commands(site, tmp_path, caption_file)[name]

    @FUZZ
    @given(texts=lines(good))
    def run(texts: list[str]) -> None:
        assert_one_line_each(xdl(*args, "--", *texts), len(texts))

    run()


@FUZZ
@given(
    line=st.one_of(json_line("http://127.0.0.1:1/x"), TEXT), kind=st.sampled_from(["url", "path"])
)
def test_the_reader_never_raises_and_what_it_passes_is_text(line: str, kind: Any) -> None:
    """An `Input` without an error can be encoded as UTF-8 (value and every field), and
    its JSON fields hold no number out of range."""
    item = parse_line(line, kind)
    if item is None or item.error is not None:
        return
    json.dumps(item.fields, allow_nan=False).encode("utf-8")
    item.value.encode("utf-8", "surrogateescape" if kind == "path" else "strict")


@FUZZ
@given(row=st.dictionaries(TEXT, st.one_of(TEXT, st.integers(), st.none()), max_size=5))
def test_the_writer_never_dies_on_a_row(row: dict[str, Any]) -> None:
    """Whatever a row holds, its line is written as UTF-8 and reads back the same."""
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="utf-8", errors="strict", newline="\n")
    Output(stream=stream).emit({"ok": False, **row})
    stream.flush()
    (line,) = raw.getvalue().decode("utf-8").splitlines()
    assert json.loads(line) == {"ok": False, **row}


# --- caption readers -----------------------------------------------------------------------

STAMP = st.one_of(
    st.from_regex(r"\A\d{1,3}:\d{1,3}:\d{1,3}[.,]\d{0,4}\Z"),
    st.from_regex(r"\A\d{1,3}:\d{1,3}[.,]\d{1,4}\Z"),
    st.sampled_from(["00:00:01." + "1" * 5000, "9" * 5000 + ":00:00.000", "99:99:99.999"]),
    TEXT,
)
CUE_TEXT = st.one_of(
    TEXT,
    st.sampled_from(["<v Al>hi</v>", "<c>a</c><00:00:01.000>", "&amp;", "{\\an8}", "NAME: x"]),
)
NUMBER = st.one_of(
    ABSURD, st.integers().map(str), st.floats().map(str), TEXT.map(lambda t: t.strip('"<&'))
)


def _xml_attr(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


@st.composite
def vtt_or_srt(draw: Any) -> str:
    blocks = []
    for _ in range(draw(st.integers(0, 4))):
        ident = draw(st.sampled_from(["", "1\n", "Speaker\n"]))
        blocks.append(f"{ident}{draw(STAMP)} --> {draw(STAMP)}\n{draw(CUE_TEXT)}")
    head = draw(st.sampled_from(["WEBVTT\n\n", "WEBVTT", "WEBVTT x\n", "", "\ufeff"]))
    return head + draw(st.sampled_from(["\n\n", "\n", "\r\n\r\n"])).join(blocks)


@st.composite
def ttml(draw: Any) -> str:
    attrs = " ".join(
        f'ttp:{name}="{_xml_attr(draw(NUMBER))}"'
        for name in draw(st.lists(st.sampled_from(["frameRate", "tickRate", "subFrameRate",
                                                    "frameRateMultiplier"]), max_size=3))
    )  # fmt: skip
    time = st.one_of(
        st.from_regex(r"\A\d{1,3}(\.\d{1,3})?(h|m|s|ms|f|t)\Z"),
        st.from_regex(r"\A\d{1,2}:\d{2}:\d{2}([.:]\d{1,3})?\Z"),
        NUMBER.map(lambda n: n + "s"),
        NUMBER,
    )
    ps = "".join(
        f'<p begin="{_xml_attr(draw(time))}" end="{_xml_attr(draw(time))}">'
        f"{_xml_attr(draw(TEXT))}<br/>x</p>"
        for _ in range(draw(st.integers(0, 3)))
    )
    return (
        f'<tt xmlns="http://www.w3.org/ns/ttml" xmlns:ttp="http://www.w3.org/ns/ttml#parameter"'
        f' {attrs}><body><div begin="{_xml_attr(draw(time))}">{ps}</div></body></tt>'
    )


@st.composite
def youtube(draw: Any) -> str:
    kind = draw(st.sampled_from(["json3", "srv3", "srv1"]))
    if kind == "json3":
        events = []
        for _ in range(draw(st.integers(0, 3))):
            fields = {k: draw(VALUE) for k in draw(st.sets(st.sampled_from(
                ["tStartMs", "dDurationMs", "aAppend"])))}  # fmt: skip
            segs = ",".join(
                "{" + f'"utf8": {draw(VALUE)}, "tOffsetMs": {draw(VALUE)}' + "}"
                for _ in range(draw(st.integers(0, 2)))
            )
            fields["segs"] = draw(st.sampled_from([f"[{segs}]", draw(VALUE)]))
            events.append("{" + ",".join(f'"{k}": {v}' for k, v in fields.items()) + "}")
        return '{"wireMagic": "pb3", "events": [' + ",".join(events) + "]}"
    t, d, s = (_xml_attr(draw(NUMBER)) for _ in range(3))
    text = _xml_attr(draw(TEXT))
    if kind == "srv3":
        p = f'<p t="{t}" d="{d}"><s t="{s}">{text}</s></p>'
        return f"<timedtext><body>{p}</body></timedtext>"
    return f'<transcript><text start="{t}" dur="{d}">{text}</text></transcript>'


SBV = st.builds(lambda a, b, t: f"{a},{b}\n{t}\n\n", STAMP, STAMP, CUE_TEXT).map(lambda s: s * 2)

DOCUMENT = st.one_of(
    vtt_or_srt().map(lambda t: t.encode("utf-8", "surrogatepass")),
    ttml().map(lambda t: t.encode("utf-8", "surrogatepass")),
    youtube().map(lambda t: t.encode("utf-8", "surrogatepass")),
    SBV.map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.binary(max_size=200),
    st.sampled_from(
        [
            b'{"events": ' + b"[" * 100000 + b"]" * 100000 + b"}",
            b"1\n00:00:01," + b"1" * 5000 + b" --> 00:00:02,000\nhi\n",
            b"WEBVTT " + b"x" * 100000,
            b"<tt>" + b"<div>" * 3000,
        ]
    ),
)


def _read(action: Any) -> None:
    try:
        action()
    except errors.XdlError as e:  # a clear code: a failed line
        assert e.code and e.code != "error" and e.message


@FUZZ
@given(data=DOCUMENT, rolling=st.sampled_from([None, True, False]))
def test_any_bytes_parse_or_fail_with_a_code(data: bytes, rolling: bool | None) -> None:
    _read(lambda: captions.parse(data, rolling=rolling))


@FUZZ
@given(
    data=DOCUMENT,
    chunk=st.sampled_from([None, 16, 64]),
    layout=st.builds(
        Layout,
        timestamps=st.sampled_from(["none", "auto", "plain", "link"]),
        sound_labels=st.sampled_from(["keep", "drop"]),
    ),
)
def test_any_bytes_render_or_fail_with_a_code(
    data: bytes, chunk: int | None, layout: Layout
) -> None:
    """`to-markdown`'s path, streamed a few characters at a time too."""

    def render() -> None:
        sink = io.BytesIO()
        markdown.render_stream(io.BytesIO(data), layout, sink, chunk=chunk)
        sink.getvalue().decode("utf-8")

    _read(render)


@FUZZ
@given(data=DOCUMENT, fmt=st.sampled_from(transcript.FORMATS))
def test_any_bytes_convert_or_fail_with_a_code(data: bytes, fmt: str) -> None:
    """`transcript -F`'s path: every output format."""
    _read(lambda: transcript.convert(data, fmt, Layout(timestamps="auto")))
