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
from queue_runs import run_all

import media_site
from xdl.core import queue as q
from xdl.core.fetch.result import FetchResult
from xdl.core.queue import JsonStore, NewTask, Task, Worker
from xdl.core.queue.filestore.files import dump
from xdl.core.queue.run import RunOptions

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
    assert row["ok"] and row["task"] == 1
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
    rows = {r["task"]: r for r in ran.lines}
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

    def download(task: Task, stop: threading.Event, progress: Any = None) -> FetchResult:
        return FetchResult(ok=True, url=task.url, path="/x", bytes=1)

    report = run_all(store, download, options=RunOptions(retries=0), rows=rows)
    assert (report.done, report.failed) == (1, 1)
    failed = [r for r in rows if not r["ok"]]
    assert [(r["task"], r["error"]["code"]) for r in failed] == [(1, "worker_lost")]


# --- valid JSON, wrong types: queue_corrupt (exit 3), never an internal error ------------

URLS = ("http://127.0.0.1:9/one", "http://127.0.0.1:9/two", "http://127.0.0.1:9/three")


@pytest.fixture
def healthy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A queue as xdl writes it: a snapshot (task 1 running elsewhere, task 2 queued, in
    the claim hint) and a journal that added task 3. Nothing in it can be downloaded."""
    path = tmp_path / "q" / "queue.json"
    monkeypatch.setenv("XDL_QUEUE", str(path))
    store = JsonStore(path)
    store.add([NewTask(URLS[0], {"output_dir": str(tmp_path)}), NewTask(URLS[1])])
    assert store.claim(Worker("elsewhere.example", 4242, "r1"), 3600) is not None
    store._compact(store._refresh())
    store.add([NewTask(URLS[2])])
    return path


def test_the_healthy_queue_reads(xdl: Any, healthy: Path) -> None:
    ran = xdl("queue", "status")
    assert ran.exit_code == 0, ran.stderr
    assert [(r["id"], r["status"]) for r in ran.lines] == [
        (1, "running"),
        (2, "queued"),
        (3, "queued"),
    ]


SNAPSHOT_TASKS = {
    "priority-word": (2, {"priority": "high"}),
    "priority-bool": (2, {"priority": True}),
    "lease-word": (1, {"lease_until": "soon"}),
    "attempts-word": (2, {"attempts": "x"}),
    "attempts-negative": (2, {"attempts": -1}),
    "lost-word": (2, {"lost": "x"}),
    "id-word": (2, {"id": "a"}),
    "id-zero": (2, {"id": 0}),
    "id-float": (2, {"id": 2.5}),
    "url-number": (2, {"url": 5}),
    "options-number": (2, {"options": 5}),
    "options-list": (2, {"options": ["-o", "x"]}),
    "options-unknown-key": (2, {"options": "feedfacecafe"}),
    "status-unknown": (2, {"status": "exploded"}),
    "status-number": (2, {"status": 3}),
    "worker-string": (1, {"worker": "me"}),
    "worker-pid-list": (1, {"worker": {"host": "elsewhere.example", "pid": [1], "runner": "r1"}}),
    "result-list": (2, {"result": [1]}),
    "error-number": (2, {"error": 5}),
    "title-number": (2, {"title": 5}),
    "added-at-word": (2, {"added_at": "yesterday"}),
    "next-attempt-bool": (2, {"next_attempt_at": True}),
}
SNAPSHOT_HEADERS = {
    "paused-word": {"paused": "no"},
    "next-id-word": {"next_id": "x"},
    "generation-word": {"generation": "x"},
    "options-table-list": {"options": []},
    "options-entry-number": {"options": {"feedfacecafe": 5}},
    "claim-hint-words": {"claim_hint": {"queued": ["a"], "running": [], "more": False}},
    "claim-hint-string": {"claim_hint": "2"},
}
JOURNAL_LINES = {
    "del-ids-string": b'{"op":"del","ids":"12"}\n',
    "del-ids-bool": b'{"op":"del","ids":[true]}\n',
    "del-ids-word": b'{"op":"del","ids":["a"]}\n',
    "del-ids-zero": b'{"op":"del","ids":[0]}\n',
    "put-id-word": b'{"op":"put","task":{"id":"a","url":"http://127.0.0.1:9/a","status":"queued"}}\n',
    "put-no-id": b'{"op":"put","task":{"url":"http://127.0.0.1:9/a","status":"queued"}}\n',
    "put-priority-word": (
        b'{"op":"put","task":{"id":4,"url":"http://127.0.0.1:9/a","status":"queued",'
        b'"priority":"high"}}\n'
    ),
    "put-status-alias": b'{"op":"put","task":{"id":4,"url":"http://x.example/","status":"pending"}}\n',
    "put-no-task": b'{"op":"put"}\n',
    "put-task-list": b'{"op":"put","task":[4]}\n',
    "options-key-number": b'{"op":"options","key":5,"value":{}}\n',
    "options-value-list": b'{"op":"options","key":"k","value":[]}\n',
    "meta-paused-word": b'{"op":"meta","paused":"yes"}\n',
    "batch-ops-string": b'{"op":"batch","ops":"x"}\n',
    "batch-bad-member": (
        b'{"op":"batch","ops":[{"op":"meta","paused":true},{"op":"del","ids":"3"}]}\n'
    ),
    "unknown-op": b'{"op":"drop","ids":[1]}\n',
    "number": b"5\n",
    "list": b"[]\n",
    "null": b"null\n",
    "bad-line-then-a-torn-tail": b'{"op":"del","ids":"3"}\n{"op":"put","task":{"id":9,',
    "header-generation-word": None,
    "header-version-word": None,
}


def damage(path: Path, case: str) -> Path:
    """Make one of the cases above in a healthy queue; returns the file that is bad."""
    journal = path.with_name(path.name + ".journal")
    if case in JOURNAL_LINES:
        data = journal.read_bytes()
        line = JOURNAL_LINES[case]
        if line is None:  # the journal's first line
            head, _, rest = data.partition(b"\n")
            header = json.loads(head)
            if case == "header-generation-word":
                header["generation"] = str(header["generation"])
            else:
                header["journal"] = "1"
            journal.write_bytes(json.dumps(header).encode() + b"\n" + rest)
        else:
            journal.write_bytes(data + line)
        return journal
    doc = json.loads(path.read_bytes())
    if case in SNAPSHOT_HEADERS:
        doc.update(SNAPSHOT_HEADERS[case])
    else:
        tid, change = SNAPSHOT_TASKS[case]
        next(t for t in doc["tasks"] if t["id"] == tid).update(change)
    path.write_bytes(dump(doc))  # as xdl writes it: the light paths read it too
    return path


@pytest.mark.parametrize("case", [*SNAPSHOT_TASKS, *SNAPSHOT_HEADERS, *JOURNAL_LINES], ids=str)
def test_wrong_types_are_queue_corrupt_for_every_command(
    xdl: Any, healthy: Path, case: str
) -> None:
    bad = damage(healthy, case)
    journal = healthy.with_name(healthy.name + ".journal")
    before = (healthy.read_bytes(), journal.read_bytes())
    tid = SNAPSHOT_TASKS[case][0] if case in SNAPSHOT_TASKS else 2
    commands = [["status"], ["add", URLS[tid - 1]], ["run"]]
    if case == "url-number":  # a cold add reads only the tasks with its URL: not this one
        del commands[1]
    for args in commands:
        ran = xdl("queue", *args)
        assert ran.exit_code == 3, (args, ran.stdout, ran.stderr)
        assert ran.stdout == ""
        assert str(bad) in ran.stderr and "xdl queue restore" in ran.stderr, ran.stderr
        assert "Traceback" not in ran.stderr and "internal" not in ran.stderr
        assert (healthy.read_bytes(), journal.read_bytes()) == before
