"""The JSON file store: `store` (lock, load, journal, the operations), `state` (the queue
in memory and the one reader of records), `files` (atomic writes), `backups`, and
`fastpath` (the byte-level shortcuts for a cold process on a very large file)."""

from .state import SCHEMA_VERSION
from .store import JsonStore

__all__ = ["SCHEMA_VERSION", "JsonStore"]
