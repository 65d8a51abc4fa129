"""Writing one download to `NAME.part` (SPEC §5): resume data beside it, hashing as it is
written, the shared rate limit, progress, stop, and the checks before the rename."""

from __future__ import annotations

import hashlib
import json
import os
import queue
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import errors
from .ratelimit import TokenBucket

#: progress(key, done_bytes, total_bytes_or_None)
ProgressFn = Callable[[str, int, "int | None"], None]

FREE_SPACE_MARGIN = 16 * 1024 * 1024
#: Downloads at least this big (or of unknown size) are written and hashed on a second
#: thread while the next chunk is read (hashlib and file writes release the GIL).
PIPELINE_FROM = 4 * 1024 * 1024


class PartFile:
    """`final.part` plus `final.part.meta` (the URL and validators needed to resume)."""

    def __init__(
        self,
        final: Path,
        *,
        stop: threading.Event | None = None,
        limiter: TokenBucket | None = None,
        progress: ProgressFn | None = None,
        key: str = "",
        max_size: int | None = None,
        tag: str = "",
    ) -> None:
        self.final = final
        suffix = f".{tag}.part" if tag else ".part"  # wget/curl keep off HTTP's resumable .part
        self.part = final.with_name(final.name + suffix)
        self.meta = final.with_name(final.name + suffix + ".meta")
        self.stop = stop
        self.limiter = limiter
        self.progress = progress
        self.key = key or final.name
        self.max_size = max_size
        self.written = 0
        self.total: int | None = None
        self._hash = hashlib.sha256()
        self._file: Any = None
        self._queue: queue.Queue[bytes | bytearray | None] | None = None
        self._writer: threading.Thread | None = None
        self._failure: BaseException | None = None

    def saved(self) -> tuple[int, dict[str, Any]]:
        """(bytes already in the .part, its saved validators) — (0, {}) when none."""
        try:
            size = self.part.stat().st_size
        except FileNotFoundError:
            return 0, {}
        try:
            meta = json.loads(self.meta.read_text())
            if not isinstance(meta, dict):
                meta = {}
        except (OSError, ValueError):
            meta = {}
        return size, meta

    def begin(self, offset: int, total: int | None, meta: dict[str, Any]) -> None:
        """Start writing at `offset` (0 truncates); check size and free space first."""
        self.check_stop()
        if total is not None and self.max_size is not None and total > self.max_size:
            raise errors.TooLarge(
                f"{total} bytes is more than --max-size {self.max_size}", bytes=total
            )
        if total is not None:
            check_free_space(self.final.parent, total - offset)
        self.total = total
        self._hash = hashlib.sha256()
        self.written = 0
        if offset:
            with open(self.part, "rb") as f:
                while block := f.read(1 << 20):
                    self._hash.update(block)
                    self.written += len(block)
            if self.written != offset:
                raise errors.DownloadFailed("the .part changed while resuming")
        self.meta.write_text(json.dumps(meta))
        self._file = open(self.part, "ab" if offset else "wb")  # noqa: SIM115
        self._failure = None
        if total is None or total - offset >= PIPELINE_FROM:
            self._queue = queue.Queue(maxsize=4)
            self._writer = threading.Thread(target=self._drain, name="xdl-write", daemon=True)
            self._writer.start()
        if self.progress:
            self.progress(self.key, self.written, total)

    def _drain(self) -> None:
        """The writer thread: write and hash what the reader hands over, in order."""
        assert self._queue is not None
        while (data := self._queue.get()) is not None:
            if self._failure is None:
                try:
                    self._file.write(data)
                    self._hash.update(data)
                except BaseException as e:
                    self._failure = e

    def write(self, data: bytes | bytearray) -> None:
        self.check_stop()
        if self._queue is not None:
            if self._failure is not None:
                self.close()
            self._queue.put(data)
        else:
            self._file.write(data)
            self._hash.update(data)
        self.written += len(data)
        if self.max_size is not None and self.written > self.max_size:
            self.close()
            self.discard()
            raise errors.TooLarge(f"more than --max-size {self.max_size} bytes")
        if self.limiter is not None:
            self.limiter.consume(len(data), self.stop)
        if self.progress:
            self.progress(self.key, self.written, self.total)

    def check_stop(self) -> None:
        if self.stop is not None and self.stop.is_set():
            raise errors.Interrupted("interrupted; the .part file is kept for resuming")

    def close(self) -> None:
        """Finish writing (waiting for the writer thread) and close; raise its error."""
        if self._queue is not None and self._writer is not None:
            self._queue.put(None)
            self._writer.join()
            self._queue = self._writer = None
        if self._file is not None:
            self._file.close()
            self._file = None
        failure, self._failure = self._failure, None
        if failure is not None:
            if isinstance(failure, OSError):
                raise errors.DownloadFailed(f"cannot write {self.part}: {failure}") from failure
            raise failure

    def commit(self, sha256: str | None = None, min_size: int | None = None) -> tuple[int, str]:
        """Check the length, size bounds and checksum, then rename into place."""
        self.close()
        if self.total is not None and self.written != self.total:
            raise errors.NetworkError(
                f"got {self.written} of {self.total} bytes", bytes=self.written
            )
        digest = self._hash.hexdigest()
        if min_size is not None and self.written < min_size:
            self.discard()
            raise errors.TooSmall(f"{self.written} bytes is less than --min-size {min_size}")
        if sha256 and digest != sha256.lower():
            self.discard()
            raise errors.ChecksumMismatch(
                f"sha256 is {digest}, expected {sha256.lower()}; file removed", sha256=digest
            )
        os.replace(self.part, self.final)
        self.meta.unlink(missing_ok=True)
        return self.written, digest

    def discard(self) -> None:
        self.close()
        self.part.unlink(missing_ok=True)
        self.meta.unlink(missing_ok=True)


def check_free_space(directory: Path, needed: int) -> None:
    try:
        free = shutil.disk_usage(directory).free
    except OSError:
        return
    if needed + FREE_SPACE_MARGIN > free:
        raise errors.NoSpace(
            f"needs {needed} bytes but only {free} are free in {directory}",
            needed=needed,
            free=free,
        )


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()
