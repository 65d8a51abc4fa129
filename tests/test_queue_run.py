"""The queue runner with a fake download: drains, retries with backoff, gives up on final
errors, stops cancelled downloads, and puts tasks back when stopped."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from queue_runs import InBackground, run_all

from xdl.core import errors
from xdl.core.fetch.result import FetchResult
from xdl.core.queue import JsonStore, NewTask, Task
from xdl.core.queue.rules import backoff_delay
from xdl.core.queue.run import RunOptions, RunReport, TaskResult, run_queue


@pytest.fixture
def store(tmp_path: Path) -> JsonStore:
    return JsonStore(tmp_path / "queue.json")


def add(store: JsonStore, *urls: str) -> None:
    store.add([NewTask(u) for u in urls])


def statuses(store: JsonStore) -> dict[str, str]:
    return {t.url: t.status for t in JsonStore(store.path).tasks()}


def test_drains_and_records_results(store: JsonStore) -> None:
    add(store, *(f"https://a.example/{i}" for i in range(6)))
    seen: list[int] = []
    lock = threading.Lock()

    def download(task: Task, stop: threading.Event, progress: Any = None) -> FetchResult:
        with lock:
            seen.append(task.id)
        return FetchResult(ok=True, url=task.url, path=f"/d/{task.id}", bytes=task.id)

    rows: list[dict[str, Any]] = []
    report = run_all(store, download, options=RunOptions(jobs=3), rows=rows)
    assert sorted(seen) == [1, 2, 3, 4, 5, 6]
    assert (report.done, report.failed) == (6, 0)
    assert sorted(r["task"] for r in rows) == [1, 2, 3, 4, 5, 6]
    assert all(r["ok"] and r["attempt"] == 1 for r in rows)
    tasks = JsonStore(store.path).tasks()
    assert all(t.status == "done" for t in tasks)
    assert {t.id: t.result["bytes"] for t in tasks if t.result} == {i: i for i in range(1, 7)}


def test_retries_with_backoff_then_fails(store: JsonStore) -> None:
    add(store, "https://a.example/flaky", "https://a.example/broken", "https://a.example/404")
    calls: dict[str, int] = {}

    def download(task: Task, stop: threading.Event, progress: Any = None) -> FetchResult:
        name = task.url.rsplit("/", 1)[1]
        calls[name] = calls.get(name, 0) + 1
        if name == "404":
            return FetchResult(
                ok=False, url=task.url, error={"code": "not_found", "message": "404"}
            )
        if name == "flaky" and calls[name] < 3:
            raise errors.NetworkError("connection reset")
        if name == "broken":
            raise RuntimeError("boom")
        return FetchResult(ok=True, url=task.url, path="/x", bytes=1)

    rows: list[dict[str, Any]] = []
    report = run_all(
        store,
        download,
        options=RunOptions(retries=2, backoff=0.01, poll=0.01),
        rows=rows,
    )
    assert calls == {"flaky": 3, "broken": 3, "404": 1}  # not_found is never retried
    assert (report.done, report.failed, report.retried) == (1, 2, 4)
    assert statuses(store) == {
        "https://a.example/flaky": "done",
        "https://a.example/broken": "failed",
        "https://a.example/404": "failed",
    }
    failed = {r["url"]: r for r in rows if not r["ok"]}
    assert failed["https://a.example/broken"]["error"]["code"] == "internal_error"
    assert failed["https://a.example/broken"]["attempt"] == 3
    broken = next(t for t in JsonStore(store.path).tasks() if t.url.endswith("broken"))
    assert broken.error and "boom" in broken.error["message"]


@pytest.mark.parametrize(("attempts", "delay"), [(1, 10.0), (2, 20.0), (3, 40.0), (10, 3600.0)])
def test_backoff_doubles_up_to_a_cap(attempts: int, delay: float) -> None:
    assert backoff_delay(attempts, 10.0, 3600.0) == delay


def test_max_tasks(store: JsonStore) -> None:
    add(store, *(f"https://a.example/{i}" for i in range(5)))
    report = run_all(
        store,
        lambda t, s, p: FetchResult(ok=True, url=t.url),
        options=RunOptions(jobs=2, max_tasks=3),
    )
    assert report.done == 3
    assert sorted(statuses(store).values()) == ["done"] * 3 + ["queued"] * 2


def test_paused_queue_is_not_run(store: JsonStore) -> None:
    add(store, "https://a.example/1")
    store.set_paused(True)
    report = run_all(store, lambda t, s, p: FetchResult(ok=True, url=t.url))
    assert report.done == 0
    assert statuses(store) == {"https://a.example/1": "queued"}


def running(store: JsonStore) -> int:
    return sum(t.status == "running" for t in JsonStore(store.path).tasks())  # type: ignore[union-attr]


def wait_until(check: Callable[[], bool], failure: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, failure
        time.sleep(0.02)


def test_stop_puts_in_flight_tasks_back(store: JsonStore) -> None:
    add(store, *(f"https://a.example/{i}" for i in range(4)))
    stop = threading.Event()
    started = threading.Barrier(3)

    def download(task: Task, event: threading.Event, progress: Any = None) -> FetchResult:
        started.wait(timeout=30)
        event.wait(timeout=30)  # a download that runs until told to stop
        return FetchResult(ok=False, url=task.url, error={"code": "interrupted", "message": "x"})

    run = InBackground(store, download, options=RunOptions(jobs=2), stop=stop)
    started.wait(timeout=30)
    stop.set()
    report = run.report()
    assert report.released == 2 and report.interrupted
    tasks = JsonStore(store.path).tasks()
    assert [t.status for t in tasks] == ["queued"] * 4
    assert [t.attempts for t in tasks] == [0] * 4  # a stop does not count as an attempt


def test_short_downloads_are_claimed_ahead_and_a_stop_gives_those_back(
    store: JsonStore,
) -> None:
    """Once downloads prove short, -j 8 holds 8 more tasks claimed for its workers (one
    write records and claims 8 at a time); a stop puts them back unstarted, uncounted."""
    add(store, *(f"https://a.example/quick{i}" for i in range(8)))
    add(store, *(f"https://a.example/slow{i}" for i in range(20)))
    stop = threading.Event()
    started = threading.Barrier(9)

    def download(task: Task, event: threading.Event, progress: Any = None) -> FetchResult:
        if "quick" in task.url:
            return FetchResult(ok=True, url=task.url)
        started.wait(timeout=30)
        event.wait(timeout=30)
        return FetchResult(ok=False, url=task.url, error={"code": "interrupted", "message": "x"})

    run = InBackground(store, download, options=RunOptions(jobs=8), stop=stop)
    started.wait(timeout=30)
    wait_until(lambda: running(store) == 16, "no task claimed ahead")
    stop.set()
    report = run.report()
    assert (report.done, report.released) == (8, 8)
    tasks = JsonStore(store.path).tasks()
    assert [t.status for t in tasks] == ["done"] * 8 + ["queued"] * 20
    assert [t.attempts for t in tasks][8:] == [0] * 20  # neither run nor held counts


def test_tasks_held_ahead_go_back_when_downloads_turn_long(store: JsonStore) -> None:
    """Short downloads make the runner claim ahead; when the next ones run long, what it
    holds and has not started goes back to `queued` (another runner may start it) after
    HOLD_AHEAD, and nothing is held ahead while they run."""
    add(store, *(f"https://a.example/quick{i}" for i in range(8)))
    add(store, *(f"https://a.example/long{i}" for i in range(20)))
    release = threading.Event()

    def download(task: Task, event: threading.Event, progress: Any = None) -> FetchResult:
        if "long" in task.url:
            release.wait(timeout=30)
        return FetchResult(ok=True, url=task.url)

    run = InBackground(store, download, options=RunOptions(jobs=8))
    try:  # 8 long downloads and 8 claimed ahead; HOLD_AHEAD later, those 8 went back
        wait_until(lambda: running(store) == 16, "no task claimed ahead")
        wait_until(lambda: running(store) == 8, "tasks held ahead were not given back")
        time.sleep(0.3)
        assert running(store) == 8  # and none is claimed ahead again while downloads run long
    finally:
        release.set()
    assert run.report().done == 28
    assert {t.attempts for t in JsonStore(store.path).tasks()} == {1}  # given back: not counted


def test_cancel_stops_a_running_download(store: JsonStore) -> None:
    add(store, "https://a.example/long", "https://a.example/next")
    started = threading.Event()
    stopped: list[int] = []

    def download(task: Task, event: threading.Event, progress: Any = None) -> FetchResult:
        if task.url.endswith("long"):
            started.set()
            if event.wait(timeout=30):
                stopped.append(task.id)
            return FetchResult(ok=False, url=task.url, error={"code": "interrupted", "message": ""})
        return FetchResult(ok=True, url=task.url)

    th = threading.Thread(
        target=run_all, args=(store, download), kwargs={"options": RunOptions(lease=0.3)}
    )
    th.start()
    assert started.wait(timeout=30)
    JsonStore(store.path).cancel([1])
    th.join(timeout=60)
    assert stopped == [1]
    assert statuses(store) == {
        "https://a.example/long": "cancelled",
        "https://a.example/next": "done",
    }


def test_fatal_error_stops_the_run_and_keeps_the_task(store: JsonStore) -> None:
    add(store, "https://a.example/1", "https://a.example/2")

    def download(task: Task, event: threading.Event, progress: Any = None) -> FetchResult:
        raise errors.OutputNotWritable("cannot write to /nope")

    with pytest.raises(errors.OutputNotWritable):
        run_all(store, download)
    assert statuses(store) == {"https://a.example/1": "queued", "https://a.example/2": "queued"}


def test_leases_are_renewed_while_working(store: JsonStore) -> None:
    add(store, "https://a.example/slow")
    leases: list[float] = []
    done = threading.Event()

    def download(task: Task, event: threading.Event, progress: Any = None) -> FetchResult:
        for _ in range(50):
            (t,) = JsonStore(store.path).tasks()
            assert t.lease_until is not None
            leases.append(t.lease_until)
            if len(set(leases)) >= 3:
                break
            event.wait(0.1)
        done.set()
        return FetchResult(ok=True, url=task.url)

    run_all(store, download, options=RunOptions(lease=0.3))
    assert len(set(leases)) >= 3  # renewed (a stale lease would have been taken back)
    assert statuses(store) == {"https://a.example/slow": "done"}


def test_run_queue_yields_each_attempt_as_it_is_recorded_and_the_report_last(
    store: JsonStore,
) -> None:
    """Like fetch_many: the caller iterates, and sees a result before the run is over
    (here: while the other task's download is still waiting for it)."""
    add(store, "https://a.example/first", "https://a.example/flaky")
    first_seen = threading.Event()
    calls: list[str] = []

    def download(task: Task, stop: threading.Event, progress: Any = None) -> FetchResult:
        calls.append(task.url)
        if task.url.endswith("flaky"):
            assert first_seen.wait(timeout=30), "the first result was not yielded in time"
            if calls.count(task.url) == 1:
                return FetchResult(
                    ok=False, url=task.url, error={"code": "network", "message": "x"}
                )
        return FetchResult(ok=True, url=task.url, path="/x", bytes=1)

    events = []
    for event in run_queue(store, download, options=RunOptions(jobs=2, backoff=0.01, poll=0.01)):
        events.append(event)
        if isinstance(event, TaskResult) and event.task.url.endswith("first"):
            first_seen.set()
    results = [e for e in events if isinstance(e, TaskResult)]
    assert [(r.task.url.rsplit("/", 1)[1], r.outcome, r.final) for r in results] == [
        ("first", "done", True),
        ("flaky", "retry", False),
        ("flaky", "done", True),
    ]
    assert [r.report.retried for r in results] == [0, 1, 1]
    assert results[-1].row["attempt"] == 2 and results[-1].to_dict()["ok"]
    assert isinstance(events[-1], RunReport)
    assert (events[-1].done, events[-1].retried, events[-1].interrupted) == (2, 1, False)


def test_a_caller_that_stops_reading_stops_the_run(store: JsonStore) -> None:
    """Closing the iterator (a broken pipe) stops the workers and gives in-flight tasks
    back, as a stop does."""
    add(store, *(f"https://a.example/{i}" for i in range(4)))

    def download(task: Task, event: threading.Event, progress: Any = None) -> FetchResult:
        if task.id > 1:
            event.wait(timeout=30)
            return FetchResult(ok=False, url=task.url, error={"code": "interrupted", "message": ""})
        return FetchResult(ok=True, url=task.url)

    events = run_queue(store, download, options=RunOptions(jobs=2))
    for event in events:
        if isinstance(event, TaskResult):
            break
    events.close()  # type: ignore[attr-defined]
    assert sorted(statuses(store).values()) == ["done", "queued", "queued", "queued"]


class _Twice:
    """A store that hands one claimed task out twice in one claim (as a held-ahead task
    whose lease lapsed comes back to the runner that holds it): every call but `finish`
    is the JSON store's own."""

    def __init__(self, store: JsonStore) -> None:
        self._store = store
        self.doubled = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def finish(self, *args: Any, **kwargs: Any) -> Any:
        finished = self._store.finish(*args, **kwargs)
        if finished.claimed and not self.doubled:
            self.doubled = True
            return finished._replace(claimed=(*finished.claimed, finished.claimed[0]))
        return finished


def test_a_task_handed_out_twice_is_downloaded_once_and_the_run_goes_on(
    store: JsonStore,
) -> None:
    """A task that comes back while its first copy waits (or runs) was a KeyError that
    stopped every worker; it is one download, and every other task is done too."""
    add(store, *(f"https://a.example/{i}" for i in range(5)))
    seen: list[int] = []
    lock = threading.Lock()

    def download(task: Task, stop: threading.Event, progress: Any = None) -> FetchResult:
        with lock:
            seen.append(task.id)
        time.sleep(0.02)
        return FetchResult(ok=True, url=task.url, path=f"/d/{task.id}", bytes=1)

    twice = _Twice(store)
    report = run_all(twice, download, options=RunOptions(jobs=2))  # type: ignore[arg-type]
    assert twice.doubled
    assert sorted(seen) == [1, 2, 3, 4, 5]
    assert (report.done, report.failed) == (5, 0)
    assert set(statuses(store).values()) == {"done"}


def test_the_run_ends_as_its_last_thread_does_not_a_tick_later(store: JsonStore) -> None:
    """The caller's thread learns that the workers and the keeper left from them, not by
    looking again each `tick` (every `queue run` ended up to 0.1 s late)."""
    add(store, "https://a.example/1", "https://a.example/2")

    def download(task: Task, stop: threading.Event, progress: Any = None) -> FetchResult:
        return FetchResult(ok=True, url=task.url, path="/x", bytes=1)

    events: list[object] = []
    caller = threading.Thread(
        target=lambda: events.extend(
            run_queue(store, download, options=RunOptions(jobs=2, tick=3600.0))
        ),
        daemon=True,
    )
    caller.start()
    caller.join(timeout=60)
    assert not caller.is_alive(), "the run waited for its tick after the queue was drained"
    assert [type(e) for e in events] == [TaskResult, TaskResult, RunReport]


def test_a_tasks_options_are_read_once_for_all_tasks_that_share_them() -> None:
    """`queue run` reads and checks each distinct set of stored options once (it did so
    for every task: a third of the queue's own CPU over small files); the run's own
    `--per-host` and `--sleep` still win when stricter, and a task with a bad option
    fails alone, every time it is tried."""
    from xdl.core.queue.run import _options, fetch_download

    plain = '{"output": "/d", "per_host": 4}'
    assert _options(plain, None, 0.0) is _options(plain, None, 0.0)
    assert _options(plain, None, 0.0).per_host == 4
    assert _options(plain, 2, 0.5).per_host == 2 and _options(plain, 2, 0.5).sleep == 0.5
    assert _options(plain, 8, 0.0).per_host == 4  # the task's own is stricter
    bad = Task(7, "https://a.example/x", "running", options={"per_host": "many"})
    for _ in range(2):
        result = fetch_download(bad, threading.Event())
        assert not result.ok and result.error is not None
        assert result.error["code"] == "bad_input" and "per_host" in result.error["message"]


def test_a_ctrl_c_that_loses_a_threads_word_does_not_hang_the_run(
    store: JsonStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second Ctrl-C can land just after the caller's thread took a thread's word that
    it left (`None`) off the queue, before counting it: the word is lost. The run still
    ends, when no thread is alive and nothing is left to say (it waited forever: 4 of
    45 double-SIGINT rounds)."""
    import queue as queues

    from xdl.core.queue import run as runs

    add(store, *(f"https://a.example/{i}" for i in range(3)))
    lost: list[bool] = []

    class Interrupted(queues.SimpleQueue):  # type: ignore[type-arg]
        def get(self, *args: Any, **kwargs: Any) -> Any:
            item = super().get(*args, **kwargs)
            if item is None and not lost:
                lost.append(True)
                raise KeyboardInterrupt  # as a signal does, once the C call returned
            return item

    made = runs._Runner.__init__

    def with_interrupted_queue(self: Any, *args: Any, **kwargs: Any) -> None:
        made(self, *args, **kwargs)
        self.events = Interrupted()

    monkeypatch.setattr(runs._Runner, "__init__", with_interrupted_queue)

    def download(task: Task, stop: threading.Event, progress: Any = None) -> FetchResult:
        stop.wait(0.2)
        return FetchResult(ok=True, url=task.url, path="/x", bytes=1)

    ended = threading.Event()

    def caller() -> None:
        with pytest.raises(KeyboardInterrupt):
            for _ in run_queue(store, download, options=RunOptions(jobs=2)):
                pass
        ended.set()

    threading.Thread(target=caller, daemon=True).start()
    assert ended.wait(60), "the run waited for a word that was lost"
    assert lost == [True]
    assert not any(t.name.startswith("xdl-queue") and t.is_alive() for t in threading.enumerate())
    assert "running" not in statuses(store).values()


def test_ctrl_c_during_a_run_asks_it_to_stop_and_is_raised_once_all_is_said(
    store: JsonStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGINT and SIGTERM during a run only ask it to stop (their handler passes them to
    the caller's thread as an event): a KeyboardInterrupt raised wherever that thread was
    lost the line of a result `get` had just taken (a second Ctrl-C 1 ms after the first).
    The handler put aside is called at the end: the run still ends in KeyboardInterrupt,
    after the last result and the report, and Ctrl-C is Python's again."""
    import os
    import signal

    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers are set on the main thread only")
    from xdl.core import stopping

    monkeypatch.setattr(stopping, "_by_command", True)  # as in the `xdl` command
    add(store, *(f"https://a.example/{i}" for i in range(40)))
    before = signal.getsignal(signal.SIGINT)
    seen_during: list[object] = []

    def download(task: Task, stop: threading.Event, progress: Any = None) -> FetchResult:
        if task.id == 3:
            seen_during.append(signal.getsignal(signal.SIGINT))
            for _ in range(3):  # Ctrl-C, and again, and again
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.001)
        return FetchResult(ok=True, url=task.url, path="/x", bytes=1)

    events: list[object] = []
    with pytest.raises(KeyboardInterrupt):
        for event in run_queue(store, download, options=RunOptions(jobs=4)):
            events.append(event)
    assert seen_during and seen_during[0] is not before  # put aside during the run
    assert signal.getsignal(signal.SIGINT) is before
    assert isinstance(events[-1], RunReport) and events[-1].interrupted
    results = [e for e in events if isinstance(e, TaskResult)]
    done = [t for t in JsonStore(store.path).tasks() if t.status == "done"]
    assert len(results) == len(done) == events[-1].done
    assert "running" not in statuses(store).values()
