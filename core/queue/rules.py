"""The queue's rules, written once: plain functions over task records that every store
uses (a store only finds and persists records; what a change does is decided here).

A record is a dict with the fields of `Task` (`options` may be an interned key in the
JSON store); a function returns a new record and never changes the one it was given.
A worker's pid is judged (alive or gone) only where it names a process this one can see:
same host, boot and PID namespace (`pid_is_ours`); any other worker only by its lease.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import errors
from .model import BOOT_ID, PID_NS, NewTask, Outcome, Record, Task, Worker

if TYPE_CHECKING:
    from ..fetch.result import FetchResult

#: Statuses a re-added URL is not queued again from (a cron job re-adding a feed must not
#: bring back what a person cancelled); re-adding a failed URL requeues it.
ACTIVE = frozenset({"queued", "running", "done", "cancelled"})
#: A task taken back from a runner that died (`kill -9`, the OOM killer) or let its lease
#: run out is queued again without using up `--retries` (that attempt is not counted; its
#: `lost` counter is). After this many losses it fails for good (`worker_lost`), so a task
#: that crashes its runner every time still ends.
MAX_LOST = 10

HOST = socket.gethostname()
#: The fields of a worker that must all be ours for its pid to be judged here: a pid is
#: a process only in its own PID namespace, of one boot, and the hostname alone does not
#: say which (containers named alike each have their own). A worker that lacks one (a
#: record written before they were kept) is judged by its lease alone. The PostgreSQL
#: store matches the same fields in SQL.
HERE: dict[str, Any] = {"host": HOST, "boot": BOOT_ID, "pidns": PID_NS}


def pid_alive(pid: int) -> bool:
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


def pid_is_ours(worker: Mapping[str, Any] | None) -> bool:
    """True when a worker's pid names a process we can see: its host, boot and PID
    namespace are all ours (and known: without /proc no pid is judged, only leases)."""
    if not isinstance(worker, Mapping) or None in HERE.values():
        return False
    return all(worker.get(key) == value for key, value in HERE.items())


def worker_gone(worker: Mapping[str, Any] | None) -> bool:
    """True when a running task's worker is known dead: its pid is ours to judge
    (`pid_is_ours`), and it is gone. Otherwise only its lease says."""
    if not isinstance(worker, Mapping) or not pid_is_ours(worker):
        return False
    pid = worker.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool):
        return False
    return pid != os.getpid() and not pid_alive(pid)


def needs_recovery(rec: Mapping[str, Any], now: float) -> bool:
    """A running task whose worker is gone, or whose lease ran out."""
    return (rec.get("lease_until") or 0) < now or worker_gone(rec.get("worker"))


def claim_order(rec: Mapping[str, Any]) -> tuple[int, int]:
    """Highest priority first, then oldest (the lowest id)."""
    return (-int(rec.get("priority", 0)), int(rec["id"]))


def claimable(rec: Mapping[str, Any], now: float) -> bool:
    """Queued, and its backoff (if any) is over."""
    return rec.get("status") == "queued" and (rec.get("next_attempt_at") or 0) <= now


def clear_run(rec: Mapping[str, Any]) -> Record:
    """A copy of a task without its worker and lease."""
    return {k: v for k, v in rec.items() if k not in ("worker", "lease_until")}


def claimed(rec: Mapping[str, Any], worker: Worker, lease: float, now: float) -> Record:
    """The task, taken by `worker` until `now + lease`: one more attempt."""
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


def renewed(rec: Mapping[str, Any], lease_until: float, received: int | None) -> Record:
    """A running task with its lease extended and, when known, the bytes its download
    has received so far (kept in its worker, so they go when the worker does)."""
    new = {**rec, "lease_until": lease_until}
    if received is not None and isinstance(rec.get("worker"), Mapping):
        new["worker"] = {**rec["worker"], "bytes": received}
    return new


def owned(rec: Mapping[str, Any] | None, worker: Worker) -> bool:
    """The task is running, and by this runner (not cancelled, removed or taken back)."""
    if rec is None or rec.get("status") != "running":
        return False
    return (rec.get("worker") or {}).get("runner") == worker.runner


def settled(
    rec: Mapping[str, Any] | None, worker: Worker, outcome: Outcome, now: float
) -> Record | None:
    """Our task with its outcome recorded: done, queued for a retry, or failed; None when
    it is no longer ours (its outcome is then not recorded)."""
    if rec is None or not owned(rec, worker):
        return None
    new = {**clear_run(rec), "updated_at": now}
    if outcome.result:
        new["result"] = dict(outcome.result)
    if outcome.error is None:
        new.pop("error", None)
        new.update(status="done", finished_at=now)
    elif outcome.retry_at is None:
        new.update(status="failed", error=dict(outcome.error), finished_at=now)
    else:
        new.update(status="queued", error=dict(outcome.error), next_attempt_at=outcome.retry_at)
    if not outcome.spent:
        new["attempts"] = max(0, int(rec.get("attempts", 1)) - 1)
    return new


@dataclass(frozen=True)
class RetryPolicy:
    """What `queue run` does with a failed attempt: retry up to `retries` times after
    `backoff` seconds, doubled each time up to `max_backoff`; a refused one (the host
    asked to wait) waits without spending an attempt, for `max_wait` seconds at most
    (from the first refusal) before it fails `rate_limited`."""

    retries: int = 3
    backoff: float = 10.0
    max_backoff: float = 3600.0
    max_wait: float = 86400.0


#: Error codes not worth retrying: the same request will fail the same way.
FINAL_CODES = frozenset(
    {
        cls.code
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.XdlError) and cls.final
    }
    - {"interrupted", "rate_limited", "internal_error"}  # a bug may not meet the task again
)


def backoff_delay(attempts: int, base: float, cap: float) -> float:
    """Exponential backoff: base, 2*base, 4*base... after the 1st, 2nd, 3rd failure."""
    return float(min(cap, base * 2 ** max(0, attempts - 1)))


def after_attempt(task: Task, result: FetchResult, policy: RetryPolicy, now: float) -> Outcome:
    """What one finished attempt means, for both stores: done; retry at T (an attempt
    spent); wait for the host until T (`rate_limited`: no attempt spent, up to
    `policy.max_wait` from the first refusal); or failed for good."""
    found = {k: getattr(result, k) for k in RESULT_FIELDS}
    kept = {k: v for k, v in found.items() if v is not None} or None
    if result.ok:
        return Outcome(task.id, kept)
    error = dict(result.error or {"code": "error", "message": "download failed"})
    code = error.get("code")
    if code == "rate_limited":
        before = task.error or {}
        since = before.get("since") if before.get("code") == "rate_limited" else None
        since = since if isinstance(since, int | float) else now
        until = error.get("until")
        until = until if isinstance(until, int | float) and until > now else now + policy.backoff
        error["since"] = since
        if until - since > policy.max_wait:
            waited = round((now - since) / 3600, 1)
            error["message"] = f"{error.get('message')} (waited {waited} h for the site: given up)"
            return Outcome(task.id, kept, error)
        return Outcome(task.id, kept, error, retry_at=until, spent=False)
    if code in FINAL_CODES or task.attempts > policy.retries:
        return Outcome(task.id, kept, error)
    delay = backoff_delay(task.attempts, policy.backoff, policy.max_backoff)
    return Outcome(task.id, kept, error, retry_at=now + delay)


#: The result fields a task keeps (its line's path, size, checksum...).
RESULT_FIELDS = ("path", "bytes", "sha256", "strategy", "skipped", "title")


def recovered(rec: Mapping[str, Any], now: float) -> Record:
    """A dead runner's task taken back: queued again, the attempt not counted against
    --retries but as `lost`; failed (`worker_lost`) after MAX_LOST losses."""
    why = "its worker died" if worker_gone(rec.get("worker")) else "its lease expired"
    lost = int(rec.get("lost", 0)) + 1
    error = {"code": "worker_lost", "message": f"task was taken back: {why}"}
    new = {
        **clear_run(rec),
        "status": "queued",
        "attempts": max(0, int(rec.get("attempts", 1)) - 1),
        "lost": lost,
        "updated_at": now,
        "error": error,
    }
    if lost >= MAX_LOST:
        error["message"] += f" (taken back {lost} times: given up)"
        new.update(status="failed", finished_at=now)
    return new


def released(rec: Mapping[str, Any], now: float) -> Record:
    """Our task put back to `queued` by a graceful stop: the attempt is not counted."""
    return {
        **clear_run(rec),
        "status": "queued",
        "attempts": max(0, int(rec.get("attempts", 1)) - 1),
        "updated_at": now,
    }


def is_duplicate(rec: Mapping[str, Any] | None) -> bool:
    """A re-added URL whose task is this one is not added again (unless --force)."""
    return rec is not None and rec.get("status") in ACTIVE


def requeued(rec: Mapping[str, Any], item: NewTask, options: Any, now: float) -> Record:
    """A failed task added again: queued afresh, with the new options and priority."""
    new = {
        **clear_run(rec),
        "status": "queued",
        "attempts": 0,
        "priority": item.priority,
        "options": options,
        "updated_at": now,
    }
    new.pop("next_attempt_at", None)
    new.pop("lost", None)
    return new


def new_record(task_id: int, item: NewTask, options: Any, now: float) -> Record:
    """A new task. Defaults (priority 0, attempts 0, updated_at = added_at) are left
    out: at 100,000 tasks every key costs the JSON store load time."""
    new: Record = {"id": task_id, "url": item.url, "status": "queued", "options": options}
    if item.priority:
        new["priority"] = item.priority
    new["added_at"] = now
    if item.title:
        new["title"] = item.title
    return new


def retried(rec: Mapping[str, Any], now: float) -> Record | str:
    """A failed or cancelled task queued again, its attempts reset; else why not."""
    status = rec.get("status")
    if status not in ("failed", "cancelled"):
        return f"{status}: only failed or cancelled tasks are retried"
    new = {**clear_run(rec), "status": "queued", "attempts": 0, "updated_at": now}
    new.pop("next_attempt_at", None)
    new.pop("lost", None)
    return new


def cancelled(rec: Mapping[str, Any], now: float) -> Record | str:
    """A queued or running task cancelled (its runner stops the download); else why not."""
    status = rec.get("status")
    if status not in ("queued", "running"):
        return f"{status}: only queued or running tasks are cancelled"
    new = {**clear_run(rec), "status": "cancelled", "updated_at": now}
    new.pop("next_attempt_at", None)
    return new


def not_removable(rec: Mapping[str, Any]) -> str | None:
    """Why a task may not be removed (a running one is cancelled first), or None."""
    return "running: cancel it first" if rec.get("status") == "running" else None
