"""The download queue (SPEC §7): the task model and a file-locked JSON store.

On disk a queue is a JSON snapshot (`queue.json`, a `version`ed document that `jq` can
read) plus an append-only JSON-lines journal next to it (`queue.json.journal`) that holds
the changes made since the snapshot was written. Every change happens under a file lock:
it is appended to the journal and fsync'd (a torn last line, from a crash mid-write, is
ignored and cut off by the next writer); when the journal grows past 1,000 changes plus 5% of the
queue it is compacted into a new snapshot (temporary file, fsync, rename, directory fsync)
and a fresh journal. So a crash at any moment leaves either the old or the new state, and a
change costs one small append instead of a rewrite of the whole queue.

A process keeps what it has read and, on its next locked operation, reads only the journal
lines written since; so a runner's claim costs the same at 100 tasks or 100,000.

A file that does not parse, or carries a schema version this xdl does not know, is never
overwritten: every operation raises `QueueCorrupt` (exit 3) naming the file and the way
out, `xdl queue restore`, which moves the bad file aside (keeping it) and puts a backup in
its place. Backups are taken before a change at most every 10 minutes; the last 10 are kept.

`QueueStore` is the interface the CLI and the runner use; `JsonStore` implements it on one
host's file system (a server-backed store can implement the same methods).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import heapq
import json
import os
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple, Protocol

from .errors import Fatal, QueueCorrupt, QueueLocked

SCHEMA_VERSION = 1
STATUSES = ("queued", "running", "done", "failed", "cancelled")
#: Statuses a re-added URL is not queued again from (a cron job re-adding a feed must not
#: bring back what a person cancelled); re-adding a failed URL requeues it.
ACTIVE = frozenset({"queued", "running", "done", "cancelled"})
#: Status names other tools (and older queue files) use, read as ours.
STATUS_ALIASES = {
    "pending": "queued",
    "waiting": "queued",
    "paused": "queued",
    "downloading": "running",
    "active": "running",
    "in_progress": "running",
    "completed": "done",
    "complete": "done",
    "finished": "done",
    "success": "done",
    "error": "failed",
    "errored": "failed",
    "canceled": "cancelled",
}
#: A task taken back from a runner that died (`kill -9`, the OOM killer) or let its lease
#: run out is queued again without using up `--retries` (that attempt is not counted; its
#: `lost` counter is). After this many losses it fails for good (`worker_lost`), so a task
#: that crashes its runner every time still ends.
MAX_LOST = 10
BACKUP_EVERY = 600.0
HINT_SIZE = 64
BACKUPS_KEPT = 10
DEFAULT_LOCK_TIMEOUT = 30.0

Status = Literal["queued", "running", "done", "failed", "cancelled"]
Record = dict[str, Any]


class QueueWriteError(Fatal):
    code = "queue_write"


# --- the task model -------------------------------------------------------------------


def iso(ts: float | None) -> str | None:
    """Epoch seconds as an ISO 8601 UTC timestamp (what users see)."""
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat(timespec="seconds")[:-6] + "Z"


@dataclass(frozen=True)
class Worker:
    """Who runs a task: a host, a pid and a token unique to one runner."""

    host: str
    pid: int
    runner: str

    @classmethod
    def here(cls) -> Worker:
        return cls(socket.gethostname(), os.getpid(), os.urandom(6).hex())

    def to_dict(self) -> dict[str, Any]:
        return {"host": self.host, "pid": self.pid, "runner": self.runner}


@dataclass(frozen=True)
class Task:
    """One queued download, as users see it."""

    id: int
    url: str
    status: str
    priority: int = 0
    options: Mapping[str, Any] = field(default_factory=dict)
    attempts: int = 0
    lost: int = 0
    error: Mapping[str, Any] | None = None
    result: Mapping[str, Any] | None = None
    title: str | None = None
    added_at: float | None = None
    updated_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    next_attempt_at: float | None = None
    worker: Mapping[str, Any] | None = None
    lease_until: float | None = None

    @classmethod
    def from_record(cls, rec: Mapping[str, Any], options: Mapping[str, Any]) -> Task:
        opts = rec.get("options")
        if isinstance(opts, str):
            opts = options.get(opts, {})
        return cls(
            id=rec["id"],
            url=rec["url"],
            status=rec.get("status", "queued"),
            priority=rec.get("priority", 0),
            options=opts if isinstance(opts, Mapping) else {},
            attempts=rec.get("attempts", 0),
            lost=rec.get("lost", 0),
            error=rec.get("error"),
            result=rec.get("result"),
            title=rec.get("title"),
            added_at=rec.get("added_at"),
            updated_at=rec.get("updated_at", rec.get("added_at")),
            started_at=rec.get("started_at"),
            finished_at=rec.get("finished_at"),
            next_attempt_at=rec.get("next_attempt_at"),
            worker=rec.get("worker"),
            lease_until=rec.get("lease_until"),
        )

    def to_dict(self) -> dict[str, Any]:
        result = self.result or {}
        return {
            "ok": True,
            "id": self.id,
            "url": self.url,
            "status": self.status,
            "priority": self.priority,
            "attempts": self.attempts,
            "lost": self.lost,
            "title": self.title,
            "path": result.get("path"),
            "bytes": result.get("bytes"),
            "sha256": result.get("sha256"),
            "strategy": result.get("strategy"),
            "last_error": dict(self.error) if self.error else None,
            "added_at": iso(self.added_at),
            "updated_at": iso(self.updated_at),
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "next_attempt_at": iso(self.next_attempt_at),
            "worker": dict(self.worker) if self.worker else None,
            "lease_until": iso(self.lease_until),
            "options": dict(self.options),
        }


@dataclass(frozen=True)
class NewTask:
    url: str
    options: Mapping[str, Any] = field(default_factory=dict)
    priority: int = 0
    title: str | None = None


@dataclass(frozen=True)
class Outcome:
    """How one attempt at a task went: done (no `error`), or failed, to be retried at
    `retry_at` (None: failed for good)."""

    task_id: int
    result: Mapping[str, Any] | None = None
    error: Mapping[str, Any] | None = None
    retry_at: float | None = None


class Finished(NamedTuple):
    """What `finish` did: whether our outcome was recorded (not when the task is no longer
    ours), the task claimed next, and the tasks it took back from dead runners that failed
    for good (`worker_lost`): the caller reports those."""

    recorded: bool
    claimed: Task | None
    given_up: tuple[Task, ...] = ()


@dataclass(frozen=True)
class Added:
    """What `add` did with one URL: added a task, requeued one, or found it already there."""

    id: int
    url: str
    status: str
    added: bool
    existing: int | None = None
    requeued: bool = False

    def to_dict(self) -> dict[str, Any]:
        row: dict[str, Any] = {
            "ok": True,
            "id": self.id,
            "url": self.url,
            "status": self.status,
            "added": self.added,
        }
        if self.existing is not None:
            row["existing"] = self.existing
        if self.requeued:
            row["requeued"] = True
        return row


@dataclass(frozen=True)
class Changed:
    """What a retry/cancel/remove did to one task (or why it did nothing)."""

    id: int
    url: str | None
    status: str | None
    action: str
    skipped: str | None = None

    def to_dict(self) -> dict[str, Any]:
        row: dict[str, Any] = {
            "ok": True,
            "id": self.id,
            "url": self.url,
            "status": self.status,
            "action": self.action,
        }
        if self.skipped:
            row["skipped"] = self.skipped
        return row


@dataclass(frozen=True)
class Summary:
    queue: str
    total: int
    counts: Mapping[str, int]
    bytes_done: int
    domains: Mapping[str, int]
    oldest_queued: float | None
    workers: Sequence[Mapping[str, Any]]
    paused: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": True,
            "queue": self.queue,
            "total": self.total,
            **{s: self.counts.get(s, 0) for s in STATUSES},
            "counts": dict(self.counts),
            "bytes_done": self.bytes_done,
            "domains": dict(self.domains),
            "oldest_queued": iso(self.oldest_queued),
            "active_workers": len(self.workers),
            "workers": [dict(w) for w in self.workers],
            "paused": self.paused,
        }


@dataclass(frozen=True)
class Backup:
    path: str
    created_at: float
    bytes: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": True,
            "backup": Path(self.path).name,
            "path": self.path,
            "created_at": iso(self.created_at),
            "bytes": self.bytes,
        }


@dataclass(frozen=True)
class Restored:
    queue: str
    backup: str
    tasks: int
    kept: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": True,
            "queue": self.queue,
            "restored": self.backup,
            "tasks": self.tasks,
            "kept": self.kept,
        }


@dataclass(frozen=True)
class Health:
    ok: bool
    message: str
    tasks: int | None = None


class QueueStore(Protocol):
    """What the CLI and the runner need from a queue; `JsonStore` is the file-backed one."""

    def add(self, items: Sequence[NewTask], *, force: bool = False) -> list[Added]: ...
    def tasks(
        self, ids: Sequence[int] | None = None, statuses: Iterable[str] | None = None
    ) -> list[Task | int]: ...
    def summary(self) -> Summary: ...
    def claim(self, worker: Worker, lease: float) -> Task | None: ...
    def renew(self, worker: Worker, ids: Iterable[int], lease: float) -> set[int]: ...
    def complete(self, worker: Worker, task_id: int, result: Mapping[str, Any]) -> bool: ...
    def fail(
        self,
        worker: Worker,
        task_id: int,
        error: Mapping[str, Any],
        retry_at: float | None,
        result: Mapping[str, Any] | None = None,
    ) -> bool: ...
    def finish(
        self, worker: Worker, outcome: Outcome | None, *, lease: float | None = None
    ) -> Finished: ...
    def release(self, worker: Worker, ids: Iterable[int]) -> None: ...
    def next_wakeup(self) -> float | None: ...
    def retry(self, ids: Sequence[int] | None) -> list[Changed | int]: ...
    def cancel(self, ids: Sequence[int]) -> list[Changed | int]: ...
    def remove(self, ids: Sequence[int]) -> list[Changed | int]: ...
    def clear(self, statuses: Iterable[str]) -> int: ...
    def set_paused(self, paused: bool) -> bool: ...
    def is_paused(self) -> bool: ...


# --- the in-memory state ----------------------------------------------------------------


class _State:
    """Tasks by id, with the indexes the hot paths need (URL -> id, running ids, a claim
    heap), each built in bulk the first time it is used: loading stays one pass."""

    def __init__(self) -> None:
        self.generation = 0
        self.paused = False
        self.next_id = 1
        self.options: dict[str, Any] = {}
        self.tasks: dict[int, Record] = {}
        self.extra: dict[str, Any] = {}
        self.deleted: set[int] = set()
        self._by_url: dict[str, int] | None = None
        self._running: set[int] | None = None
        self._heap: list[tuple[int, int]] | None = None

    @property
    def by_url(self) -> dict[str, int]:
        """URL -> the task a re-add should see: an active one, else the newest."""
        if self._by_url is None:
            recs = self.tasks.values()
            index = {r["url"]: r["id"] for r in recs}
            if len(index) != len(self.tasks):  # the same URL more than once (--force)
                index = {}
                for r in recs:
                    self._index_url(index, r)
            self._by_url = index
        return self._by_url

    def _index_url(self, index: dict[str, int], rec: Record) -> None:
        tid, url = rec["id"], rec["url"]
        current = index.get(url)
        if (
            current is None
            or current == tid
            or self.tasks[current].get("status") not in ACTIVE
            or (rec.get("status") in ACTIVE and current < tid)
        ):
            index[url] = tid

    @property
    def running(self) -> set[int]:
        if self._running is None:
            self._running = {t for t, r in self.tasks.items() if r.get("status") == "running"}
        return self._running

    @property
    def heap(self) -> list[tuple[int, int]]:
        """(-priority, id) of queued tasks; entries are checked when popped (lazy deletion)."""
        if self._heap is None:
            self._heap = [
                (-int(r.get("priority", 0)), t)
                for t, r in self.tasks.items()
                if r.get("status") == "queued"
            ]
            heapq.heapify(self._heap)
        return self._heap

    def put(self, rec: Record) -> None:
        tid = rec["id"]
        old = self.tasks.get(tid)
        index = self._by_url
        if index is not None and old is not None and index.get(old["url"]) == tid:
            del index[old["url"]]  # (put back just below when the URL is the same)
        self.tasks[tid] = rec
        if tid >= self.next_id:
            self.next_id = tid + 1
        if index is not None:
            self._index_url(index, rec)
        status = rec.get("status")
        if self._running is not None:
            if status == "running":
                self._running.add(tid)
            else:
                self._running.discard(tid)
        if status == "queued" and self._heap is not None:
            heapq.heappush(self._heap, (-int(rec.get("priority", 0)), tid))

    def delete(self, tid: int) -> None:
        self.deleted.add(tid)
        rec = self.tasks.pop(tid, None)
        if rec is None:
            return
        if self._running is not None:
            self._running.discard(tid)
        if self._by_url is not None and self._by_url.get(rec["url"]) == tid:
            del self._by_url[rec["url"]]

    def apply(self, op: Any) -> None:
        """One journal change; ValueError (nothing misread) when it is not a valid one."""
        kind = op.get("op") if type(op) is dict else None
        if kind == "batch" and type(op.get("ops")) is list:
            for each in op["ops"]:
                self.apply(each)
        elif kind == "put":
            self.put(_check_task(op.get("task"), self.options))
        elif kind == "del" and _positive_ints(op.get("ids")):
            for tid in op["ids"]:
                self.delete(tid)
        elif kind == "options" and type(op.get("key")) is str and type(op.get("value")) is dict:
            self.options[op["key"]] = op["value"]
        elif kind == "meta" and type(op.get("paused", False)) is bool:
            if "paused" in op:
                self.paused = op["paused"]
        else:
            raise ValueError(f"not a journal change: {_show(op)}")

    def document(self) -> dict[str, Any]:
        used = {r["options"] for r in self.tasks.values() if isinstance(r.get("options"), str)}
        return {
            **self.extra,
            "version": SCHEMA_VERSION,
            "kind": "xdl-queue",
            "generation": self.generation,
            "saved_at": iso(time.time()),
            "paused": self.paused,
            "next_id": self.next_id,
            "options": {k: v for k, v in self.options.items() if k in used},
            "claim_hint": self.claim_hint(),
            "tasks": list(self.tasks.values()),
        }

    def claim_hint(self) -> dict[str, Any]:
        """For a cold runner's claim: the first queued tasks in claim order and every
        running one, as of this snapshot (so a claim need not parse every task)."""
        queued = [
            (-int(r.get("priority", 0)), t)
            for t, r in self.tasks.items()
            if r.get("status") == "queued"
        ]
        first = heapq.nsmallest(HINT_SIZE, queued)
        return {
            "queued": [t for _, t in first],
            "more": len(queued) > len(first),
            "running": sorted(self.running),
        }


def _positive_ints(ids: Any) -> bool:
    return type(ids) is list and all(type(t) is int and t > 0 for t in ids)


# The types of a task's fields (when present and not null); `bool` is never a number.
_NUMBER = (int, float)
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "priority": (int,),
    "attempts": (int,),
    "lost": (int,),
    "options": (str, dict),
    "error": (dict,),
    "result": (dict,),
    "worker": (dict,),
    "title": (str,),
    "added_at": _NUMBER,
    "updated_at": _NUMBER,
    "started_at": _NUMBER,
    "finished_at": _NUMBER,
    "next_attempt_at": _NUMBER,
    "lease_until": _NUMBER,
}
_WORKER_TYPES: dict[str, tuple[type, ...]] = {"host": (str,), "pid": (int,), "runner": (str,)}


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_task(rec: Any, options: Mapping[str, Any]) -> Record:
    """`rec` if it is a task as xdl reads it, else ValueError naming the field. Every
    reader (snapshot, journal, the light paths) goes through here, so none misreads one."""
    if type(rec) is not dict:
        raise ValueError(f"a task is {_show(rec)}, not an object")
    tid = rec.get("id")
    if type(tid) is not int or tid < 1:
        raise ValueError(f"a task's id is {_show(tid)}, not a positive integer")
    url = rec.get("url")
    if type(url) is not str or not url:
        raise ValueError(f"task {tid}: 'url' is {_show(url)}, not a URL")
    if rec.get("status") not in STATUSES:
        raise ValueError(f"task {tid}: 'status' is {_show(rec.get('status'))}, not a status")
    for key, value in rec.items():
        types = _FIELD_TYPES.get(key)
        if types is not None and value is not None and type(value) not in types:
            raise ValueError(f"task {tid}: {key!r} is {_show(value)}")
    if rec.get("attempts", 0) < 0 or rec.get("lost", 0) < 0:
        raise ValueError(f"task {tid}: a negative count")
    opts = rec.get("options")
    if type(opts) is str and opts not in options:
        raise ValueError(f"task {tid}: 'options' {_show(opts)} is not in the options table")
    for key, value in (rec.get("worker") or {}).items():
        if key in _WORKER_TYPES and type(value) not in _WORKER_TYPES[key]:
            raise ValueError(f"task {tid}: the worker's {key!r} is {_show(value)}")
    return rec


def _check_header(doc: Mapping[str, Any]) -> tuple[int, bool, int, dict[str, Any]]:
    """(generation, paused, next_id, options) from a snapshot's header, or ValueError."""
    generation, paused = doc.get("generation", 0), doc.get("paused", False)
    next_id, options = doc.get("next_id", 1), doc.get("options", {})
    if type(generation) is not int or type(paused) is not bool or type(next_id) is not int:
        raise ValueError("'generation', 'paused' or 'next_id' has the wrong type")
    if type(options) is not dict or any(type(v) is not dict for v in options.values()):
        raise ValueError("'options' is not a table of option objects")
    hint = doc.get("claim_hint")
    if hint is not None and not (
        type(hint) is dict
        and type(hint.get("more", False)) is bool
        and all(
            type(ids) is list and all(type(t) is int for t in ids)
            for ids in (hint.get("queued", []), hint.get("running", []))
        )
    ):
        raise ValueError(f"'claim_hint' is {_show(hint)}")
    return generation, paused, max(1, next_id), dict(options)


