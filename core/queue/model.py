"""The queue's task model, as every store and the CLI see it (SPEC §7).

A task is stored as a record (a plain dict, the JSON store's line format) and shown as a
`Task`. The other classes are what the store operations return; each has a `to_dict()`
that is one JSON line of `xdl queue ...`, the same for every store.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

from ..errors import Fatal

STATUSES = ("queued", "running", "done", "failed", "cancelled")
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

Status = Literal["queued", "running", "done", "failed", "cancelled"]
Record = dict[str, Any]


class QueueWriteError(Fatal):
    code = "queue_write"


def iso(ts: float | None) -> str | None:
    """Epoch seconds as an ISO 8601 UTC timestamp (what users see)."""
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat(timespec="seconds")[:-6] + "Z"


def domain(url: str) -> str:
    """The host of a URL, cheaply (summary at 100k tasks): no port, no user, no www."""
    host = url.split("/", 3)[2] if url.count("/") >= 2 else ""
    host = host.rpartition("@")[2]
    host = host[: host.find("]") + 1] if host.startswith("[") else host.partition(":")[0]
    return host.lower().removeprefix("www.") or "?"


def _boot_id() -> str | None:
    """This boot of this machine's kernel (Linux); None where there is no such file."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            return f.read().strip() or None
    except (OSError, ValueError):
        return None


def _pid_namespace() -> int | None:
    """The PID namespace this process's pids belong to (Linux); None elsewhere."""
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return None


#: Where this process's pids mean something: a pid names a process only within one PID
#: namespace (a container has its own) of one boot of one kernel.
BOOT_ID = _boot_id()
PID_NS = _pid_namespace()


@dataclass(frozen=True)
class Worker:
    """Who runs a task: a host, a pid, a token unique to one runner (its run id), and
    where that pid means something: the boot and the PID namespace (by default this
    process's). Two runners whose hosts share a name (containers named alike) differ
    by their PID namespace, and their runner tokens, even when their pids collide."""

    host: str
    pid: int
    runner: str
    boot: str | None = BOOT_ID
    pidns: int | None = PID_NS

    @classmethod
    def here(cls) -> Worker:
        return cls(socket.gethostname(), os.getpid(), os.urandom(6).hex(), BOOT_ID, PID_NS)

    def to_dict(self) -> dict[str, Any]:
        row: dict[str, Any] = {"host": self.host, "pid": self.pid, "runner": self.runner}
        if self.boot is not None:
            row["boot"] = self.boot
        if self.pidns is not None:
            row["pidns"] = self.pidns
        return row


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
        """A task from a record; `options` resolves an interned options key (JSON store)."""
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
        received = (self.worker or {}).get("bytes") if self.status == "running" else None
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
            "bytes": result.get("bytes") if received is None else received,
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
    `retry_at` (None: failed for good). `spent` False: the attempt does not count against
    --retries (the task waited for its host, which refused it: `rate_limited`)."""

    task_id: int
    result: Mapping[str, Any] | None = None
    error: Mapping[str, Any] | None = None
    retry_at: float | None = None
    spent: bool = True


class Finished(NamedTuple):
    """What `finish` did: for each outcome given, in order, whether it was recorded (not
    when the task is no longer ours); the tasks claimed next (up to the number asked); and
    the tasks it took back from dead runners that failed for good (`worker_lost`): the
    caller reports those."""

    recorded: tuple[bool, ...]
    claimed: tuple[Task, ...] = ()
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
    #: Sites that refused requests, and until when (Unix time) every runner waits for them.
    paused_hosts: Mapping[str, float] = field(default_factory=dict)

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
            "paused_hosts": {host: iso(until) for host, until in self.paused_hosts.items()},
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
