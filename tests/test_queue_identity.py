"""A worker's pid is judged only where it names a process we can see (SPEC §7: a worker's
identity tells two runners apart even when their hosts share a name and their pids
collide). Containers named alike share a hostname but not a PID namespace: a pid of
theirs that does not exist here says nothing, and only their lease decides. Both stores
use the one rule (`rules.pid_is_ours`); the PostgreSQL store also in SQL."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from xdl.core.queue import HOST, NewTask, QueueStore, Worker, rules
from xdl.core.queue.model import BOOT_ID, PID_NS

pytestmark = pytest.mark.skipif(
    BOOT_ID is None or PID_NS is None, reason="no /proc: pids are never judged, only leases"
)


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def ours(fields: dict[str, Any]) -> dict[str, Any]:
    """A worker record as this host, boot and PID namespace write it (its pid gone),
    then `fields` (None: the field left out)."""
    rec = {"host": HOST, "pid": dead_pid(), "runner": "r", "boot": BOOT_ID, "pidns": PID_NS}
    rec.update(fields)
    return {k: v for k, v in rec.items() if v is not None}


@pytest.mark.parametrize(
    ("fields", "gone"),
    [
        ({}, True),  # ours, and the pid is gone
        ({"pidns": (PID_NS or 0) + 1}, False),  # a container named like us
        ({"boot": "another-boot"}, False),  # this host before a reboot, or a twin VM
        ({"host": "elsewhere"}, False),
        ({"boot": None, "pidns": None}, False),  # a record from before they were kept
        ({"pidns": None}, False),
        ({"pidns": str(PID_NS)}, False),  # not what we write: not ours
        ({"pid": None}, False),
        ({"pid": True}, False),
    ],
)
def test_worker_gone_only_when_host_boot_and_pid_namespace_are_ours(
    fields: dict[str, Any], gone: bool
) -> None:
    worker = ours(fields)
    assert rules.worker_gone(worker) is gone
    assert (
        rules.needs_recovery({"status": "running", "worker": worker, "lease_until": 9e9}, 1.0)
        is gone
    )


def test_a_live_pid_of_ours_and_ours_are_never_gone() -> None:
    assert not rules.worker_gone(ours({"pid": 1}))  # pid 1 (init) lives here
    assert not rules.worker_gone(Worker.here().to_dict())


def test_a_worker_says_where_its_pid_means_something() -> None:
    here = Worker.here().to_dict()
    assert (here["host"], here["boot"], here["pidns"]) == (HOST, BOOT_ID, PID_NS)
    assert len(here["runner"]) == 12 and here["runner"] != Worker.here().runner


def twin(**fields: Any) -> Worker:
    """A runner with our hostname and a pid that does not exist here."""
    return dataclasses.replace(Worker.here(), pid=dead_pid(), runner="twin", **fields)


@pytest.mark.parametrize(
    "fields",
    [{"pidns": (PID_NS or 0) + 1}, {"boot": "another-boot"}, {"boot": None, "pidns": None}],
    ids=["another-pid-namespace", "another-boot", "an-old-record"],
)
def test_a_twin_host_s_live_task_is_not_taken_back(
    opened: Callable[[], QueueStore], fields: dict[str, Any]
) -> None:
    store = opened()
    store.add([NewTask("https://a.example/1"), NewTask("https://a.example/2")])
    theirs = twin(**fields)
    assert store.claim(theirs, 3600) is not None
    me = Worker.here()
    mine = opened().finish(me, claim=2, lease=60)
    assert [t.id for t in mine.claimed] == [2] and mine.given_up == ()
    (one,) = opened().tasks(ids=[1])
    assert (one.status, one.lost, one.worker["runner"]) == ("running", 0, "twin")  # type: ignore[union-attr,index]
    summary = opened().summary().to_dict()
    assert summary["active_workers"] == 2  # theirs counts as alive: its lease is
    assert store.complete(theirs, 1, {"path": "/twin"})  # and its result is recorded


def test_a_dead_pid_in_our_namespace_is_taken_back_at_once(
    opened: Callable[[], QueueStore],
) -> None:
    store = opened()
    store.add([NewTask("https://a.example/1")])
    dead = twin()  # our boot and namespace, its pid gone
    assert store.claim(dead, 3600) is not None
    t = opened().claim(Worker.here(), 60)  # the lease is an hour away: the pid decides
    assert t is not None and (t.id, t.lost) == (1, 1)
    assert t.error and "its worker died" in t.error["message"]


def test_a_twin_s_expired_lease_is_taken_back(opened: Callable[[], QueueStore]) -> None:
    import time

    store = opened()
    store.add([NewTask("https://a.example/1")])
    assert store.claim(twin(pidns=(PID_NS or 0) + 1), 0.01) is not None
    time.sleep(0.05)
    t = opened().claim(Worker.here(), 60)
    assert t is not None and (t.id, t.lost) == (1, 1)
    assert t.error and "its lease expired" in t.error["message"]
