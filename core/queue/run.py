"""`xdl queue run`: claim tasks and download them on N worker threads.

`run_queue` yields what happens as it happens, as `fetch_many` yields results: a
`TaskResult` for each attempt recorded (done, failed, or to be retried), the run's
counts (`RunReport`) while nothing is recorded, and the final `RunReport` last. The
caller iterates; nothing calls back into it but the downloads' progress (from the worker
threads, as `fetch_many`'s).

The download itself is a callable (`download(task, stop, progress) -> FetchResult`), by
default `fetch_download`, which runs the same engine as `xdl fetch`; tests inject a fake.
While tasks run, a heartbeat renews their leases and stops the downloads of tasks that
were cancelled or taken back. When `stop` is set (SIGINT/SIGTERM), in-flight downloads
are told to stop and their tasks go back to `queued`, keeping their `.part` files.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from .. import errors
from ..fetch.result import FetchResult, failed
from ..stopping import SignalsStop
from . import rules
from .model import Outcome, Task, Worker
from .store import QueueStore

if TYPE_CHECKING:
    from ..context import Context
    from ..fetch import FetchOptions

log = logging.getLogger("xdl.queue")

#: progress(key, done_bytes, total_bytes_or_None), as the fetch engine calls it.
Progress = Callable[[str, int, "int | None"], None]
Download = Callable[[Task, threading.Event, Progress], FetchResult]
#: progress(task, key, done_bytes, total_bytes_or_None), from the worker threads.
TaskProgress = Callable[[Task, str, int, "int | None"], None]
#: The longest a finished attempt waits to be recorded with others (and its line printed).
RECORD_WITHIN = 0.05
#: Tasks are claimed ahead of the workers (-j of them) while downloads take less than this
#: on average (seconds): enough to record and claim -j at a time. Longer downloads are
#: never claimed ahead, so a host does not sit on tasks another host could start.
SHORT_TASK = 1.0
#: A task claimed ahead that no worker started within this many seconds goes back to
#: `queued` (downloads turned long: another runner may start it).
HOLD_AHEAD = 2.0


@dataclass(frozen=True)
class RunOptions:
    jobs: int = 1
    watch: bool = False
    max_tasks: int | None = None
    lease: float = 60.0
    retries: int = 3
    backoff: float = 10.0
    max_backoff: float = 3600.0
    #: A task refused by its host (rate_limited) waits for it this long at most (seconds).
    max_wait: float = 86400.0
    poll: float = 1.0
    #: While nothing is recorded, `run_queue` yields the counts this often (seconds).
    tick: float = 0.1


@dataclass(frozen=True)
class RunReport:
    done: int
    failed: int
    retried: int
    released: int
    interrupted: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "done": self.done,
            "failed": self.failed,
            "retried": self.retried,
            "released": self.released,
            "interrupted": self.interrupted,
        }


@dataclass(frozen=True)
class TaskResult:
    """One attempt of a task, recorded: `done`, `failed` (for good) or `retry` (queued
    again after its backoff); `row` is its result line, `report` the run's counts with
    this attempt counted."""

    task: Task
    row: dict[str, Any]
    outcome: Literal["done", "failed", "retry", "wait"]
    report: RunReport

    @property
    def final(self) -> bool:
        """The task's last attempt in this run (a `retry` or `wait` one is not): a result
        line."""
        return self.outcome not in ("retry", "wait")

    def to_dict(self) -> dict[str, Any]:
        return self.row


RunEvent = TaskResult | RunReport


@dataclass(frozen=True)
class _Attempt:
    """A download that ended, waiting to be recorded: its outcome and its result line."""

    task: Task
    outcome: Outcome
    row: dict[str, Any]


class _Runner:
    """N workers that only download, and one keeper that talks to the store for them all:
    it records what the workers finished and claims what they will do next, several of
    each in one write (one statement on PostgreSQL, one locked write on a JSON file), so
    no worker waits on the store between two downloads. While downloads are short it
    holds up to -j more tasks claimed ahead (`prefetch`), and writes when that many are
    used up or an attempt has waited `RECORD_WITHIN`: their leases are renewed with the
    running ones', and a stop gives them back."""

    def __init__(
        self,
        store: QueueStore,
        download: Download,
        options: RunOptions,
        stop: threading.Event,
        progress: TaskProgress | None = None,
    ) -> None:
        self.on_progress = progress
        #: What was recorded, for `run_queue` to yield from the caller's thread.
        #: Recorded attempts for the caller's thread, and `None` as each thread leaves.
        self.events: queue.SimpleQueue[TaskResult | None] = queue.SimpleQueue()
        #: task id -> file key -> the most bytes seen for it (a restarted file never
        #: makes the count go back).
        self.received: dict[int, dict[str, int]] = {}
        self.store = store
        self.download = download
        self.opts = options
        self.stop = stop
        self.worker = Worker.here()
        self.policy = rules.RetryPolicy(
            options.retries, options.backoff, options.max_backoff, options.max_wait
        )
        self.lock = threading.Lock()
        #: Workers wait for a task (each woken for one), the keeper for work to do.
        self.task_ready = threading.Condition(self.lock)
        self.keeper_wake = threading.Condition(self.lock)
        #: Claimed tasks (running or ready) -> the event that stops their download.
        self.in_flight: dict[int, threading.Event] = {}
        #: Tasks claimed for the workers, not started yet, with when (monotonic).
        self.ready: collections.deque[tuple[Task, float]] = collections.deque()
        self.started: dict[int, float] = {}  # running task -> when started (monotonic)
        self.ended: list[_Attempt] = []
        self.returned: list[int] = []  # stopped before their end: to give back
        self.workers = max(1, options.jobs)  # still working
        self.busy = 0  # of which downloading
        self.over = False  # no more tasks will be handed out: the workers leave
        self.ended_at = 0.0  # (monotonic) when the oldest attempt in `ended` ended
        self.took: float | None = None  # how long downloads take (a moving average)
        self.claimed = 0
        self.done = self.failed = self.retried = self.released = self.waited = 0
        self.errors: list[BaseException] = []
        self.told_paused = False

    # -- the workers --

    def work(self) -> None:
        try:
            while (task := self.next_task()) is not None:
                self.run(task)
        except BaseException as e:  # a Fatal error (or worse) stops every worker
            self.fail(e)
        finally:
            with self.lock:
                self.workers -= 1
                self.keeper_wake.notify()

    def next_task(self) -> Task | None:
        """A claimed task to download, once the keeper has one; None when the run ends."""
        with self.lock:
            while True:
                if self.over or self.stop.is_set():
                    return None
                if self.ready:
                    task, _ = self.ready.popleft()
                    event = self.in_flight.get(task.id)
                    if event is None or event.is_set():  # cancelled before it started
                        log.warning("task %s (%s) was cancelled or taken back", task.id, task.url)
                        self.in_flight.pop(task.id, None)
                        continue
                    self.busy += 1
                    self.started[task.id] = time.monotonic()
                    return task
                self.task_ready.wait(0.25)

    def run(self, task: Task) -> None:
        """Download one task and hand how it went to the keeper."""
        event = self.in_flight[task.id]
        started = time.monotonic()
        try:
            result = self.download(task, event, self.progress_of(task))
        except errors.Fatal:
            self.give_back(task)
            raise
        except errors.XdlError as e:
            result = failed(task.url, e, (), started)
        except Exception as e:
            log.debug("download of task %s raised", task.id, exc_info=True)
            result = failed(task.url, errors.InternalError(f"{type(e).__name__}: {e}"), (), started)
        if self.stop.is_set() and not result.ok:
            self.give_back(task)
            with self.lock:
                self.released += 1
            return
        if event.is_set() and not result.ok:
            log.warning("task %s (%s) was cancelled or taken back: stopped", task.id, task.url)
            self.done_with(task.id)
            return
        row = {**result.to_dict(), "task": task.id, "url": task.url, "attempt": task.attempts}
        outcome = rules.after_attempt(task, result, self.policy, time.time())
        if outcome.error is not None:
            row["error"] = dict(outcome.error)
        took = time.monotonic() - started
        with self.lock:
            self.took = took if self.took is None else 0.8 * self.took + 0.2 * took
        self.done_with(task.id, _Attempt(task, outcome, row))

    def give_back(self, task: Task) -> None:
        """A task stopped before its end goes back to `queued` (by the keeper, at the end:
        the run is stopping)."""
        with self.lock:
            self.returned.append(task.id)
        self.done_with(task.id)

    def fail(self, e: BaseException) -> None:
        with self.lock:
            self.errors.append(e)
            self.stop.set()
            self.task_ready.notify_all()
            self.keeper_wake.notify()

    # -- the keeper --

    def keep(self) -> None:
        """Record what the workers finished and claim what they do next, until the queue
        is drained (or, with --watch, until stopped); then the workers leave."""
        dry = False  # the last claim found nothing to take now
        not_before = 0.0  # (monotonic) no claim before: the queue had nothing
        try:
            while True:
                with self.lock:
                    while True:
                        now = time.monotonic()
                        stopping = self.stop.is_set() or self.limit_reached()
                        idle = self.workers - self.busy
                        prefetch = self.prefetch
                        want = 0
                        if not stopping and now >= not_before:
                            want = idle + prefetch - len(self.ready)
                            if self.opts.max_tasks is not None:
                                want = min(want, self.opts.max_tasks - self.claimed)
                        waiting = len(self.ready) < idle  # a worker waits for a task
                        due = bool(self.ended) and (
                            now >= self.ended_at + RECORD_WITHIN or self.busy == 0 or stopping
                        )
                        unstarted = [held for held in self.ready if now >= held[1] + HOLD_AHEAD]
                        enough = want >= max(1, prefetch) or (want > 0 and waiting)
                        if due or unstarted or enough:
                            break
                        no_more = self.limit_reached() or (dry and not self.opts.watch)
                        if self.busy == 0 and (self.stop.is_set() or (no_more and not self.ready)):
                            return
                        wait = min(
                            0.25,
                            not_before - now if not_before > now else 0.25,
                            self.ended_at + RECORD_WITHIN - now if self.ended else 0.25,
                            self.ready[0][1] + HOLD_AHEAD - now if self.ready else 0.25,
                        )
                        self.keeper_wake.wait(max(0.001, wait))
                    attempts, self.ended = self.ended, []
                    for held in unstarted:
                        self.ready.remove(held)
                        self.in_flight.pop(held[0].id, None)
                    self.claimed -= len(unstarted)
                    want = max(0, want) if not unstarted else 0
                    self.claimed += want
                if unstarted:  # held too long: downloads turned long
                    self.store.release(self.worker, [task.id for task, _ in unstarted])
                finished = self.store.finish(
                    self.worker,
                    [a.outcome for a in attempts],
                    claim=want,
                    lease=self.opts.lease,
                )
                with self.lock:
                    self.claimed -= want - len(finished.claimed)
                    now = time.monotonic()
                    fresh = []
                    for task in finished.claimed:
                        # a task we hold already (waiting, or running) that came back
                        # to us is the one download: its lease is renewed with the rest
                        if task.id not in self.in_flight:
                            self.in_flight[task.id] = threading.Event()
                            self.ready.append((task, now))
                            fresh.append(task)
                    self.claimed -= len(finished.claimed) - len(fresh)
                    self.task_ready.notify(len(fresh))
                self.given_up(finished.given_up)
                retrying = False
                for attempt, recorded in zip(attempts, finished.recorded):
                    retrying |= self.recorded(attempt, recorded)
                if want and len(finished.claimed) < want:
                    dry, not_before = self.nothing_to_claim()
                elif retrying:
                    dry, not_before = False, 0.0
        except BaseException as e:
            self.fail(e)
        finally:
            self.end()

    @property
    def prefetch(self) -> int:
        """How many tasks to hold claimed beyond the idle workers: -j while downloads are
        short (then the keeper records and claims -j at a time), else none: not while a
        download has run `SHORT_TASK` already. (Called with the lock held.)"""
        jobs = max(1, self.opts.jobs)
        short = jobs > 1 and self.took is not None and self.took < SHORT_TASK
        now = time.monotonic()
        return jobs if short and all(now - t < SHORT_TASK for t in self.started.values()) else 0

    def limit_reached(self) -> bool:
        return self.opts.max_tasks is not None and self.claimed >= self.opts.max_tasks

    def nothing_to_claim(self) -> tuple[bool, float]:
        """The queue gave fewer tasks than asked: whether it is `dry` (nothing to wait for:
        the run ends when the workers are done, unless they queue a retry), and when to
        ask again."""
        paused = self.store.is_paused()
        wait = None if paused else self.store.next_wakeup()
        if wait is None and not self.opts.watch:
            if paused:
                self.say_paused()
            return True, float("inf")
        pause = self.opts.poll if wait is None else min(self.opts.poll, wait)
        return False, time.monotonic() + pause

    def end(self) -> None:
        """The workers leave; the tasks they stopped, and those claimed for them and not
        started, go back to `queued` (in one write)."""
        with self.lock:
            self.over = True
            unstarted = [task.id for task, _ in self.ready]
            self.ready.clear()
            for tid in unstarted:
                self.in_flight.pop(tid, None)
            self.task_ready.notify_all()
            back, self.returned = self.returned + unstarted, []
        if back:
            try:
                self.store.release(self.worker, back)
            except errors.XdlError as e:
                log.warning("could not put %d tasks back in the queue: %s", len(back), e.message)

    def recorded(self, attempt: _Attempt, recorded: bool) -> bool:
        """Report one recorded attempt (True: it is to be retried)."""
        task, row, error = attempt.task, attempt.row, attempt.outcome.error
        retry_at = attempt.outcome.retry_at
        if not recorded:
            log.warning("task %s was taken back while it ran; its result is not recorded", task.id)
        elif error is None:
            with self.lock:
                self.done += 1
            self.record(task, row, "done")
        elif retry_at is not None and not attempt.outcome.spent:
            with self.lock:
                self.waited += 1
            log.warning(
                "%s: %s (waiting for the site until %s; no attempt spent)",
                task.url,
                error.get("message"),
                time.strftime("%H:%M:%S", time.localtime(retry_at)),
            )
            self.record(task, {**row, "ok": False}, "wait")
            return True
        elif retry_at is not None:
            with self.lock:
                self.retried += 1
            log.warning(
                "%s: %s: %s (attempt %d of %d; retrying in %gs)",
                task.url,
                error.get("code"),
                error.get("message"),
                task.attempts,
                self.opts.retries + 1,
                round(retry_at - time.time(), 1),
            )
            self.record(task, {**row, "ok": False}, "retry")
            return True
        else:
            with self.lock:
                self.failed += 1
            self.record(task, {**row, "ok": False}, "failed")
            log.error("%s: %s", task.url, error.get("message"))  # after: the line counts
        return False

    def given_up(self, tasks: Iterable[Task]) -> None:
        """Tasks this run took back from dead runners and failed for good: failed lines."""
        for task in tasks:
            error = dict(task.error or {})
            with self.lock:
                self.failed += 1
            row = {"ok": False, "url": task.url, "error": error}
            self.record(task, {**row, "task": task.id, "attempt": task.attempts}, "failed")
            log.error("%s: %s", task.url, error.get("message"))  # after: the line counts

    def record(
        self, task: Task, row: dict[str, Any], outcome: Literal["done", "failed", "retry", "wait"]
    ) -> None:
        self.events.put(TaskResult(task, row, outcome, self.report()))

    def report(self) -> RunReport:
        with self.lock:
            return RunReport(
                self.done, self.failed, self.retried, self.released, self.stop.is_set()
            )

    def say_paused(self) -> None:
        with self.lock:
            if not self.told_paused:
                log.warning("the queue is paused: no new task taken (xdl queue resume)")
            self.told_paused = True

    def done_with(self, task_id: int, attempt: _Attempt | None = None) -> None:
        """A worker is done with its task: handed to the keeper to record (`attempt`), or
        given back, or dropped (cancelled)."""
        with self.lock:
            self.in_flight.pop(task_id, None)
            self.received.pop(task_id, None)
            self.started.pop(task_id, None)
            if attempt is not None:
                if not self.ended:
                    self.ended_at = time.monotonic()
                self.ended.append(attempt)
            self.busy -= 1
            self.keeper_wake.notify()

    def progress_of(self, task: Task) -> Progress:
        """The progress callback of one task's download: counts its bytes, passes on."""

        def progress(key: str, done: int, total: int | None) -> None:
            with self.lock:
                files = self.received.setdefault(task.id, {})
                files[key] = max(done, files.get(key, 0))
            if self.on_progress is not None:
                self.on_progress(task, key, done, total)

        return progress

    def bytes_received(self) -> dict[int, int]:
        """Bytes received so far by each running task."""
        with self.lock:
            return {tid: sum(files.values()) for tid, files in self.received.items()}

    # -- the heartbeat --

    def heartbeat(self) -> None:
        interval = max(0.05, min(self.opts.lease / 3, 5.0))
        while not self.stop.wait(interval):
            with self.lock:
                ids = list(self.in_flight)
            if not ids:
                continue
            try:
                lost = self.store.renew(self.worker, ids, self.opts.lease, self.bytes_received())
            except errors.XdlError as e:
                log.warning("could not renew leases: %s", e.message)
                continue
            with self.lock:
                for tid in lost:
                    if tid in self.in_flight:
                        self.in_flight[tid].set()
        with self.lock:  # stopping: every in-flight download stops
            for event in self.in_flight.values():
                event.set()


