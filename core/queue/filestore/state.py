"""The JSON store's queue in memory, and the one reader of its records: every snapshot,
journal line and light-path line goes through `check_task`, so none is misread.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import time
from collections.abc import Mapping
from typing import Any

from ...errors import QueueCorrupt
from ..model import STATUS_ALIASES, STATUSES, Record, iso
from ..rules import ACTIVE

SCHEMA_VERSION = 1
HINT_SIZE = 64


class State:
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
            self.put(check_task(op.get("task"), self.options))
        elif kind == "del" and _positive_ints(op.get("ids")):
            for tid in op["ids"]:
                self.delete(tid)
        elif kind == "options" and type(op.get("key")) is str and type(op.get("value")) is dict:
            self.options[op["key"]] = op["value"]
        elif kind == "meta" and type(op.get("paused", False)) is bool:
            if "paused" in op:
                self.paused = op["paused"]
        else:
            raise ValueError(f"not a journal change: {show(op)}")

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


def show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def check_task(rec: Any, options: Mapping[str, Any]) -> Record:
    """`rec` if it is a task as xdl reads it, else ValueError naming the field. Every
    reader (snapshot, journal, the light paths) goes through here, so none misreads one."""
    if type(rec) is not dict:
        raise ValueError(f"a task is {show(rec)}, not an object")
    tid = rec.get("id")
    if type(tid) is not int or tid < 1:
        raise ValueError(f"a task's id is {show(tid)}, not a positive integer")
    url = rec.get("url")
    if type(url) is not str or not url:
        raise ValueError(f"task {tid}: 'url' is {show(url)}, not a URL")
    if rec.get("status") not in STATUSES:
        raise ValueError(f"task {tid}: 'status' is {show(rec.get('status'))}, not a status")
    for key, value in rec.items():
        types = _FIELD_TYPES.get(key)
        if types is not None and value is not None and type(value) not in types:
            raise ValueError(f"task {tid}: {key!r} is {show(value)}")
    if rec.get("attempts", 0) < 0 or rec.get("lost", 0) < 0:
        raise ValueError(f"task {tid}: a negative count")
    opts = rec.get("options")
    if type(opts) is str and opts not in options:
        raise ValueError(f"task {tid}: 'options' {show(opts)} is not in the options table")
    for key, value in (rec.get("worker") or {}).items():
        if key in _WORKER_TYPES and type(value) not in _WORKER_TYPES[key]:
            raise ValueError(f"task {tid}: the worker's {key!r} is {show(value)}")
    return rec


def check_header(doc: Mapping[str, Any]) -> tuple[int, bool, int, dict[str, Any]]:
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
        raise ValueError(f"'claim_hint' is {show(hint)}")
    return generation, paused, max(1, next_id), dict(options)


def check_journal_header(line: Any) -> tuple[int, int]:
    """(version, generation) from a journal's first line, or ValueError."""
    if type(line) is not dict:
        raise ValueError(f"not a journal header: {show(line)}")
    version, generation = line.get("journal", 0), line.get("generation")
    if type(version) is not int or type(generation) is not int:
        raise ValueError(f"not a journal header: {show(line)}")
    return version, generation


def _task_record(raw: Any, state: State) -> Record:
    """A task from an older or foreign snapshot, tolerantly (status aliases, numbers as
    strings, a missing id, inline options interned), then checked like any other."""
    if type(raw) is not dict:
        return check_task(raw, state.options)
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
        rec["options"] = intern(state, opts)
    return check_task(rec, state.options)


def options_key(options: Mapping[str, Any]) -> str:
    text = json.dumps(options, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def intern(state: State, options: Mapping[str, Any]) -> str:
    key = options_key(options)
    state.options.setdefault(key, dict(options))
    return key


def state_from_document(doc: Any, name: str) -> tuple[State, int]:
    """Read a snapshot of any known version; returns the state and the version read."""
    state = State()
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
        state.generation, state.paused, state.next_id, state.options = check_header(doc)
        known = {"version", "kind", "generation", "saved_at", "paused", "next_id", "claim_hint"}
        state.extra = {k: v for k, v in doc.items() if k not in known | {"options", "tasks"}}
    else:
        raise ValueError("not a JSON object")
    if version == SCHEMA_VERSION:
        # Our own format: the records are used as they are, in one pass (100,000 tasks
        # load in the time json.loads takes); anything odd takes the tolerant path below.
        try:
            tasks = {check_task(r, state.options)["id"]: r for r in raw_tasks}
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
