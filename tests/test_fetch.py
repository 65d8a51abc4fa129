"""`xdl fetch` end to end on the loopback site: real yt-dlp, real ffmpeg, no internet."""

from __future__ import annotations

import hashlib
import json
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import media_site

MEDIA = Path(__file__).parent / "media"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha(path: str | Path) -> str:
    return sha(Path(path).read_bytes())


CLIP_SHA = file_sha(MEDIA / "clip-180p.mp4")
SLOW_BODY = media_site.BLOB[: 1024 * 1024]


@pytest.fixture(scope="module")
def routes(site: Any) -> Any:
    """Routes of our own: a slow file with an ETag (resumable) and a flaky page."""

    @site.route("/fetch/slow-etag.bin")
    def slow_etag(r: Any) -> None:
        r.send_bytes(
            SLOW_BODY,
            etag=media_site.etag_of(SLOW_BODY),
            rate=float(r.query.get("rate", 200 * 1024)),
            chunk=int(r.query.get("chunk", 16 * 1024)),
        )

    @site.route("/fetch/fast.bin")
    def fast(r: Any) -> None:
        r.send_bytes(SLOW_BODY, etag=media_site.etag_of(SLOW_BODY))

    return site


# -- choosing the downloader ------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["ytdlp", "youtube-dl", "http", "wget", "curl"])
def test_every_strategy_gives_identical_bytes(xdl: Any, site: Any, strategy: str) -> None:
    if strategy in ("wget", "curl") and not shutil.which(strategy):
        pytest.skip(f"{strategy} not installed")
    if strategy == "youtube-dl":
        pytest.importorskip("youtube_dl")
    url = site.url("/media/clip-180p.mp4")
    ran = xdl("fetch", "--strategy", strategy, "--no-fallback", "-o", "out", url)
    assert ran.exit_code == 0, ran.stderr
    (line,) = ran.lines
    assert line["strategy"] == strategy
    assert [a["strategy"] for a in line["attempts"]] == [strategy]
    assert line["sha256"] == CLIP_SHA == file_sha(line["path"])
    assert Path(line["path"]).parent == Path("out").resolve()


def test_a_page_with_a_video_goes_through_ytdlp(xdl: Any, site: Any) -> None:
    ran = xdl("fetch", site.url("/watch.html"))
    assert ran.exit_code == 0, ran.stderr
    (line,) = ran.lines
    assert line["ok"] is True and line["strategy"] == "ytdlp"
    assert line["path"].endswith(".mp4") and line["title"] and line["id"] and line["extractor"]
    assert line["sha256"] == CLIP_SHA == file_sha(line["path"])
    assert line["bytes"] == Path(line["path"]).stat().st_size
    assert not list(Path.cwd().glob("*.part"))


def test_a_pdf_goes_straight_to_http_under_its_real_name(xdl: Any, site: Any) -> None:
    site.clear_log()
    ran = xdl("fetch", site.url("/files/report"))
    assert ran.exit_code == 0, ran.stderr
    (line,) = ran.lines
    assert line["strategy"] == "http" and len(line["attempts"]) == 1
    assert Path(line["path"]).name == "Quarterly Report.pdf"
    assert Path("Quarterly Report.pdf").read_bytes() == media_site.PDF
    assert line["sha256"] == sha(media_site.PDF)
    assert not list(Path.cwd().glob("*unknown_video*"))
    assert len(site.requests("/files/report")) == 1  # the probe's GET is the download


def test_a_direct_media_file_is_saved_like_a_file(xdl: Any, site: Any) -> None:
    """A bare .mp4 needs nothing from yt-dlp: one request, its real name, yt-dlp as fallback."""
    site.clear_log()
    ran = xdl("fetch", "-o", "out", site.url("/media/clip-180p.mp4"))
    assert ran.exit_code == 0, ran.stderr
    (line,) = ran.lines
    assert line["strategy"] == "http" and len(line["attempts"]) == 1
    assert Path(line["path"]) == Path("out/clip-180p.mp4").resolve()
    assert file_sha(line["path"]) == CLIP_SHA
    assert len(site.requests("/media/clip-180p.mp4")) == 1


@pytest.mark.parametrize("option", [["--template", "%(id)s.%(ext)s"], ["--embed-metadata"]])
def test_a_direct_media_file_with_ytdlp_options_goes_through_ytdlp(
    xdl: Any, site: Any, option: list[str]
) -> None:
    ran = xdl("fetch", "-o", "out", *option, site.url("/media/clip-180p.mp4"))
    assert ran.exit_code == 0, ran.stderr
    (line,) = ran.lines
    assert line["strategy"] == "ytdlp"
    assert line["attempts"][0]["strategy"] == "ytdlp"


def test_a_page_without_media_falls_back_and_says_why(xdl: Any, site: Any) -> None:
    ran = xdl("fetch", site.url("/nomedia.html"))
    assert ran.exit_code == 0, ran.stderr
    (line,) = ran.lines
    first, *middle, last = line["attempts"]
    assert first["strategy"] == "ytdlp" and first["ok"] is False
    assert first["error"].startswith("unsupported_url")
    assert [a["strategy"] for a in middle] in ([], ["youtube-dl"])  # when it is installed
    assert last == {**last, "strategy": "http", "ok": True}
    assert line["strategy"] == "http"
    assert Path(line["path"]).read_bytes() == media_site.PAGES["/nomedia.html"].encode()


