"""One PostgreSQL queue, several hosts: real `xdl queue run` processes, each in its own UTS
namespace with another hostname (`unshare --uts`, root), so the same-host pid check
cannot apply and only leases and fencing tokens decide. Downloads are real, from the
loopback site, whose request log says who fetched what."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from xdl.core.queue import open_store

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.geteuid() != 0 or not shutil.which("unshare"),
        reason="needs root and unshare(1) for a UTS namespace per runner",
    ),
]


def runner(host: str, url: str, out: Path, *args: str) -> subprocess.Popen[bytes]:
    xdl = str(Path(sys.executable).parent / "xdl")
    return subprocess.Popen(
        [
            *("unshare", "--uts", "sh", "-c", f'hostname {host} && exec "$0" "$@"', xdl),
            *("queue", "run", "--queue", url, *args),
        ],
        stdout=open(out, "wb"),
        stderr=subprocess.PIPE,
    )


def wait_for(check: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def statuses(url: str) -> dict[int, tuple[str, str | None]]:
    store = open_store(url)
    try:
        return {
            t.id: (t.status, (t.worker or {}).get("host"))  # type: ignore[union-attr]
            for t in store.tasks()
        }
    finally:
        store.close()


def test_a_killed_host_s_tasks_are_finished_once_by_another(
    pg_url: str, site: Any, tmp_path: Path, xdl: Any
) -> None:
    out_dir = tmp_path / "out"
    urls = [site.url(f"/throttled.bin?rate=400000&n={i}") for i in range(6)]
    ran = xdl("queue", "add", "--queue", pg_url, "-o", str(out_dir), *urls)
    assert ran.exit_code == 0, ran.stderr
    a = runner("host-a", pg_url, tmp_path / "a.jsonl", "-j", "3", "--lease", "2")
    wait_for(lambda: sum(s == "running" for s, _ in statuses(pg_url).values()) == 3)
    assert {h for s, h in statuses(pg_url).values() if s == "running"} == {"host-a"}
    os.kill(a.pid, signal.SIGKILL)
    a.wait()
    killed_at = time.monotonic()
    b = runner("host-b", pg_url, tmp_path / "b.jsonl", "-j", "3", "--lease", "2")
    _, err = b.communicate(timeout=120)
    assert b.returncode == 0, err.decode()
    final = statuses(pg_url)
    assert [s for s, _ in final.values()] == ["done"] * 6
    after = [
        r
        for r in site.requests("/throttled.bin")
        if r.start >= killed_at and r.method == "GET" and "n=" in r.path
    ]
    assert sorted(r.path.rsplit("=", 1)[1] for r in after) == [str(i) for i in range(6)]
    assert len(list(out_dir.glob("throttled*"))) == 6


def test_a_frozen_host_that_comes_back_cannot_write(
    pg_url: str, site: Any, tmp_path: Path, xdl: Any
) -> None:
    """SIGSTOP a runner (a partitioned host); another takes its task once the lease runs
    out and finishes it; the frozen one, resumed, is refused: its task stays the other's.

    The first runner is frozen while its request waits for the answer: frozen later, it
    would hold the flock of `NAME.part`, which no lease breaks on one machine (the second
    runner waits for it, as it should), where hosts apart share no such lock."""
    import media_site

    @site.route("/frozen/first-waits.bin")
    def first_waits(r: Any) -> None:
        with site.lock:
            seen = site.state["frozen-asked"] = site.state.get("frozen-asked", 0) + 1
        if seen == 1:
            time.sleep(6)  # the first runner's request: frozen before any byte
        r.send_bytes(media_site.BLOB[: 1024 * 1024], rate=300000)

    site.state["frozen-asked"] = 0
    out_dir = tmp_path / "out"
    url = site.url("/frozen/first-waits.bin")
    assert xdl("queue", "add", "--queue", pg_url, "-o", str(out_dir), url).exit_code == 0
    a = runner("host-a", pg_url, tmp_path / "a.jsonl", "--lease", "1.5")
    wait_for(lambda: statuses(pg_url)[1] == ("running", "host-a"))
    wait_for(lambda: site.state.get("frozen-asked") == 1)
    os.kill(a.pid, signal.SIGSTOP)
    try:
        time.sleep(2.5)  # its lease runs out
        b = runner("host-b", pg_url, tmp_path / "b.jsonl", "--lease", "30")
        _, err = b.communicate(timeout=120)
        assert b.returncode == 0, err.decode()
    finally:
        os.kill(a.pid, signal.SIGCONT)
    _, err_a = a.communicate(timeout=60)
    assert statuses(pg_url)[1] == ("done", None)
    store = open_store(pg_url)
    (task,) = store.tasks()
    store.close()
    assert task.attempts == 1 and task.lost == 1  # type: ignore[union-attr]
    assert (tmp_path / "a.jsonl").read_text() == ""  # its late result was not recorded
    assert b"taken back" in err_a or b"cancelled or taken back" in err_a


def test_cancel_reaches_a_runner_on_another_host(
    pg_url: str, site: Any, tmp_path: Path, xdl: Any
) -> None:
    out_dir = tmp_path / "out"
    url = site.url("/throttled.bin?rate=40000&n=cancel")  # ~26 s
    assert xdl("queue", "add", "--queue", pg_url, "-o", str(out_dir), url).exit_code == 0
    a = runner("host-a", pg_url, tmp_path / "a.jsonl", "--lease", "10")
    wait_for(lambda: statuses(pg_url)[1][0] == "running")
    time.sleep(1)
    assert xdl("queue", "cancel", "1", "--queue", pg_url).lines[0]["status"] == "cancelled"
    _, err = a.communicate(timeout=60)
    # the download (~26 s) was stopped, not finished: said so, and no file
    assert b"cancelled or taken back" in err
    assert statuses(pg_url)[1] == ("cancelled", None)
    assert not [p for p in out_dir.glob("*") if not p.name.endswith((".part", ".meta"))]


def test_a_board_rewritten_within_one_clock_tick_is_read_again(tmp_path: Path) -> None:
    """Another runner's pause replaces the board file; one of the same size written in
    the same tick of the file system's clock (same mtime) was taken for the board this
    runner had read: its pause went unseen. A new file is a new inode: read again."""
    import json

    from xdl.core.queue.filestore.hosts import FileBoard

    board = FileBoard(tmp_path / "queue.json")
    until = time.time() + 600
    first = json.dumps({"a.example": {"paused_until": until, "episode": 1.0}})
    board.path.write_text(first)
    assert board.look("a.example")[0] == until
    st = board.path.stat()
    second = first.replace('"a.example"', '"b.example"')  # the same size
    tmp = board.path.with_name("new")
    tmp.write_text(second)
    os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(tmp, board.path)
    assert board.look("a.example") == (0.0, 0.0, 0.0)
    assert board.look("b.example")[0] == until