def run_queue(
    store: QueueStore,
    download: Download,
    *,
    options: RunOptions | None = None,
    stop: threading.Event | None = None,
    progress: TaskProgress | None = None,
) -> Iterator[RunEvent]:
    """Run the queue until it is drained (or, with `watch`, until `stop` is set),
    yielding as `fetch_many` does, from the caller's thread:

    - a `TaskResult` for each attempt recorded: done, failed for good, or to be retried
      (its `row` is the download's result plus `task` and `attempt`);
    - the run's counts (a `RunReport`) each `options.tick` seconds while nothing is
      recorded (a `--watch` service keeps its status lines and metrics going);
    - the final `RunReport`, last.

    `progress(task, key, done, total)` gets the downloads' progress, from the worker
    threads. On KeyboardInterrupt (SIGINT, or SIGTERM as cli.main's Terminated) the run
    stops: in-flight tasks go back to `queued`, what was recorded meanwhile is still
    yielded, then the final report (`interrupted`), then the KeyboardInterrupt is raised
    again. Raises the first `Fatal` error a download raised, once every worker is out.
    """
    opts = options or RunOptions()
    stop = stop or threading.Event()
    runner = _Runner(store, download, opts, stop, progress)
    beat = threading.Thread(target=runner.heartbeat, name="xdl-queue-heartbeat", daemon=True)
    threads = [
        threading.Thread(
            target=_then_say_so,
            args=(runner, runner.work),
            name=f"xdl-queue-worker-{i}",
            daemon=True,
        )
        for i in range(max(1, opts.jobs))
    ]
    threads.append(
        threading.Thread(
            target=_then_say_so, args=(runner, runner.keep), name="xdl-queue-keeper", daemon=True
        )
    )
    return _events(runner, beat, threads)


