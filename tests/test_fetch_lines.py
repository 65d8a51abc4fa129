"""What `fetch` lines carry onward, and names and tables a user reads (issue 21)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


def test_fetch_subs_pipes_into_to_markdown(xdl: Any, site: Any) -> None:
    fetched = xdl("fetch", "--subs", "-o", "out", site.url("/watch.html"))
    assert fetched.exit_code == 0, fetched.stderr
    r = xdl("to-markdown", input=fetched.stdout)
    assert r.exit_code == 0, r.stderr
    assert sorted(Path(x["output"]).name for x in r.lines) == [
        "Loopback Clip [watch-1].en.md",
        "Loopback Clip [watch-1].es.md",
    ]
    english = Path("out/Loopback Clip [watch-1].en.md").read_text()
    assert "Hello from the loopback site." in english
    assert not list(Path("out").glob("*.mp4.md"))


def test_a_fetch_line_without_subtitles_is_no_subtitles(xdl: Any, site: Any) -> None:
    fetched = xdl("fetch", "-o", "out", site.url("/nosubs.html"))
    assert fetched.exit_code == 0, fetched.stderr
    r = xdl("to-markdown", input=fetched.stdout)
    assert r.exit_code == 1
    (line,) = r.lines
    assert line["ok"] is False and line["error"]["code"] == "no_subtitles"
    assert line["path"] == fetched.lines[0]["path"]
    assert "Traceback" not in r.stderr
    assert [p.suffix for p in Path("out").iterdir()] == [".mp4"]


def test_a_page_with_one_video_keeps_its_title(xdl: Any, site: Any) -> None:
    r = xdl("fetch", "-o", "out", site.url("/nosubs.html"))
    assert r.exit_code == 0, r.stderr
    assert [p.name for p in Path("out").iterdir()] == ["Silent Clip [nosubs-1].mp4"]
    assert r.lines[0]["title"] == "Silent Clip"
    info = xdl("info", "--json", site.url("/nosubs.html"))
    assert info.lines[0]["title"] == "Silent Clip"


def test_the_formats_table_says_which_url_each_row_is_of(xdl: Any, site: Any) -> None:
    pages = [site.url("/watch.html"), site.url("/audio.html")]
    r = xdl("formats", "--table", *pages)
    assert r.exit_code == 0, r.stderr
    header, *rows = r.stdout.splitlines()
    assert header.split()[-1] == "URL"
    assert [row.split()[-1] for row in rows] == [pages[0], pages[1]]


def test_a_result_changed_by_but_is_the_one_dataclasses_replace_makes() -> None:
    import dataclasses

    from xdl.core.fetch.result import Attempt, FetchResult

    r = FetchResult(
        "https://a.example/x",
        True,
        path="/o/x",
        bytes=3,
        attempts=(Attempt("http", True, None, 0.1),),
    )
    changed = r.but(strategy="http", source="in", last_of_source=False)
    assert changed == dataclasses.replace(r, strategy="http", source="in", last_of_source=False)
    assert (changed.source, changed.last_of_source, r.strategy) == ("in", False, None)
    with pytest.raises(TypeError, match="no field nope"):
        r.but(nope=1)
