"""SPEC §2: how inputs are read, table-driven."""

from __future__ import annotations

import io
import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from xdl.core import inputs as inputs_module
from xdl.core.inputs import iter_inputs, parse_line


@pytest.mark.parametrize(
    ("line", "value", "code"),
    [
        ("https://example.com/a", "https://example.com/a", None),
        ("  http://example.com/b \r\n", "http://example.com/b", None),
        ("HTTPS://EXAMPLE.COM/c", "HTTPS://EXAMPLE.COM/c", None),
        ("not-a-url", "not-a-url", "bad_input"),
        ("example.com/video", "example.com/video", "bad_input"),
        ("file:///etc/passwd", "file:///etc/passwd", "unsupported_url"),
        ("javascript:alert(1)", "javascript:alert(1)", "unsupported_url"),
        ("data:text/html,hi", "data:text/html,hi", "unsupported_url"),
        ("ftp://example.com/x", "ftp://example.com/x", "unsupported_url"),
        ("http://", "http://", "bad_input"),
        ("http://exa mple.com/", "http://exa mple.com/", "bad_input"),
        ("http://[::1", "http://[::1", "bad_input"),
        ('{"url": "https://example.com/j", "sha256": "ab"}', "https://example.com/j", None),
        ('{"webpage_url": "https://example.com/w"}', "https://example.com/w", None),
        ('{"title": "no url"}', '{"title": "no url"}', "bad_input"),
        ('{"url": ', '{"url":', "bad_input"),
        ("\ufeffhttps://example.com/bom", "https://example.com/bom", None),
    ],
)
def test_parse_line(line: str, value: str, code: str | None) -> None:
    item = parse_line(line)
    assert item is not None
    assert item.value == value
    assert (item.error.code if item.error else None) == code


@pytest.mark.parametrize("line", ["", "   ", "\r\n", "# a comment", "  # indented comment"])
def test_blank_and_comment_lines_are_skipped(line: str) -> None:
    assert parse_line(line) is None


def test_json_line_fields_ride_along() -> None:
    item = parse_line('{"url": "https://e.com/x", "sha256": "ab", "title": "T"}')
    assert item is not None and item.get("sha256") == "ab" and item.get("title") == "T"


def test_path_inputs_take_path_from_json() -> None:
    item = parse_line('{"ok": true, "path": "subs/a.vtt", "url": "https://e.com"}', kind="path")
    assert item is not None and item.value == "subs/a.vtt" and item.error is None
    plain = parse_line("notes/b.srt", kind="path")
    assert plain is not None and plain.value == "notes/b.srt" and plain.error is None


def test_order_is_arguments_then_batch_then_stdin() -> None:
    batch = io.BytesIO(b"https://e.com/2\r\n\r\n# skip\r\nhttps://e.com/3\r\n")
    stdin = io.BytesIO(b"https://e.com/4\n")
    got = [i.value for i in iter_inputs(["https://e.com/1"], batch, "list.txt", stdin)]
    assert got == [f"https://e.com/{n}" for n in range(1, 5)]


def test_invalid_utf8_is_one_failed_input_not_a_crash() -> None:
    stdin = io.BytesIO(b"https://e.com/ok\n\xff\xfe\xfd\nhttps://e.com/ok2\n")
    items = list(iter_inputs([], None, "-", stdin))
    assert [i.error.code if i.error else None for i in items] == [None, "bad_input", None]
    assert items[1].origin == "stdin:2"


# --- check_url's short way ------------------------------------------------------------


URL_PIECES = st.sampled_from(
    ["http", "https", "HTTP", "hTtPs", "ftp", "file", "://", ":/", "//", ":", "@", "user",
     "[", "]", "::1", "example.com", "127.0.0.1", "EXAMPLE.com", "-", ".", "~", "_", "%41",
     "é", "xn--e1a", ":8080", ":", ":99999", "/", "?", "#", "a", "\\", " ", "\t", "\x00",
     "ſ", "K", "ı", "İ", "httpſ", "\u00a0", "..", "x" * 63, "y" * 64, "a.b."]
)  # fmt: skip


def _outcome(url: str) -> object:
    try:
        return inputs_module.check_url(url)
    except Exception as e:
        return type(e), str(e)


@settings(max_examples=3000, deadline=None, database=None)
@given(
    st.one_of(
        st.lists(URL_PIECES, max_size=8).map("".join),
        # shaped like a URL: a scheme, `://`, a host, the rest; each part odd at times
        st.tuples(
            st.sampled_from(["http", "https", "HTTPS", "httpſ", "hTTp", "ſhttp", "http s"]),
            st.sampled_from(["://", ":/", "//"]),
            st.lists(URL_PIECES, min_size=1, max_size=3).map("".join),
            st.lists(URL_PIECES, max_size=4).map("".join),
        ).map("".join),
    )
)
@example("httpſ://example.com/")  # `s` matches `ſ` under re.IGNORECASE
def test_check_urls_short_way_answers_as_the_long_way(url: str) -> None:
    """A URL the short pattern passes is one the full checks pass: the answer, or the
    error and its message, is the same either way."""
    short = _outcome(url)
    plain = inputs_module._PLAIN_URL
    inputs_module._PLAIN_URL = re.compile(r"(?!)")  # never matches: the long way only
    try:
        assert _outcome(url) == short
    finally:
        inputs_module._PLAIN_URL = plain
