"""The download queue (SPEC §7): one task model and one set of rules, two stores.

`model` holds the task and what operations return, `rules` what a change does to a task
(claim order, settle, recover, retry/cancel/remove, duplicates), `store` the `QueueStore`
protocol, `stores` its `open_store`, `location` the queue's name as people see it (never a
password), `run` the runner; `filestore/` keeps the queue in one JSON file on one host,
`postgres` in a PostgreSQL database shared by many hosts.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .filestore import SCHEMA_VERSION, JsonStore
    from .location import is_url, redact
    from .model import (
        STATUSES,
        Added,
        Backup,
        Changed,
        Finished,
        Health,
        NewTask,
        Outcome,
        QueueWriteError,
        Restored,
        Summary,
        Task,
        Worker,
        iso,
    )
    from .rules import ACTIVE, HOST, MAX_LOST, worker_gone
    from .store import QueueStore
    from .stores import open_store

#: Where each name lives: imported when first asked for (the JSON store and its locks
#: cost ~0.1 s; `queue status`'s options need only `STATUSES`).
_WHERE = {
    "SCHEMA_VERSION": ".filestore",
    "JsonStore": ".filestore",
    "is_url": ".location",
    "redact": ".location",
    "STATUSES": ".model",
    "Added": ".model",
    "Backup": ".model",
    "Changed": ".model",
    "Finished": ".model",
    "Health": ".model",
    "NewTask": ".model",
    "Outcome": ".model",
    "QueueWriteError": ".model",
    "Restored": ".model",
    "Summary": ".model",
    "Task": ".model",
    "Worker": ".model",
    "iso": ".model",
    "ACTIVE": ".rules",
    "HOST": ".rules",
    "MAX_LOST": ".rules",
    "worker_gone": ".rules",
    "QueueStore": ".store",
    "open_store": ".stores",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name], __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "ACTIVE",
    "HOST",
    "MAX_LOST",
    "SCHEMA_VERSION",
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
    "QueueWriteError",
    "Restored",
    "Summary",
    "Task",
    "Worker",
    "is_url",
    "iso",
    "open_store",
    "redact",
    "worker_gone",
]
