"""The JSON file store (SPEC §7): one `version`ed snapshot plus a journal, under a file lock.

On disk a queue is a JSON snapshot (`queue.json`, a document that `jq` can read) plus an
append-only JSON-lines journal next to it (`queue.json.journal`) that holds the changes
made since the snapshot was written. Every change happens under a file lock: it is
appended to the journal and fsync'd (a torn last line, from a crash mid-write, is ignored
and cut off by the next writer); when the journal grows past 1,000 changes plus 5% of the
queue it is compacted into a new snapshot (temporary file, fsync, rename, directory fsync)
and a fresh journal. So a crash at any moment leaves either the old or the new state, and a
change costs one small append instead of a rewrite of the whole queue.

A process keeps what it has read and, on its next locked operation, reads only the journal
lines written since; so a runner's claim costs the same at 100 tasks or 100,000.

A file that does not parse, or carries a schema version this xdl does not know, is never
overwritten: every operation raises `QueueCorrupt` (exit 3) naming the file and the way
out, `xdl queue restore`, which moves the bad file aside (keeping it) and puts a backup in
its place. Backups are taken before a change at most every 10 minutes; the last 10 are kept.

What a change does to a task is decided in `..rules`; this module finds and persists.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import heapq
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import Any

from ...errors import Fatal, QueueCorrupt, QueueLocked
from .. import rules
from ..model import (
    STATUSES,
    Added,
    Backup,
    Changed,
    Finished,
    Health,
    NewTask,
    Outcome,
    QueueWriteError,
    Record,
    Restored,
    Summary,
    Task,
    Worker,
    domain,
)
from ..store import DEFAULT_LOCK_TIMEOUT, TaskChanges
from . import fastpath
from .backups import Backups
from .files import drop_leftovers, dump, stat_key, write_all, write_atomic
from .hosts import FileBoard
from .state import (
    SCHEMA_VERSION,
    State,
    check_journal_header,
    options_key,
    state_from_document,
)


class JsonStore(TaskChanges):
    """The queue in one JSON file (plus its journal), safe across threads and processes."""

    def __init__(self, path: Path | str, lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> None:
        import filelock

        self.path = Path(path)
        self._board: FileBoard | None = None
        self.journal = self.path.with_name(self.path.name + ".journal")
        self.backup = Backups(self.path)
        self.lock_timeout = lock_timeout
        self._flock = filelock.FileLock(
            str(self.path.with_name(self.path.name + ".lock")), thread_local=False
        )
        self._mutex = threading.RLock()
        self._state: State | None = None
        self._snap_key: tuple[int, int, int] | None = None
        self._journal_ino: int | None = None
        self._journal_ok = False  # the journal belongs to the snapshot we read
        self._joff = 0
        self._jops = 0
        self._migrate_from: int | None = None
        self._unsynced: list[int] | None = None
        self._loaded = False
        self._bulk = False  # adds in a row: the snapshot is written at their end (`bulk`)
        self._deferred = False  # and one of them left it due

    def host_board(self, lease: float = 30.0) -> FileBoard:
        """What every runner of this queue file shares about sites (pauses, slots, pacing);
        a slot not renewed for `lease` seconds is free again (its runner died)."""
        if self._board is None:
            self._board = FileBoard(self.path, lease)
        return self._board

    @property
    def name(self) -> str:
        return str(self.path)

    def close(self) -> None:
        """Nothing to close: every operation opens and closes its files."""

    def _light_allowed(self) -> bool:
        """A store that has not loaded the whole queue (a one-shot command: `queue add`,
        `queue run --max-tasks 1`) may take the light paths, which read a few tasks out of
        the snapshot's bytes. Once loaded (a runner), it only reads what changed."""
        return self._state is None and not self._loaded

    def _light_base(self, count: int) -> fastpath.Base | None:
        """Where a light path for `count` tasks starts (`fastpath.Base`); None when a full
        load is needed anyway (an older or foreign file, a compaction or a backup due)."""
        if not self._light_allowed():
            return None
        try:
            data = self.path.read_bytes()
        except OSError:
            return None
        header = fastpath.header_of(data)
        if header is None:
            return None
        head_end, meta, state = header
        self._snap_key = None
        try:
            self._replay(state, from_offset=0)
        except QueueCorrupt:
            return None  # the full load says so, properly
        tasks = data.count(b"\n") - 2
        if self._jops + count > 1000 + tasks // 20 or self.backup.due(tasks > 0):
            return None
        return data, head_end, meta, state

    # -- locking and loading --

    @contextlib.contextmanager
    def _locked(self, load: bool = True) -> Iterator[State]:
        """The file lock (and this store's mutex), with the state brought up to date; with
        `load=False` the state is not read (the caller reads what it needs)."""

        with self._mutex:
            self._acquire()
            outer = self._unsynced is not None
            unsynced: list[int] = self._unsynced if self._unsynced is not None else []
            self._unsynced = unsynced
            try:
                yield self._refresh() if load else State()
            finally:
                self._flock.release()
                if not outer:
                    self._unsynced = None
        if not outer:
            # Group commit: the fsync happens after the lock is let go, so the next writer
            # (another worker of this runner) appends meanwhile and one flush serves both.
            # The journal is append-only: a later line on disk implies the earlier ones.
            self._sync(unsynced)

    def _sync(self, fds: list[int]) -> None:
        error: OSError | None = None
        for fd in fds:
            try:
                os.fsync(fd)
            except OSError as e:
                error = error or e
            finally:
                os.close(fd)
        if error is not None:
            raise QueueWriteError(f"cannot write {self.journal}: {error.strerror}")

    def _refresh(self) -> State:
        """Bring the cached state up to date: read only what changed since last time."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._state, self._snap_key, self._journal_ok = State(), None, False
            self._joff = self._jops = 0
            self._migrate_from = None
            return self._state
        key = (st.st_ino, st.st_size, st.st_mtime_ns)
        if self._state is None or key != self._snap_key:
            return self._load(key)
        state = self._state
        try:
            jst = os.stat(self.journal)
        except FileNotFoundError:
            if self._journal_ok:
                return self._load(key)
            return state
        if jst.st_ino != self._journal_ino or jst.st_size < self._joff:
            return self._load(key)
        if self._journal_ok and jst.st_size > self._joff:
            self._replay(state, from_offset=self._joff)
        return state

    def _load(self, key: tuple[int, int, int]) -> State:
        name = str(self.path)
        try:
            data = self.path.read_bytes()
        except OSError as e:
            raise QueueCorrupt(f"cannot read {name}: {e.strerror}") from None
        try:
            doc = json.loads(data)
            state, version = state_from_document(doc, name)
        except QueueCorrupt:
            raise
        except (ValueError, TypeError, KeyError, RecursionError) as e:
            raise QueueCorrupt(
                f"{name} does not parse ({_short(e)}); it was left as it is. Restore the "
                f"latest backup with `xdl queue restore` (list them: `xdl queue backups`)",
                file=name,
            ) from None
        self._state = state
        self._snap_key = key
        self._loaded = True
        self._migrate_from = version if version != SCHEMA_VERSION else None
        self._joff = self._jops = 0
        self._journal_ino = None
        self._journal_ok = False
        self._replay(state, from_offset=0)
        return state

    def _replay(self, state: State, from_offset: int) -> None:
        try:
            with open(self.journal, "rb") as f:
                self._journal_ino = os.fstat(f.fileno()).st_ino
                f.seek(from_offset)
                data = f.read()
        except FileNotFoundError:
            self._journal_ok = False
            return
        # Only a torn last line (a crash mid-append: no newline yet) is not read; every
        # complete line must be a valid change, or the journal is corrupt.
        end = data.rfind(b"\n") + 1
        offset = from_offset
        lines = data[:end].split(b"\n")[:-1] if end else []
        for number, line in enumerate(lines):
            offset += len(line) + 1
            try:
                op = json.loads(line)
                if from_offset == 0 and number == 0:
                    version, generation = check_journal_header(op)
                    if version > SCHEMA_VERSION:
                        raise QueueCorrupt(
                            f"{self.journal} was written by a newer xdl; upgrade xdl, or "
                            "restore a backup: xdl queue restore",
                            file=str(self.journal),
                        )
                    self._journal_ok = generation == state.generation
                    if not self._journal_ok:
                        break  # left over from before the last compaction: already in it
                    continue
                if not self._journal_ok:
                    break
                state.apply(op)
                self._jops += len(op["ops"]) if op["op"] == "batch" else 1
            except (ValueError, TypeError, KeyError, RecursionError, QueueCorrupt) as e:
                self._state = self._snap_key = None  # what was applied is not to be kept
                if isinstance(e, QueueCorrupt):
                    raise
                raise QueueCorrupt(
                    f"{self.journal} line {number + 1} is not a valid change ({_short(e)}); "
                    "it was left as it is. Restore the latest backup with `xdl queue restore`",
                    file=str(self.journal),
                ) from None
        if self._journal_ok:
            self._joff = offset

    # -- writing --

    def _write(self, state: State, ops: list[dict[str, Any]]) -> None:
        """Append `ops` to the journal (fsync'd), then apply them to the cached state."""
        if not ops:
            return
        self.backup.maybe_take(bool(state.tasks), lambda: dump(state.document()))
        count = sum(len(op["ops"]) if op.get("op") == "batch" else 1 for op in ops)
        big = self._compaction_due(state, count)
        if big and self._bulk:  # at the end of the adds in a row
            big, self._deferred = False, True
        if big or self._migrate_from is not None or not self.path.exists():
            # A new snapshot is due anyway: write it, with these changes, instead.
            for op in ops:
                state.apply(op)
            self._compact(state)
            return
        self._append(state, ops)
        for op in ops:
            state.apply(op)
        self._jops += count

    def _compaction_due(self, state: State, count: int = 0) -> bool:
        """The journal, with `count` more changes, is long enough for a new snapshot."""
        return self._jops + count > 1000 + (len(state.tasks) + count) // 20

    @contextlib.contextmanager
    def bulk(self) -> Iterator[None]:
        """Adds in a row (one `queue add` of a long list) go to the journal, and the
        snapshot is written once at their end when due, not once an add: 100,000 URLs,
        added 10,000 at a time, wrote a growing snapshot ten times (550,000 tasks)."""
        self._bulk, self._deferred = True, False
        try:
            yield
        finally:
            self._bulk = False
        if self._deferred:  # (a few adds, on the light path, never load the queue here)
            self._deferred = False
            with self._locked() as state:
                if self._compaction_due(state):
                    self._compact(state)

    def _append(self, state: State, ops: list[dict[str, Any]]) -> None:
        """One journal line for `ops`, fsync'd (after the lock is let go)."""
        if not self._journal_ok:
            self._new_journal(state)
        # Several changes go in one line, so a crash keeps all of them or none.
        line = ops[0] if len(ops) == 1 else {"op": "batch", "ops": ops}
        data = json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
        try:
            fd = os.open(self.journal, os.O_WRONLY | os.O_APPEND)
        except OSError as e:
            raise QueueWriteError(f"cannot write {self.journal}: {e.strerror}") from None
        try:
            if os.fstat(fd).st_size != self._joff:
                os.ftruncate(fd, self._joff)  # cut a torn line left by a crash
            write_all(fd, data)
        except OSError as e:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, self._joff)
            os.close(fd)
            raise QueueWriteError(f"cannot write {self.journal}: {e.strerror}") from None
        if self._unsynced is not None:
            self._unsynced.append(fd)  # fsync'd (then closed) when the lock is let go
        else:
            self._sync([fd])
        self._joff += len(data)

    def _compact(self, state: State) -> None:
        """A new snapshot with everything in it, then a fresh journal for it."""
        if self._migrate_from is not None and self.path.exists():
            self.backup.store(self.path.read_bytes(), f"-v{self._migrate_from}")
        state.generation += 1
        try:
            write_atomic(self.path, dump(state.document()))
            st = os.stat(self.path)
            self._new_journal(state)
        except OSError as e:
            self._snap_key = None  # what is cached was not written: read the files again
            raise QueueWriteError(f"cannot write {self.path}: {e.strerror}") from None
        self._snap_key = (st.st_ino, st.st_size, st.st_mtime_ns)
        self._migrate_from = None
        drop_leftovers(self.path)

    def _new_journal(self, state: State) -> None:
        header = json.dumps({"journal": SCHEMA_VERSION, "generation": state.generation}) + "\n"
        write_atomic(self.journal, header.encode())
        self._journal_ino = os.stat(self.journal).st_ino
        self._joff = len(header)
        self._jops = 0
        self._journal_ok = True

    # -- backups --

    def backups(self) -> list[Backup]:
        """Backups, newest first."""
        return self.backup.list()

    def _acquire(self) -> None:
        """Take the queue's file lock (its folder made first), or say who holds it."""
        import filelock

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise QueueWriteError(f"cannot create {self.path.parent}: {e.strerror}") from None
        try:
            self._flock.acquire(timeout=self.lock_timeout)
        except filelock.Timeout:
            raise QueueLocked(
                f"{self.path} is locked by another xdl process (waited "
                f"{self.lock_timeout:g}s); try again later, or raise --lock-timeout"
            ) from None

    def restore(self, backup: str | None = None) -> Restored:
        """Put a backup in place of the queue; the current file (even a corrupt one) is kept."""
        with self._mutex:
            self._acquire()
            try:
                return self._restore(backup)
            finally:
                self._flock.release()

    def _restore(self, backup: str | None) -> Restored:
        available = self.backups()
        if backup is None:
            if not available:
                raise Fatal(f"no backups of {self.path} in {self.backup.dir}")
            chosen = Path(available[0].path)
        else:
            chosen = Path(backup)
            if not chosen.exists() and (self.backup.dir / backup).exists():
                chosen = self.backup.dir / backup
            if not chosen.is_file():
                raise Fatal(f"no such backup: {backup} (see `xdl queue backups`)")
        data = chosen.read_bytes()
        try:
            state, _ = state_from_document(json.loads(data), str(chosen))
        except QueueCorrupt:
            raise
        except (ValueError, TypeError, KeyError, RecursionError) as e:
            raise Fatal(f"backup {chosen} does not parse either ({_short(e)})") from None
        kept = None
        if self.path.exists():
            # Keep what is there: as a backup when it is healthy, else beside the queue.
            try:
                self._load(stat_key(self.path))
                assert self._state is not None
                if self._state.tasks:
                    self.backup.store(dump(self._state.document()), "-before-restore")
                    kept = self.backup.list()[0].path
            except QueueCorrupt:
                stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
                for f in (self.path, self.journal):
                    if f.exists():
                        aside = f.with_name(f"{f.name}.corrupt-{stamp}")
                        os.replace(f, aside)
                        kept = kept or str(aside)
        with contextlib.suppress(FileNotFoundError):
            # the journal belongs to the old snapshot; its changes are in `kept` (if any)
            os.unlink(self.journal)
        state.generation = int(time.time())
        self._state, self._migrate_from = state, None
        self._compact(state)
        return Restored(str(self.path), str(chosen), len(state.tasks), kept)

    # -- reading --

    def health(self) -> Health:
        """Healthy, or corrupt and how to restore: for `xdl doctor`."""
        if not self.path.exists():
            return Health(True, f"no queue yet at {self.path}", 0)
        try:
            with self._locked() as state:
                n = len(state.tasks)
                running = len(state.running)
        except QueueCorrupt as e:
            return Health(False, e.message)
        except QueueLocked as e:
            return Health(True, e.message)
        return Health(True, f"{self.path}: {n} tasks ({running} running), healthy", n)

    def tasks(
        self, ids: Sequence[int] | None = None, statuses: Iterable[str] | None = None
    ) -> list[Task | int]:
        """Tasks in queue order (or the given ids, in that order; an unknown id stays an int)."""
        with self._locked() as state:
            if ids is not None:
                found: list[Task | int] = []
                for tid in ids:
                    rec = state.tasks.get(tid)
                    found.append(Task.from_record(rec, state.options) if rec else tid)
                return found
            wanted = set(statuses) if statuses else None
            recs = [r for r in state.tasks.values() if wanted is None or r.get("status") in wanted]
            options = state.options
        return [Task.from_record(r, options) for r in recs]

    def task_ids(self) -> list[tuple[int, str, str]]:
        """(id, status, url) for every task, cheaply: for shell completion."""
        with self._locked() as state:
            return [(r["id"], r.get("status", ""), r["url"]) for r in state.tasks.values()]

    def summary(self) -> Summary:
        with self._locked() as state:
            counts: Counter[str] = Counter()
            domains: Counter[str] = Counter()
            bytes_done = 0
            oldest: float | None = None
            workers: dict[tuple[Any, ...], dict[str, Any]] = {}
            now = time.time()
            for rec in state.tasks.values():
                status = rec.get("status", "queued")
                counts[status] += 1
                domains[domain(rec["url"])] += 1
                if status == "done":
                    size = (rec.get("result") or {}).get("bytes")
                    if isinstance(size, int):
                        bytes_done += size
                elif status == "queued":
                    added = rec.get("added_at")
                    if isinstance(added, (int, float)) and (oldest is None or added < oldest):
                        oldest = added
                elif status == "running":
                    w = rec.get("worker") or {}
                    if (rec.get("lease_until") or 0) >= now and not rules.worker_gone(w):
                        k = (w.get("host"), w.get("pid"), w.get("runner"))
                        entry = workers.setdefault(
                            k, {"host": w.get("host"), "pid": w.get("pid"), "tasks": 0}
                        )
                        entry["tasks"] += 1
            return Summary(
                str(self.path),
                len(state.tasks),
                {s: counts.get(s, 0) for s in (*STATUSES, *sorted(set(counts) - set(STATUSES)))},
                bytes_done,
                dict(domains.most_common(20)),
                oldest,
                list(workers.values()),
                state.paused,
            )

    def is_paused(self) -> bool:
        with self._locked() as state:
            return state.paused

    def next_wakeup(self) -> float | None:
        """Seconds until a queued task may be claimed (0: now); None when nothing is queued."""
        with self._locked() as state:
            now = time.time()
            soonest: float | None = None
            for _, tid in state.heap:
                rec = state.tasks.get(tid)
                if rec is None or rec.get("status") != "queued":
                    continue
                at = rec.get("next_attempt_at") or 0
                wait = max(0.0, at - now)
                if soonest is None or wait < soonest:
                    soonest = wait
                    if wait == 0:
                        break
            return soonest

    # -- changing --

    def add(self, items: Sequence[NewTask], *, force: bool = False) -> list[Added]:
        """Add tasks; a URL already queued, running or done is not added again unless
        `force` (nor a cancelled one); a failed one is requeued."""
        with self._locked(load=False):
            base = self._light_base(len(items)) if len(items) <= 16 else None
            if base is not None:
                # A cold process adding a few URLs: no need to parse the whole queue.
                state, lookup = fastpath.light_view(base)
                try:
                    ops, results = self._add_ops(state, lookup, items, force)
                except (ValueError, TypeError, KeyError, AttributeError):
                    pass  # an odd line: the full load below judges the file
                else:
                    if ops:
                        self._append(state, ops)
                    return results
                finally:
                    self._state = self._snap_key = None  # read it all when needed
            state = self._refresh()

            def lookup(url: str) -> Record | None:
                tid = state.by_url.get(url)
                return state.tasks.get(tid) if tid is not None else None

            ops, results = self._add_ops(state, lookup, items, force)
            self._write(state, ops)
        return results

    def _add_ops(
        self,
        state: State,
        lookup: Callable[[str], Record | None],
        items: Sequence[NewTask],
        force: bool,
    ) -> tuple[list[dict[str, Any]], list[Added]]:
        results: list[Added] = []
        ops: list[dict[str, Any]] = []
        now = round(time.time(), 3)
        next_id = state.next_id
        seen: dict[str, int] = {}
        known_options: set[str] = set(state.options)
        keys: dict[int, str] = {}  # options objects shared by many items: hashed once
        for item in items:
            if not force and item.url in seen:  # twice in this batch
                first = seen[item.url]
                results.append(Added(first, item.url, "queued", False, first))
                continue
            rec = None if force else lookup(item.url)
            if rec is not None and rules.is_duplicate(rec):
                results.append(Added(rec["id"], item.url, rec["status"], False, rec["id"]))
                continue
            key = keys.get(id(item.options)) or options_key(item.options)
            keys[id(item.options)] = key
            if key not in known_options:
                ops.append({"op": "options", "key": key, "value": dict(item.options)})
                known_options.add(key)
            if rec is not None:  # failed: requeue it, with the new options
                ops.append({"op": "put", "task": rules.requeued(rec, item, key, now)})
                seen[item.url] = rec["id"]
                results.append(Added(rec["id"], item.url, "queued", True, requeued=True))
                continue
            ops.append({"op": "put", "task": rules.new_record(next_id, item, key, now)})
            seen[item.url] = next_id
            results.append(Added(next_id, item.url, "queued", True))
            next_id += 1
        return ops, results

    def finish(
        self,
        worker: Worker,
        outcomes: Sequence[Outcome] = (),
        *,
        claim: int = 0,
        lease: float | None = None,
    ) -> Finished:
        """Record how our tasks went and, with `claim`, take back dead runners' tasks and
        claim up to that many next ones, in one locked write (a runner's hot path). An
        outcome is not recorded when its task is no longer ours (cancelled, removed, taken
        back)."""
        if claim and lease is None:
            raise ValueError("a claim needs a lease")
        with self._locked(load=False):
            if self._light_allowed() and len(outcomes) <= 1 and claim <= 1:
                try:
                    base = self._light_base(2)
                    outcome = outcomes[0] if outcomes else None
                    light = base and fastpath.light_finish(
                        base, worker, outcome, lease if claim else None
                    )
                    if base and light:
                        if light[0]:
                            self._append(base[3], light[0])
                        return light[1]
                finally:
                    self._state = self._snap_key = None
            state = self._refresh()
            now = time.time()
            ops: list[dict[str, Any]] = []
            recorded = []
            for outcome in outcomes:
                settled = self._settle(state, worker, outcome, now)
                if settled is not None:
                    ops.append(settled)
                recorded.append(settled is not None)
            chosen: list[Record] = []
            given_up: tuple[Task, ...] = ()
            if claim:
                recovered = self._recover(state, now)
                if recovered:  # (rare) written first, so that they can be claimed now
                    self._write(state, recovered)
                    given_up = tuple(
                        Task.from_record(op["task"], state.options)
                        for op in recovered
                        if op["task"]["status"] == "failed"
                    )
                skip = {outcome.task_id for outcome in outcomes}
                while not state.paused and len(chosen) < claim:
                    rec = self._pick(state, now, skip)
                    if rec is None:
                        break
                    chosen.append(rec)
            new = [rules.claimed(rec, worker, lease or 0, now) for rec in chosen]
            ops += [{"op": "put", "task": rec} for rec in new]
            try:
                self._write(state, ops)
            except BaseException:
                for rec in chosen:
                    heapq.heappush(state.heap, (-int(rec.get("priority", 0)), rec["id"]))
                raise
            claimed = tuple(Task.from_record(rec, state.options) for rec in new)
            return Finished(tuple(recorded), claimed, given_up)

    def _pick(self, state: State, now: float, skip: AbstractSet[int]) -> Record | None:
        """Pop the best claimable task off the heap (stale entries are dropped)."""
        deferred: list[tuple[int, int]] = []
        chosen: Record | None = None
        heap = state.heap
        while heap:
            entry = heapq.heappop(heap)
            rec = state.tasks.get(entry[1])
            if (
                rec is None
                or rec.get("status") != "queued"
                or -int(rec.get("priority", 0)) != entry[0]
            ):
                continue
            if (rec.get("next_attempt_at") or 0) > now or rec["id"] in skip:
                deferred.append(entry)
                continue
            chosen = rec
            break
        for entry in deferred:
            heapq.heappush(heap, entry)
        return chosen

    def _recover(self, state: State, now: float) -> list[dict[str, Any]]:
        """Take back the running tasks of dead runners (see `rules.recovered`)."""
        return [
            {"op": "put", "task": rules.recovered(state.tasks[tid], now)}
            for tid in list(state.running)
            if rules.needs_recovery(state.tasks[tid], now)
        ]

    def _owned(self, state: State, worker: Worker, task_id: int) -> Record | None:
        rec = state.tasks.get(task_id)
        return rec if rules.owned(rec, worker) else None

    def _settle(
        self, state: State, worker: Worker, outcome: Outcome, now: float
    ) -> dict[str, Any] | None:
        new = rules.settled(state.tasks.get(outcome.task_id), worker, outcome, now)
        return None if new is None else {"op": "put", "task": new}

    def renew(
        self,
        worker: Worker,
        ids: Iterable[int],
        lease: float,
        received: Mapping[int, int] | None = None,
    ) -> set[int]:
        """Extend the leases of our running tasks (and record the bytes each has
        `received` so far); returns the ids that are no longer ours (cancelled, removed
        or taken back), whose downloads should stop."""
        lost: set[int] = set()
        with self._locked() as state:
            now = time.time()
            ops = []
            for tid in ids:
                rec = self._owned(state, worker, tid)
                if rec is None:
                    lost.add(tid)
                    continue
                got = (received or {}).get(tid)
                ops.append({"op": "put", "task": rules.renewed(rec, now + lease, got)})
            self._write(state, ops)
        return lost

    def release(self, worker: Worker, ids: Iterable[int]) -> None:
        """Put our running tasks back to `queued`, the attempt not counted (graceful stop)."""
        with self._locked() as state:
            now = time.time()
            ops = []
            for tid in ids:
                rec = self._owned(state, worker, tid)
                if rec is None:
                    continue
                ops.append({"op": "put", "task": rules.released(rec, now)})
            self._write(state, ops)

    def _change(
        self,
        ids: Sequence[int],
        change: Callable[[Record, float], Record | str | None],
        action: str,
    ) -> list[Changed | int]:
        """Apply a rule to each task: a new record, None (remove it) or why it was skipped."""
        out: list[Changed | int] = []
        with self._locked() as state:
            now = time.time()
            ops: list[dict[str, Any]] = []
            for tid in ids:
                rec = state.tasks.get(tid)
                if rec is None:
                    out.append(tid)
                    continue
                new = change(rec, now)
                if isinstance(new, str):
                    out.append(Changed(tid, rec["url"], rec.get("status"), action, new))
                elif new is None:
                    ops.append({"op": "del", "ids": [tid]})
                    out.append(Changed(tid, rec["url"], "removed", action))
                else:
                    ops.append({"op": "put", "task": new})
                    out.append(Changed(tid, rec["url"], new["status"], action))
            self._write(state, ops)
        return out

    def retry(self, ids: Sequence[int] | None) -> list[Changed | int]:
        """Requeue failed or cancelled tasks (all failed ones when `ids` is None)."""
        if ids is None:
            with self._locked() as state:
                ids = [t for t, r in state.tasks.items() if r.get("status") == "failed"]
        return self._change(ids, rules.retried, "retry")

    def clear(self, statuses: Iterable[str]) -> int:
        """Delete every task with one of these statuses (never running ones)."""
        wanted = set(statuses) - {"running"}
        with self._locked() as state:
            ids = [t for t, r in state.tasks.items() if r.get("status") in wanted]
            if ids:
                self._write(state, [{"op": "del", "ids": ids}])
            return len(ids)

    def set_paused(self, paused: bool) -> bool:
        with self._locked() as state:
            if state.paused != paused:
                self._write(state, [{"op": "meta", "paused": paused}])
            return state.paused


def _short(e: BaseException) -> str:
    text = str(e) or type(e).__name__
    return text if len(text) <= 120 else text[:117] + "..."
