"""--exec / --exec-failed on fetch: {} is the shell-quoted path, the JSON line on stdin."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def test_exec_copies_each_file_and_gets_the_line(xdl: Any, site: Any) -> None:
    Path("copies").mkdir()
    r = xdl(
        "fetch",
        "-o",
        "out dir",
        "--exec",
        "cp {} copies/ && cat >> lines.jsonl",
        "--exec-failed",
        "cat >> failed.jsonl",
        site.url("/files/report"),
        site.url("/404"),
    )
    assert r.exit_code == 1
    ok = next(x for x in r.lines if x["ok"])
    assert "exec_failed" not in ok
    copy = Path("copies") / Path(ok["path"]).name
    assert copy.read_bytes() == Path(ok["path"]).read_bytes()
    (seen,) = [json.loads(x) for x in Path("lines.jsonl").read_text().splitlines()]
    assert seen["path"] == ok["path"]
    (failed,) = [json.loads(x) for x in Path("failed.jsonl").read_text().splitlines()]
    assert failed["ok"] is False and failed["url"] == site.url("/404")


def test_a_failing_hook_is_noted_and_the_download_still_counts(xdl: Any, site: Any) -> None:
    r = xdl("fetch", "--exec", "exit 7", site.url("/files/report"))
    assert r.exit_code == 0
    (line,) = r.lines
    assert line["ok"] and Path(line["path"]).is_file()
    assert line["exec_failed"] == {"command": "exit 7", "exit": 7}
    assert "exit 7" in r.stderr


def test_queue_run_exec_copies_each_file_and_notes_a_failing_hook(xdl: Any, site: Any) -> None:
    Path("copies").mkdir()
    added = xdl(
        "queue", "add", "-o", "media", site.url("/files/report"), site.url("/files/blob.bin")
    )
    assert added.exit_code == 0, added.stderr
    xdl("queue", "add", site.url("/404"))
    r = xdl(
        "queue",
        "run",
        "--retries",
        "0",
        "--exec",
        "cp {} copies/ && cat >> lines.jsonl",
        "--exec-failed",
        "cat >> failed.jsonl; exit 3",
    )
    assert r.exit_code == 1
    good = [x for x in r.lines if x["ok"]]
    assert len(good) == 2
    for line in good:
        assert "exec_failed" not in line
        copy = Path("copies") / Path(line["path"]).name
        assert copy.read_bytes() == Path(line["path"]).read_bytes()
    seen = [json.loads(x) for x in Path("lines.jsonl").read_text().splitlines()]
    assert sorted(x["task"] for x in seen) == sorted(x["task"] for x in good)
    (bad,) = [x for x in r.lines if not x["ok"]]
    assert bad["exec_failed"]["exit"] == 3
    (failed,) = [json.loads(x) for x in Path("failed.jsonl").read_text().splitlines()]
    assert failed["url"] == site.url("/404") and failed["task"] == bad["task"]
    status = {t["id"]: t["status"] for t in xdl("queue", "status", "--json").lines}
    assert sorted(status.values()) == ["done", "done", "failed"]
