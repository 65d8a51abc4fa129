"""The queue's guarantees with real processes: concurrent adds, concurrent runners,
`kill -9` of a runner and of a writer. Downloads here are a fake (a script on the core
API) so that only the queue is under test; test_queue_e2e.py runs the real engine."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from xdl.core.queue import JsonStore, NewTask

RUNNER = r"""
import os, sys, threading, time
from xdl.core.fetch.result import FetchResult
from xdl.core.queue import JsonStore
from xdl.core.queue.run import RunOptions, run_queue

queue, log, mode = sys.argv[1], sys.argv[2], sys.argv[3]

def note(line):
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, (line + "\n").encode())
    os.close(fd)

def download(task, stop, progress=None):
    note(f"start {task.id} {os.getpid()}")
    if mode == "block":
        stop.wait(600)
    elif mode == "pair":  # hold until the other runner has started too (max 60 s)
        for _ in range(6000):
            with open(log) as f:
                if len({line.split()[2] for line in f}) >= 2:
                    break
            time.sleep(0.01)
    note(f"end {task.id} {os.getpid()}")
    return FetchResult(ok=True, url=task.url, path=f"/fake/{task.id}", bytes=task.id)

jobs = int(sys.argv[4]) if len(sys.argv) > 4 else 1
options = RunOptions(jobs=jobs, lease=3600, poll=0.05)
for _ in run_queue(JsonStore(queue), download, options=options):
    pass
"""

WRITER = r"""
import random, sys
from xdl.core.queue import JsonStore, NewTask

store = JsonStore(sys.argv[1])
rng = random.Random(int(sys.argv[2]))
n = 0
while True:
    size = rng.randint(1, 400)
    batch = [NewTask(f"https://w.example/{sys.argv[2]}/{n + i}") for i in range(size)]
    n += len(batch)
    for added in store.add(batch):
        print(added.id, flush=True)
"""


def xdl_exe() -> str:
    return str(Path(sys.executable).parent / "xdl")


def events(log: Path) -> list[tuple[str, int, int]]:
    if not log.exists():
        return []
    out = []
    for line in log.read_text().splitlines():
        kind, tid, pid = line.split()
        out.append((kind, int(tid), int(pid)))
    return out


def wait_for(predicate: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def test_8_processes_adding_500_each_leave_4000_tasks(tmp_path: Path) -> None:
    queue = tmp_path / "queue.json"
    procs = []
    for p in range(8):
        urls = tmp_path / f"urls-{p}.txt"
        urls.write_text("".join(f"https://host{p}.example/item/{i}\n" for i in range(500)))
        procs.append(
            subprocess.Popen(
                [xdl_exe(), "queue", "add", "-q", "--queue", str(queue), "-a", str(urls)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        )
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, [e for _, e in outputs]
    ids = [json.loads(line)["id"] for out, _ in outputs for line in out.splitlines()]
    assert sorted(ids) == list(range(1, 4001))
    tasks = JsonStore(queue).tasks()
    assert len(tasks) == 4000
    assert len({t.url for t in tasks}) == 4000  # type: ignore[union-attr]


def test_two_runner_processes_never_take_the_same_task(tmp_path: Path) -> None:
    queue, log = tmp_path / "queue.json", tmp_path / "log"
    JsonStore(queue).add([NewTask(f"https://r.example/{i}") for i in range(300)])
    script = tmp_path / "runner.py"
    script.write_text(RUNNER)
    procs = [
        subprocess.Popen([sys.executable, str(script), str(queue), str(log), "pair", "2"])
        for _ in range(2)
    ]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    started = [tid for kind, tid, _ in events(log) if kind == "start"]
    assert sorted(started) == list(range(1, 301))  # each task downloaded exactly once
    assert len({pid for _, _, pid in events(log)}) == 2  # both runners did work
    tasks = JsonStore(queue).tasks()
    assert all(t.status == "done" for t in tasks)  # type: ignore[union-attr]


def test_kill_9_of_a_runner_loses_nothing(tmp_path: Path) -> None:
    queue, log = tmp_path / "queue.json", tmp_path / "log"
    JsonStore(queue).add([NewTask(f"https://k.example/{i}") for i in range(6)])
    script = tmp_path / "runner.py"
    script.write_text(RUNNER)
    victim = subprocess.Popen([sys.executable, str(script), str(queue), str(log), "block", "3"])
    wait_for(lambda: len(events(log)) >= 3)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    in_flight = {tid for kind, tid, _ in events(log) if kind == "start"}
    assert len(in_flight) == 3
    tasks = {t.id: t for t in JsonStore(queue).tasks()}  # type: ignore[union-attr]
    assert {tid for tid, t in tasks.items() if t.status == "running"} == in_flight
    assert not any(t.status == "done" for t in tasks.values())  # nothing claimed as done
    # The next runner takes them back at once (pid gone), though the lease is an hour.
    rescuer = subprocess.run(
        [sys.executable, str(script), str(queue), str(log), "fast", "2"], timeout=300
    )
    assert rescuer.returncode == 0
    done_by = {tid: pid for kind, tid, pid in events(log) if kind == "end"}
    assert sorted(done_by) == [1, 2, 3, 4, 5, 6]
    assert victim.pid not in done_by.values()
    tasks = {t.id: t for t in JsonStore(queue).tasks()}  # type: ignore[union-attr]
    assert all(t.status == "done" for t in tasks.values())
    # The lost attempt is not counted against --retries, but as `lost`.
    assert all((tasks[tid].attempts, tasks[tid].lost) == (1, 1) for tid in in_flight)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kill_9_of_a_writer_keeps_every_acknowledged_task(tmp_path: Path, seed: int) -> None:
    """Killed at a random moment (mid-append, mid-compaction...), a writer leaves a queue
    that loads, holds every task it reported added, and takes new changes."""
    queue = tmp_path / "queue.json"
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(queue), str(seed)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    acked: list[int] = []
    wanted = random.Random(seed).randint(1500, 4000)
    while len(acked) < wanted:
        line = proc.stdout.readline()
        assert line, proc.stderr.read() if proc.stderr else ""
        acked.append(int(line))
    proc.send_signal(signal.SIGKILL)
    rest, _ = proc.communicate(timeout=30)
    acked += [int(x) for x in rest.split()]
    ids = {t.id for t in JsonStore(queue).tasks()}  # type: ignore[union-attr]
    assert set(acked) <= ids
    assert ids == set(range(1, max(ids) + 1))
    new = JsonStore(queue).add([NewTask("https://after.example/")])[0]
    assert new.added and new.id == max(ids) + 1
    assert os.path.getsize(queue) > 0


def unshare_works() -> bool:
    """`unshare --pid --uts` (root, and a kernel and sandbox that allow it)."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    probe = [*UNSHARE, "sh", "-c", "hostname probe"]
    return subprocess.run(probe, capture_output=True, timeout=30).returncode == 0