def _check_journal_header(line: Any) -> tuple[int, int]:
    """(version, generation) from a journal's first line, or ValueError."""
    if type(line) is not dict:
        raise ValueError(f"not a journal header: {_show(line)}")
    version, generation = line.get("journal", 0), line.get("generation")
    if type(version) is not int or type(generation) is not int:
        raise ValueError(f"not a journal header: {_show(line)}")
    return version, generation


def _task_record(raw: Any, state: _State) -> Record:
    """A task from an older or foreign snapshot, tolerantly (status aliases, numbers as
    strings, a missing id, inline options interned), then checked like any other."""
    if type(raw) is not dict:
        return _check_task(raw, state.options)
    rec = dict(raw)
    tid = rec.get("id")
    if isinstance(tid, str) and tid.isdigit():
        rec["id"] = int(tid)
    elif tid is None:
        rec["id"] = state.next_id
    status = rec.get("status") or "queued"
    if isinstance(status, str):
        rec["status"] = STATUS_ALIASES.get(status.lower(), status.lower())
    priority = rec.get("priority")
    if isinstance(priority, str) and priority.strip().lstrip("-").isdigit():
        rec["priority"] = int(priority)
    opts = rec.get("options")
    if type(opts) is dict:
        rec["options"] = _intern(state, opts)
    return _check_task(rec, state.options)


