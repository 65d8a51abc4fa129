"""Every file in the line: `files` on fetch lines, archive-skipped lines with their path,
queue run lines with the media's id and the task number, clean `info --flat` URLs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from xdl.core.ytdlp import written_files


def on_disk(folder: Path) -> set[str]:
    return {str(p) for p in folder.rglob("*") if p.is_file()}


@pytest.mark.skipif(not shutil.which("ffmpeg"), reason="ffmpeg not installed")
def test_files_names_every_file_written_with_its_kind(xdl: Any, site: Any) -> None:
    r = xdl(
        "fetch",
        "-o",
        "out",
        "--subs",
        "--write-info-json",
        "-x",
        "--keep-video",
        site.url("/watch.html"),
    )
    assert r.exit_code == 0, r.stderr
    (line,) = r.lines
    files = line["files"]
    assert {f["path"] for f in files} == on_disk(Path("out").resolve())
    kinds = sorted(f["kind"] for f in files)
    assert kinds == ["audio", "info_json", "media", "subtitles", "subtitles"]
    assert files[0] == {"path": line["path"], "kind": "audio"}
    assert {f.get("lang") for f in files if f["kind"] == "subtitles"} == {"en", "es"}


def test_a_plain_file_lists_itself(xdl: Any, site: Any) -> None:
    r = xdl("fetch", "-o", "out", site.url("/files/report"))
    (line,) = r.lines
    assert line["files"] == [{"path": line["path"], "kind": "media"}]
    assert {line["path"]} == on_disk(Path("out").resolve())


def test_written_files_skips_what_is_not_on_disk(tmp_path: Path) -> None:
    media = tmp_path / "a.mp4"
    media.write_bytes(b"x")
    (tmp_path / "a.description").write_text("d")
    info = {
        "filepath": str(media),
        "requested_subtitles": {"en": {"filepath": str(tmp_path / "a.en.vtt")}},  # embedded
        "thumbnails": [{"url": "u"}, {"filepath": str(tmp_path / "gone.jpg")}],
    }
    assert written_files(info) == [
        {"path": str(media), "kind": "media"},
        {"path": str(tmp_path / "a.description"), "kind": "description"},
    ]


@pytest.mark.parametrize("page", ["/watch.html", "/files/report"])
def test_archive_skipped_lines_carry_the_path(xdl: Any, site: Any, page: str) -> None:
    first = xdl("fetch", "--archive", "done.txt", "-o", "one", site.url(page))
    (saved,) = first.lines
    second = xdl("fetch", "--download-archive", "done.txt", "-o", "two", site.url(page))
    (skipped,) = second.lines
    assert skipped["skipped"] == "archive" and skipped["path"] == saved["path"]
    Path(saved["path"]).unlink()
    (gone,) = xdl("fetch", "--archive", "done.txt", site.url(page)).lines
    assert gone["skipped"] == "archive" and gone["path"] is None


def test_queue_run_lines_keep_the_media_id_and_carry_the_task(xdl: Any, site: Any) -> None:
    xdl("queue", "add", "-o", "out", site.url("/watch.html"), site.url("/files/report"))
    ran = xdl("queue", "run")
    assert ran.exit_code == 0, ran.stderr
    rows = {r["task"]: r for r in ran.lines}
    assert sorted(rows) == [1, 2]
    assert rows[1]["id"] == "watch-1"
    assert rows[1]["files"] and rows[2]["files"][0]["path"] == rows[2]["path"]


def test_info_flat_prints_clean_entry_urls_and_feed_ids(xdl: Any, site: Any) -> None:
    r = xdl("info", "--flat", "--json", site.url("/feed.xml"))
    assert r.exit_code == 0, r.stderr
    assert [(x["url"], x["id"]) for x in r.lines] == [
        (site.url("/watch.html"), "ep1"),
        (site.url("/audio.html"), "ep2"),
        (site.url("/nosubs.html"), "ep3"),
    ]
    assert "smuggle" not in json.dumps(r.lines)
