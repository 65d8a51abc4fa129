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