UNSHARE = ("unshare", "--pid", "--fork", "--uts", "--mount", "--mount-proc")


def test_two_runners_in_containers_named_alike_lose_nothing(tmp_path: Path) -> None:
    """Two runners, each in its own PID and UTS namespace with the same hostname (two
    containers named alike), on one JSON queue: neither takes the other's live tasks,
    though each one's pid does not exist where the other looks (before: within a
    second, every task was counted `lost`, aborted and fetched again)."""
    if not unshare_works():
        pytest.skip("unshare --pid --uts is not permitted here (needs root)")
    queue, log = tmp_path / "queue.json", tmp_path / "log"
    JsonStore(queue).add([NewTask(f"https://twin.example/{i}") for i in range(40)])
    script = tmp_path / "runner.py"
    script.write_text(RUNNER)
    # Each runner is a child of the namespace's sh (pid 1); /bin/true first moves one
    # runner's pid on, so that the pids differ and neither exists in the other namespace.
    spawn = "hostname twin && {pre} {py} {script} {queue} {log} pair 2; exit $?"
    procs = [
        subprocess.Popen(
            [
                *UNSHARE,
                *("sh", "-c"),
                spawn.format(pre=pre, py=sys.executable, script=script, queue=queue, log=log),
            ],
            stderr=subprocess.PIPE,
        )
        for pre in ("", "/bin/true; /bin/true;")
    ]
    errors = [p.communicate(timeout=300)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    pids = {pid for _, _, pid in events(log)}
    assert len(pids) == 2, "both runners did work, under different pids"
    tasks = JsonStore(queue).tasks()
    assert [t.status for t in tasks] == ["done"] * 40  # type: ignore[union-attr]
    assert sum(t.lost for t in tasks) == 0  # type: ignore[union-attr]
    started = [tid for kind, tid, _ in events(log) if kind == "start"]
    assert sorted(started) == list(range(1, 41))  # each task downloaded exactly once
