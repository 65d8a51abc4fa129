"""The JSON queue's host board: what every runner of one queue file shares about sites
(SPEC §5a): pauses, the next request start, and download slots with leases.

It lives beside the queue (`QUEUE.hosts`, locked by `QUEUE.hosts.lock`), apart from the
tasks: a runner asking whether a host is paused reads it only when it changed (its
stat), and none of it is precious: an unreadable board is read as empty. A slot is
leased (the runner's --lease, renewed while held), so a runner killed with its slots frees
them when the lease runs out.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import filelock

from ...hosts import CEILING, MAX_PAUSE


class FileBoard:
    """`hosts.Shared` over a small JSON file beside the queue."""

    def __init__(self, queue: Path, lease: float = 30.0) -> None:
        self.lease = lease
        self.path = queue.with_name(queue.name + ".hosts")
        self._lock = filelock.FileLock(str(queue.with_name(queue.name + ".hosts.lock")))
        self._mutex = threading.Lock()
        #: (the file's inode, mtime and size when read, what it held): one tuple, so a
        #: reader without the mutex never pairs one reading's key with another's board
        self._seen_board: tuple[tuple[int, int, int] | None, dict[str, Any]] = (None, {})
        self.runner = secrets.token_hex(6)
        self._held: dict[str, list[str]] = {}  # host -> our slot ids
        self._count = 0
        self._renewer: threading.Thread | None = None

    # -- reading and writing ------------------------------------------------------------

    def _read(self) -> dict[str, Any]:
        """The board as the file holds it now; read again only when the file changed (a
        write replaces it: a new inode, even within the clock's tick). Safe without the
        mutex: each call takes its own look at the file."""
        try:
            st = os.stat(self.path, follow_symlinks=False)
        except FileNotFoundError:
            self._seen_board = (None, {})
            return {}
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        seen, board = self._seen_board
        if key != seen:
            board = _board(_read_regular(self.path))
            self._seen_board = (key, board)
        return board

    @contextlib.contextmanager
    def _change(self) -> Iterator[dict[str, Any]]:
        with self._mutex, self._lock:
            self._seen_board = (None, {})
            hosts = {k: dict(v) for k, v in self._read().items() if isinstance(v, dict)}
            yield hosts
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)  # whatever is there (a planted link) is not written through
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
            with os.fdopen(fd, "w") as f:
                f.write(json.dumps(hosts, separators=(",", ":")))
            os.replace(tmp, self.path)
            self._seen_board = (None, {})

    # -- hosts.Shared -------------------------------------------------------------------

    def look(self, host: str) -> tuple[float, float, float]:
        entry = self._read().get(host)  # every request asks: no mutex, which it waited on
        if not isinstance(entry, dict):
            return 0.0, 0.0, 0.0
        values = [entry.get(k) for k in ("paused_until", "interval", "episode")]
        until, interval, episode = (float(v) if isinstance(v, int | float) else 0.0 for v in values)
        return until, interval, episode

    def pause(self, host: str, until: float) -> None:
        now = time.time()
        with self._change() as hosts:
            entry = hosts.setdefault(host, {})
            before = float(entry.get("paused_until") or 0)
            if before <= now:  # not paused: a new episode
                entry["episode"] = now
                entry["served"] = {}
            entry["paused_until"] = max(until, before)

    def measured(self, host: str, episode: float, served: int, margin: float) -> float:
        with self._change() as hosts:
            entry = hosts.setdefault(host, {})
            counts = dict(entry.get("served") or {}) if entry.get("episode") == episode else {}
            counts[self.runner] = served
            entry["served"] = counts
            total = max(1, sum(int(count) for count in counts.values()))
            entry["interval"] = interval = 1.0 / (total * margin)
            entry["floor"] = 1.0 / (total * CEILING)
        return interval

    def recover(self, host: str, factor: float) -> float:
        now = time.time()
        with self._change() as hosts:
            entry = hosts.setdefault(host, {})
            interval = float(entry.get("interval") or 0.0)
            if now - float(entry.get("recovered_at") or 0) >= 1.0:
                interval = max(float(entry.get("floor") or 0.0), interval * factor)
                interval = interval if interval >= 0.005 else 0.0
                entry.update(interval=interval, recovered_at=now)
        return interval

    def next_start(self, host: str, interval: float) -> float:
        now = time.time()
        with self._change() as hosts:
            entry = hosts.setdefault(host, {})
            start = max(now, float(entry.get("next_at") or 0))
            entry["next_at"] = start + interval
        return start

    def take_slot(self, host: str, limit: int) -> bool:
        now = time.time()
        with self._change() as hosts:
            entry = hosts.setdefault(host, {})
            slots = {k: v for k, v in (entry.get("slots") or {}).items() if v > now}
            if len(slots) >= limit:
                entry["slots"] = slots
                return False
            self._count += 1
            slot = f"{self.runner}-{self._count}"
            slots[slot] = now + self.lease
            entry["slots"] = slots
            self._held.setdefault(host, []).append(slot)
        self._keep_renewing()
        return True

    def give_slot(self, host: str) -> None:
        with self._mutex:
            mine = self._held.get(host) or []
            slot = mine.pop() if mine else None
        if slot is None:
            return
        with self._change() as hosts:
            (hosts.get(host) or {}).get("slots", {}).pop(slot, None)

    def paused(self) -> dict[str, float]:
        now = time.time()
        with self._mutex:
            board = self._read()
        return {
            host: float(entry["paused_until"])
            for host, entry in board.items()
            if isinstance(entry, dict)
            and isinstance(entry.get("paused_until"), int | float)
            and entry["paused_until"] > now
        }

    # -- leases ---------------------------------------------------------------------------

    def _keep_renewing(self) -> None:
        with self._mutex:
            if self._renewer is not None:
                return
            self._renewer = threading.Thread(target=self._renew, name="xdl-hosts", daemon=True)
        self._renewer.start()

    def _renew(self) -> None:
        while True:
            time.sleep(self.lease / 3)
            with self._mutex:
                held = {host: list(slots) for host, slots in self._held.items() if slots}
            if not held:
                continue
            until = time.time() + self.lease
            with contextlib.suppress(OSError, filelock.Timeout), self._change() as hosts:
                for host, slots in held.items():
                    table = hosts.setdefault(host, {}).setdefault("slots", {})
                    for slot in slots:
                        table[slot] = until


def _read_regular(path: Path) -> bytes:
    """The board's bytes; nothing when it is not a plain file (a FIFO, a link, a device
    planted there is never waited on or followed)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError:
        return b""
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return b""
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read(1 << 22)
    finally:
        os.close(fd)


