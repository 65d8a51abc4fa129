"""Every `xdl fetch` option is wired through to the engine: checked on what lands on disk
(ffprobe for media) and on what the loopback site was sent."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from xdl.core.fetch import FetchOptions, ytdlp_params
from xdl.core.http import request_kwargs
from xdl.core.network import NetworkOptions

needs_ffprobe = pytest.mark.skipif(not shutil.which("ffprobe"), reason="ffprobe not installed")


def ffprobe(path: str | Path) -> dict[str, Any]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
        capture_output=True,
        check=True,
    )
    return dict(json.loads(out.stdout))


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (FetchOptions(quality="720p"), {"format": "bv*[height<=720]+ba/b[height<=720]/wv*+ba/w"}),
        (FetchOptions(quality="worst"), {"format": "wv*+wa/w"}),
        (FetchOptions(format="18/best"), {"format": "18/best"}),
        (FetchOptions(container="mkv"), {"merge_output_format": "mkv"}),
        (FetchOptions(subs=True, sub_langs=("en",)), {"writesubtitles": True}),
        (FetchOptions(subs=True), {"subtitleslangs": ["all"]}),
        (FetchOptions(write_info_json=True), {"writeinfojson": True}),
        (FetchOptions(write_description=True), {"writedescription": True}),
        (FetchOptions(playlist_items="1-2"), {"playlist_items": "1-2"}),
        (FetchOptions(max_downloads=2), {"max_downloads": 2}),
        (FetchOptions(live_from_start=True), {"live_from_start": True}),
        (FetchOptions(retries=7), {"retries": 7, "fragment_retries": 7}),
        (FetchOptions(overwrite=True), {"overwrites": True}),
        (FetchOptions(audio=True, keep_video=True), {"keepvideo": True, "format": "ba/b"}),
        (FetchOptions(embed_thumbnail=True), {"writethumbnail": True}),
        (FetchOptions(sleep=2.0), {"sleep_interval_requests": 2.0}),
    ],
)
def test_ytdlp_params(options: FetchOptions, expected: dict[str, Any]) -> None:
    params = ytdlp_params(options)
    assert {k: params.get(k) for k in expected} == expected


@pytest.mark.parametrize(
    ("options", "key", "fields"),
    [
        (
            FetchOptions(audio=True, audio_format="opus", audio_quality="3"),
            "FFmpegExtractAudio",
            {"preferredcodec": "opus", "preferredquality": "3"},
        ),
        (FetchOptions(container="webm"), "FFmpegVideoRemuxer", {"preferedformat": "webm"}),
        (FetchOptions(embed_subs=True), "FFmpegEmbedSubtitle", {}),
        (FetchOptions(embed_metadata=True), "FFmpegMetadata", {"add_metadata": True}),
        (FetchOptions(embed_chapters=True), "FFmpegMetadata", {"add_chapters": True}),
        (FetchOptions(embed_thumbnail=True), "EmbedThumbnail", {}),
    ],
)
def test_postprocessors(options: FetchOptions, key: str, fields: dict[str, Any]) -> None:
    (pp,) = [p for p in ytdlp_params(options)["postprocessors"] if p["key"] == key]
    assert {k: pp[k] for k in fields} == fields


def test_network_options_reach_both_http_and_ytdlp() -> None:
    net = NetworkOptions(
        timeout=4, proxy="http://proxy:3128", user_agent="UA/1", headers={"X-A": "b"}
    )
    kwargs = request_kwargs(net)
    assert kwargs["proxies"] == {"http": "http://proxy:3128", "https": "http://proxy:3128"}
    assert kwargs["headers"] == {"X-A": "b", "User-Agent": "UA/1"}
    assert kwargs["timeout"][1] == 4
    params = net.ytdlp_params()
    assert params["proxy"] == "http://proxy:3128" and params["socket_timeout"] == 4


def test_header_user_agent_and_cookies_are_sent(xdl: Any, site: Any, tmp_path: Path) -> None:
    cookies = tmp_path / "cookies.txt"
    cookies.write_text(
        "# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/\tFALSE\t0\tsession\tabc123\n"
    )
    site.clear_log()
    ran = xdl(
        "fetch",
        "--header",
        "X-Test: yes",
        "--user-agent",
        "xdl-test/1",
        "--cookies",
        str(cookies),
        site.url("/files/report"),
        site.url("/watch.html"),
    )
    assert ran.exit_code == 0, ran.stderr
    for path in ("/files/report", "/watch.html", "/media/clip-180p.mp4"):
        sent = site.requests(path)
        assert sent, path
        for r in sent:
            assert r.headers.get("X-Test") == "yes", path
            assert r.headers.get("User-Agent") == "xdl-test/1", path
        assert any("session=abc123" in r.headers.get("Cookie", "") for r in sent), path


def test_timeout_gives_up_on_a_hanging_server(xdl: Any, site: Any) -> None:
    ran = xdl(
        "fetch", "--timeout", "1", "--retries", "0", "--strategy", "http", "--no-fallback",
        site.url("/hang?delay=5"),
    )  # fmt: skip
    assert ran.exit_code == 1
    assert ran.lines[0]["error"]["code"] == "timeout"


def test_min_size(xdl: Any, site: Any) -> None:
    ran = xdl("fetch", "--min-size", "1M", site.url("/files/report"))
    assert ran.lines[0]["error"]["code"] == "too_small"
    assert list(Path.cwd().iterdir()) == []


@needs_ffprobe
def test_quality_worst_takes_the_smallest(xdl: Any, site: Any) -> None:
    ran = xdl("fetch", "-Q", "worst", site.url("/multi.html"))
    assert ran.exit_code == 0, ran.stderr
    heights = {s.get("height") for s in ffprobe(ran.lines[0]["path"])["streams"]} - {None}
    assert heights == {180}


@needs_ffprobe
def test_quality_caps_the_height(xdl: Any, site: Any) -> None:
    ran = xdl("fetch", "-Q", "360p", site.url("/multi.html"))
    assert ran.exit_code == 0, ran.stderr
    heights = {s.get("height") for s in ffprobe(ran.lines[0]["path"])["streams"]} - {None}
    assert heights == {360}


@needs_ffprobe
def test_raw_format_selector(xdl: Any, site: Any) -> None:
    ran = xdl("fetch", "-f", "best[ext=webm]", site.url("/multi.html"))
    assert ran.exit_code == 0, ran.stderr
    assert ran.lines[0]["path"].endswith(".webm")


@needs_ffprobe
def test_container_remuxes(xdl: Any, site: Any) -> None:
    ran = xdl("fetch", "--container", "mkv", site.url("/watch.html"))
    assert ran.exit_code == 0, ran.stderr
    path = ran.lines[0]["path"]
    assert path.endswith(".mkv")
    assert "matroska" in ffprobe(path)["format"]["format_name"]


def test_subs_and_info_json_are_written(xdl: Any, site: Any) -> None:
    ran = xdl(
        "fetch", "--subs", "--sub-langs", "en", "--write-info-json", "-o", "out",
        site.url("/watch.html"),
    )  # fmt: skip
    assert ran.exit_code == 0, ran.stderr
    stem = Path(ran.lines[0]["path"]).stem
    names = {p.name for p in Path("out").iterdir()}
    assert f"{stem}.en.vtt" in names and f"{stem}.es.vtt" not in names
    assert f"{stem}.info.json" in names
    assert "Hello from the loopback site" in (Path("out") / f"{stem}.en.vtt").read_text()


def test_description_is_written(xdl: Any, site: Any) -> None:
    @site.route("/fetch/described.html")
    def described(r: Any) -> None:
        ld = {
            "@context": "https://schema.org",
            "@type": "VideoObject",
            "name": "Described Clip",
            "description": "A clip that describes itself.",
            "contentUrl": site.url("/media/clip-180p.mp4"),
            "uploadDate": "2026-01-01",
        }
        page = (
            "<!DOCTYPE html><html><head><title>Described Clip</title>"
            f'<script type="application/ld+json">{json.dumps(ld)}</script></head>'
            "<body><p>See the clip.</p></body></html>"
        )
        r.send_bytes(page.encode(), "text/html; charset=utf-8")

    ran = xdl("fetch", "--write-description", "-o", "d", site.url("/fetch/described.html"))
    assert ran.exit_code == 0, ran.stderr
    described_file = Path(ran.lines[0]["path"]).with_suffix(".description")
    assert described_file.read_text().strip() == "A clip that describes itself."


@needs_ffprobe
def test_embed_subs_and_metadata(xdl: Any, site: Any) -> None:
    ran = xdl(
        "fetch", "--embed-subs", "--sub-langs", "en", "--embed-metadata", "--embed-chapters",
        "--embed-thumbnail", site.url("/watch.html"),
    )  # fmt: skip
    assert ran.exit_code == 0, ran.stderr
    probe = ffprobe(ran.lines[0]["path"])
    assert "subtitle" in {s["codec_type"] for s in probe["streams"]}
    assert probe["format"].get("tags", {}).get("title") == ran.lines[0]["title"]


@needs_ffprobe
def test_audio_keep_video_and_normalize(xdl: Any, site: Any) -> None:
    ran = xdl(
        "fetch", "-x", "--audio-format", "m4a", "--keep-video", "--normalize", "-o", "a",
        site.url("/watch.html"),
    )  # fmt: skip
    assert ran.exit_code == 0, ran.stderr
    line = ran.lines[0]
    assert line["path"].endswith(".m4a")
    assert {s["codec_type"] for s in ffprobe(line["path"])["streams"]} == {"audio"}
    assert list(Path("a").glob("*.mp4")), "--keep-video kept no video"
    plain = xdl("fetch", "-x", "--audio-format", "m4a", "-o", "b", site.url("/watch.html"))
    assert plain.lines[0]["sha256"] != line["sha256"]  # loudnorm changed the audio
    assert not list(Path("a").glob("*normalizing*"))


@needs_ffprobe
def test_audio_quality_as_a_bitrate_with_k(xdl: Any, site: Any) -> None:
    """`--audio-quality 48K` as yt-dlp's own CLI takes it: a 48 kbit/s MP3, not a VBR one."""
    ran = xdl(
        "fetch", "-x", "--audio-format", "mp3", "--audio-quality", "48K", "-o", "q",
        site.url("/audio.html"),
    )  # fmt: skip
    assert ran.exit_code == 0, ran.stderr
    (stream,) = ffprobe(ran.lines[0]["path"])["streams"]
    assert stream["codec_name"] == "mp3" and int(stream["bit_rate"]) == 48000


