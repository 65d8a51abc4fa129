"""`xdl info` and `xdl formats`: in-process with CliRunner and end to end through real
yt-dlp against the loopback site."""

from __future__ import annotations

from typing import Any

import pytest

import media_site


def test_info_reads_stdin_and_prints_the_title(xdl, site) -> None:
    r = xdl("info", input=site.url("/watch.html") + "\n")
    assert r.exit_code == 0, r.stderr
    (line,) = r.lines
    assert line["ok"] is True and line["url"] == site.url("/watch.html")
    assert line["title"].startswith("Loopback Clip")
    assert line["subtitles"] == {"manual": ["en", "es"], "automatic": []}
    assert line["format_count"] == 1
    assert r.stderr == ""


def test_info_raw_is_ytdlp_info_dict(xdl, site) -> None:
    r = xdl("info", "--raw", site.url("/multi.html"))
    assert r.exit_code == 0
    (line,) = r.lines
    assert line["ok"] is True and len(line["formats"]) == 3 and "http_headers" in line["formats"][0]


def test_info_flat_lists_feed_entries_that_pipe_into_info(xdl, site) -> None:
    r = xdl("info", "--flat", site.url("/feed.xml"))
    assert r.exit_code == 0, r.stderr
    assert [e["title"] for e in r.lines] == ["Episode One", "Episode Two", "Episode Three"]
    assert [e["playlist_index"] for e in r.lines] == [1, 2, 3]
    assert {e["playlist"] for e in r.lines} == {"Loopback Podcast"}
    again = xdl("info", input=r.stdout)  # JSON lines feed the next command
    assert again.exit_code == 0, again.stderr
    assert len(again.lines) == 3 and all(line["ok"] for line in again.lines)


def test_bad_inputs_fail_their_own_line_and_the_rest_go_on(xdl, site) -> None:
    urls = [
        "not-a-url",
        "javascript:alert(1)",
        site.url("/nomedia.html"),
        site.url("/404"),
        site.url("/500"),
        site.url("/watch.html"),
    ]
    r = xdl("info", *urls)
    assert r.exit_code == 1
    codes = [(line["url"], line.get("error", {}).get("code")) for line in r.lines]
    assert codes == [
        ("not-a-url", "bad_input"),
        ("javascript:alert(1)", "unsupported_url"),
        (site.url("/nomedia.html"), "unsupported_url"),
        (site.url("/404"), "not_found"),
        (site.url("/500"), "http_error"),
        (site.url("/watch.html"), None),
    ]
    assert len(r.stderr.strip().splitlines()) == 5
    assert "Traceback" not in r.stderr


def test_timeout_is_a_failed_line(xdl, site) -> None:
    r = xdl("info", "--timeout", "0.5", site.url("/hang?delay=5"))
    assert r.exit_code == 1
    assert r.lines[0]["error"]["code"] in ("timeout", "network")


def test_piped_stdin_with_nothing_in_it_is_nothing_to_do(xdl) -> None:
    r = xdl("info", input="\n# only a comment\n")
    assert (r.exit_code, r.stdout) == (0, "")


def test_flat_and_raw_together_is_a_usage_error(xdl) -> None:
    r = xdl("info", "--flat", "--raw", "https://example.com")
    assert r.exit_code == 2 and "--flat" in r.stderr and r.stdout == ""


def test_formats_lists_every_source(xdl, site) -> None:
    r = xdl("formats", site.url("/multi.html"))
    assert r.exit_code == 0, r.stderr
    got = sorted((f["ext"], f["height"], f["kind"]) for f in r.lines)
    assert got == [
        ("mp4", 180, "video+audio"),
        ("mp4", 360, "video+audio"),
        ("webm", 180, "video+audio"),
    ]
    assert {f["protocol"] for f in r.lines} == {"http"}


def test_formats_table_when_forced(xdl, site) -> None:
    r = xdl("formats", "--table", site.url("/multi.html"))
    assert r.exit_code == 0
    header, *rows = r.stdout.splitlines()
    assert header.split()[:3] == ["ID", "EXT", "KIND"] and len(rows) == 3


@pytest.mark.parametrize(
    ("platform", "audio", "ext", "height"),
    [
        ("mac", False, "mp4", 360),
        ("windows", False, "mp4", 360),
        ("web", False, "mp4", 360),
        ("any", False, "mp4", 360),
    ],
)
def test_recommend_picks_a_format_that_plays(xdl, site, platform, audio, ext, height) -> None:
    args = ["formats", site.url("/multi.html"), "--recommend", "--platform", platform]
    r = xdl(*args, *(["--audio"] if audio else []))
    assert r.exit_code == 0, r.stderr
    (rec,) = r.lines
    assert (rec["ext"], rec["height"]) == (ext, height)
    assert rec["selector"] == rec["format_id"] and rec["reason"]