def _then_say_so(runner: _Runner, work: Callable[[], None]) -> None:
    """Run a worker's or the keeper's loop, then tell the caller's thread that it left
    (after every event it put): the run ends as its last thread does, not a tick later."""
    try:
        work()
    finally:
        runner.events.put(None)


def _events(
    runner: _Runner, beat: threading.Thread, threads: list[threading.Thread]
) -> Iterator[RunEvent]:
    interrupt: BaseException | None = None
    stop = runner.stop
    interrupted = False
    running = len(threads)
    signals = SignalsStop(stop).take()  # Ctrl-C: the workers stop, the lines come
    beat.start()
    for t in threads:
        t.start()
    try:
        while running:
            try:
                try:
                    event = runner.events.get(timeout=runner.opts.tick)
                except queue.Empty:
                    # The threads' own word is the quick way out; this one holds when a
                    # word was lost (a Ctrl-C raised just after `get` took it).
                    if not any(t.is_alive() for t in threads) and runner.events.empty():
                        break
                    yield runner.report()
                    continue
                if event is None:  # a thread left, after all it had to say
                    running -= 1
                else:
                    yield event
            except KeyboardInterrupt as e:  # the workers stop; what they record still comes
                stop.set()
                interrupt = interrupt or e
    except GeneratorExit:  # the caller stopped reading (broken pipe, its own interrupt)
        stop.set()
        raise
    finally:
        for t in threads:
            t.join()
        interrupted = stop.is_set()
        stop.set()
        beat.join()
        signals.give_back()
    if runner.errors:
        raise runner.errors[0]
    yield RunReport(runner.done, runner.failed, runner.retried, runner.released, interrupted)
    if interrupt is not None:
        raise interrupt
    signals.raise_signalled()  # as the signal would have (exit 130, 143)


