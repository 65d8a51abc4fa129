"""`xdl queue` end to end with the real engine against the loopback site: the cron shape,
SIGTERM/SIGINT mid-download, and two runner processes sharing one queue."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import media_site

XDL = str(Path(sys.executable).parent / "xdl")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [XDL, *args], capture_output=True, text=True, timeout=timeout, env=env, stdin=None
    )


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "XDL_QUEUE": str(tmp_path / "queue.json")}


@pytest.fixture(scope="module")
def resumable(site: Any) -> str:
    """A slow file with an ETag, so an interrupted download can resume."""
    data = media_site.BLOB[: 1024 * 1024]

    @site.route("/queue/slow-etag.bin")
    def slow(r: Any) -> None:
        r.send_bytes(data, etag='"queue-slow"', rate=site.state.get("queue-rate", 200_000))

    return site.url("/queue/slow-etag.bin")


def lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_cron_shape_add_run_readd_summary(site: Any, tmp_path: Path, env: dict[str, str]) -> None:
    urls = tmp_path / "urls.txt"
    urls.write_text(
        f"# my feed\n{site.url('/files/report')}\n{site.url('/files/blob.bin')}\n"
        f"{site.url('/slow?delay=0&name=notes.txt')}\n"
    )
    out = tmp_path / "media"
    added = run("queue", "add", "-a", str(urls), "-o", str(out), env=env)
    assert added.returncode == 0, added.stderr
    assert [r["added"] for r in lines(added.stdout)] == [True, True, True]

    ran = run("queue", "run", "-j", "2", env=env)
    assert ran.returncode == 0, ran.stderr
    results = {r["task"]: r for r in lines(ran.stdout)}
    assert sorted(results) == [1, 2, 3]
    assert all(r["ok"] and r["attempt"] == 1 for r in results.values())
    assert sha256(out / "blob.bin") == hashlib.sha256(media_site.BLOB).hexdigest()
    assert results[2]["sha256"] == hashlib.sha256(media_site.BLOB).hexdigest()
    assert (out / "notes.txt").read_bytes() == b"notes.txt\n" * 64
    assert not list(out.glob("*.part"))

    again = run("queue", "add", "-a", str(urls), "-o", str(out), env=env)
    assert again.returncode == 0
    assert [(r["added"], r["existing"]) for r in lines(again.stdout)] == [
        (False, 1),
        (False, 2),
        (False, 3),
    ]
    rerun = run("queue", "run", env=env)
    assert (rerun.returncode, rerun.stdout) == (0, "")  # nothing to do

    (summary,) = lines(run("queue", "status", "--summary", env=env).stdout)
    assert (summary["total"], summary["done"], summary["queued"], summary["failed"]) == (3, 3, 0, 0)
    assert summary["bytes_done"] == sum(r["bytes"] for r in results.values())


def test_failures_retry_then_fail_and_exit_1(
    site: Any, tmp_path: Path, env: dict[str, str]
) -> None:
    urls = (site.url("/500"), site.url("/404"))
    run("queue", "add", "--strategy", "http", "--retries", "0", "-o", str(tmp_path), *urls, env=env)
    ran = run("queue", "run", "--retries", "1", "--backoff", "0", env=env)
    assert ran.returncode == 1
    failed = {r["url"]: r for r in lines(ran.stdout)}
    assert failed[site.url("/500")]["attempt"] == 2  # retried once
    assert failed[site.url("/404")]["attempt"] == 1  # a 404 is not retried
    assert failed[site.url("/404")]["error"]["code"] == "not_found"
    retried = run("queue", "retry", "--failed", env=env)
    assert [r["status"] for r in lines(retried.stdout)] == ["queued", "queued"]


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_puts_the_task_back_and_keeps_the_part(
    site: Any, resumable: str, tmp_path: Path, env: dict[str, str], sig: int, code: int
) -> None:
    site.state["queue-rate"] = 200_000
    out = tmp_path / "out"
    url = resumable
    assert run("queue", "add", "-o", str(out), url, env=env).returncode == 0
    proc = subprocess.Popen(
        [XDL, "queue", "run"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    part = out / "slow-etag.bin.part"
    deadline = time.monotonic() + 60
    while not (part.exists() and part.stat().st_size > 50_000):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no .part appeared"
        time.sleep(0.05)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == code, stderr
    assert stdout == b""  # nothing finished
    assert part.exists() and not (out / "slow-etag.bin").exists()
    (task,) = lines(run("queue", "status", env=env).stdout)
    assert (task["status"], task["attempts"], task["worker"]) == ("queued", 0, None)

    site.state["queue-rate"] = None  # the rest comes at full speed
    resumed = run("queue", "run", env=env)
    assert resumed.returncode == 0, resumed.stderr
    (result,) = lines(resumed.stdout)
    assert (
        sha256(out / "slow-etag.bin") == hashlib.sha256(media_site.BLOB[: 1024 * 1024]).hexdigest()
    )
    assert result["resumed_from"]  # the .part was used, not thrown away


def test_two_runner_processes_download_each_task_once(
    site: Any, tmp_path: Path, env: dict[str, str]
) -> None:
    names = [f"two-{i}.bin" for i in range(10)]
    urls = [site.url(f"/slow?delay=0.2&name={n}") for n in names]
    assert run("queue", "add", "-o", str(tmp_path / "out"), *urls, env=env).returncode == 0
    site.clear_log()
    procs = [
        subprocess.Popen(
            [XDL, "queue", "run", "-j", "2"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [e for _, e in outs]
    ids = [json.loads(line)["task"] for o, _ in outs for line in o.splitlines()]
    assert sorted(ids) == list(range(1, 11))  # each task reported by one runner, once
    gets = Counter(r.path.split("name=")[1] for r in site.requests("/slow") if r.method == "GET")
    assert set(gets) == set(names)
    assert max(gets.values()) == min(gets.values())  # nobody fetched a task twice
    assert all((tmp_path / "out" / n).exists() for n in names)


def test_watch_takes_tasks_added_later_until_sigterm(
    site: Any, tmp_path: Path, env: dict[str, str]
) -> None:
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [XDL, "queue", "run", "--watch", "--poll", "0.1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        time.sleep(0.5)  # the runner is up and finds nothing: it keeps polling
        assert proc.poll() is None
        added = run("queue", "add", "-o", str(out), site.url("/files/report"), env=env)
        assert added.returncode == 0, added.stderr
        deadline = time.monotonic() + 60
        while not (out / "Quarterly Report.pdf").exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the watching runner never took the task"
            time.sleep(0.05)
        (task,) = lines(run("queue", "status", env=env).stdout)
        deadline = time.monotonic() + 30
        while task["status"] != "done" and time.monotonic() < deadline:
            time.sleep(0.05)
            (task,) = lines(run("queue", "status", env=env).stdout)
        assert task["status"] == "done"
    finally:
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143, stderr
    (result,) = lines(stdout.decode())
    assert result["ok"] and result["task"] == 1


def test_a_running_task_shows_its_bytes_in_status(
    site: Any, tmp_path: Path, env: dict[str, str]
) -> None:
    slow = site.url("/throttled.bin?rate=250000")  # 1 MiB in ~4 s
    assert run("queue", "add", "-o", str(tmp_path / "media"), slow, env=env).returncode == 0
    runner = subprocess.Popen(
        [XDL, "queue", "run", "--lease", "1.5"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    seen: list[int] = []
    try:
        deadline = time.monotonic() + 30
        while runner.poll() is None and time.monotonic() < deadline:
            (task,) = lines(run("queue", "status", "--json", env=env).stdout)
            if task["status"] == "running" and task["bytes"] is not None:
                seen.append(task["bytes"])
            time.sleep(0.3)
        _, err = runner.communicate(timeout=30)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert runner.returncode == 0, err
    assert err == b""  # nothing on stderr in a pipe: no bars
    assert seen and 0 < seen[0] < 1024 * 1024 and seen == sorted(seen)
    (task,) = lines(run("queue", "status", "--json", env=env).stdout)
    assert task["status"] == "done" and task["bytes"] == 1024 * 1024