def test_playlist_items_and_max_downloads(xdl: Any, site: Any) -> None:
    items = xdl("fetch", "--playlist-items", "2", "-o", "p", site.url("/feed.xml"))
    assert items.exit_code == 0, items.stderr
    assert [x["playlist_index"] for x in items.lines] == [2]
    capped = xdl("fetch", "--max-downloads", "1", "-o", "q", site.url("/feed.xml"))
    assert capped.exit_code == 0, capped.stderr
    assert len([x for x in capped.lines if x["ok"] and not x["skipped"]]) == 1
    assert len(list(Path("q").iterdir())) == 1


def test_progress_goes_to_stderr_only(xdl: Any, site: Any) -> None:
    ran = xdl("fetch", "--progress", site.url("/files/blob.bin"))
    assert ran.exit_code == 0, ran.stderr
    assert "blob.bin" in ran.stderr  # the bar's label
    assert [json.loads(x)["ok"] for x in ran.stdout.splitlines()] == [True]


def test_quiet_means_no_bars(xdl: Any, site: Any) -> None:
    ran = xdl("fetch", "-q", site.url("/files/blob.bin"))
    assert ran.exit_code == 0
    assert ran.stderr == ""


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("ba/b", "bestaudio/best"),
        ("wv*+wa/w", "worstvideo+worstaudio/worst"),
        (
            "bv*[height<=720]+ba/b[height<=720]",
            "bestvideo[height<=720]+bestaudio/best[height<=720]",
        ),
        ("18/best", "18/best"),
        ("best[ext=webm]", "best[ext=webm]"),
    ],
)
def test_youtube_dl_format_names(selector: str, expected: str) -> None:
    from xdl.core.ytdlp import youtube_dl_format

    assert youtube_dl_format(selector) == expected


