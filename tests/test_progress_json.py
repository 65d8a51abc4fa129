"""`--progress json`: one JSON object a line on stderr, a start and a done per item,
bytes that never go back, on fetch, queue run and transcript."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest


def events(stderr: str) -> list[dict[str, Any]]:
    """Every stderr line must parse: progress and log lines alike."""
    return [json.loads(line) for line in stderr.splitlines()]


def check_items(evs: list[dict[str, Any]], key: str = "url") -> dict[Any, list[dict[str, Any]]]:
    per: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for e in evs:
        if e["event"] != "log":
            per[e[key]].append(e)
    for item, seq in per.items():
        kinds = [e["event"] for e in seq]
        assert kinds[0] == "start" and kinds[-1] == "done", (item, kinds)
        assert kinds.count("start") == 1 and kinds.count("done") == 1, (item, kinds)
        got = [e["bytes"] for e in seq]
        assert got == sorted(got), (item, got)
        for e in seq:
            assert {"time", "bytes", "total", "speed", "eta", "elapsed_s"} <= set(e)
    return per


def test_fetch_progress_json(xdl: Any, site: Any) -> None:
    slow = site.url("/throttled.bin?rate=1500000")
    r = xdl(
        "fetch", "-j", "2", "--progress", "json", slow, site.url("/files/report"), site.url("/404")
    )
    assert r.exit_code == 1
    assert len(r.lines) == 3  # stdout untouched
    evs = events(r.stderr)
    per = check_items(evs)
    assert set(per) == {slow, site.url("/files/report"), site.url("/404")}
    moving = [e for e in per[slow] if e["event"] == "progress"]
    assert 2 <= len(moving) <= 12  # ~1 s at most 4 a second (+ the last one)
    assert moving[-1]["bytes"] == moving[-1]["total"] == 1024 * 1024
    assert all(e["file"] == "throttled.bin" for e in moving)
    assert any(e["speed"] for e in moving) and any(e["eta"] is not None for e in moving)
    done = per[slow][-1]
    assert done["ok"] is True and done["size"] == 1024 * 1024 and done["path"]
    failed = per[site.url("/404")][-1]
    assert failed["ok"] is False and failed["error"] == "not_found"
    (log,) = [e for e in evs if e["event"] == "log"]
    assert log["level"] == "error" and "/404" in log["message"]


def test_old_progress_flag_before_a_url_still_means_bars(xdl: Any, site: Any) -> None:
    r = xdl("fetch", "--progress", site.url("/files/report"))
    assert r.exit_code == 0 and r.lines[0]["ok"]


def test_no_progress_in_a_pipe_by_default(xdl: Any, site: Any) -> None:
    r = xdl("fetch", site.url("/throttled.bin?rate=4000000"))
    assert r.exit_code == 0 and r.stderr == ""


def test_queue_run_progress_json_carries_the_task(xdl: Any, site: Any) -> None:
    slow = site.url("/throttled.bin?rate=1500000")
    xdl("queue", "add", slow, site.url("/files/report"))
    r = xdl("queue", "run", "-j", "2", "--progress", "json")
    assert r.exit_code == 0, r.stderr
    per = check_items(events(r.stderr), key="task")
    assert sorted(per) == [1, 2]
    assert all(e["url"] == slow for e in per[1])
    assert per[1][-1]["bytes"] == 1024 * 1024


def test_queue_run_refuses_an_unknown_mode(xdl: Any) -> None:
    r = xdl("queue", "run", "--progress", "fancy")
    assert r.exit_code == 2 and "--progress" in r.stderr


@pytest.mark.parametrize("fmt", ["vtt", "txt"])
def test_transcript_progress_json(xdl: Any, site: Any, fmt: str) -> None:
    r = xdl("transcript", "-F", fmt, "--progress", "json", site.url("/watch.html"))
    assert r.exit_code == 0, r.stderr
    per = check_items(events(r.stderr))
    (seq,) = per.values()
    assert seq[-1]["ok"] is True and seq[-1]["path"] == r.lines[0]["path"]


def test_a_playlist_gives_a_start_and_a_done_per_entry(xdl: Any, site: Any) -> None:
    r = xdl("fetch", "-o", "pod", "--progress", "json", site.url("/feed.xml"))
    assert r.exit_code == 0, r.stderr
    per = check_items(events(r.stderr))
    (seq,) = per.values()  # one item: the feed, its entries counted in its done
    assert seq[0]["url"] == site.url("/feed.xml")
    assert {e["file"] for e in seq if e["event"] == "progress"} == {
        Path(x["path"]).name for x in r.lines
    }
    done = seq[-1]
    assert done["ok"] and done["entries"] == 3 and done["size"] == sum(x["bytes"] for x in r.lines)


def test_transcript_in_several_languages_is_one_item(xdl: Any, site: Any) -> None:
    r = xdl("transcript", "-l", "all", "--progress", "json", site.url("/watch.html"))
    assert r.exit_code == 0, r.stderr
    assert len(r.lines) >= 2
    (seq,) = check_items(events(r.stderr)).values()
    assert seq[-1]["entries"] == len(r.lines)
