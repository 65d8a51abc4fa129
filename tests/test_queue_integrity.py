"""The queue when things go wrong: runners killed again and again, tasks that fail while
a run takes them back, and queue files that are valid JSON with the wrong types in them."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import media_site
from xdl.core import queue as q
from xdl.core.queue import JsonStore, NewTask, Task, Worker
from xdl.core.queue_run import RunOptions, run_queue

XDL = str(Path(sys.executable).parent / "xdl")
DATA = media_site.BLOB[: 1024 * 1024]


def lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def dead_worker() -> Worker:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return Worker(q.HOST, proc.pid, "dead")


def lose(store: JsonStore, times: int) -> None:
    """Claim the next task `times` times by runners that then die (as kill -9 leaves it)."""
    for _ in range(times):
        assert store.claim(dead_worker(), 3600) is not None


# --- a runner killed again and again ----------------------------------------------------


@pytest.fixture(scope="module")
def slow_url(site: Any) -> str:
    """A 1 MiB file with an ETag, as slow as site.state["integrity-rate"] says."""

    @site.route("/integrity/slow.bin")
    def slow(r: Any) -> None:
        r.send_bytes(DATA, etag='"integrity"', rate=site.state.get("integrity-rate"))

    return site.url("/integrity/slow.bin")


def test_four_kill_9_of_the_runner_do_not_use_up_the_retries(
    site: Any, slow_url: str, tmp_path: Path
) -> None:
    queue, out = tmp_path / "queue.json", tmp_path / "out"
    env = {**os.environ, "XDL_QUEUE": str(queue)}
    site.state["integrity-rate"] = 100_000
    added = subprocess.run([XDL, "queue", "add", "-o", str(out), slow_url], env=env)
    assert added.returncode == 0
    for kill in range(4):  # cron's `timeout -s KILL`, the OOM killer...
        runner = subprocess.Popen(
            [XDL, "queue", "run"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
        deadline = time.monotonic() + 60
        while True:
            assert runner.poll() is None, runner.communicate()
            assert time.monotonic() < deadline, f"kill {kill}: the runner never took the task"
            (task,) = JsonStore(queue).tasks()
            assert isinstance(task, Task)
            if task.status == "running" and (task.worker or {}).get("pid") == runner.pid:
                break
            time.sleep(0.05)
        runner.send_signal(signal.SIGKILL)
        runner.communicate(timeout=30)
    site.state["integrity-rate"] = None
    ran = subprocess.run(
        [XDL, "queue", "run"], capture_output=True, text=True, env=env, timeout=120
    )
    assert ran.returncode == 0, ran.stderr
    (row,) = lines(ran.stdout)
    assert row["ok"] and row["id"] == 1
    assert hashlib.sha256((out / "slow.bin").read_bytes()).hexdigest() == row["sha256"]
    assert row["sha256"] == hashlib.sha256(DATA).hexdigest()
    (task,) = JsonStore(queue).tasks()
    assert isinstance(task, Task)
    assert (task.status, task.attempts, task.lost) == ("done", 1, 4)


# --- a run's exit code counts every task that failed in it -------------------------------


def test_a_task_given_up_while_the_run_takes_it_back_is_reported_and_exits_1(
    xdl: Any, site: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = tmp_path / "queue.json"
    monkeypatch.setenv("XDL_QUEUE", str(queue))
    store = JsonStore(queue)
    store.add([NewTask("http://127.0.0.1:9/crashes-its-runner")])
    lose(store, q.MAX_LOST)  # the last one is still `running`, by a dead pid
    added = xdl("queue", "add", "-o", str(tmp_path / "out"), site.url("/files/blob.bin"))
    assert added.exit_code == 0
    ran = xdl("queue", "run")
    assert ran.exit_code == 1, ran.stderr
    rows = {r["id"]: r for r in ran.lines}
    assert rows[2]["ok"]  # the other task still ran
    assert rows[1]["ok"] is False and rows[1]["error"]["code"] == "worker_lost"
    assert "crashes-its-runner" in ran.stderr
    (task,) = JsonStore(queue).tasks(ids=[1])
    assert isinstance(task, Task)
    assert (task.status, task.lost) == ("failed", q.MAX_LOST)
    again = xdl("queue", "run")
    assert (again.exit_code, again.stdout) == (0, "")  # nothing failed in this one


def test_run_queue_counts_given_up_tasks_as_failed(tmp_path: Path) -> None:
    store = JsonStore(tmp_path / "queue.json")
    store.add([NewTask("https://a.example/lost"), NewTask("https://a.example/fine")])
    lose(store, q.MAX_LOST)
    rows: list[dict[str, Any]] = []

    def download(task: Task, stop: threading.Event) -> dict[str, Any]:
        return {"ok": True, "url": task.url, "path": "/x", "bytes": 1}

    report = run_queue(store, download, options=RunOptions(retries=0), on_result=rows.append)
    assert (report.done, report.failed) == (1, 1)
    failed = [r for r in rows if not r["ok"]]
    assert [(r["id"], r["error"]["code"]) for r in failed] == [(1, "worker_lost")]