def test_youtube_dl_extracts_audio(xdl: Any, site: Any) -> None:
    pytest.importorskip("youtube_dl")
    ran = xdl(
        "fetch", "--strategy", "youtube-dl", "--no-fallback", "-x", "--audio-format", "mp3",
        site.url("/watch.html"),
    )  # fmt: skip
    assert ran.exit_code == 0, ran.stderr
    assert ran.lines[0]["path"].endswith(".mp3") and Path(ran.lines[0]["path"]).exists()


def test_an_announced_size_is_checked_before_ytdlp_downloads(xdl: Any, site: Any) -> None:
    @site.route("/fetch/sized.html")
    def sized(r: Any) -> None:
        ld = {
            "@context": "https://schema.org",
            "@type": "VideoObject",
            "name": "Big Clip",
            "contentUrl": site.url("/media/clip-180p.mp4?sized=1"),
            "contentSize": "5000000",
            "uploadDate": "2026-01-01",
        }
        page = (
            "<!DOCTYPE html><html><head><title>Big Clip</title>"
            f'<script type="application/ld+json">{json.dumps(ld)}</script></head>'
            "<body></body></html>"
        )
        r.send_bytes(page.encode(), "text/html; charset=utf-8")

    site.clear_log()
    ran = xdl("fetch", "--max-size", "1M", site.url("/fetch/sized.html"))
    assert ran.exit_code == 1
    assert ran.lines[0]["error"]["code"] == "too_large"
    assert [a["strategy"] for a in ran.lines[0]["attempts"]] == ["ytdlp"]  # final: no fallback
    assert "5000000 bytes" in ran.lines[0]["error"]["message"]  # announced, not measured
    assert list(Path.cwd().iterdir()) == []


