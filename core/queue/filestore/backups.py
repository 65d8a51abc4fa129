"""The JSON store's backups: QUEUE.backups/STEM-TIMESTAMP[SUFFIX].json, the newest
BACKUPS_KEPT kept, one taken before a change at most every BACKUP_EVERY seconds."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import time
from collections.abc import Callable
from pathlib import Path

from ..model import Backup, QueueWriteError
from .files import write_atomic

BACKUP_EVERY = 600.0
BACKUPS_KEPT = 10


class Backups:
    def __init__(self, queue: Path) -> None:
        self.dir = queue.with_name(queue.name + ".backups")
        self.stem = queue.stem
        self._next_check = 0.0

    def list(self) -> list[Backup]:
        """Backups, newest first."""
        found = []
        try:
            entries = list(os.scandir(self.dir))
        except FileNotFoundError:
            return []
        for entry in entries:
            if entry.name.endswith(".json") and not entry.name.startswith("."):
                st = entry.stat()
                found.append(Backup(entry.path, st.st_mtime, st.st_size))
        return sorted(found, key=lambda b: (b.created_at, b.path), reverse=True)

    def due(self, has_tasks: bool) -> bool:
        """A backup is to be taken before the next change."""
        now = time.time()
        if now < self._next_check or not has_tasks:
            return False
        newest = max((b.created_at for b in self.list()), default=0.0)
        if now - newest < BACKUP_EVERY:
            self._next_check = newest + BACKUP_EVERY
            return False
        return True

    def maybe_take(self, has_tasks: bool, data: Callable[[], bytes]) -> None:
        """Take a backup of `data()` when one is due."""
        if self.due(has_tasks):
            self.store(data(), "")
            self._next_check = time.time() + BACKUP_EVERY

    def store(self, data: bytes, suffix: str) -> None:
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            write_atomic(self.dir / f"{self.stem}-{stamp}{suffix}.json", data)
        except OSError as e:
            raise QueueWriteError(f"cannot write a backup in {self.dir}: {e}") from None
        for old in self.list()[BACKUPS_KEPT:]:
            with contextlib.suppress(OSError):
                os.unlink(old.path)