#: How long a worker waits for a paused host itself (seconds); a longer pause defers the
#: task to the pause's end (`rate_limited`, no attempt spent) and frees the worker.
WAIT_IN_RUN = 60.0


@functools.lru_cache(maxsize=256)
def _options(given: str, per_host: int | None, sleep: float) -> FetchOptions:
    """A task's options (JSON, keys sorted) as the download takes them, with `queue
    run`'s own `per_host` and `sleep` laid over (the stricter wins): read and checked once
    for all the tasks that share them, not once a task (a third of the queue's own CPU
    over small files). A task whose options fail raises each time; it is not kept."""
    from ..fetch import FetchOptions

    options = FetchOptions.from_dict(json.loads(given))
    if per_host is not None and (options.per_host is None or per_host < options.per_host):
        options = options.replace(per_host=per_host)
    if sleep > options.sleep:
        options = options.replace(sleep=sleep)
    return options


def fetch_download(
    task: Task,
    stop: threading.Event,
    progress: Progress | None = None,
    *,
    per_host: int | None = None,
    sleep: float = 0.0,
    ctx: Context | None = None,
) -> FetchResult:
    """Download one task with the same engine as `xdl fetch`: one result for the task
    (a playlist's entries are folded into one: ok when all are). `per_host` and `sleep`
    are `queue run`'s own, laid over the task's (the stricter wins). `ctx` is what the run's
    downloads share (`context.Context`: its budget is the queue's board)."""
    from ..fetch import fetch_one

    started = time.monotonic()
    given = {k: v for k, v in task.options.items() if k != "entry"}
    try:
        options = _options(json.dumps(given, sort_keys=True), per_host, sleep)
    except errors.XdlError as e:  # a hand-edited task: this task fails, the others run
        return failed(task.url, e, (), started)
    entry = task.options.get("entry")  # a feed entry's fields (`queue add`)
    fields = entry if isinstance(entry, dict) else None
    results = fetch_one(
        task.url,
        options,
        fields=fields,
        stop=stop,
        progress=progress,
        max_wait=WAIT_IN_RUN,
        ctx=ctx,
    )
    if not results:
        return failed(task.url, errors.NoFormats("nothing was downloaded"), (), started)
    if len(results) == 1:
        return results[0]
    bad = [r for r in results if not r.ok]
    return dataclasses.replace(
        bad[0] if bad else results[0],
        ok=not bad,
        url=task.url,
        bytes=sum(r.bytes or 0 for r in results),
        entries=tuple(results),
    )
