"""Small things a user tripped on: a bad environment variable named as such, the curl
tier with a fractional --timeout."""

from __future__ import annotations

import shutil
from typing import Any

import pytest


def test_a_bad_environment_value_names_the_variable(xdl: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("XDL_FETCH_JOBS", "abc")
    r = xdl("fetch", "http://example.com/x")
    assert r.exit_code == 2
    assert "XDL_FETCH_JOBS" in r.stderr and "'abc'" in r.stderr


def test_a_bad_command_line_value_names_the_option(xdl: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("XDL_FETCH_JOBS", "4")
    r = xdl("fetch", "-j", "abc", "http://example.com/x")
    assert r.exit_code == 2
    assert "--jobs" in r.stderr and "XDL_FETCH_JOBS" not in r.stderr


@pytest.mark.skipif(not shutil.which("curl"), reason="curl not installed")
def test_curl_tier_takes_a_fractional_timeout(xdl: Any, site: Any) -> None:
    url = site.url("/files/blob.bin")
    r = xdl("fetch", "--strategy", "curl", "--no-fallback", "--timeout", "2.5", url)
    assert r.exit_code == 0, r.stderr
    (line,) = r.lines
    assert line["strategy"] == "curl" and line["bytes"] > 0


@pytest.mark.parametrize("size", [1000, 16 * 1024, 40_000, 64 * 1024, 1 << 20])
@pytest.mark.parametrize("by_pieces", [True, False])
def test_a_body_read_in_pieces_of_any_size_comes_whole(size: int, by_pieces: bool) -> None:
    """`--limit-rate` below 512K makes the pieces smaller than 64 KiB: a read of 0 bytes
    then ended the body (an `ok` file cut short), one below 0 read all of it at once."""
    import io
    import types

    from xdl.core.http import chunks

    body = bytes(range(256)) * 1200  # 300 KiB
    raw: Any = io.BytesIO(body)
    if not by_pieces:  # urllib3 < 2: no read1
        raw = types.SimpleNamespace(read=io.BytesIO(body).read)
    resp: Any = types.SimpleNamespace(raw=raw, url="http://x/")
    pieces = list(chunks(resp, size))
    assert b"".join(pieces) == body
    assert max(map(len, pieces)) <= size
