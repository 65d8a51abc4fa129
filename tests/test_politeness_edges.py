"""What a stranger's attack on the per-host budget found (issue 20's review): hostile
boards, absurd values, a site's odd headers, a ban; each fixed and held here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import strict_site
from strict_site import StrictSite

from xdl.core import hosts
from xdl.core.queue.filestore.hosts import _board

XDL = str(Path(sys.executable).parent / "xdl")


@pytest.fixture
def strict() -> Iterator[StrictSite]:
    site = strict_site.start()
    yield site
    site.stop()


def run(*args: str, timeout: float = 60) -> tuple[int, list[dict[str, Any]], str]:
    proc = subprocess.run(
        [XDL, *args], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout
    )
    lines = [json.loads(x) for x in proc.stdout.splitlines() if x.strip()]
    return proc.returncode, lines, proc.stderr


@pytest.mark.parametrize(
    "url, key",
    [
        ("http://[::1]:8080/x", "[::1]:8080"),
        ("https://example.com:443/a", "example.com"),
        ("http://example.com:80/a", "example.com"),
        ("https://EXAMPLE.com./a", "example.com"),
        ("http://bücher.example/x", "xn--bcher-kva.example"),
        ("http://127.0.0.1:5000/", "127.0.0.1:5000"),
    ],
)
def test_one_site_is_one_host_however_its_url_is_written(url: str, key: str) -> None:
    assert hosts.host_of(url) == key


@pytest.mark.parametrize("written", ["[::1]:8080", "[::1]", "Example.COM.", "bücher.example"])
def test_a_config_table_names_the_host_as_urls_do(written: str) -> None:
    name = hosts.host_key(written)
    url = {"[::1]:8080": "http://[::1]:8080/", "[::1]": "http://[::1]:9/"}.get(
        written, f"http://{written}/"
    )
    budget = hosts.Budget({name: hosts.HostRule(per_host=1)})
    assert budget.rule(hosts.host_of(url)).per_host == 1


@pytest.mark.parametrize("value", ["²", "٣", "1.5", "-5", "0x10", "nan", "", "garbage"])
def test_a_retry_after_that_is_no_number_is_no_header(value: str) -> None:
    assert hosts.retry_after(value) is None


def test_a_hostile_board_is_read_as_bounds_allow() -> None:
    raw = {
        "a": {"slots": [1, 2], "paused_until": 1e308, "interval": float("inf")},
        "b": {"slots": {"w": 1e308, "x": "soon"}, "next_at": -5, "served": {"r": "9"}},
        "c": [1],
        7: {},
    }
    text = json.dumps(raw).replace("Infinity", "1e999").encode()
    board = _board(text)
    day = time.time() + hosts.MAX_PAUSE + 5
    assert "slots" not in board["a"] and board["a"]["paused_until"] < day
    assert board["b"]["slots"]["w"] < day and "x" not in board["b"]["slots"]
    assert "next_at" not in board["b"] and board["b"]["served"] == {}
    assert "c" not in board
    assert _board(b"\xff garbage") == {} and _board(b"[1, 2]") == {}


@pytest.mark.parametrize("plant", ["fifo", "json"])
def test_a_planted_board_neither_hangs_nor_fails_a_run(
    strict: StrictSite, tmp_path: Path, plant: str
) -> None:
    queue = tmp_path / "queue.json"
    board = tmp_path / "queue.json.hosts"
    code, _, err = run(
        "queue", "add", "--queue", str(queue), "--per-host", "1", "-o", str(tmp_path / "out"),
        strict.url("/f/1.bin"), strict.url("/f/2.bin"),
    )  # fmt: skip
    assert code == 0, err
    host = hosts.host_of(strict.url("/"))
    if plant == "fifo":
        os.mkfifo(board)
    else:
        board.write_text(json.dumps({host: {"slots": [1], "paused_until": "x"}}))
    code, lines, err = run("queue", "run", "--queue", str(queue), "-q", timeout=90)
    assert code == 0, err
    assert [x["ok"] for x in lines] == [True, True]
    code, lines, err = run("queue", "status", "--summary", "--json", "--queue", str(queue))
    assert code == 0, err


@pytest.mark.parametrize("value", ["nan", "inf", "1e300", "-1"])
@pytest.mark.parametrize("command", [["fetch"], ["queue", "add"], ["queue", "run"]])
def test_an_absurd_sleep_is_a_usage_error(tmp_path: Path, command: list[str], value: str) -> None:
    args = [*command, "--sleep", value]
    if command[0] == "queue":
        args += ["--queue", str(tmp_path / "q.json")]
    if command != ["queue", "run"]:
        args.append("http://127.0.0.1:9/x")
    code, lines, err = run(*args)
    assert code == 2 and lines == [], err
    assert "--sleep" in err and "Traceback" not in err
    assert not (tmp_path / "q.json").exists()


def test_a_ban_is_not_asked_again(strict: StrictSite, tmp_path: Path) -> None:
    """A 403 after a refusal is a ban: the input ends at once (rate_limited) and the
    host is left alone, instead of one request more per backoff step."""
    strict.reset(refuse_first=1, retry_after=1, ban_after=1, ban_seconds=60)
    code, lines, err = run("fetch", "-o", str(tmp_path), strict.url("/f/1.bin"))
    assert code == 1, err
    (line,) = lines
    assert line["error"]["code"] == "rate_limited"
    assert len(strict.hits()) <= 2  # the refusal, and the one request that met the ban


def test_a_503_without_retry_after_is_asked_again(xdl: Any, site: Any, tmp_path: Path) -> None:
    """A 5xx is transient: the same request again after a backoff, not given up at once."""
    seen: list[int] = []

    @site.route("/edges/flaky.bin")
    def flaky(r: Any) -> None:
        seen.append(1)
        if len(seen) <= 2:
            r.send_bytes(b"busy\n", "text/plain", status=503)
        else:
            r.send_bytes(b"x" * 2048, "application/octet-stream")

    ran = xdl("fetch", "-o", str(tmp_path), site.url("/edges/flaky.bin"))
    assert ran.exit_code == 0, ran.stderr
    (line,) = ran.lines
    assert line["ok"] and Path(line["path"]).read_bytes() == b"x" * 2048


def test_an_existing_file_that_is_not_the_expected_sha256_is_not_ok(
    xdl: Any, site: Any, tmp_path: Path
) -> None:
    url = site.url("/files/blob.bin")
    first = xdl("fetch", "-o", str(tmp_path), url)
    assert first.exit_code == 0, first.stderr
    again = xdl("fetch", "-o", str(tmp_path), "--sha256", "b" * 64, url)
    assert again.exit_code == 1
    (line,) = again.lines
    assert line["ok"] is False and line["error"]["code"] == "checksum_mismatch"
    same = xdl("fetch", "-o", str(tmp_path), "--sha256", first.lines[0]["sha256"], url)
    assert same.exit_code == 0 and same.lines[0]["skipped"] == "exists"