def test_recommend_linux_prefers_webm_when_codecs_are_declared(xdl, site) -> None:
    from xdl.core.info import Format, recommend

    def fmt(fid: str, ext: str, v: str | None, a: str | None, h: int) -> Format:
        kind = "video+audio" if v and a else ("video" if v else "audio")
        return Format(
            "u", fid, ext, kind, None, h, None, v, a, None, None, None, False, "https", None
        )

    formats = [
        fmt("18", "mp4", "avc1.42001E", "mp4a.40.2", 360),
        fmt("137", "mp4", "avc1.640028", None, 1080),
        fmt("248", "webm", "vp9", None, 1080),
        fmt("251", "webm", None, "opus", 0),
        fmt("140", "m4a", None, "mp4a.40.2", 0),
    ]
    mac = recommend("u", formats, "mac")
    assert (mac.format_id, mac.selector) == ("137", "137+bestaudio[ext=m4a]/bestaudio")
    assert recommend("u", formats, "mac", audio=True).format_id == "140"
    assert recommend("u", formats, "linux", audio=True).format_id == "251"


def test_recommend_on_an_item_with_no_formats_fails_cleanly(xdl, site) -> None:
    r = xdl("formats", "--recommend", site.url("/nomedia.html"))
    assert r.exit_code == 1 and r.lines[0]["ok"] is False


def test_platform_without_recommend_is_a_usage_error(xdl) -> None:
    assert xdl("formats", "--platform", "mac", "https://e.com").exit_code == 2


# --- end to end, the real console script ---------------------------------------------


def test_e2e_info_pipeline(xdl_cmd, site) -> None:
    r = xdl_cmd("info", input=(site.url("/watch.html") + "\n").encode())
    assert r.exit_code == 0, r.stderr
    assert r.lines[0]["title"].startswith("Loopback Clip")


def test_e2e_broken_pipe_ends_quietly(site) -> None:
    import subprocess
    import sys
    from pathlib import Path

    exe = Path(sys.executable).parent / "xdl"
    script = f"set -o pipefail; '{exe}' formats '{site.url('/multi.html')}' | head -0"
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    assert proc.stderr == ""


def test_e2e_not_a_url_and_empty_stdin(xdl_cmd) -> None:
    r = xdl_cmd("info", "not-a-url")
    assert r.exit_code == 1 and r.lines[0]["error"]["code"] == "bad_input"
    assert xdl_cmd("info", input=b"").exit_code == 0


def test_e2e_invalid_utf8_on_stdin(xdl_cmd) -> None:
    r = xdl_cmd("info", input=b"\xff\xfe garbage\n")
    assert r.exit_code == 1 and r.lines[0]["error"]["code"] == "bad_input"
    assert "Traceback" not in r.stderr


def test_e2e_no_input_at_a_terminal_is_a_usage_error(tmp_path) -> None:
    import pty
    import subprocess
    import sys
    from pathlib import Path

    exe = Path(sys.executable).parent / "xdl"
    _master, slave = pty.openpty()
    proc = subprocess.run([str(exe), "info"], stdin=slave, capture_output=True, timeout=60)
    assert proc.returncode == 2
    assert b"no input" in proc.stderr and proc.stdout == b""


def test_extraction_pauses_the_collector_and_restores_it(xdl: Any, site: Any) -> None:
    """`xdl info` runs yt-dlp's extraction without cyclic GC (the extra ~5 % against
    `yt-dlp -J`: collections rescanning the extractor classes it imports); the collector
    is on again after it, and stays off if it was off before."""
    import gc

    from xdl.core.ytdlp import collector_paused

    seen: list[bool] = []
    page = media_site.PAGES["/watch.html"].encode()

    @site.route("/info/gc.html")
    def gc_page(r: Any) -> None:  # the site runs in this process: it sees the same GC
        seen.append(gc.isenabled())
        r.send_bytes(page, "text/html; charset=utf-8")

    assert gc.isenabled()
    r = xdl("info", "--json", site.url("/info/gc.html"))
    assert r.exit_code == 0, r.stderr
    assert r.lines[0]["title"].startswith("Loopback Clip")
    assert seen and not any(seen)
    assert gc.isenabled()
    with collector_paused():
        with collector_paused():  # nested, as two threads' extractions would be
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