def test_404_fails_fast_without_wget_or_curl(xdl: Any, site: Any) -> None:
    site.clear_log()
    ran = xdl("fetch", site.url("/404"))
    assert ran.exit_code == 1
    (line,) = ran.lines
    assert line["ok"] is False and line["error"]["code"] == "not_found"
    assert [a["strategy"] for a in line["attempts"]] == ["http"]
    assert len(site.requests("/404")) == 1
    assert "404" in ran.stderr


def test_forced_http_404_stops_the_chain(xdl: Any, site: Any) -> None:
    ran = xdl("fetch", "--strategy", "http", site.url("/404"))
    (line,) = ran.lines
    assert [a["strategy"] for a in line["attempts"]] == ["http"]
    assert line["error"]["code"] == "not_found"


def test_a_fallback_keeps_the_http_part_for_resuming(xdl: Any, site: Any) -> None:
    if not shutil.which("curl"):
        pytest.skip("curl not installed")
    url = site.url("/files/blob.bin")
    Path("blob.bin.part").write_bytes(media_site.BLOB[:1000])
    Path("blob.bin.part.meta").write_text(json.dumps({"etag": '"elsewhere"'}))
    ran = xdl("fetch", "--strategy", "curl", url)
    assert ran.exit_code == 0, ran.stderr
    assert file_sha("blob.bin") == sha(media_site.BLOB)
    assert sorted(p.name for p in Path.cwd().iterdir()) == ["blob.bin"]  # no leftovers


def test_audio_with_a_file_downloader_is_refused(xdl: Any, site: Any) -> None:
    ran = xdl("fetch", "--audio", "--strategy", "http", site.url("/watch.html"))
    assert ran.exit_code == 1
    assert ran.lines[0]["error"]["code"] == "bad_input"
    assert list(Path.cwd().iterdir()) == []


# -- audio ------------------------------------------------------------------------------


def test_audio_gives_a_file_ffprobe_reads_as_audio(xdl: Any, site: Any) -> None:
    if not shutil.which("ffprobe"):
        pytest.skip("ffprobe not installed")
    ran = xdl("fetch", "-x", "--audio-format", "mp3", "-o", "music", site.url("/watch.html"))
    assert ran.exit_code == 0, ran.stderr
    (line,) = ran.lines
    assert line["path"].endswith(".mp3") and Path(line["path"]).exists()
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-of", "json", line["path"]],
        capture_output=True,
        check=True,
    )
    kinds = {s["codec_type"] for s in json.loads(probe.stdout)["streams"]}
    assert kinds == {"audio"}
    assert not list(Path("music").glob("*.mp4"))  # the video is not kept