def _board(data: bytes) -> dict[str, Any]:
    """The board as read: every host's numbers finite and within bounds (a pause or a
    slot lease at most a day ahead, an interval at most a day), anything else dropped.
    The board is advisory: a hand-edited or torn one costs politeness, never a task."""
    try:
        raw = json.loads(data) if data else {}
    except ValueError:
        return {}
    if not isinstance(raw, dict):
        return {}
    horizon = time.time() + MAX_PAUSE
    board: dict[str, Any] = {}
    for host, entry in raw.items():
        if not isinstance(host, str) or not isinstance(entry, dict):
            continue
        clean: dict[str, Any] = {}
        for key in ("paused_until", "next_at", "episode", "recovered_at"):
            value = _number(entry.get(key))
            if value is not None:
                clean[key] = min(value, horizon)
        for key in ("interval", "floor"):
            value = _number(entry.get(key))
            if value is not None:
                clean[key] = min(value, MAX_PAUSE)
        slots = entry.get("slots")
        if isinstance(slots, dict):
            leases = {str(k): _number(v) for k, v in slots.items()}
            clean["slots"] = {k: min(v, horizon) for k, v in leases.items() if v is not None}
        served = entry.get("served")
        if isinstance(served, dict):
            counts = {str(k): _number(v) for k, v in served.items()}
            clean["served"] = {k: int(v) for k, v in counts.items() if v is not None}
        board[host] = clean
    return board


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) and value >= 0 else None
