"""Running a queue to its end from a test (`run_queue` yields as it goes)."""

from __future__ import annotations

import threading
from typing import Any

from xdl.core.queue.run import RunReport, TaskResult, run_queue


def run_all(*args: Any, rows: list[dict[str, Any]] | None = None, **kwargs: Any) -> RunReport:
    """Iterate a run to its end: its final report; its result lines into `rows`."""
    report = None
    for event in run_queue(*args, **kwargs):
        if isinstance(event, TaskResult):
            if event.final and rows is not None:
                rows.append(event.row)
        else:
            report = event
    assert report is not None
    return report


class InBackground:
    """A run on a thread of its own, for a test to act while it runs; `report()` waits
    for its end."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._reports: list[RunReport] = []
        self._thread = threading.Thread(
            target=lambda: self._reports.append(run_all(*args, **kwargs)), daemon=True
        )
        self._thread.start()

    def report(self, timeout: float = 60) -> RunReport:
        self._thread.join(timeout)
        assert self._reports, "the run did not end"
        return self._reports[0]