def test_audio_without_ffmpeg_exits_3_before_downloading(
    xdl: Any, site: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    site.clear_log()
    ran = xdl("fetch", "--audio", site.url("/watch.html"))
    assert ran.exit_code == 3
    assert "ffmpeg" in ran.stderr and "install" in ran.stderr
    assert ran.stdout == ""
    assert site.requests("/watch.html") == []


# -- resume -------------------------------------------------------------------------------


def test_a_dropped_download_resumes_with_range_and_if_range(xdl: Any, site: Any) -> None:
    site.clear_log()
    ran = xdl("fetch", site.url("/files/drop.bin?key=resume-test"))
    assert ran.exit_code == 0, ran.stderr
    (line,) = ran.lines
    assert line["sha256"] == sha(media_site.BLOB) == file_sha("drop.bin")
    assert line["resumed_from"] and 0 < line["resumed_from"] < len(media_site.BLOB)
    ranged = [r for r in site.requests("/files/drop.bin") if "Range" in r.headers]
    assert ranged, "no Range request was made"
    assert ranged[0].headers["Range"] == f"bytes={line['resumed_from']}-"
    assert ranged[0].headers["If-Range"] == media_site.etag_of(media_site.BLOB)
    assert not Path("drop.bin.part").exists() and not Path("drop.bin.part.meta").exists()


def test_a_changed_etag_restarts_from_zero(xdl: Any, site: Any) -> None:
    site.state["version"] = 0
    url = site.url("/files/changing.bin")
    first = xdl("fetch", "--strategy", "http", "--no-fallback", "--retries", "0", url)
    assert first.exit_code == 1
    assert Path("changing.bin.part").stat().st_size > 0  # kept for resuming
    assert not Path("changing.bin").exists()
    site.state["version"] = 1
    site.clear_log()
    second = xdl("fetch", "--strategy", "http", url)
    assert second.exit_code == 0, second.stderr
    (line,) = second.lines
    new = media_site.make_bytes(len(media_site.BLOB), 101)
    assert file_sha("changing.bin") == sha(new) == line["sha256"]
    assert line["resumed_from"] is None
    (ranged,) = [r for r in site.requests("/files/changing.bin") if "Range" in r.headers]
    assert ranged.headers["If-Range"] != media_site.etag_of(new)
    assert ranged.status == 200  # the server said: changed, here is all of it


def test_a_server_without_ranges_restarts_cleanly(xdl: Any, site: Any) -> None:
    Path("norange.bin.part").write_bytes(b"stale bytes that must not survive")
    Path("norange.bin.part.meta").write_text(
        json.dumps({"url": site.url("/files/norange.bin"), "etag": '"old"'})
    )
    ran = xdl("fetch", site.url("/files/norange.bin"))
    assert ran.exit_code == 0, ran.stderr
    assert file_sha("norange.bin") == sha(media_site.BLOB)
    assert ran.lines[0]["resumed_from"] is None


# -- batches ------------------------------------------------------------------------------


def test_a_batch_of_ten_with_two_bad_urls(xdl: Any, site: Any) -> None:
    urls = [site.url(f"/slow?delay=0&name=item{i}.txt") for i in range(8)]
    urls[3:3] = [site.url("/404"), "file:///etc/passwd"]
    ran = xdl("fetch", "-j", "4", "-o", "batch", input="\n".join(urls) + "\n")
    assert ran.exit_code == 1
    ok = [x for x in ran.lines if x["ok"]]
    failed = [x for x in ran.lines if not x["ok"]]
    assert len(ok) == 8 and len(failed) == 2
    assert {x["error"]["code"] for x in failed} == {"not_found", "unsupported_url"}
    assert sorted(p.name for p in Path("batch").iterdir()) == [f"item{i}.txt" for i in range(8)]


def test_jobs_really_overlap(xdl: Any, site: Any) -> None:
    site.clear_log()
    urls = [site.url(f"/slow?delay=1&name=overlap{i}.txt") for i in range(4)]
    ran = xdl("fetch", "-j", "4", *urls)
    assert ran.exit_code == 0, ran.stderr
    log = site.requests("/slow")
    assert len(log) == 4
    latest_start = max(r.start for r in log)
    earliest_end = min(r.end for r in log)
    assert latest_start < earliest_end  # all four were in flight at once


def test_rate_limit_is_one_budget_for_all_jobs(xdl: Any, routes: Any) -> None:
    urls = [routes.url(f"/fetch/fast.bin?n={i}") for i in range(2)]
    began = time.monotonic()
    ran = xdl("fetch", "-j", "2", "-r", "1M", "-o", "a", urls[0], "-o", "a", urls[1])
    elapsed = time.monotonic() - began
    assert ran.exit_code in (0, 1), ran.stderr
    # two downloads of 1 MiB under one 1 MiB/s budget take 2 s at least (-15%)
    total = sum(x["bytes"] or 0 for x in ran.lines if x["ok"] and not x["skipped"])
    assert total == 1024 * 1024 or total == 2 * 1024 * 1024
    assert elapsed >= 0.85 * total / (1024 * 1024)


def test_rate_limit_holds_a_single_download(xdl: Any, routes: Any) -> None:
    began = time.monotonic()
    ran = xdl("fetch", "-r", "512K", routes.url("/fetch/fast.bin?n=single"))
    elapsed = time.monotonic() - began
    assert ran.exit_code == 0, ran.stderr
    assert elapsed >= 0.85 * (1024 * 1024) / (512 * 1024)


def test_rate_limit_holds_the_ytdlp_tier_too(xdl: Any, routes: Any) -> None:
    @routes.route("/fetch/big.mp4")
    def big_mp4(r: Any) -> None:
        r.send_bytes(SLOW_BODY, "video/mp4", etag=media_site.etag_of(SLOW_BODY))

    began = time.monotonic()
    ran = xdl("fetch", "--strategy", "ytdlp", "-r", "512K", routes.url("/fetch/big.mp4"))
    elapsed = time.monotonic() - began
    assert ran.exit_code == 0, ran.stderr
    assert ran.lines[0]["strategy"] == "ytdlp" and ran.lines[0]["bytes"] == len(SLOW_BODY)
    assert elapsed >= 0.85 * len(SLOW_BODY) / (512 * 1024)


def test_sleep_spaces_requests_to_one_host(xdl: Any, site: Any) -> None:
    site.clear_log()
    urls = [site.url(f"/slow?delay=0&name=paced{i}.txt") for i in range(2)]
    ran = xdl("fetch", "-j", "2", "--sleep", "1", *urls)
    assert ran.exit_code == 0, ran.stderr
    starts = sorted(r.start for r in site.requests("/slow"))
    assert starts[1] - starts[0] >= 0.9


# -- safety -------------------------------------------------------------------------------


def test_traversal_names_stay_inside(xdl: Any, site: Any) -> None:
    ran = xdl("fetch", "-o", "inside", site.url("/files/evil"))
    assert ran.exit_code == 0, ran.stderr
    assert Path(ran.lines[0]["path"]) == (Path("inside") / "evil.sh").resolve()
    assert not (Path.cwd().parent / "evil.sh").exists()
    assert not Path("evil.sh").exists()


def test_a_template_that_escapes_is_refused(xdl: Any, site: Any) -> None:
    ran = xdl("fetch", "-t", "../%(title)s.%(ext)s", "-o", "out", site.url("/watch.html"))
    assert ran.exit_code == 1
    assert ran.lines[0]["error"]["code"] == "bad_input"
    assert not list(Path.cwd().parent.glob("*.mp4"))


def test_existing_files_are_skipped_unless_overwrite(xdl: Any, site: Any) -> None:
    url = site.url("/files/blob.bin")
    assert xdl("fetch", url).exit_code == 0
    Path("blob.bin").write_bytes(b"mine")
    again = xdl("fetch", url)
    assert again.exit_code == 0 and again.lines[0]["skipped"] == "exists"
    assert Path("blob.bin").read_bytes() == b"mine"
    forced = xdl("fetch", "--overwrite", url)
    assert forced.lines[0]["skipped"] is None
    assert file_sha("blob.bin") == sha(media_site.BLOB)


def test_existing_media_is_skipped(xdl: Any, site: Any) -> None:
    first = xdl("fetch", site.url("/watch.html"))
    assert first.lines[0]["skipped"] is None
    again = xdl("fetch", site.url("/watch.html"))
    assert again.exit_code == 0
    assert again.lines[0]["skipped"] == "exists"
    assert again.lines[0]["path"] == first.lines[0]["path"]


def test_existing_audio_is_skipped(xdl: Any, site: Any) -> None:
    first = xdl("fetch", "-x", "--audio-format", "mp3", site.url("/watch.html"))
    assert first.lines[0]["skipped"] is None, first.stderr
    site.clear_log()
    again = xdl("fetch", "-x", "--audio-format", "mp3", site.url("/watch.html"))
    assert again.lines[0]["skipped"] == "exists"
    assert site.requests("/media/clip-180p.mp4") == []  # nothing downloaded again


def test_sha256_mismatch_removes_the_file(xdl: Any, site: Any) -> None:
    ran = xdl("fetch", "--sha256", "0" * 64, site.url("/files/report"))
    assert ran.exit_code == 1
    assert ran.lines[0]["error"]["code"] == "checksum_mismatch"
    assert list(Path.cwd().iterdir()) == []


def test_sha256_from_a_json_input_line(xdl: Any, site: Any) -> None:
    good = json.dumps({"url": site.url("/files/report"), "sha256": sha(media_site.PDF)})
    bad = json.dumps({"url": site.url("/files/blob.bin"), "sha256": "f" * 64})
    ran = xdl("fetch", input=f"{good}\n{bad}\n")
    assert ran.exit_code == 1
    by_url = {x["url"]: x for x in ran.lines}
    assert by_url[site.url("/files/report")]["ok"] is True
    assert by_url[site.url("/files/blob.bin")]["error"]["code"] == "checksum_mismatch"
    assert not Path("blob.bin").exists()


def test_template_and_audio_from_json_input_lines(xdl: Any, site: Any) -> None:
    lines = [
        {"url": site.url("/watch.html"), "template": "custom-%(id)s.%(ext)s"},
        {"url": site.url("/nosubs.html"), "audio": True},
    ]
    ran = xdl("fetch", "-o", "j", input="".join(json.dumps(x) + "\n" for x in lines))
    assert ran.exit_code == 0, ran.stderr
    by_url = {x["url"]: x for x in ran.lines}
    assert Path(by_url[site.url("/watch.html")]["path"]).name.startswith("custom-")
    audio = Path(by_url[site.url("/nosubs.html")]["path"])
    assert audio.suffix in (".m4a", ".mp3", ".opus", ".aac") and audio.exists()


def test_max_size_refuses_before_downloading(xdl: Any, site: Any) -> None:
    ran = xdl("fetch", "--max-size", "1M", site.url("/files/blob.bin"))
    assert ran.exit_code == 1
    assert ran.lines[0]["error"]["code"] == "too_large"
    assert list(Path.cwd().iterdir()) == []


def test_no_space_is_checked_before_starting(
    xdl: Any, site: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**9, 10**9, 1000)
    )
    ran = xdl("fetch", site.url("/files/blob.bin"))
    assert ran.exit_code == 1
    assert ran.lines[0]["error"]["code"] == "no_space"
    assert not Path("blob.bin").exists()


