"""The `QueueStore` protocol, the only thing `queue run`, the CLI and `doctor` see (one
implementation per store: `filestore/` for a JSON file, `postgres` for PostgreSQL;
`stores.open_store` picks one from a path or a database URL).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol

from . import rules
from .model import (
    Added,
    Backup,
    Changed,
    Finished,
    Health,
    NewTask,
    Outcome,
    Record,
    Restored,
    Summary,
    Task,
    Worker,
)

if TYPE_CHECKING:
    from ..hosts import Shared

DEFAULT_LOCK_TIMEOUT = 30.0


class QueueStore(Protocol):
    """What the CLI, the runner and `xdl doctor` need from a queue."""

    @property
    def name(self) -> str:
        """The queue as users name it: a path, or a database URL without its password."""
        ...

    def add(self, items: Sequence[NewTask], *, force: bool = False) -> list[Added]: ...
    def bulk(self) -> AbstractContextManager[None]:
        """Many `add` calls in a row (one `queue add` of a long list): what is written once
        for all of them is written at the end."""
        ...

    def tasks(
        self, ids: Sequence[int] | None = None, statuses: Iterable[str] | None = None
    ) -> list[Task | int]: ...
    def task_ids(self) -> list[tuple[int, str, str]]: ...
    def summary(self) -> Summary: ...
    def claim(self, worker: Worker, lease: float) -> Task | None: ...
    def renew(
        self,
        worker: Worker,
        ids: Iterable[int],
        lease: float,
        received: Mapping[int, int] | None = None,
    ) -> set[int]: ...
    def complete(self, worker: Worker, task_id: int, result: Mapping[str, Any]) -> bool: ...
    def fail(
        self,
        worker: Worker,
        task_id: int,
        error: Mapping[str, Any],
        retry_at: float | None,
        result: Mapping[str, Any] | None = None,
    ) -> bool: ...
    def finish(
        self,
        worker: Worker,
        outcomes: Sequence[Outcome] = (),
        *,
        claim: int = 0,
        lease: float | None = None,
    ) -> Finished: ...
    def release(self, worker: Worker, ids: Iterable[int]) -> None: ...
    def next_wakeup(self) -> float | None: ...
    def retry(self, ids: Sequence[int] | None) -> list[Changed | int]: ...
    def cancel(self, ids: Sequence[int]) -> list[Changed | int]: ...
    def remove(self, ids: Sequence[int]) -> list[Changed | int]: ...
    def clear(self, statuses: Iterable[str]) -> int: ...
    def set_paused(self, paused: bool) -> bool: ...
    def is_paused(self) -> bool: ...
    def health(self) -> Health: ...
    def backups(self) -> list[Backup]: ...
    def restore(self, backup: str | None = None) -> Restored: ...
    def close(self) -> None: ...
    def host_board(self, lease: float = 30.0) -> Shared:
        """What every runner of this queue shares about sites (SPEC §5a)."""
        ...


class TaskChanges:
    """`complete`, `fail`, `cancel` and `remove`, written once over a store's `finish` and
    `_change` (both stores use them; the rules themselves are in `rules`)."""

    def bulk(self) -> AbstractContextManager[None]:
        """Nothing is kept for the end of many adds, unless a store says otherwise."""
        return contextlib.nullcontext()

    def finish(
        self,
        worker: Worker,
        outcomes: Sequence[Outcome] = (),
        *,
        claim: int = 0,
        lease: float | None = None,
    ) -> Finished:
        raise NotImplementedError

    def claim(self, worker: Worker, lease: float) -> Task | None:
        """Take the next task (highest priority, then oldest) whose time has come, or None.
        Tasks of dead runners, or with an expired lease, go back to `queued` first."""
        claimed = self.finish(worker, claim=1, lease=lease).claimed
        return claimed[0] if claimed else None

    def _change(
        self,
        ids: Sequence[int],
        change: Callable[[Record, float], Record | str | None],
        action: str,
    ) -> list[Changed | int]:
        raise NotImplementedError

    def complete(self, worker: Worker, task_id: int, result: Mapping[str, Any]) -> bool:
        """Mark our task done with its result; False when it is no longer ours."""
        return self.finish(worker, [Outcome(task_id, result)]).recorded[0]

    def fail(
        self,
        worker: Worker,
        task_id: int,
        error: Mapping[str, Any],
        retry_at: float | None,
        result: Mapping[str, Any] | None = None,
    ) -> bool:
        """Record a failed attempt: queued again at `retry_at`, or `failed` when None."""
        return self.finish(worker, [Outcome(task_id, result, error, retry_at)]).recorded[0]

    def cancel(self, ids: Sequence[int]) -> list[Changed | int]:
        """Cancel queued or running tasks (a runner stops a cancelled download)."""
        return self._change(ids, rules.cancelled, "cancel")

    def remove(self, ids: Sequence[int]) -> list[Changed | int]:
        """Delete tasks that are not running (cancel a running one first)."""

        def change(rec: Record, now: float) -> str | None:
            return rules.not_removable(rec)

        return self._change(ids, change, "remove")
