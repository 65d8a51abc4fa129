"""`xdl fetch --connections N`: one file over N ranged requests into one `.part`, against a
server that limits each connection. What a user would check: the bytes on disk against
the line's sha256, the requests the server saw, a resume after Ctrl-C that fetches only
what is missing, and the fallbacks (no ranges, a file that changed)."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import media_site

XDL = str(Path(sys.executable).parent / "xdl")
DATA = media_site.make_bytes(6 * 1024 * 1024 + 4321, 61)
ETAG = media_site.etag_of(DATA)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(x) for x in out.splitlines() if x.strip()]


def run(*args: str, cwd: Path) -> tuple[int, list[dict[str, Any]], str]:
    proc = subprocess.run([XDL, "fetch", *args], cwd=cwd, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=120)  # fmt: skip
    return proc.returncode, lines(proc.stdout), proc.stderr


@pytest.fixture(scope="module")
def seg(site: Any) -> Any:
    @site.route("/seg/limited.bin")
    def limited(r: Any) -> None:
        """Each connection gets `rate` bytes a second, as many servers and CDNs do."""
        rate = float(site.state.get("seg-rate", 3_000_000))
        r.send_bytes(DATA, etag=ETAG, rate=rate, chunk=32 * 1024)

    site.route("/seg/norange.bin")(lambda r: r.send_bytes(DATA, etag=ETAG, ranges=False))

    @site.route("/seg/changing.bin")
    def changing(r: Any) -> None:
        """A new version (and ETag) for every request after the first."""
        with site.lock:
            n = site.state.get("seg-changing", 0)
            site.state["seg-changing"] = n + 1
        data = DATA if n == 0 else media_site.make_bytes(len(DATA), 62)
        r.send_bytes(data, etag=media_site.etag_of(data), rate=2_000_000, chunk=32 * 1024)

    return site


@pytest.fixture
def work() -> Path:
    return Path.cwd()


def ranged(site: Any, path: str) -> list[Any]:
    return [r for r in site.requests(path) if "Range" in r.headers]


def test_n_connections_fetch_ranges_into_one_file(seg: Any, work: Path) -> None:
    seg.clear_log()
    code, out, err = run("-N", "4", seg.url("/seg/limited.bin"), cwd=work)
    assert code == 0, err
    (line,) = out
    assert line["sha256"] == sha(DATA) == sha((work / "limited.bin").read_bytes())
    assert line["bytes"] == len(DATA) and line["strategy"] == "http"
    asked = ranged(seg, "/seg/limited.bin")
    assert len(asked) >= 3  # the probe's GET reads the first range; the others are ranged
    assert all(r.headers.get("If-Range") == ETAG for r in asked)
    assert [p.name for p in work.iterdir()] == ["limited.bin"]


def test_one_connection_is_the_default(seg: Any, work: Path) -> None:
    seg.clear_log()
    code, out, _ = run(seg.url("/seg/limited.bin"), cwd=work)
    assert code == 0 and out[0]["sha256"] == sha(DATA)
    assert ranged(seg, "/seg/limited.bin") == []


def test_ctrl_c_then_resume_fetches_only_what_is_missing(seg: Any, work: Path) -> None:
    seg.state["seg-rate"] = 500_000
    try:
        proc = subprocess.Popen([XDL, "fetch", "-N", "4", seg.url("/seg/limited.bin")], cwd=work,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
        part = work / "limited.bin.part.meta"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if part.exists() and '"ranges"' in part.read_text():
                done = sum(d for _, _, d in json.loads(part.read_text())["ranges"])
                if done > 1_000_000:
                    break
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, err.decode()
        assert lines(out.decode())[0]["error"]["code"] == "interrupted"
        saved = json.loads(part.read_text())
        kept = sum(d for _, _, d in saved["ranges"])
        assert 0 < kept < len(DATA) and saved["etag"] == ETAG
        assert not (work / "limited.bin").exists()
    finally:
        seg.state["seg-rate"] = 50_000_000
    seg.clear_log()
    code, again, err = run("-N", "4", seg.url("/seg/limited.bin"), cwd=work)
    assert code == 0, err
    assert again[0]["sha256"] == sha(DATA) == sha((work / "limited.bin").read_bytes())
    assert again[0]["resumed_from"] == kept
    starts = [int(r.headers["Range"][6:].split("-")[0]) for r in ranged(seg, "/seg/limited.bin")]
    assert starts, "the resume asked for ranges"
    for s in starts:  # no byte that was already there is asked for again
        (a, _end, d) = next(x for x in saved["ranges"] if x[0] <= s < x[1])
        assert s >= a + d
    assert not list(work.glob("*.part*"))


def test_a_part_written_at_offsets_resumes_on_one_connection(seg: Any, work: Path) -> None:
    seg.state["seg-rate"] = 500_000
    try:
        proc = subprocess.Popen([XDL, "fetch", "-N", "3", seg.url("/seg/limited.bin")], cwd=work,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
        part = work / "limited.bin.part"
        deadline = time.monotonic() + 60  # until each connection has written (not a sleep)
        while time.monotonic() < deadline and not (
            part.exists() and (work / "limited.bin.part.meta").exists()
        ):
            time.sleep(0.05)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    finally:
        seg.state["seg-rate"] = 50_000_000
    assert (work / "limited.bin.part").stat().st_size == len(DATA)  # sparse, full length
    code, out, err = run(seg.url("/seg/limited.bin"), cwd=work)
    assert code == 0, err
    assert out[0]["sha256"] == sha(DATA) == sha((work / "limited.bin").read_bytes())


def test_a_server_without_ranges_gets_one_connection(seg: Any, work: Path) -> None:
    code, out, err = run("-N", "4", seg.url("/seg/norange.bin"), cwd=work)
    assert code == 0, err
    assert out[0]["sha256"] == sha(DATA) == sha((work / "norange.bin").read_bytes())


def test_a_file_that_changes_midway_is_fetched_again_whole(seg: Any, work: Path) -> None:
    seg.state["seg-changing"] = 0
    code, out, err = run("-N", "4", seg.url("/seg/changing.bin"), cwd=work)
    assert code == 0, err
    on_disk = (work / "changing.bin").read_bytes()
    assert out[0]["sha256"] == sha(on_disk)
    assert on_disk == media_site.make_bytes(len(DATA), 62)  # one version, never a splice


def test_a_range_cut_short_never_overlaps_what_its_connection_claimed() -> None:
    from xdl.core.fetch.strategies.segments import MIN_STEAL, Plan

    total = 64 * MIN_STEAL
    plan = Plan.split(total, 1)
    (first,) = [plan.take()]
    assert first is not None
    claimed = plan.claim(first, 40 * MIN_STEAL)  # being written (past the middle), not done
    stolen = plan.take()
    assert stolen is not None and stolen.start >= first.start + claimed
    assert first.end == stolen.start
    plan.advance(first, claimed)
    while (n := plan.claim(first, 1 << 20)) > 0:
        plan.advance(first, n)
    while (n := plan.claim(stolen, 1 << 20)) > 0:
        plan.advance(stolen, n)
    assert plan.done() == total == plan.contiguous()
    assert sum(end - start for start, end, _ in plan.to_meta()) == total


def test_saved_ranges_that_do_not_cover_the_file_are_not_resumed() -> None:
    from xdl.core.fetch.strategies.segments import Plan, contiguous

    assert Plan.from_meta([[0, 10, 10], [10, 20, 5]], 20) is not None
    assert contiguous([[0, 10, 10], [10, 20, 5]]) == 15
    for bad in ([[0, 10, 10], [12, 20, 0]], [[0, 10, 11]], "x", [[0, "a", 0]], []):
        assert Plan.from_meta(bad, 20) is None
        assert contiguous(bad) == 0
