"""Writing the JSON store's files so that a crash leaves the old file or the new one."""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def fsync_dir(directory: Path) -> None:
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


#: A temporary file older than this (seconds) is a writer's that was killed before its
#: rename (no live writer takes that long), and is removed.
LEFTOVER_AGE = 3600.0


def drop_leftovers(path: Path) -> None:
    """Remove the temporary files of `write_atomic` for `path` (and its journal) that a
    writer killed mid-write left beside it (a `kill -9` left a 2 MB one for good)."""
    import time

    prefix, old = f".{path.name}.", time.time() - LEFTOVER_AGE
    try:
        with os.scandir(path.parent) as entries:
            for entry in entries:
                if not (entry.name.startswith(prefix) and entry.name.endswith(".tmp")):
                    continue
                with contextlib.suppress(OSError):
                    if entry.stat(follow_symlinks=False).st_mtime < old:
                        os.unlink(entry.path)
    except OSError:
        pass


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
    fsync_dir(path.parent)


def dump(doc: Mapping[str, Any]) -> bytes:
    """The snapshot: valid JSON with one task a line, so `grep` and `jq` both work."""
    head = {k: v for k, v in doc.items() if k != "tasks"}
    text = json.dumps(head, ensure_ascii=False, separators=(",", ":"))[:-1]
    tasks = ",\n".join(
        json.dumps(t, ensure_ascii=False, separators=(",", ":")) for t in doc["tasks"]
    )
    return f'{text},"tasks":[\n{tasks}\n]}}\n'.encode()


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def stat_key(path: Path) -> tuple[int, int, int]:
    st = os.stat(path)
    return (st.st_ino, st.st_size, st.st_mtime_ns)