def _options_key(options: Mapping[str, Any]) -> str:
    text = json.dumps(options, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def _intern(state: _State, options: Mapping[str, Any]) -> str:
    key = _options_key(options)
    state.options.setdefault(key, dict(options))
    return key


def _state_from_document(doc: Any, name: str) -> tuple[_State, int]:
    """Read a snapshot of any known version; returns the state and the version read."""
    state = _State()
    if isinstance(doc, list):
        version, raw_tasks, doc = 0, doc, {}
    elif isinstance(doc, dict):
        version = doc.get("version", 0)
        if not isinstance(version, int) or isinstance(version, bool) or version < 0:
            raise QueueCorrupt(
                f"{name}: 'version' is {version!r}, not a schema version; "
                "fix it, or restore a backup: xdl queue restore"
            )
        if version > SCHEMA_VERSION:
            raise QueueCorrupt(
                f"{name} was written by a newer xdl (queue schema version {version}; this "
                f"xdl reads up to {SCHEMA_VERSION}); upgrade xdl, or restore a backup: "
                "xdl queue restore",
                file=name,
            )
        raw_tasks = doc.get("tasks", [])
        if isinstance(raw_tasks, dict):
            raw_tasks = [{"id": k, **v} if isinstance(v, dict) else v for k, v in raw_tasks.items()]
        if not isinstance(raw_tasks, list):
            raise ValueError("'tasks' is not a list")
        state.generation, state.paused, state.next_id, state.options = _check_header(doc)
        known = {"version", "kind", "generation", "saved_at", "paused", "next_id", "claim_hint"}
        state.extra = {k: v for k, v in doc.items() if k not in known | {"options", "tasks"}}
    else:
        raise ValueError("not a JSON object")
    if version == SCHEMA_VERSION:
        # Our own format: the records are used as they are, in one pass (100,000 tasks
        # load in the time json.loads takes); anything odd takes the tolerant path below.
        try:
            tasks = {_check_task(r, state.options)["id"]: r for r in raw_tasks}
        except ValueError:
            tasks = {}
        if tasks and len(tasks) == len(raw_tasks):
            state.tasks = tasks
            state.next_id = max(state.next_id, max(tasks) + 1)
            return state, version
    for raw in raw_tasks:
        rec = _task_record(raw, state)
        if rec["id"] in state.tasks:
            rec["id"] = state.next_id
        state.put(rec)
    return state, version


# --- files ------------------------------------------------------------------------------


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that a reader sees the old file or the new one, never half."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)


def _dump(doc: Mapping[str, Any]) -> bytes:
    """The snapshot: valid JSON with one task a line, so `grep` and `jq` both work."""
    head = {k: v for k, v in doc.items() if k != "tasks"}
    text = json.dumps(head, ensure_ascii=False, separators=(",", ":"))[:-1]
    tasks = ",\n".join(
        json.dumps(t, ensure_ascii=False, separators=(",", ":")) for t in doc["tasks"]
    )
    return f'{text},"tasks":[\n{tasks}\n]}}\n'.encode()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    try:  # a zombie (killed, not yet reaped) is gone too
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[-1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


HOST = socket.gethostname()


def worker_gone(worker: Mapping[str, Any] | None) -> bool:
    """True when a running task's worker is known dead: same host, and its pid is gone."""
    if not isinstance(worker, Mapping) or worker.get("host") != HOST:
        return False
    pid = worker.get("pid")
    if not isinstance(pid, int):
        return False
    return pid != os.getpid() and not _pid_alive(pid)


class JsonStore:
    """The queue in one JSON file (plus its journal), safe across threads and processes."""

    def __init__(self, path: Path | str, lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> None:
        import filelock

        self.path = Path(path)
        self.journal = self.path.with_name(self.path.name + ".journal")
        self.backup_dir = self.path.with_name(self.path.name + ".backups")
        self.lock_timeout = lock_timeout
        self._flock = filelock.FileLock(
            str(self.path.with_name(self.path.name + ".lock")), thread_local=False
        )
        self._mutex = threading.RLock()
        self._state: _State | None = None
        self._snap_key: tuple[int, int, int] | None = None
        self._journal_ino: int | None = None
        self._journal_ok = False  # the journal belongs to the snapshot we read
        self._joff = 0
        self._jops = 0
        self._migrate_from: int | None = None
        self._next_backup_check = 0.0
        self._unsynced: list[int] | None = None
        self._loaded = False

    def _light_allowed(self) -> bool:
        """A store that has not loaded the whole queue (a one-shot command: `queue add`,
        `queue run --max-tasks 1`) may take the light paths, which read a few tasks out of
        the snapshot's bytes. Once loaded (a runner), it only reads what changed."""
        return self._state is None and not self._loaded

    # -- locking and loading --

    @contextlib.contextmanager
    def _locked(self, load: bool = True) -> Iterator[_State]:
        """The file lock (and this store's mutex), with the state brought up to date; with
        `load=False` the state is not read (the caller reads what it needs)."""
        import filelock

        with self._mutex:
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
            outer = self._unsynced is not None
            unsynced: list[int] = self._unsynced if self._unsynced is not None else []
            self._unsynced = unsynced
            try:
                yield self._refresh() if load else _State()
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

    def _refresh(self) -> _State:
        """Bring the cached state up to date: read only what changed since last time."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._state, self._snap_key, self._journal_ok = _State(), None, False
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

    def _load(self, key: tuple[int, int, int]) -> _State:
        name = str(self.path)
        try:
            data = self.path.read_bytes()
        except OSError as e:
            raise QueueCorrupt(f"cannot read {name}: {e.strerror}") from None
        try:
            doc = json.loads(data)
            state, version = _state_from_document(doc, name)
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

    def _replay(self, state: _State, from_offset: int) -> None:
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
                    version, generation = _check_journal_header(op)
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

    def _write(self, state: _State, ops: list[dict[str, Any]]) -> None:
        """Append `ops` to the journal (fsync'd), then apply them to the cached state."""
        if not ops:
            return
        self._maybe_backup(state)
        count = sum(len(op["ops"]) if op.get("op") == "batch" else 1 for op in ops)
        big = self._jops + count > 1000 + (len(state.tasks) + count) // 20
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

    def _append(self, state: _State, ops: list[dict[str, Any]]) -> None:
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
            _write_all(fd, data)
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

    def _compact(self, state: _State) -> None:
        """A new snapshot with everything in it, then a fresh journal for it."""
        if self._migrate_from is not None and self.path.exists():
            self._copy_backup(self.path, f"-v{self._migrate_from}")
        state.generation += 1
        try:
            write_atomic(self.path, _dump(state.document()))
            st = os.stat(self.path)
            self._new_journal(state)
        except OSError as e:
            self._snap_key = None  # what is cached was not written: read the files again
            raise QueueWriteError(f"cannot write {self.path}: {e.strerror}") from None
        self._snap_key = (st.st_ino, st.st_size, st.st_mtime_ns)
        self._migrate_from = None

    def _new_journal(self, state: _State) -> None:
        header = json.dumps({"journal": SCHEMA_VERSION, "generation": state.generation}) + "\n"
        write_atomic(self.journal, header.encode())
        self._journal_ino = os.stat(self.journal).st_ino
        self._joff = len(header)
        self._jops = 0
        self._journal_ok = True

    # -- backups --

    def _maybe_backup(self, state: _State) -> None:
        now = time.time()
        if now < self._next_backup_check or not state.tasks:
            return
        newest = max((b.created_at for b in self.backups()), default=0.0)
        if now - newest >= BACKUP_EVERY:
            data = _dump(state.document())
            self._store_backup(data, "")
            newest = now
        self._next_backup_check = newest + BACKUP_EVERY

    def _backup_name(self, suffix: str) -> Path:
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
        return self.backup_dir / f"{self.path.stem}-{stamp}{suffix}.json"

    def _store_backup(self, data: bytes, suffix: str) -> None:
        try:
            self.backup_dir.mkdir(parents=True, exist_ok=True)
            write_atomic(self._backup_name(suffix), data)
        except OSError as e:
            raise QueueWriteError(f"cannot write a backup in {self.backup_dir}: {e}") from None
        for old in self.backups()[BACKUPS_KEPT:]:
            with contextlib.suppress(OSError):
                os.unlink(old.path)

    def _copy_backup(self, source: Path, suffix: str) -> None:
        self._store_backup(source.read_bytes(), suffix)

    def backups(self) -> list[Backup]:
        """Backups, newest first."""
        found = []
        try:
            entries = list(os.scandir(self.backup_dir))
        except FileNotFoundError:
            return []
        for entry in entries:
            if entry.name.endswith(".json") and not entry.name.startswith("."):
                st = entry.stat()
                found.append(Backup(entry.path, st.st_mtime, st.st_size))
        return sorted(found, key=lambda b: (b.created_at, b.path), reverse=True)

    def restore(self, backup: str | None = None) -> Restored:
        """Put a backup in place of the queue; the current file (even a corrupt one) is kept."""
        with self._mutex:
            import filelock

            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                self._flock.acquire(timeout=self.lock_timeout)
            except filelock.Timeout:
                raise QueueLocked(
                    f"{self.path} is locked by another xdl process (waited "
                    f"{self.lock_timeout:g}s); try again later, or raise --lock-timeout"
                ) from None
            try:
                return self._restore(backup)
            finally:
                self._flock.release()

    def _restore(self, backup: str | None) -> Restored:
        available = self.backups()
        if backup is None:
            if not available:
                raise Fatal(f"no backups of {self.path} in {self.backup_dir}")
            chosen = Path(available[0].path)
        else:
            chosen = Path(backup)
            if not chosen.exists() and (self.backup_dir / backup).exists():
                chosen = self.backup_dir / backup
            if not chosen.is_file():
                raise Fatal(f"no such backup: {backup} (see `xdl queue backups`)")
        data = chosen.read_bytes()
        try:
            state, _ = _state_from_document(json.loads(data), str(chosen))
        except QueueCorrupt:
            raise
        except (ValueError, TypeError, KeyError, RecursionError) as e:
            raise Fatal(f"backup {chosen} does not parse either ({_short(e)})") from None
        kept = None
        if self.path.exists():
            # Keep what is there: as a backup when it is healthy, else beside the queue.
            try:
                self._load(_stat_key(self.path))
                assert self._state is not None
                if self._state.tasks:
                    self._store_backup(_dump(self._state.document()), "-before-restore")
                    kept = self.backups()[0].path
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
                domains[_domain(rec["url"])] += 1
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
                    if (rec.get("lease_until") or 0) >= now and not worker_gone(w):
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
            view = self._light_view(len(items)) if self._light_allowed() else None
            if view is not None:
                # A cold process adding a few URLs: no need to parse the whole queue.
                state, lookup = view
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
        state: _State,
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
            if rec is not None and rec.get("status") in ACTIVE:
                results.append(Added(rec["id"], item.url, rec["status"], False, rec["id"]))
                continue
            key = keys.get(id(item.options)) or _options_key(item.options)
            keys[id(item.options)] = key
            if key not in known_options:
                ops.append({"op": "options", "key": key, "value": dict(item.options)})
                known_options.add(key)
            if rec is not None:  # failed: requeue it, with the new options
                new = {
                    **_clear_run(rec),
                    "status": "queued",
                    "attempts": 0,
                    "priority": item.priority,
                    "options": key,
                    "updated_at": now,
                }
                new.pop("next_attempt_at", None)
                new.pop("lost", None)
                ops.append({"op": "put", "task": new})
                seen[item.url] = rec["id"]
                results.append(Added(rec["id"], item.url, "queued", True, requeued=True))
                continue
            # Defaults (priority 0, attempts 0, updated_at = added_at) are left out:
            # at 100,000 tasks every key costs load time.
            new = {"id": next_id, "url": item.url, "status": "queued", "options": key}
            if item.priority:
                new["priority"] = item.priority
            new["added_at"] = now
            if item.title:
                new["title"] = item.title
            ops.append({"op": "put", "task": new})
            seen[item.url] = next_id
            results.append(Added(next_id, item.url, "queued", True))
            next_id += 1
        return ops, results

    def _light_view(self, count: int) -> tuple[_State, Callable[[str], Record | None]] | None:
        """For a few adds in a cold process: the snapshot's first line (the queue's header)
        and the journal, with URLs looked up by searching the snapshot's bytes (one task a
        line, as `_dump` writes it) instead of parsing them all. None when the full load is
        needed anyway (an older or foreign file, a compaction or a backup due...)."""
        if count > 16:
            return None
        base = self._light_base(count)
        if base is None:
            return None
        data, head_end, _, state = base
        journal_urls: dict[str, list[Record]] = {}
        for rec in state.tasks.values():
            journal_urls.setdefault(rec["url"], []).append(rec)
        masked = state.tasks.keys() | state.deleted

        def lookup(url: str) -> Record | None:
            found = list(journal_urls.get(url, ()))
            needle = b'"url":' + json.dumps(url, ensure_ascii=False).encode()
            pos = data.find(needle, head_end)
            while pos >= 0:
                after = data[pos + len(needle) : pos + len(needle) + 1]
                if after in (b",", b"}"):
                    start = data.rfind(b"\n", 0, pos) + 1
                    line = data[start : data.find(b"\n", pos)].rstrip(b",")
                    rec = _check_task(json.loads(line), state.options)
                    if rec["url"] == url and rec["id"] not in masked:
                        found.append(rec)
                pos = data.find(needle, pos + 1)
            if not found:
                return None
            active = [r for r in found if r.get("status") in ACTIVE]
            return max(active or found, key=lambda r: int(r["id"]))

        return state, lookup

    def _light_base(self, count: int) -> tuple[bytes, int, dict[str, Any], _State] | None:
        """The snapshot's bytes, its header, and the journal replayed onto an empty state;
        None when a full load is needed anyway."""
        try:
            data = self.path.read_bytes()
        except OSError:
            return None
        head_end = data.find(b"\n")
        head = data[:head_end]
        if head_end < 0 or not head.endswith(b',"tasks":['):
            return None
        try:
            meta = json.loads(head[: -len(',"tasks":[')] + b"}")
        except ValueError:
            return None
        if (
            not isinstance(meta, dict)
            or meta.get("version") != SCHEMA_VERSION
            or meta.get("kind") != "xdl-queue"
        ):
            return None
        state = _State()
        try:
            state.generation, state.paused, state.next_id, state.options = _check_header(meta)
        except ValueError:
            return None  # the full load says so, properly
        self._snap_key = None
        try:
            self._replay(state, from_offset=0)
        except QueueCorrupt:
            return None  # the full load says so, properly
        tasks = data.count(b"\n") - 2
        if self._jops + count > 1000 + tasks // 20 or self._backup_due(tasks > 0):
            return None
        return data, head_end, meta, state

    def _light_finish(
        self, worker: Worker, outcome: Outcome | None, lease: float | None
    ) -> Finished | None:
        """`finish` in a cold process: our task and the claim candidates (the snapshot's
        claim hint, and what the journal changed) are read by id from the snapshot's bytes.
        None when the full load must decide (a task to take back, the hint used up...)."""
        base = self._light_base(2)
        if base is None:
            return None
        data, head_end, meta, state = base
        hint = meta.get("claim_hint")
        if not isinstance(hint, dict):
            return None
        masked = state.tasks.keys() | state.deleted

        def record(tid: Any) -> Record:
            if tid in state.tasks:
                return state.tasks[tid]
            pos = data.find(b'\n{"id":%d,' % tid, head_end - 1)
            if not isinstance(tid, int) or tid in state.deleted or pos < 0:
                raise LookupError(tid)
            line = data[pos + 1 : data.find(b"\n", pos + 1)].rstrip(b",")
            rec = _check_task(json.loads(line), state.options)
            if rec["id"] != tid:
                raise LookupError(tid)
            return rec

        now = time.time()
        ops: list[dict[str, Any]] = []
        recorded = False
        new: Record = {}
        try:
            if outcome is not None:
                rec = record(outcome.task_id) if outcome.task_id not in state.deleted else None
                settled = self._settle_record(rec, worker, outcome, now)
                if settled is not None:
                    ops.append(settled)
                    recorded = True
            if lease is not None:
                running = [record(t) for t in hint["running"] if t not in masked]
                running += [r for r in state.tasks.values() if r.get("status") == "running"]
                if any(_needs_recovery(r, now) for r in running):
                    return None
                if not state.paused:
                    ready = [
                        r
                        for r in (record(t) for t in hint["queued"] if t not in masked)
                        if (r.get("next_attempt_at") or 0) <= now
                    ]
                    if not ready and hint.get("more"):
                        return None  # the hint is used up: only a full load knows what is next
                    ready += [
                        r
                        for r in state.tasks.values()
                        if r.get("status") == "queued" and (r.get("next_attempt_at") or 0) <= now
                    ]
                    if ready:
                        chosen = min(ready, key=lambda r: (-int(r.get("priority", 0)), r["id"]))
                        new = _claimed(chosen, worker, lease, now)
                        ops.append({"op": "put", "task": new})
        except (LookupError, ValueError, TypeError, KeyError):
            return None
        if ops:
            self._append(state, ops)
        return Finished(recorded, Task.from_record(new, state.options) if new else None)

    def _backup_due(self, has_tasks: bool) -> bool:
        now = time.time()
        if now < self._next_backup_check or not has_tasks:
            return False
        newest = max((b.created_at for b in self.backups()), default=0.0)
        return now - newest >= BACKUP_EVERY

    def claim(self, worker: Worker, lease: float) -> Task | None:
        """Take the next task (highest priority, then oldest) whose time has come, or None.
        Tasks of dead workers, or with an expired lease, go back to `queued` first."""
        return self.finish(worker, None, lease=lease).claimed

    def finish(
        self, worker: Worker, outcome: Outcome | None, *, lease: float | None = None
    ) -> Finished:
        """Record how our task went and, when `lease` is given, claim the next one, in one
        locked write (a runner's hot path). Not recorded when the task is no longer ours
        (cancelled, removed, taken back)."""
        with self._locked(load=False):
            if self._light_allowed():
                try:
                    light = self._light_finish(worker, outcome, lease)
                finally:
                    self._state = self._snap_key = None
                if light is not None:
                    return light
            state = self._refresh()
            now = time.time()
            ops: list[dict[str, Any]] = []
            recorded = False
            if outcome is not None:
                settled = self._settle(state, worker, outcome, now)
                if settled is not None:
                    ops.append(settled)
                    recorded = True
            chosen: Record | None = None
            new: Record = {}
            given_up: tuple[Task, ...] = ()
            if lease is not None:
                recovered = self._recover(state, now)
                if recovered:  # (rare) written first, so that they can be claimed now
                    self._write(state, recovered)
                    given_up = tuple(
                        Task.from_record(op["task"], state.options)
                        for op in recovered
                        if op["task"]["status"] == "failed"
                    )
                if not state.paused:
                    chosen = self._pick(state, now, skip=outcome.task_id if outcome else None)
            if chosen is not None:
                new = _claimed(chosen, worker, lease or 0, now)
                ops.append({"op": "put", "task": new})
            try:
                self._write(state, ops)
            except BaseException:
                if chosen is not None:
                    heapq.heappush(state.heap, (-int(chosen.get("priority", 0)), chosen["id"]))
                raise
            claimed = Task.from_record(new, state.options) if chosen else None
            return Finished(recorded, claimed, given_up)

    def _pick(self, state: _State, now: float, skip: int | None) -> Record | None:
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
            if (rec.get("next_attempt_at") or 0) > now or rec["id"] == skip:
                deferred.append(entry)
                continue
            chosen = rec
            break
        for entry in deferred:
            heapq.heappush(heap, entry)
        return chosen

    def _recover(self, state: _State, now: float) -> list[Record]:
        """Take back the running tasks of dead runners: queued again, the attempt not
        counted against --retries but as `lost`; failed after MAX_LOST losses."""
        ops = []
        for tid in list(state.running):
            rec = state.tasks[tid]
            if not _needs_recovery(rec, now):
                continue
            gone = worker_gone(rec.get("worker"))
            why = "its worker died" if gone else "its lease expired"
            lost = rec.get("lost", 0) + 1
            error = {"code": "worker_lost", "message": f"task was taken back: {why}"}
            new = {
                **_clear_run(rec),
                "status": "queued",
                "attempts": max(0, rec.get("attempts", 1) - 1),
                "lost": lost,
                "updated_at": now,
                "error": error,
            }
            if lost >= MAX_LOST:
                error["message"] += f" (taken back {lost} times: given up)"
                new.update(status="failed", finished_at=now)
            ops.append({"op": "put", "task": new})
        return ops

    def _owned(self, state: _State, worker: Worker, task_id: int) -> Record | None:
        rec = state.tasks.get(task_id)
        if rec is None or rec.get("status") != "running":
            return None
        w = rec.get("worker") or {}
        return rec if w.get("runner") == worker.runner else None

    def _settle(
        self, state: _State, worker: Worker, outcome: Outcome, now: float
    ) -> dict[str, Any] | None:
        return self._settle_record(state.tasks.get(outcome.task_id), worker, outcome, now)

    def _settle_record(
        self, rec: Record | None, worker: Worker, outcome: Outcome, now: float
    ) -> dict[str, Any] | None:
        if rec is None or rec.get("status") != "running":
            return None
        if (rec.get("worker") or {}).get("runner") != worker.runner:
            return None
        new = {**_clear_run(rec), "updated_at": now}
        if outcome.result:
            new["result"] = dict(outcome.result)
        if outcome.error is None:
            new.pop("error", None)
            new.update(status="done", finished_at=now)
        elif outcome.retry_at is None:
            new.update(status="failed", error=dict(outcome.error), finished_at=now)
        else:
            new.update(status="queued", error=dict(outcome.error), next_attempt_at=outcome.retry_at)
        return {"op": "put", "task": new}

    def renew(self, worker: Worker, ids: Iterable[int], lease: float) -> set[int]:
        """Extend the leases of our running tasks; returns the ids that are no longer ours
        (cancelled, removed or taken back), whose downloads should stop."""
        lost: set[int] = set()
        with self._locked() as state:
            now = time.time()
            ops = []
            for tid in ids:
                rec = self._owned(state, worker, tid)
                if rec is None:
                    lost.add(tid)
                    continue
                ops.append({"op": "put", "task": {**rec, "lease_until": now + lease}})
            self._write(state, ops)
        return lost

    def complete(self, worker: Worker, task_id: int, result: Mapping[str, Any]) -> bool:
        """Mark our task done with its result; False when it is no longer ours."""
        return self.finish(worker, Outcome(task_id, result))[0]

    def fail(
        self,
        worker: Worker,
        task_id: int,
        error: Mapping[str, Any],
        retry_at: float | None,
        result: Mapping[str, Any] | None = None,
    ) -> bool:
        """Record a failed attempt: queued again at `retry_at`, or `failed` when None."""
        return self.finish(worker, Outcome(task_id, result, error, retry_at))[0]

    def release(self, worker: Worker, ids: Iterable[int]) -> None:
        """Put our running tasks back to `queued`, the attempt not counted (graceful stop)."""
        with self._locked() as state:
            now = time.time()
            ops = []
            for tid in ids:
                rec = self._owned(state, worker, tid)
                if rec is None:
                    continue
                new = {
                    **_clear_run(rec),
                    "status": "queued",
                    "attempts": max(0, int(rec.get("attempts", 1)) - 1),
                    "updated_at": now,
                }
                ops.append({"op": "put", "task": new})
            self._write(state, ops)

    def _change(
        self, ids: Sequence[int], change: Any, action: str, pick: Iterable[int] | None = None
    ) -> list[Changed | int]:
        out: list[Changed | int] = []
        with self._locked() as state:
            now = time.time()
            ops: list[dict[str, Any]] = []
            for tid in ids if pick is None else list(pick):
                rec = state.tasks.get(tid)
                if rec is None:
                    out.append(tid)
                    continue
                outcome = change(rec, now)
                if isinstance(outcome, str):
                    out.append(Changed(tid, rec["url"], rec.get("status"), action, outcome))
                    continue
                ops.append(outcome)
                status = outcome["task"]["status"] if outcome["op"] == "put" else "removed"
                out.append(Changed(tid, rec["url"], status, action))
            self._write(state, ops)
        return out

    def retry(self, ids: Sequence[int] | None) -> list[Changed | int]:
        """Requeue failed or cancelled tasks (all failed ones when `ids` is None)."""

        def change(rec: Record, now: float) -> dict[str, Any] | str:
            status = rec.get("status")
            if status not in ("failed", "cancelled"):
                return f"{status}: only failed or cancelled tasks are retried"
            new = {**_clear_run(rec), "status": "queued", "attempts": 0, "updated_at": now}
            new.pop("next_attempt_at", None)
            new.pop("lost", None)
            return {"op": "put", "task": new}

        if ids is None:
            with self._locked() as state:
                failed = [t for t, r in state.tasks.items() if r.get("status") == "failed"]
            return self._change([], change, "retry", pick=failed)
        return self._change(ids, change, "retry")

    def cancel(self, ids: Sequence[int]) -> list[Changed | int]:
        """Cancel queued or running tasks (a runner stops a cancelled download)."""

        def change(rec: Record, now: float) -> dict[str, Any] | str:
            status = rec.get("status")
            if status not in ("queued", "running"):
                return f"{status}: only queued or running tasks are cancelled"
            new = {**_clear_run(rec), "status": "cancelled", "updated_at": now}
            new.pop("next_attempt_at", None)
            return {"op": "put", "task": new}

        return self._change(ids, change, "cancel")

    def remove(self, ids: Sequence[int]) -> list[Changed | int]:
        """Delete tasks that are not running (cancel a running one first)."""

        def change(rec: Record, now: float) -> dict[str, Any] | str:
            if rec.get("status") == "running":
                return "running: cancel it first"
            return {"op": "del", "ids": [rec["id"]]}

        return self._change(ids, change, "remove")

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


def _needs_recovery(rec: Mapping[str, Any], now: float) -> bool:
    """A running task whose worker is gone, or whose lease ran out."""
    return (rec.get("lease_until") or 0) < now or worker_gone(rec.get("worker"))


def _claimed(rec: Mapping[str, Any], worker: Worker, lease: float, now: float) -> Record:
    new = {
        **rec,
        "status": "running",
        "attempts": int(rec.get("attempts", 0)) + 1,
        "worker": worker.to_dict(),
        "lease_until": now + lease,
        "started_at": now,
        "updated_at": now,
    }
    new.pop("next_attempt_at", None)
    return new


def _clear_run(rec: Mapping[str, Any]) -> Record:
    """A copy of a task without its worker and lease."""
    return {k: v for k, v in rec.items() if k not in ("worker", "lease_until")}


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _stat_key(path: Path) -> tuple[int, int, int]:
    st = os.stat(path)
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _domain(url: str) -> str:
    """The host of a URL, cheaply (summary at 100k tasks): no port, no user, no www."""
    host = url.split("/", 3)[2] if url.count("/") >= 2 else ""
    host = host.rpartition("@")[2]
    host = host[: host.find("]") + 1] if host.startswith("[") else host.partition(":")[0]
    return host.lower().removeprefix("www.") or "?"


def _short(e: BaseException) -> str:
    text = str(e) or type(e).__name__
    return text if len(text) <= 120 else text[:117] + "..."


def open_store(path: Path | str | None = None, lock_timeout: float | None = None) -> JsonStore:
    """The queue at `path` (default: `XDL_QUEUE`, else queue.json in the data dir)."""
    from . import paths

    return JsonStore(
        Path(path) if path else paths.queue_file(),
        DEFAULT_LOCK_TIMEOUT if lock_timeout is None else lock_timeout,
    )


__all__ = [
    "ACTIVE",
    "STATUSES",
    "Added",
    "Backup",
    "Changed",
    "Finished",
    "Health",
    "JsonStore",
    "NewTask",
    "Outcome",
    "QueueStore",
    "Summary",
    "Task",
    "Worker",
    "open_store",
]
