"""The queue's behaviour, one contract for both stores (the JSON file and PostgreSQL):
every test runs against each. Store-specific guarantees are in test_queue_store.py (files)
and test_queue_pg.py (the database)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from xdl.core.queue import HOST, MAX_LOST, NewTask, QueueStore, Worker


@pytest.fixture
def store(opened: Callable[[], QueueStore]) -> QueueStore:
    return opened()


@pytest.fixture
def fresh(opened: Callable[[], QueueStore]) -> Callable[[], QueueStore]:
    return opened


@pytest.fixture
def worker() -> Worker:
    return Worker.here()


def urls(n: int, prefix: str = "https://example.com/v") -> list[NewTask]:
    return [NewTask(f"{prefix}{i}") for i in range(n)]


def test_add_assigns_ids_and_persists(store: QueueStore, fresh: Callable[[], QueueStore]) -> None:
    added = store.add(urls(3))
    assert [a.id for a in added] == [1, 2, 3]
    assert all(a.added for a in added)
    tasks = fresh().tasks()
    assert [(t.id, t.url, t.status) for t in tasks] == [
        (1, "https://example.com/v0", "queued"),
        (2, "https://example.com/v1", "queued"),
        (3, "https://example.com/v2", "queued"),
    ]


def test_dedupe_queued_running_done_cancelled_not_failed(store: QueueStore, worker: Worker) -> None:
    store.add(urls(3))
    again = store.add(urls(3))
    assert [(a.added, a.existing) for a in again] == [(False, 1), (False, 2), (False, 3)]
    t = store.claim(worker, 60)
    assert t is not None and t.id == 1
    assert store.add([NewTask("https://example.com/v0")])[0].existing == 1  # running
    store.complete(worker, 1, {"path": "/x", "bytes": 3})
    assert store.add([NewTask("https://example.com/v0")])[0].status == "done"
    t2 = store.claim(worker, 60)
    assert t2 is not None
    store.fail(worker, t2.id, {"code": "network", "message": "boom"}, None)
    requeued = store.add([NewTask(t2.url)])[0]
    assert (requeued.id, requeued.added, requeued.requeued, requeued.status) == (
        t2.id,
        True,
        True,
        "queued",
    )
    store.cancel([3])
    kept = store.add([NewTask("https://example.com/v2")])[0]
    assert (kept.added, kept.existing, kept.status) == (False, 3, "cancelled")
    forced = store.add([NewTask("https://example.com/v0")], force=True)[0]
    assert forced.added and forced.id == 4
    assert len(store.tasks()) == 4


def test_dedupe_within_one_batch(store: QueueStore) -> None:
    added = store.add([NewTask("https://a.example/1"), NewTask("https://a.example/1")])
    assert [(a.id, a.added) for a in added] == [(1, True), (1, False)]
    assert len(store.tasks()) == 1


def test_claim_order_priority_then_oldest(store: QueueStore, worker: Worker) -> None:
    store.add([NewTask("https://a.example/low", priority=-1)])
    store.add([NewTask("https://a.example/1"), NewTask("https://a.example/2")])
    store.add([NewTask("https://a.example/high", priority=5)])
    order = []
    while (t := store.claim(worker, 60)) is not None:
        order.append(t.url.rsplit("/", 1)[1])
        assert t.status == "running" and t.attempts == 1
        assert t.worker is not None and t.worker["pid"] == os.getpid()
    assert order == ["high", "1", "2", "low"]


def test_two_stores_never_claim_the_same_task(
    store: QueueStore, fresh: Callable[[], QueueStore]
) -> None:
    store.add(urls(200))
    claimed: list[int] = []
    lock = threading.Lock()

    def run() -> None:
        s = fresh()
        w = Worker.here()
        while (t := s.claim(w, 60)) is not None:
            with lock:
                claimed.append(t.id)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == list(range(1, 201))


def test_backoff_defers_claim_and_final_failure(store: QueueStore, worker: Worker) -> None:
    import time

    store.add(urls(1))
    t = store.claim(worker, 60)
    assert t is not None
    store.fail(worker, t.id, {"code": "network", "message": "x"}, time.time() + 3600)
    assert store.claim(worker, 60) is None  # not before next_attempt_at
    (task,) = store.tasks()
    assert task.status == "queued" and task.next_attempt_at is not None
    assert task.error == {"code": "network", "message": "x"}
    assert 3500 < store.next_wakeup() <= 3600  # type: ignore[operator]
    assert store.retry([t.id])[0].skipped  # type: ignore[union-attr]  # queued, not failed
    t = store.claim(worker, 60)
    assert t is None


def test_expired_lease_is_taken_back(
    store: QueueStore, worker: Worker, fresh: Callable[[], QueueStore]
) -> None:
    import time

    store.add(urls(1))
    other = Worker("some-other-host", 12345, "abc")
    t = store.claim(other, 0.01)
    assert t is not None
    time.sleep(0.05)
    again = fresh().claim(worker, 60)
    assert again is not None and again.id == t.id
    assert (again.attempts, again.lost) == (1, 1)  # the lost attempt: not a retry
    assert not store.complete(other, t.id, {"path": "/x"})  # no longer theirs
    assert store.tasks()[0].status == "running"


def dead_worker() -> Worker:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return Worker(HOST, proc.pid, "dead")


def test_dead_worker_on_this_host_is_taken_back_at_once(store: QueueStore, worker: Worker) -> None:
    dead = dead_worker()
    store.add(urls(1))
    assert store.claim(dead, 3600) is not None
    t = store.claim(worker, 60)  # lease is an hour away, but the pid is gone
    assert t is not None and t.id == 1
    assert t.worker is not None and t.worker["runner"] == worker.runner


def test_taken_back_task_keeps_its_retries_and_fails_after_max_lost(store: QueueStore) -> None:
    store.add(urls(1))
    for lost in range(MAX_LOST):
        t = store.claim(dead_worker(), 3600)
        assert t is not None and (t.attempts, t.lost) == (1, lost)  # no retry used up
    finished = store.finish(Worker.here(), claim=1, lease=60)
    assert finished.claimed == ()
    (task,) = finished.given_up
    assert (task.status, task.attempts, task.lost) == ("failed", 0, MAX_LOST)
    assert task.error and task.error["code"] == "worker_lost"
    assert store.tasks() == [task]
    (retried,) = store.retry(None)  # a retry starts both counts afresh
    assert retried.status == "queued"  # type: ignore[union-attr]
    t = store.claim(Worker.here(), 60)
    assert t is not None and (t.attempts, t.lost) == (1, 0)


def test_renew_records_the_bytes_a_running_task_has_received(
    store: QueueStore, fresh: Callable[[], QueueStore], worker: Worker
) -> None:
    store.add(urls(2))
    a = store.claim(worker, 60)
    b = store.claim(worker, 60)
    assert a and b
    assert store.renew(worker, [a.id, b.id], 60, {a.id: 12345}) == set()
    seen = {t.id: t.to_dict() for t in fresh().tasks()}  # type: ignore[union-attr]
    assert seen[a.id]["bytes"] == 12345 and seen[a.id]["status"] == "running"
    assert seen[b.id]["bytes"] is None
    store.renew(worker, [a.id], 60, {a.id: 20000})
    (now,) = fresh().tasks(ids=[a.id])
    assert now.to_dict()["bytes"] == 20000  # type: ignore[union-attr]
    assert store.complete(worker, a.id, {"path": "/x", "bytes": 30000})
    (done,) = fresh().tasks(ids=[a.id])
    assert done.to_dict()["bytes"] == 30000  # type: ignore[union-attr]
    assert "bytes" not in (done.to_dict()["worker"] or {})  # type: ignore[union-attr]


def test_renew_reports_cancelled_tasks(store: QueueStore, worker: Worker) -> None:
    store.add(urls(2))
    a = store.claim(worker, 60)
    b = store.claim(worker, 60)
    assert a and b
    store.cancel([b.id])
    assert store.renew(worker, [a.id, b.id], 60) == {b.id}
    assert not store.complete(worker, b.id, {"path": "/x"})
    assert {t.id: t.status for t in store.tasks()} == {a.id: "running", b.id: "cancelled"}


def test_release_requeues_without_counting_the_attempt(store: QueueStore, worker: Worker) -> None:
    store.add(urls(1))
    t = store.claim(worker, 60)
    assert t is not None
    store.release(worker, [t.id])
    (task,) = store.tasks()
    assert (task.status, task.attempts, task.worker) == ("queued", 0, None)


def test_pause_stops_claims(
    store: QueueStore, worker: Worker, fresh: Callable[[], QueueStore]
) -> None:
    store.add(urls(1))
    assert store.set_paused(True) is True
    assert fresh().claim(worker, 60) is None
    store.set_paused(False)
    assert fresh().claim(worker, 60) is not None


def test_cancel_retry_remove_clear(store: QueueStore, worker: Worker) -> None:
    store.add(urls(4))
    t = store.claim(worker, 60)
    assert t is not None
    removed = store.remove([t.id, 2, 99])
    assert removed[0].skipped == "running: cancel it first"  # type: ignore[union-attr]
    assert removed[1].status == "removed"  # type: ignore[union-attr]
    assert removed[2] == 99
    store.cancel([3])
    store.complete(worker, t.id, {"bytes": 1})
    assert [c.id for c in store.retry(None)] == []  # type: ignore[union-attr]
    assert store.retry([3])[0].status == "queued"  # type: ignore[union-attr]
    assert store.clear(["done"]) == 1
    assert sorted(t.id for t in store.tasks()) == [3, 4]


def test_ids_are_never_reused(store: QueueStore, fresh: Callable[[], QueueStore]) -> None:
    store.add(urls(3))
    store.remove([3])
    store.clear(["queued"])  # queued tasks are cleared only when asked by status
    assert fresh().add([NewTask("https://new.example/")])[0].id == 4


def test_summary(store: QueueStore, worker: Worker, fresh: Callable[[], QueueStore]) -> None:
    store.add([*urls(3), NewTask("https://www.other.example/x")])
    t = store.claim(worker, 60)
    assert t is not None
    store.complete(worker, t.id, {"path": "/x", "bytes": 1000})
    running = store.claim(worker, 60)
    assert running is not None
    s = fresh().summary().to_dict()
    assert (s["total"], s["queued"], s["running"], s["done"]) == (4, 2, 1, 1)
    assert s["bytes_done"] == 1000
    assert s["domains"] == {"example.com": 3, "other.example": 1}
    assert s["active_workers"] == 1 and s["workers"][0]["pid"] == os.getpid()
    assert s["oldest_queued"].endswith("Z")


# --- fencing: a runner that lost its task can change nothing ------------------------------


def test_a_runner_that_lost_its_lease_cannot_renew_complete_or_fail(
    store: QueueStore, fresh: Callable[[], QueueStore]
) -> None:
    store.add(urls(1))
    slow = Worker("slow-host", 4242, "slow")
    t = store.claim(slow, 0.01)
    assert t is not None
    time.sleep(0.05)
    other, fast = fresh(), Worker("fast-host", 4343, "fast")
    again = other.claim(fast, 60)
    assert again is not None and again.id == t.id
    assert store.renew(slow, [t.id], 60) == {t.id}  # not ours: stop the download
    assert not store.complete(slow, t.id, {"path": "/late", "bytes": 1})
    assert not store.fail(slow, t.id, {"code": "network", "message": "late"}, None)
    store.release(slow, [t.id])
    (task,) = fresh().tasks()
    assert (task.status, task.worker) == ("running", fast.to_dict())  # type: ignore[union-attr]
    assert other.complete(fast, t.id, {"path": "/ok", "bytes": 2})
    (task,) = fresh().tasks()
    assert (task.status, task.result) == ("done", {"path": "/ok", "bytes": 2})  # type: ignore[union-attr]


def test_a_cancelled_task_is_not_completed_by_its_runner(store: QueueStore, worker: Worker) -> None:
    store.add(urls(1))
    t = store.claim(worker, 60)
    assert t is not None
    assert store.cancel([t.id])[0].status == "cancelled"  # type: ignore[union-attr]
    assert not store.complete(worker, t.id, {"path": "/x"})
    assert store.tasks()[0].status == "cancelled"  # type: ignore[union-attr]


def test_retry_then_done_keeps_the_result_and_clears_the_error(
    store: QueueStore, worker: Worker
) -> None:
    store.add(urls(1))
    t = store.claim(worker, 60)
    assert t is not None
    store.fail(worker, t.id, {"code": "network", "message": "x"}, time.time() - 1)
    t = store.claim(worker, 60)
    assert t is not None and t.attempts == 2 and t.next_attempt_at is None
    assert store.complete(worker, t.id, {"path": "/x", "bytes": 5})
    (task,) = store.tasks()
    assert (task.status, task.error, task.attempts) == ("done", None, 2)  # type: ignore[union-attr]


def test_status_filters_and_unknown_ids(store: QueueStore, worker: Worker) -> None:
    store.add(urls(3))
    t = store.claim(worker, 60)
    assert t is not None
    assert [x.id for x in store.tasks(statuses=["queued"])] == [2, 3]  # type: ignore[union-attr]
    found = store.tasks(ids=[3, 42, 1])
    assert [x if isinstance(x, int) else x.id for x in found] == [3, 42, 1]
    assert store.task_ids() == [
        (1, "running", "https://example.com/v0"),
        (2, "queued", "https://example.com/v1"),
        (3, "queued", "https://example.com/v2"),
    ]


def test_options_and_titles_come_back_as_added(store: QueueStore) -> None:
    options = {"output_dir": "/srv/x", "audio": True, "zeta": 1, "alpha": [1, 2]}
    store.add([NewTask("https://a.example/é", options, priority=3, title="Ünï")])
    (task,) = store.tasks()
    row = task.to_dict()  # type: ignore[union-attr]
    assert list(row["options"]) == list(options)  # the same JSON line, keys in order
    assert (row["options"], row["priority"], row["title"]) == (options, 3, "Ünï")


# --- the CLI: the same lines from both stores ---------------------------------------------


def _cli(xdl: Any, location: str, *args: str, input: str | None = None) -> Any:
    return xdl("queue", *args, "--queue", location, input=input)


def test_every_command_through_the_cli(xdl: Any, location: str) -> None:
    added = _cli(xdl, location, "add", input="https://a.example/1\nhttps://a.example/2\n")
    assert added.exit_code == 0, added.stderr
    assert [(r["id"], r["added"]) for r in added.lines] == [(1, True), (2, True)]
    again = _cli(xdl, location, "add", "https://a.example/1")
    assert again.lines == [
        {
            "ok": True,
            "id": 1,
            "url": "https://a.example/1",
            "status": "queued",
            "added": False,
            "existing": 1,
        }
    ]
    listed = _cli(xdl, location, "status", "--json")
    assert [r["status"] for r in listed.lines] == ["queued", "queued"]
    summary = _cli(xdl, location, "status", "--summary", "--json").lines[0]
    assert (summary["total"], summary["queued"], summary["queue"]) == (
        2,
        2,
        location.replace(":s3cret-Pw-7", ""),
    )
    assert _cli(xdl, location, "cancel", "1").lines[0]["status"] == "cancelled"
    assert _cli(xdl, location, "retry", "1").lines[0]["status"] == "queued"
    assert _cli(xdl, location, "pause").lines[0]["paused"] is True
    assert _cli(xdl, location, "status", "--summary", "--json").lines[0]["paused"] is True
    assert _cli(xdl, location, "resume").lines[0]["paused"] is False
    removed = _cli(xdl, location, "remove", "2", "7")
    assert removed.exit_code == 1
    assert [r.get("status") for r in removed.lines] == ["removed", None]
    cleared = _cli(xdl, location, "clear")
    assert cleared.lines[0]["cleared"] == 0
    assert "s3cret-Pw-7" not in "".join(
        r.stdout + r.stderr for r in (added, again, listed, removed, cleared)
    )


def test_finish_records_several_outcomes_and_claims_several_tasks_in_one_call(
    store: QueueStore, worker: Worker, fresh: Callable[[], QueueStore]
) -> None:
    """A runner's keeper records what its workers finished and claims their next tasks in
    one write: each outcome is recorded only while its task is ours, a task queued again
    for a retry is not claimed back by the same write, and the claims follow priority."""
    from xdl.core.queue import Outcome

    store.add(urls(4))
    store.add([NewTask("https://example.com/urgent", priority=5)])
    a, b, c = (store.claim(worker, 60) for _ in range(3))
    assert a and b and c and [a.id, b.id, c.id] == [5, 1, 2]
    assert store.cancel([c.id])[0]  # no longer ours: its outcome is not recorded
    error = {"code": "network", "message": "reset"}
    finished = store.finish(
        worker,
        [Outcome(a.id, {"bytes": 1}), Outcome(b.id, None, error, time.time()), Outcome(c.id, {})],
        claim=3,
        lease=60,
    )
    assert finished.recorded == (True, True, False)
    assert [t.id for t in finished.claimed] == [3, 4]  # not b, queued again in this write
    status = {t.id: t.status for t in fresh().tasks()}  # type: ignore[union-attr]
    assert status == {1: "queued", 2: "cancelled", 3: "running", 4: "running", 5: "done"}
    assert store.finish(worker, claim=2, lease=60).claimed[0].id == 1  # its retry time came
