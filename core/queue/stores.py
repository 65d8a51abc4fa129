"""`open_store`: the queue at a path or a database URL, as the store that keeps it.

Apart from the protocol (`store.py`) so that no store imports the module that imports
it: `stores` -> `filestore`, `postgres` -> `store`, never back.
"""

from __future__ import annotations

from pathlib import Path

from .location import is_url
from .store import DEFAULT_LOCK_TIMEOUT, QueueStore


def open_store(location: Path | str | None = None, lock_timeout: float | None = None) -> QueueStore:
    """The queue at `location`: a PostgreSQL URL, or a JSON file's path (default:
    `XDL_QUEUE`, else queue.json in the data dir)."""
    from .. import paths

    timeout = DEFAULT_LOCK_TIMEOUT if lock_timeout is None else lock_timeout
    if location is None:
        location = paths.queue_location()
    if is_url(location):
        from .postgres import PostgresStore  # the only import of psycopg

        return PostgresStore(str(location), timeout)
    from .filestore import JsonStore

    return JsonStore(Path(location), timeout)
