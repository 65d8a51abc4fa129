"""`--connections N`: one file over several ranged GETs, written at offsets into one `.part`.

The file is split into ranges, one per connection; a connection that finishes early takes
the second half of the largest range still left (as aria2 does), so a slow connection
never holds the end up. Every request carries `If-Range` with the file's validator: an
answer that is not the asked-for 206 means the file changed or ranges are not served, and
the download starts again on one connection. The ranges and how far each got are kept in
`NAME.part.meta`, so an interrupted download resumes every range where it stopped. The
checksum is taken of the finished `.part` before it is renamed.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ... import errors
from ...stopping import back_off
from . import files

if TYPE_CHECKING:
    from ..job import Job
    from ..target import Target

log = logging.getLogger("xdl.fetch")

#: A file is split into ranges of at least this (the cost of one more request).
MIN_RANGE = 1 << 20
#: A free connection takes half of the largest range left while that is at least this.
MIN_STEAL = 256 << 10
#: How often the ranges' progress is saved for a resume.
SAVE_EVERY = 1.0


class RangesRefused(Exception):
    """The server answered a ranged request with something else: use one connection."""


@dataclass
class Range:
    start: int
    end: int  # exclusive; lowered when another connection takes the rest
    done: int = 0  # bytes written from `start`
    claimed: int = 0  # bytes written or being written: another connection keeps off them
    taken: bool = False

    def __post_init__(self) -> None:
        self.claimed = max(self.claimed, self.done)

    @property
    def pos(self) -> int:
        return self.start + self.done

    @property
    def left(self) -> int:
        """Bytes nobody is writing yet."""
        return self.end - self.start - self.claimed


class Plan:
    """The ranges of one file, shared by its connections."""

    def __init__(self, ranges: list[Range]) -> None:
        self.ranges = ranges
        self.lock = threading.Lock()

    @classmethod
    def split(cls, total: int, n: int) -> Plan:
        size = max(MIN_RANGE, -(-total // n))
        return cls([Range(a, min(total, a + size)) for a in range(0, total, size)])

    @classmethod
    def from_meta(cls, saved: Any, total: int) -> Plan | None:
        """The saved ranges, when they still cover the file exactly."""
        try:
            ranges = [Range(int(a), int(b), int(d)) for a, b, d in saved]
        except (TypeError, ValueError):
            return None
        ranges.sort(key=lambda r: r.start)
        covered = 0
        for r in ranges:
            if r.start != covered or not 0 <= r.done <= r.end - r.start:
                return None
            covered = r.end
        return cls(ranges) if covered == total and ranges else None

    def take(self) -> Range | None:
        """A range for a free connection: one nobody has, else half of the largest."""
        with self.lock:
            for r in self.ranges:
                if not r.taken and r.left > 0:
                    r.taken = True
                    return r
            busy = max((r for r in self.ranges if r.taken), key=lambda r: r.left, default=None)
            if busy is None or busy.left < 2 * MIN_STEAL:
                return None
            cut = busy.start + busy.claimed + busy.left // 2
            stolen = Range(cut, busy.end, taken=True)
            busy.end = cut
            self.ranges.append(stolen)
            self.ranges.sort(key=lambda r: r.start)
            return stolen

    def claim(self, r: Range, n: int) -> int:
        """Reserve up to `n` bytes of `r` for writing (fewer when it was cut short)."""
        with self.lock:
            n = max(0, min(n, r.left))
            r.claimed += n
            return n

    def advance(self, r: Range, n: int) -> None:
        """`n` claimed bytes of `r` are written."""
        with self.lock:
            r.done += n

    def unclaim(self, r: Range) -> None:
        """Forget claims that were not written (the connection broke): fetch them again."""
        with self.lock:
            r.claimed = r.done

    def room(self, r: Range) -> int:
        with self.lock:
            return r.left

    def release(self, r: Range) -> None:
        with self.lock:
            r.taken = False

    def done(self) -> int:
        with self.lock:
            return sum(r.done for r in self.ranges)

    def contiguous(self) -> int:
        """How many bytes from the start are written without a gap."""
        with self.lock:
            covered = 0
            for r in self.ranges:
                covered = r.pos
                if r.pos < r.end:
                    break
            return covered

    def to_meta(self) -> list[list[int]]:
        with self.lock:
            return [[r.start, r.end, r.done] for r in self.ranges]


def contiguous(saved: Any) -> int:
    """How many bytes from the start a `.part` written at offsets holds without a gap."""
    try:
        total = max(int(b) for _, b, _ in saved)
    except (TypeError, ValueError):
        return 0
    plan = Plan.from_meta(saved, total)
    return plan.contiguous() if plan is not None else 0


class Follower:
    """Hashes the file as its start fills in, on its own thread (hashlib and pread let
    go of the GIL), so little is left to hash when the last range arrives."""

    def __init__(self, target: Target, plan: Plan) -> None:
        self.target, self.plan = target, plan
        self.hash = hashlib.sha256()
        self.hashed = 0
        self.finished = threading.Event()
        self.thread = threading.Thread(target=self._follow, name="xdl-hash", daemon=True)
        self.thread.start()

    def _follow(self) -> None:
        while not self.finished.wait(0.05):
            upto = self.plan.contiguous()
            if upto > self.hashed:
                self.target.hash_from_disk(self.hash, self.hashed, upto)
                self.hashed = upto

    def digest_of(self, total: int) -> Any:
        """The hash of all `total` bytes (the rest taken now)."""
        self.finished.set()
        self.thread.join()
        self.target.hash_from_disk(self.hash, self.hashed, total)
        self.hashed = total
        return self.hash

    def stop(self) -> None:
        self.finished.set()
        self.thread.join()


def download(
    job: Job, target: Target, total: int, validator: str, n: int, meta: dict[str, Any]
) -> tuple[int, str, int | None]:
    """Fetch `total` bytes over `n` connections into `target`, then commit it.
    Returns (size, sha256, resumed_from). Raises RangesRefused to go back to one."""
    _, saved = target.saved()
    plan: Plan | None = None
    if saved.get("total") == total and validator in (saved.get("etag"), saved.get("last_modified")):
        plan = Plan.from_meta(saved.get("ranges"), total)
    resumed = plan.done() if plan is not None else 0
    if plan is None:
        plan = Plan.split(total, n)
    meta = {**meta, "total": total}
    target.preallocate(total, {**meta, "ranges": plan.to_meta()})
    first = job.found.take_response()  # the probe's GET already reads from 0
    if first is not None and resumed:
        first.close()
        first = None
    if first is not None and first.status_code != 200:
        first.close()
        first = None
    failures: list[BaseException] = []
    stop = threading.Event()
    ended = threading.Semaphore(0)

    def connection(response: Any) -> None:
        try:
            while not stop.is_set() and (r := plan.take()) is not None:
                try:
                    _fetch(job, target, plan, r, validator, response, stop)
                finally:
                    plan.release(r)
                response = None
        except BaseException as e:  # handed to the main thread
            failures.append(e)
            stop.set()
        finally:
            ended.release()

    threads = [
        threading.Thread(target=connection, args=(first if i == 0 else None,), daemon=True)
        for i in range(min(n, max(1, total // MIN_RANGE)))
    ]
    for t in threads:
        t.start()
    follower = Follower(target, plan)
    try:
        running = len(threads)
        while running:
            if ended.acquire(timeout=SAVE_EVERY):
                running -= 1
            if job.stop.is_set():
                stop.set()
            target.write_meta({**meta, "ranges": plan.to_meta()})
            if target.progress:
                target.progress(target.name, plan.done(), total)
    finally:
        stop.set()
        for t in threads:
            t.join()
        follower.stop()
        if first is not None:
            first.close()
        target.write_meta({**meta, "ranges": plan.to_meta()})
    if failures:
        refused = next((e for e in failures if isinstance(e, RangesRefused)), None)
        raise refused or failures[0]
    if job.stop.is_set():
        raise errors.Interrupted("interrupted; the .part file is kept for resuming")
    if plan.done() != total:
        raise errors.NetworkError(f"got {plan.done()} of {total} bytes", bytes=plan.done())
    target.adopt_hash(follower.digest_of(total), total)
    size, digest = target.commit(job.o.sha256, job.o.min_size, overwrite=job.o.overwrite)
    return size, digest, resumed or None


def _fetch(
    job: Job,
    target: Target,
    plan: Plan,
    r: Range,
    validator: str,
    response: Any,
    stop: threading.Event,
) -> None:
    """Fill range `r` over one connection, retrying a dropped one from where it stopped."""
    from ... import http

    chunk = files.chunk_size(job)
    for attempt in range(job.o.retries + 1):
        try:
            if response is None or r.pos != 0:
                if response is not None:
                    response.close()
                headers = {"Range": f"bytes={r.pos}-{r.end - 1}", "If-Range": validator}
                response = job.get(headers)
                if response.status_code != 206 or _start_of(response) != r.pos:
                    response.close()
                    raise RangesRefused(f"HTTP {response.status_code} to a ranged request")
            with response, _unclaimed_on_error(plan, r):
                for data in http.chunks(response, chunk, lambda: plan.room(r), stop):
                    n = 0 if stop.is_set() else plan.claim(r, len(data))
                    if n <= 0:
                        break
                    target.write_at(data if n == len(data) else memoryview(data)[:n], r.pos)
                    plan.advance(r, n)
                    if job.limiter is not None:
                        job.limiter.consume(n, job.stop)
            response = None
            if plan.room(r) <= 0 or stop.is_set():
                return
            raise errors.NetworkError("the connection ended early")
        except (errors.NetworkError, errors.Timeout, errors.HttpError) as e:
            response = None
            status = e.details.get("status")
            retryable = status is None or status >= 500 or status in (408, 429)
            if attempt >= job.o.retries or not retryable or stop.is_set():
                raise
            log.debug("%s: range at %d: %s; retrying", job.url, r.pos, e.message)
            back_off(stop, attempt)


@contextmanager
def _unclaimed_on_error(plan: Plan, r: Range) -> Iterator[None]:
    try:
        yield
    except BaseException:
        plan.unclaim(r)
        raise


def _start_of(response: Any) -> int | None:
    value = response.headers.get("Content-Range", "")
    try:
        return int(value.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None
