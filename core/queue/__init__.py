"""The download queue (SPEC §7): one task model and one set of rules, two stores.

`model` holds the task and what operations return, `rules` what a change does to a task
(claim order, settle, recover, retry/cancel/remove, duplicates), `store` the `QueueStore`
protocol, `stores` its `open_store`, `location` the queue's name as people see it (never a
password), `run` the runner; `filestore/` keeps the queue in one JSON file on one host,
`postgres` in a PostgreSQL database shared by many hosts.
"""

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