def test_a_too_large_download_is_removed(xdl: Any, site: Any) -> None:
    ran = xdl("fetch", "--max-size", "10K", site.url("/watch.html"))
    assert ran.lines[0]["error"]["code"] == "too_large"
    assert list(Path.cwd().iterdir()) == []


def test_an_hls_stream_is_downloaded(xdl: Any, site: Any) -> None:
    ran = xdl("fetch", site.url("/hls.html"))
    assert ran.exit_code == 0, ran.stderr
    assert Path(ran.lines[0]["path"]).stat().st_size > 0
    assert ran.lines[0]["strategy"] == "ytdlp"


@pytest.mark.parametrize(
    "stored",
    [
        {"retries": "3"},
        {"audio": "yes"},
        {"sub_langs": [1]},
        {"min_size": "1"},
        {"sleep": True},
        {"net": {"timeout": "x"}},
        {"net": {"headers": "x"}},
    ],
)
def test_stored_options_of_the_wrong_type_are_bad_input(stored: dict[str, Any]) -> None:
    from xdl.core import errors

    with pytest.raises(errors.BadInput):
        FetchOptions.from_dict(stored)


def test_stored_options_round_trip() -> None:
    opts = FetchOptions(retries=5, sub_langs=("en", "de"), max_size=10, sleep=1)
    assert FetchOptions.from_dict(opts.to_dict()) == opts


