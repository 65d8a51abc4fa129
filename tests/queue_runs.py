"""Running a queue to its end from a test (`run_queue` yields as it goes)."""

from __future__ import annotations

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