def test_unwritable_output_dir_exits_3(xdl: Any, site: Any, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    ran = xdl("fetch", "-o", str(blocker / "sub"), site.url("/files/report"))
    assert ran.exit_code == 3
    assert "output directory" in ran.stderr


# -- archive, dry run, playlists ----------------------------------------------------------


def test_the_archive_skips_on_a_second_run(xdl: Any, site: Any) -> None:
    urls = [site.url("/files/report"), site.url("/watch.html")]
    first = xdl("fetch", "--archive", "done.txt", "-o", "one", *urls)
    assert first.exit_code == 0, first.stderr
    assert all(x["skipped"] is None for x in first.lines)
    lines = Path("done.txt").read_text().splitlines()
    assert f"url {urls[0]}" in lines
    assert any(line.startswith("html5mediaembed ") for line in lines)
    second = xdl("fetch", "--archive", "done.txt", "-o", "two", *urls)
    assert second.exit_code == 0
    assert [x["skipped"] for x in second.lines] == ["archive", "archive"]
    assert not Path("two").exists() or list(Path("two").iterdir()) == []


def test_an_archive_line_left_unfinished_is_not_joined_to_the_next(xdl: Any, site: Any) -> None:
    """An archive whose last line has no newline (an editor, a full disk before): the new
    entry goes on a line of its own, and both still count."""
    Path("done.txt").write_text("youtube abc123")  # no newline
    url = site.url("/files/report")
    ran = xdl("fetch", "--archive", "done.txt", "-o", "one", url)
    assert ran.exit_code == 0, ran.stderr
    assert Path("done.txt").read_text().splitlines() == ["youtube abc123", f"url {url}"]


def test_a_write_cut_short_leaves_no_half_line(tmp_path: Path, monkeypatch: Any) -> None:
    """A full disk that takes part of a line: the part is taken back, the error is a
    clear one, and the archive is as it was (no half entry to join the next)."""
    import os

    from xdl.core import archive, errors

    path = tmp_path / "done.txt"
    path.write_text("url https://a.example/1\n")
    real = os.write
    monkeypatch.setattr(archive.os, "write", lambda fd, data: real(fd, data[:7]))
    with pytest.raises(errors.OutputNotWritable, match="No space left"):
        archive.Archive(path).add("url https://a.example/2")
    monkeypatch.undo()
    assert path.read_text() == "url https://a.example/1\n"
    archive.Archive(path).add("url https://a.example/3")
    assert path.read_text().splitlines() == ["url https://a.example/1", "url https://a.example/3"]


def test_links_and_fifos_at_the_archive_s_files(xdl_cmd: Any, site: Any, tmp_path: Path) -> None:
    """The sidecar (`FILE.paths`, xdl's own) is never written through a link planted
    there; a FIFO where the archive is read is refused at once, not waited on."""
    import os

    precious = tmp_path / "precious.txt"
    precious.write_text("mine\n")
    Path("done.txt.paths").symlink_to(precious)
    url = site.url("/files/report")
    ran = xdl_cmd("fetch", "--archive", "done.txt", "-o", "one", url, timeout=60)
    assert ran.exit_code == 3 and "archive" in ran.stderr, (ran.stdout, ran.stderr)
    assert precious.read_text() == "mine\n"
    os.mkfifo("fifo.txt")
    ran = xdl_cmd("fetch", "--archive", "fifo.txt", "-o", "two", url, timeout=60)
    assert ran.exit_code == 3 and "not a regular file" in ran.stderr, ran.stderr


def test_dry_run_downloads_nothing(xdl: Any, site: Any) -> None:
    ran = xdl("fetch", "--dry-run", site.url("/files/report"), site.url("/watch.html"))
    assert ran.exit_code == 0, ran.stderr
    assert all(x["dry_run"] is True for x in ran.lines)
    assert Path(ran.lines[0]["path"]).name == "Quarterly Report.pdf"
    assert ran.lines[1]["path"].endswith(".mp4")
    assert list(Path.cwd().iterdir()) == []


def test_a_playlist_gives_one_line_per_entry(xdl: Any, site: Any) -> None:
    ran = xdl("fetch", "-o", "pod", site.url("/feed.xml"))
    assert ran.exit_code == 0, ran.stderr
    assert [x["playlist_index"] for x in ran.lines] == [1, 2, 3]
    assert {x["playlist"] for x in ran.lines} == {"Loopback Podcast"}
    assert all(Path(x["path"]).exists() for x in ran.lines)
    assert ran.lines[0]["url"] == site.url("/watch.html")


def test_a_broken_playlist_entry_does_not_stop_the_others(xdl: Any, site: Any) -> None:
    # a path no other test serves (test_transcript adds a /gone.html to the shared site)
    feed = media_site.FEED.replace("{base}/audio.html", "{base}/fetch/never-served.html")

    @site.route("/fetch/broken-feed.xml")
    def broken_feed(r: Any) -> None:
        r.send_bytes(feed.replace("{base}", site.base).encode(), "application/rss+xml")

    ran = xdl("fetch", "-o", "pod", site.url("/fetch/broken-feed.xml"))
    assert ran.exit_code == 1
    ok = [x for x in ran.lines if x["ok"]]
    failed = [x for x in ran.lines if not x["ok"]]
    assert [x["playlist_index"] for x in ok] == [1, 3]
    (bad,) = failed
    assert bad["error"]["code"] == "not_found" and bad["playlist"] == "Loopback Podcast"
    assert sorted(p.suffix for p in Path("pod").iterdir()) == [".mp4", ".mp4"]


def test_non_network_schemes_are_refused(xdl: Any) -> None:
    ran = xdl("fetch", "file:///etc/passwd", "javascript:alert(1)")
    assert ran.exit_code == 1
    assert [x["ok"] for x in ran.lines] == [False, False]
    assert list(Path.cwd().iterdir()) == []


# -- signals (real processes) -------------------------------------------------------------


def _start(args: list[str], cwd: Path) -> subprocess.Popen[bytes]:
    exe = Path(sys.executable).parent / "xdl"
    return subprocess.Popen(
        [str(exe), "fetch", *args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _wait_for_part(path: Path, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and proc.poll() is None:
        if path.exists() and path.stat().st_size >= 64 * 1024:
            return
        time.sleep(0.05)
    raise AssertionError("the download never started")


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_keeps_a_resumable_part(routes: Any, sig: int, code: int) -> None:
    work = Path.cwd()
    url = routes.url(f"/fetch/slow-etag.bin?sig={int(sig)}")
    proc = _start(["--strategy", "http", url], work)
    _wait_for_part(work / "slow-etag.bin.part", proc)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == code, err.decode()
    (line,) = [json.loads(x) for x in out.decode().splitlines()]
    assert line["ok"] is False and line["error"]["code"] == "interrupted"
    kept = (work / "slow-etag.bin.part").stat().st_size
    assert 0 < kept < len(SLOW_BODY)
    assert not (work / "slow-etag.bin").exists()
    again = _start(["--strategy", "http", url.replace("?", "?rate=100000000&")], work)
    out, err = again.communicate(timeout=60)
    assert again.returncode == 0, err.decode()
    (done,) = [json.loads(x) for x in out.decode().splitlines()]
    assert done["resumed_from"] and done["resumed_from"] >= kept
    assert done["sha256"] == sha(SLOW_BODY) == file_sha(work / "slow-etag.bin")


def _interrupted_at_once(proc: subprocess.Popen[bytes], within: float = 10) -> dict[str, Any]:
    """SIGINT now: xdl ends within `within` seconds (not its 60 s read timeout), exit 130,
    with one line that says `interrupted`."""
    proc.send_signal(signal.SIGINT)
    sent = time.monotonic()
    out, err = proc.communicate(timeout=90)
    assert time.monotonic() - sent < within, "waited for the read timeout"
    assert proc.returncode == 130, err.decode()
    (line,) = [json.loads(x) for x in out.decode().splitlines()]
    assert line["ok"] is False and line["error"]["code"] == "interrupted"
    return dict(line)


def test_a_signal_mid_trickle_stops_without_waiting_for_the_next_bytes(routes: Any) -> None:
    """A body that trickles (1 KiB every half second): Ctrl-C stops xdl with what came so
    far, not once a read's worth (64 KiB: 32 s) has come."""
    work = Path.cwd()
    url = routes.url("/fetch/slow-etag.bin?rate=2048&chunk=1024")
    proc = _start(["--strategy", "http", url], work)
    part = work / "slow-etag.bin.part"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not (part.exists() and part.stat().st_size):
        time.sleep(0.05)
    _interrupted_at_once(proc, within=12)  # not after a read's worth of the body
    kept = part.read_bytes()
    assert 0 < len(kept) < 64 * 1024 and kept == SLOW_BODY[: len(kept)]


@pytest.mark.parametrize("length", ["Content-Length", "none", "chunked"])
def test_a_signal_while_the_connection_sends_nothing_stops_at_once(
    routes: Any, length: str
) -> None:
    """The server sends 5,000 bytes and then nothing at all: Ctrl-C stops xdl at once,
    not after the read timeout (60 s here), and the end of the connection that the stop
    makes is never taken for the end of a body that has no length: the line says
    `interrupted`, NAME is not written, the `.part` holds the bytes that came."""
    first = SLOW_BODY[:5000]
    released = threading.Event()

    @routes.route(f"/fetch/stall-{length}.bin")
    def stall(r: Any) -> None:
        r.send_response(200)
        r.send_header("Content-Type", "application/octet-stream")
        if length == "Content-Length":
            r.send_header("Content-Length", str(len(SLOW_BODY)))
        elif length == "chunked":
            r.send_header("Transfer-Encoding", "chunked")
        else:
            r.send_header("Connection", "close")
            r.close_connection = True
        r.end_headers()
        r.wfile.write(b"%x\r\n%s\r\n" % (len(first), first) if length == "chunked" else first)
        r.wfile.flush()
        released.wait(90)

    work = Path.cwd()
    name = f"stall-{length}.bin"
    proc = _start(["--strategy", "http", "--timeout", "60", routes.url(f"/fetch/{name}")], work)
    part = work / (name + ".part")
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (part.exists() and part.stat().st_size):
            time.sleep(0.05)
        time.sleep(0.3)  # the read is waiting now
        _interrupted_at_once(proc)
    finally:
        released.set()
    assert not (work / name).exists()
    assert part.read_bytes() == first


@pytest.mark.parametrize("strategy", ["http", "auto", "ytdlp"])
def test_a_signal_before_the_server_answers_stops_at_once(routes: Any, strategy: str) -> None:
    """A server that takes the request and never answers: Ctrl-C stops xdl at once (it
    waited out the read timeout, 60 s here, and then said `timeout`; yt-dlp's own
    request, 20 s), the line says `interrupted`, and nothing is written."""
    work = Path.cwd()
    url = routes.url(f"/hang?delay=60&s={strategy}")
    proc = _start(["--strategy", strategy, "--timeout", "60", url], work)
    deadline = time.monotonic() + 30
    while not any(f"s={strategy}" in r.path for r in routes.requests("/hang")):
        assert time.monotonic() < deadline and proc.poll() is None, "the request never came"
        time.sleep(0.05)
    _interrupted_at_once(proc)
    assert list(work.iterdir()) == []


@pytest.mark.parametrize("name", ["stream.m3u8", "noext", "feed.xml", "page.html"])
def test_a_signal_while_xdl_sniffs_a_silent_body_stops_at_once(routes: Any, name: str) -> None:
    """The first bytes xdl reads to tell a stream or a feed (of a URL named like one, or
    served as text) never come, or the page yt-dlp reads stalls: Ctrl-C stops it at
    once, not after the read timeout."""
    released = threading.Event()

    @routes.route(f"/fetch/sniff/{name}")
    def sniff(r: Any) -> None:
        r.send_response(200)
        r.send_header("Content-Type", "text/html" if name.endswith(".html") else "text/plain")
        r.send_header("Content-Length", "100000")
        r.end_headers()
        r.wfile.write(b"#")
        r.wfile.flush()
        released.wait(90)

    work = Path.cwd()
    proc = _start(["--timeout", "60", routes.url(f"/fetch/sniff/{name}")], work)
    try:
        deadline = time.monotonic() + 30
        while not routes.requests(f"/fetch/sniff/{name}"):
            assert time.monotonic() < deadline and proc.poll() is None, "no request came"
            time.sleep(0.05)
        time.sleep(0.5)  # the read is waiting now
        _interrupted_at_once(proc)
    finally:
        released.set()
    assert not (work / name).exists()


def test_progress_bars_appear_at_a_terminal(routes: Any) -> None:
    """stderr at a tty gets tqdm bars (even a pty that says it is 0x0); stdout (a pipe)
    still gets only the JSON line."""
    import os
    import pty

    master, slave = pty.openpty()
    seen = bytearray()

    def drain() -> None:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                return
            if not chunk:
                return
            seen.extend(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    exe = Path(sys.executable).parent / "xdl"
    url = routes.url("/fetch/slow-etag.bin?rate=1000000&bars=1")
    proc = subprocess.Popen(
        [str(exe), "fetch", url], stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL
    )
    os.close(slave)
    out, _ = proc.communicate(timeout=60)
    reader.join(timeout=5)
    os.close(master)
    assert proc.returncode == 0
    assert b"slow-etag.bin" in seen and b"B/s" in seen
    assert [json.loads(x)["ok"] for x in out.decode().splitlines()] == [True]


def test_a_signal_mid_ytdlp_keeps_its_part_and_the_next_run_resumes(routes: Any) -> None:
    @routes.route("/fetch/slow.mp4")
    def slow_mp4(r: Any) -> None:
        rate = float(routes.state.get("slow-mp4-rate", 200 * 1024))
        r.send_bytes(
            SLOW_BODY, "video/mp4", etag=media_site.etag_of(SLOW_BODY), rate=rate, chunk=16384
        )

    work = Path.cwd()
    proc = _start(["--strategy", "ytdlp", routes.url("/fetch/slow.mp4")], work)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not [
        p for p in work.glob("*.part") if p.stat().st_size >= 64 * 1024
    ]:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err.decode()
    (line,) = [json.loads(x) for x in out.decode().splitlines()]
    assert line["error"]["code"] == "interrupted"
    (part,) = work.glob("*.mp4.part")
    assert 0 < part.stat().st_size < len(SLOW_BODY)
    routes.clear_log()
    routes.state["slow-mp4-rate"] = 50_000_000  # the same URL: a .part is only its source's
    again = _start(["--strategy", "ytdlp", routes.url("/fetch/slow.mp4")], work)
    out, err = again.communicate(timeout=60)
    assert again.returncode == 0, err.decode()
    (done,) = [json.loads(x) for x in out.decode().splitlines()]
    assert done["sha256"] == sha(SLOW_BODY) == file_sha(done["path"])
    assert any("Range" in r.headers for r in routes.requests("/fetch/slow.mp4"))
    assert not list(work.glob("*.part"))


def test_processes_sharing_an_archive_never_corrupt_it(site: Any) -> None:
    work = Path.cwd()
    lists = [[site.url(f"/slow?delay=0&name=p{n}-{i}.txt") for i in range(10)] for n in range(3)]
    procs = [
        _start(["-j", "3", "--archive", "shared.txt", "-o", f"out{n}", *urls], work)
        for n, urls in enumerate(lists)
    ]
    for proc in procs:
        proc.communicate(timeout=120)
        assert proc.returncode == 0
    lines = (work / "shared.txt").read_text().splitlines()
    assert sorted(lines) == sorted(f"url {u}" for urls in lists for u in urls)


def test_an_interrupt_reports_every_unfinished_input(routes: Any) -> None:
    work = Path.cwd()
    urls = [routes.url(f"/fetch/slow-etag.bin?n={i}") for i in range(3)]
    (work / "list.txt").write_text(routes.url("/fetch/slow-etag.bin?n=file") + "\n")
    proc = _start(["-j", "1", "-o", "many", "-a", "list.txt", *urls], work)
    _wait_for_part(work / "many" / "slow-etag.bin.part", proc)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err.decode()
    lines = [json.loads(x) for x in out.decode().splitlines()]
    assert [x["error"]["code"] for x in lines] == ["interrupted"] * 4
    assert sorted(x["url"] for x in lines) == sorted(
        [*urls, routes.url("/fetch/slow-etag.bin?n=file")]
    )


def test_a_feed_entry_is_filed_under_the_show_its_json_line_names(xdl: Any, site: Any) -> None:
    """`info --flat FEED | fetch --profile podcast`: yt-dlp, given an entry's own URL, does
    not know its show; the JSON line does, and the folder is named after it."""
    line = {"url": site.url("/watch.html"), "playlist": "Loopback Podcast"}
    template = "%(playlist_title,playlist,webpage_url_domain|x)s/%(title)s.%(ext)s"
    ran = xdl("fetch", "-o", "pod", "--template", template, input=json.dumps(line) + "\n")
    assert ran.exit_code == 0, ran.stderr
    path = Path(ran.lines[0]["path"])
    assert path.parent.name == "Loopback Podcast" and path.exists()
    ran = xdl("fetch", "-o", "pod2", "--template", template, site.url("/watch.html"))
    assert Path(ran.lines[0]["path"]).parent.name != "Loopback Podcast"


def test_a_page_whose_video_yt_dlp_cannot_get_is_not_saved_as_the_media(
    xdl: Any, site: Any
) -> None:
    """yt-dlp found a video on the page and could not download it (403): the page itself
    is never the result (SPEC §5a: no page saved for an extract that failed)."""
    from media_site import video_page

    page = video_page("Locked Clip", [], []).replace("<video", '<video src="/locked/clip.mp4"', 1)
    site.route("/locked/page.html")(lambda r: r.send_bytes(page.encode(), "text/html"))
    site.route("/locked/clip.mp4")(lambda r: r.send_bytes(b"no\n", "text/plain", status=403))
    ran = xdl("fetch", "--retries", "0", "-o", "out", site.url("/locked/page.html"))
    assert ran.exit_code == 1, ran.stderr
    (line,) = ran.lines
    assert line["ok"] is False and line["error"]["code"] == "http_error"
    assert [a["strategy"] for a in line["attempts"]] == ["ytdlp"]
    assert not Path("out").exists() or not any(Path("out").iterdir())


def test_a_netrc_login_goes_with_every_request_to_its_host(
    xdl: Any, site: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    """~/.netrc (or $NETRC) is looked up once per host and command, not per request: the
    login still goes with each of a batch's requests, and the next command in the same
    process reads the file again (a login changed, or removed)."""
    import base64

    def basic(user: str, password: str) -> str:
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login ann password s3cret\n")
    monkeypatch.setenv("NETRC", str(netrc))
    site.clear_log()
    urls = [site.url("/files/blob.bin"), site.url("/files/report")]
    ran = xdl("fetch", "-o", "one", *urls)
    assert ran.exit_code == 0, ran.stderr
    sent = [r.headers.get("Authorization") for r in site.log]
    assert sent == [basic("ann", "s3cret")] * 2
    netrc.write_text("machine 127.0.0.1 login bob password pw2\n")  # the login changed
    site.clear_log()
    assert xdl("fetch", "-o", "two", urls[0]).exit_code == 0
    assert [r.headers.get("Authorization") for r in site.log] == [basic("bob", "pw2")]
    netrc.unlink()  # and went
    site.clear_log()
    assert xdl("fetch", "-o", "three", urls[0]).exit_code == 0
    assert [r.headers.get("Authorization") for r in site.log] == [None]


def test_an_output_folder_removed_during_a_batch_is_made_again(site: Any, tmp_path: Path) -> None:
    """The folder is checked once a batch, not once a file: one removed meanwhile is
    made again for the next file, as it was when each file checked it."""
    from xdl.core.fetch import FetchOptions, fetch_many
    from xdl.core.inputs import Input

    out = tmp_path / "out"

    def inputs() -> Any:
        yield Input(site.url("/files/blob.bin"))
        shutil.rmtree(out)
        yield Input(site.url("/files/report"))

    results = list(fetch_many(inputs(), FetchOptions(output_dir=str(out))))
    assert [r.ok for r in results] == [True, True], [r.error for r in results]
    assert (out / "Quarterly Report.pdf").read_bytes() == media_site.PDF


def test_a_linked_output_folder_that_went_away_is_not_made_again(site: Any, tmp_path: Path) -> None:
    """`-o` a link to a drive's folder, and the drive unmounted mid-batch (its mount
    point left empty): the batch stops (`output_not_writable`), as it would have at its
    start, and makes no folder where the link pointed (that is the system disk now)."""
    from xdl.core import errors
    from xdl.core.fetch import FetchOptions, fetch_many
    from xdl.core.inputs import Input

    mount = tmp_path / "usb"
    (mount / "dl").mkdir(parents=True)
    out = tmp_path / "out"
    out.symlink_to(mount / "dl")

    def inputs() -> Any:
        yield Input(site.url("/files/blob.bin"))
        shutil.rmtree(mount)
        mount.mkdir()  # unmounted: the mount point is there, empty
        yield Input(site.url("/files/report"))

    results = fetch_many(inputs(), FetchOptions(output_dir=str(out)))
    assert next(results).ok
    with pytest.raises(errors.OutputNotWritable):
        next(results)
    assert list(mount.iterdir()) == []
