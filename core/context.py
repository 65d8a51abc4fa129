"""What the work of one command shares: one `Context`, made where the command starts and
passed down to every download, never held in a module global.

It holds the per-host `Budget` (SPEC §5a: slots, pacing, pauses, for every worker and
downloader of the command; shared with a queue's other runners through its board), the
free space promised to the downloads that are running (`SpaceBook`), and everything
else that must be one object for all of them, made at its first use: the token bucket
of a `--rate-limit`, the cache of a `--cache` folder, the archive of an `--archive`
file, the cookie jar of a `--cookies` file (which answers' `Set-Cookie` update).

Two contexts share nothing: two commands run in one process (a test, a program that
imports xdl) do not draw on each other's rate limit or see each other's pauses and
cookies. A library caller that passes none gets a context of its own per call.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from .files import SpaceBook
from .hosts import Budget

T = TypeVar("T")


class Context:
    """The shared things of one command (thread-safe)."""

    def __init__(self, budget: Budget | None = None) -> None:
        self.budget: Budget = budget if budget is not None else Budget()
        self.space: SpaceBook = SpaceBook()
        self._made: dict[Hashable, Any] = {}
        self._lock = threading.RLock()

    def once(self, key: Hashable, make: Callable[[], T]) -> T:
        """The one thing of this context for `key`: `make()` at the first ask (under the
        context's lock, so two threads never make two), the same object after. What
        `make` raises is raised to that caller, and the next ask makes it again."""
        with self._lock:
            if key not in self._made:
                self._made[key] = make()
            thing: T = self._made[key]
            return thing


def given(ctx: Context | None) -> Context:
    """`ctx`, or a context of its own for a caller that passed none."""
    return ctx if ctx is not None else Context()
