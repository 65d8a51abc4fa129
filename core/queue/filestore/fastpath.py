"""The fast path for a cold process on a very large queue (a one-shot `queue add`, a
`queue run --max-tasks 1`): a few tasks are read out of the snapshot's bytes (one task a
line, as `files.dump` writes it) instead of parsing them all. Pure: the store reads
the bytes and replays the journal (`JsonStore._light_base`), these decide, the store
writes. None when only the full load can decide; the store then does that.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from .. import rules
from ..model import Finished, Outcome, Record, Task, Worker
from .state import SCHEMA_VERSION, State, check_header, check_task

#: What a light path starts from (`JsonStore._light_base`): the snapshot's bytes, where
#: its first line (the queue's header) ends, that header, and the journal replayed onto
#: an empty state.
Base = tuple[bytes, int, dict[str, Any], State]


def header_of(data: bytes) -> tuple[int, dict[str, Any], State] | None:
    """Where the snapshot's header line ends, the header, and an empty state under it;
    None when it is not one this version writes (the full load then judges the file)."""
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
    state = State()
    try:
        state.generation, state.paused, state.next_id, state.options = check_header(meta)
    except ValueError:
        return None  # the full load says so, properly
    return head_end, meta, state


def light_view(base: Base) -> tuple[State, Callable[[str], Record | None]]:
    """For a few adds in a cold process: the snapshot's header and the journal, with URLs
    looked up by searching the snapshot's bytes (one task a line, as `_dump` writes it)
    instead of parsing them all."""
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
                rec = check_task(json.loads(line), state.options)
                if rec["url"] == url and rec["id"] not in masked:
                    found.append(rec)
            pos = data.find(needle, pos + 1)
        if not found:
            return None
        active = [r for r in found if r.get("status") in rules.ACTIVE]
        return max(active or found, key=lambda r: int(r["id"]))

    return state, lookup


def light_finish(
    base: Base, worker: Worker, outcome: Outcome | None, lease: float | None
) -> tuple[list[dict[str, Any]], Finished] | None:
    """`finish` in a cold process: our task and the claim candidates (the snapshot's
    claim hint, and what the journal changed) are read by id from the snapshot's bytes.
    The journal's ops to append and what `finish` returns; None when the full load must
    decide (a task to take back, the hint used up...)."""
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
        rec = check_task(json.loads(line), state.options)
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
            settled = rules.settled(rec, worker, outcome, now)
            if settled is not None:
                ops.append({"op": "put", "task": settled})
                recorded = True
        if lease is not None:
            running = [record(t) for t in hint["running"] if t not in masked]
            running += [r for r in state.tasks.values() if r.get("status") == "running"]
            if any(rules.needs_recovery(r, now) for r in running):
                return None
            if not state.paused:
                ready = [
                    r
                    for r in (record(t) for t in hint["queued"] if t not in masked)
                    if rules.claimable(r, now)
                ]
                if not ready and hint.get("more"):
                    return None  # the hint is used up: only a full load knows what is next
                ready += [r for r in state.tasks.values() if rules.claimable(r, now)]
                if ready:
                    chosen = min(ready, key=rules.claim_order)
                    new = rules.claimed(chosen, worker, lease, now)
                    ops.append({"op": "put", "task": new})
    except (LookupError, ValueError, TypeError, KeyError):
        return None
    return ops, Finished(
        (recorded,) if outcome is not None else (),
        (Task.from_record(new, state.options),) if new else (),
    )
