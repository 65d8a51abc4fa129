"""What yt-dlp users type: -o with a template, --limit-rate, --download-archive,
--no-playlist, --print/-O, --auto-subs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from xdl.core.fetch import FetchOptions, ytdlp_params


def test_o_with_a_template_is_folder_plus_template(xdl: Any, site: Any) -> None:
    r = xdl("fetch", "-o", "got/%(title)s.%(ext)s", site.url("/watch.html"))
    assert r.exit_code == 0, r.stderr
    (line,) = r.lines
    assert Path(line["path"]) == Path.cwd() / "got" / f"{line['title']}.mp4"
    assert Path(line["path"]).is_file()
    assert not any("%(" in str(p) for p in Path.cwd().rglob("*"))


def test_o_with_only_a_template_writes_in_the_current_directory(xdl: Any, site: Any) -> None:
    r = xdl("fetch", "-o", "%(title)s.%(ext)s", site.url("/watch.html"))
    assert r.exit_code == 0, r.stderr
    assert [p.name for p in Path.cwd().iterdir()] == [f"{r.lines[0]['title']}.mp4"]


def test_o_template_with_t_too_is_a_usage_error(xdl: Any) -> None:
    r = xdl("fetch", "-o", "%(title)s.%(ext)s", "-t", "%(id)s.%(ext)s", "http://x.invalid/")
    assert r.exit_code == 2
    assert "--template" in r.stderr
    assert list(Path.cwd().iterdir()) == []


@pytest.mark.parametrize(
    ("args", "field", "value"),
    [
        (["--limit-rate", "2M"], "rate_limit", 2 * 1024**2),
        (["-r", "500K"], "rate_limit", 500 * 1024),
        (["--download-archive", "a.txt"], "archive", "a.txt"),
        (["--no-playlist"], "no_playlist", True),
        (["--auto-subs"], "auto_subs", True),
    ],
)
def test_aliases_reach_the_options(xdl: Any, args: list[str], field: str, value: Any) -> None:
    r = xdl("queue", "add", *args, "http://example.com/x")
    assert r.exit_code == 0, r.stderr
    shown = json.loads(xdl("queue", "status", "--json").stdout.splitlines()[0])
    options = shown.get("options") or {}
    got = options.get(field) if options else None
    if field == "archive":
        assert got and got.endswith(value)
    else:
        assert got == value


def test_no_playlist_and_auto_subs_reach_ytdlp() -> None:
    assert ytdlp_params(FetchOptions())["noplaylist"] is False
    assert ytdlp_params(FetchOptions(no_playlist=True))["noplaylist"] is True
    params = ytdlp_params(FetchOptions(auto_subs=True))
    assert params["writeautomaticsub"] is True and params["writesubtitles"] is False
    params = ytdlp_params(FetchOptions(subs=True))
    assert params["writesubtitles"] is True and params["writeautomaticsub"] is False


def test_print_replaces_the_json_line(xdl: Any, site: Any) -> None:
    r = xdl(
        "fetch",
        "-O",
        "path",
        "--print",
        "%(id)s: %(bytes)d bytes",
        site.url("/watch.html"),
        site.url("/404"),
    )
    assert r.exit_code == 1
    path, summary = r.stdout.splitlines()
    assert Path(path).is_file() and Path(path).parent == Path.cwd()
    assert summary == f"watch-1: {Path(path).stat().st_size} bytes"
    assert "404" in r.stderr  # the failed one is on stderr, not stdout
