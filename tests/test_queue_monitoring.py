"""Running the queue as a service: --watch's timestamped status lines, and --metrics in
Prometheus' text format (checked by hand: # HELP, # TYPE, name{label="v"} value)."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from xdl.core.queue.metrics import label, render_metrics
from xdl.core.queue.model import Summary
from xdl.core.queue.run import RunReport

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)\{((?:[a-z_]+="(?:[^"\\]|\\.)*",?)*)\} (\S+)$')


def parse_prometheus(text: str) -> dict[str, dict[str, Any]]:
    """A strict reading of the text exposition format: name -> type, help, samples."""
    assert text.endswith("\n")
    metrics: dict[str, dict[str, Any]] = {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name, help_text = line[7:].split(" ", 1)
            assert name not in metrics, f"{name} described twice"
            metrics[name] = {"help": help_text, "samples": {}}
        elif line.startswith("# TYPE "):
            name, kind = line[7:].split(" ")
            assert kind in ("counter", "gauge") and "type" not in metrics[name]
            metrics[name]["type"] = kind
        else:
            m = SAMPLE.match(line)
            assert m, f"not a sample line: {line!r}"
            name, labels, value = m.groups()
            assert "type" in metrics[name], f"{name} sampled before its # TYPE"
            pairs = dict(re.findall(r'([a-z_]+)="((?:[^"\\]|\\.)*)"', labels))
            key = tuple(sorted((k, v) for k, v in pairs.items() if k != "queue"))
            metrics[name]["samples"][key] = float(value)
            if metrics[name]["type"] == "counter":
                assert name.endswith("_total")
    return metrics


def value(metrics: dict[str, dict[str, Any]], name: str, **labels: str) -> float:
    return float(metrics[name]["samples"][tuple(sorted(labels.items()))])


def test_metrics_file_after_a_run(xdl: Any, site: Any, tmp_path: Path) -> None:
    xdl("queue", "add", "-o", "media", site.url("/files/report"), site.url("/files/blob.bin"))
    xdl("queue", "add", site.url("/404"))
    prom = tmp_path / "metrics" / "xdl.prom"
    prom.parent.mkdir()
    before = time.time()
    r = xdl("queue", "run", "-j", "2", "--retries", "0", "--metrics", str(prom))
    assert r.exit_code == 1
    m = parse_prometheus(prom.read_text())
    assert value(m, "xdl_queue_tasks", status="done") == 2
    assert value(m, "xdl_queue_tasks", status="failed") == 1
    assert value(m, "xdl_queue_tasks", status="queued") == 0
    assert value(m, "xdl_queue_bytes_done") == sum(x["bytes"] for x in r.lines if x["ok"])
    assert value(m, "xdl_queue_run_done_total") == 2
    assert value(m, "xdl_queue_run_failures_total") == 1
    assert value(m, "xdl_queue_run_retries_total") == 0
    assert before <= value(m, "xdl_queue_last_success_timestamp_seconds") <= time.time()
    assert [p.name for p in prom.parent.iterdir()] == ["xdl.prom"]  # no temp file left


def test_metrics_count_retries_and_escape_the_queue_name() -> None:
    summary = Summary('q"\\\n', 4, {"queued": 3, "running": 1}, 0, {}, None, [], False)
    text = render_metrics(summary, RunReport(5, 1, 3, 0, False), None)
    m = parse_prometheus(text)
    assert value(m, "xdl_queue_run_retries_total") == 3
    assert value(m, "xdl_queue_last_success_timestamp_seconds") == 0
    assert 'queue="q\\"\\\\\\n"' in text


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [("plain", "plain"), ('a"b', 'a\\"b'), ("a\\b", "a\\\\b"), ("a\nb", "a\\nb")],
)
def test_label_escaping(raw: str, escaped: str) -> None:
    assert label(raw) == escaped


def test_watch_logs_timestamped_status_lines(xdl: Any, site: Any) -> None:
    xdl("queue", "add", "-o", "media", site.url("/throttled.bin?rate=700000"))
    r = xdl("queue", "run", "--watch", "--max-tasks", "1", "--status-every", "0.3")
    assert r.exit_code == 0, r.stderr
    status = [line for line in r.stderr.splitlines() if "status:" in line]
    assert len(status) >= 2, r.stderr
    stamp = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ xdl: status: 0 queued, \d running, ")
    assert all(stamp.match(line) for line in status), status
    assert "1 running" in status[0] and "this run: 0 done" in status[0]
    assert r.lines[0]["ok"]


def test_no_status_lines_without_watch_or_with_zero(xdl: Any, site: Any) -> None:
    xdl("queue", "add", "-o", "media", site.url("/throttled.bin?rate=2000000"))
    r = xdl("queue", "run", "--status-every", "0.1")
    assert r.exit_code == 0 and "status:" not in r.stderr
    xdl("queue", "add", "--force", "-o", "media2", site.url("/throttled.bin?rate=2000000"))
    r = xdl("queue", "run", "--watch", "--max-tasks", "1", "--status-every", "0")
    assert r.exit_code == 0 and r.stderr == ""