@pytest.mark.parametrize("no_proxy", [None, "127.0.0.1", "HOSTPORT"])
def test_the_environment_proxy_is_used_unless_no_proxy_names_the_host(
    site: Any, tmp_path: Path, no_proxy: str | None
) -> None:
    """http_proxy is honoured as requests (and curl) do, though it is looked up once per
    host, not per request: a proxy that refuses ends the download, and `no_proxy`
    naming the host goes around it."""
    import os
    import socket
    import sys

    with socket.socket() as s:  # a port nothing listens on: the proxy refuses
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["http_proxy"] = f"http://127.0.0.1:{dead}"
    if no_proxy:  # HOSTPORT: an entry with the site's port, for an IP address
        env["no_proxy"] = no_proxy.replace("HOSTPORT", site.base.split("//")[1])
    xdl = str(Path(sys.executable).parent / "xdl")
    urls = [site.url(f"/files/blob.bin?n={i}") for i in range(3)]
    done = subprocess.run(
        [xdl, "fetch", "--strategy", "http", "--no-fallback", "-o", str(tmp_path), *urls],
        env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    got = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(got) == 3
    if no_proxy:
        assert done.returncode == 0 and all(line["ok"] for line in got), done.stderr
    else:
        assert done.returncode == 1
        assert {line["error"]["code"] for line in got} == {"network"}, got
        assert "refused" in got[0]["error"]["message"]


def test_a_url_s_percent_escapes_reach_the_server_as_given(xdl_cmd: Any, site: Any) -> None:
    """A signed URL's signature covers its exact text: `%2f` is not sent as `%2F`
    (whether or not an earlier input of the run loaded yt-dlp, which did this too)."""
    url = site.url("/files/blob.bin?sig=ab%2fcd%3d&k=%c3%a9")
    ran = xdl_cmd("fetch", "-o", "out", url, timeout=60)
    assert ran.exit_code == 0, ran.stderr
    sent = [r.path for r in site.log if r.path.startswith("/files/blob.bin?sig=")]
    assert sent and set(sent) == {"/files/blob.bin?sig=ab%2fcd%3d&k=%c3%a9"}, sent


class Socks5:
    """A SOCKS5 proxy on loopback (no authentication, CONNECT only) that counts what it
    carried: enough to tell that xdl went through it."""

    def __init__(self) -> None:
        import socket
        import threading

        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.connected: list[tuple[str, int]] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        import threading

        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(client,), daemon=True).start()

    def _one(self, client: Any) -> None:
        import socket
        import struct
        import threading

        def exactly(n: int) -> bytes:
            data = b""
            while len(data) < n:
                data += client.recv(n - len(data)) or b"\0" * (n - len(data))
            return data

        with client:
            _, methods = exactly(2)
            exactly(methods)
            client.sendall(b"\x05\x00")
            _, _, _, kind = exactly(4)
            size = 4 if kind == 1 else exactly(1)[0]  # IPv4, or a name's length
            host = socket.inet_ntoa(exactly(4)) if kind == 1 else exactly(size).decode()
            port = struct.unpack("!H", exactly(2))[0]
            self.connected.append((host, port))
            upstream = socket.create_connection((host, port))
            client.sendall(b"\x05\x00\x00\x01" + bytes(4) + b"\x00\x00")

            def pump(a: Any, b: Any) -> None:
                try:
                    while data := a.recv(65536):
                        b.sendall(data)
                except OSError:
                    pass
                finally:
                    b.close()

            with upstream:
                back = threading.Thread(target=pump, args=(upstream, client), daemon=True)
                back.start()
                pump(client, upstream)
                back.join(10)

    def close(self) -> None:
        self.server.close()


@pytest.mark.parametrize("scheme", ["socks5", "socks5h"])
def test_a_socks_proxy_carries_a_plain_download(xdl_cmd: Any, site: Any, scheme: str) -> None:
    """--proxy socks5://: the documented SOCKS support holds for plain files too (they no
    longer load yt-dlp, whose SOCKS support requests uses: it is loaded for them)."""
    proxy = Socks5()
    try:
        url = site.url("/files/blob.bin?via=socks")
        ran = xdl_cmd("fetch", "--proxy", f"{scheme}://127.0.0.1:{proxy.port}", "-o", "out", url,
                      timeout=60)  # fmt: skip
    finally:
        proxy.close()
    assert ran.exit_code == 0, ran.stderr
    assert ran.lines[0]["ok"] and ran.lines[0]["strategy"] == "http", ran.lines
    site_port = int(site.base.rsplit(":", 1)[1])
    assert proxy.connected and {port for _, port in proxy.connected} == {site_port}
