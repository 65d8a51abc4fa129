"""`queue run --metrics FILE`: the queue and this runner in Prometheus' text exposition
format, for node_exporter's textfile collector, written atomically (temp + rename)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from .model import STATUSES, Summary
from .run import RunReport

#: name -> (type, help)
METRICS = {
    "xdl_queue_tasks": ("gauge", "Tasks in the queue, by status."),
    "xdl_queue_bytes_done": ("gauge", "Bytes of the queue's done tasks."),
    "xdl_queue_run_done_total": ("counter", "Tasks this runner downloaded."),
    "xdl_queue_run_failures_total": ("counter", "Tasks this runner saw fail for good."),
    "xdl_queue_run_retries_total": ("counter", "Failed attempts this runner queued again."),
    "xdl_queue_last_success_timestamp_seconds": (
        "gauge",
        "Unix time of this runner's last downloaded task (0: none yet).",
    ),
    "xdl_rate_limited_total": ("counter", "Requests a site refused this runner (429, 503)."),
    "xdl_host_paused": ("gauge", "1 while a site that refused requests is waited for."),
}


def label(value: str) -> str:
    """A label value, escaped as the text format wants (backslash, quote, newline)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_metrics(
    summary: Summary,
    run: RunReport,
    last_success: float | None,
    refused: Mapping[str, int] | None = None,
) -> str:
    """The exposition text: a # HELP and # TYPE line before each metric's samples.
    `refused`: the requests each site refused this runner; `summary.paused_hosts` says
    which of them are waited for now."""
    queue = f'queue="{label(summary.queue)}"'
    samples: Mapping[str, list[tuple[str, float]]] = {
        "xdl_queue_tasks": [
            (f'{{{queue},status="{s}"}}', summary.counts.get(s, 0)) for s in STATUSES
        ],
        "xdl_queue_bytes_done": [(f"{{{queue}}}", summary.bytes_done)],
        "xdl_queue_run_done_total": [(f"{{{queue}}}", run.done)],
        "xdl_queue_run_failures_total": [(f"{{{queue}}}", run.failed)],
        "xdl_queue_run_retries_total": [(f"{{{queue}}}", run.retried)],
        "xdl_queue_last_success_timestamp_seconds": [(f"{{{queue}}}", last_success or 0)],
        "xdl_rate_limited_total": [
            (f'{{{queue},host="{label(host)}"}}', n) for host, n in sorted((refused or {}).items())
        ],
        "xdl_host_paused": [
            (f'{{{queue},host="{label(host)}"}}', int(host in summary.paused_hosts))
            for host in sorted({*(refused or {}), *summary.paused_hosts})
        ],
    }
    lines = []
    for name, (kind, text) in METRICS.items():
        lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
        for labels, value in samples[name]:
            number = repr(round(value, 3)) if isinstance(value, float) else str(value)
            lines.append(f"{name}{labels} {number}")
    return "\n".join(lines) + "\n"


def write_metrics(path: str | os.PathLike[str], text: str) -> None:
    """Write `text` to `path` atomically: a reader sees the old file or the new one."""
    target = Path(path)
    fd, temp = tempfile.mkstemp(dir=target.parent or ".", prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(temp, 0o644)
        os.replace(temp, target)
    except BaseException:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise
