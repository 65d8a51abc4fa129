"""What a running queue tells its watchers: `--metrics FILE` (Prometheus text) kept up
to date, and `--watch`'s status line every so often (on stderr, logger `xdl.status`).

Fed by the run's events (`tallied`, `emitted`) from the thread that reads them, and
`tick`ed between them; it never stops the run (a metrics file it cannot write is one
warning).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

from ..errors import XdlError
from ..hosts import Budget
from .metrics import render_metrics, write_metrics
from .model import STATUSES
from .run import RunReport
from .store import QueueStore

log = logging.getLogger("xdl")
status_log = logging.getLogger("xdl.status")


class Monitor:
    """`--metrics FILE` and --watch's status lines, kept as the run's events come."""

    def __init__(
        self, store: QueueStore, budget: Budget, metrics: str | None, every: float
    ) -> None:
        self.store = store
        self.budget = budget  # the run's: its paused hosts and refusals go in the metrics
        self.metrics = metrics
        self.every = every
        self.report = RunReport(0, 0, 0, 0, False)
        self.last_success: float | None = None
        self.changed = metrics is not None  # the file is written once at the start too
        self.next_status = time.monotonic() + every if every else None
        self.warned = False

    def tallied(self, report: RunReport) -> None:
        """The run's counts, as the run yields them (changed: the metrics are due)."""
        if report != self.report:
            self.report = report
            self.changed = True

    def emitted(self, row: dict[str, Any]) -> None:
        if row.get("ok"):
            self.last_success = time.time()
            self.changed = True

    def tick(self) -> None:
        if self.metrics and self.changed:
            self.changed = False
            self.write_metrics()
        if self.next_status is not None and time.monotonic() >= self.next_status:
            self.next_status = time.monotonic() + self.every
            self.say_status()

    def write_metrics(self) -> None:
        assert self.metrics is not None
        try:
            budget = self.budget
            summary = dataclasses.replace(self.store.summary(), paused_hosts=budget.paused())
            text = render_metrics(summary, self.report, self.last_success, budget.refused_total)
            write_metrics(self.metrics, text)
        except (OSError, XdlError) as e:
            if not self.warned:
                log.warning("cannot write the metrics to %s: %s", self.metrics, e)
            self.warned = True

    def say_status(self) -> None:
        try:
            counts = self.store.summary().to_dict()
        except XdlError as e:
            log.warning("status: cannot read the queue: %s", e.message)
            return
        queue = ", ".join(f"{counts.get(s, 0)} {s}" for s in STATUSES)
        r = self.report
        status_log.warning(
            "status: %s; %s bytes done; this run: %d done, %d failed, %d retried",
            queue,
            counts.get("bytes_done", 0),
            r.done,
            r.failed,
            r.retried,
        )
