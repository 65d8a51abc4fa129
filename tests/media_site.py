"""A small media site on 127.0.0.1 for tests and `make demo`: no test touches the internet.

HTML5 pages with <video><source> and <track kind="subtitles"> (yt-dlp's generic extractor
reads them as it would a real site), an HLS stream, direct files with Content-Disposition,
Range and ETag/If-Range, a 404, a 500, a slow endpoint, one that hangs, and one that drops
the connection halfway on its first request. Every request is logged for tests to read.

Extend it with `site.route("/path")(handler)`, where `handler(req)` gets the
`BaseHTTPRequestHandler` and answers with `req.send_bytes(...)` or its own writes.

Run it by hand: `python tests/media_site.py [--port N]` prints the base URL and serves.
"""

from __future__ import annotations

import hashlib
import html
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

MEDIA = Path(__file__).parent / "media"

Handler = Callable[["Request"], None]


def make_bytes(size: int, seed: int) -> bytes:
    """Deterministic pseudo-random bytes (the same on every run)."""
    return random.Random(seed).randbytes(size)


PDF = b"%PDF-1.4\n% xdl test document\n" + make_bytes(200_000, 1) + b"\n%%EOF\n"
BLOB = make_bytes(3 * 1024 * 1024 + 123, 2)

VTT_EN = """WEBVTT

00:00:00.000 --> 00:00:01.000
Hello from the loopback site.

00:00:01.000 --> 00:00:02.000
This clip is two seconds long.
"""

VTT_ES = """WEBVTT

00:00:00.000 --> 00:00:01.000
Hola desde el sitio local.

00:00:01.000 --> 00:00:02.000
Este clip dura dos segundos.
"""


def video_page(
    title: str, sources: list[tuple[str, str, str]], tracks: list[tuple[str, str]]
) -> str:
    srcs = "\n".join(
        f'    <source src="{src}" type=\'{typ}\' label="{label}" res="{label.rstrip("p")}">'
        for src, typ, label in sources
    )
    trks = "\n".join(
        f'    <track kind="subtitles" srclang="{lang}" src="{src}" label="{lang}">'
        for lang, src in tracks
    )
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<meta property="og:title" content="{html.escape(title)}">
<meta name="description" content="A test clip served on loopback.">
</head><body>
<h1>{html.escape(title)}</h1>
<video controls width="320">
{srcs}
{trks}
</video>
</body></html>
"""


MP4_180 = ("/media/clip-180p.mp4", 'video/mp4; codecs="avc1.64000d, mp4a.40.2"', "180p")
MP4_360 = ("/media/clip-360p.mp4", 'video/mp4; codecs="avc1.64001e, mp4a.40.2"', "360p")
WEBM_180 = ("/media/clip-180p.webm", 'video/webm; codecs="vp9, opus"', "180p")
TRACKS = [("en", "/subs/en.vtt"), ("es", "/subs/es.vtt")]

PAGES = {
    "/watch.html": video_page("Loopback Clip", [MP4_180], TRACKS),
    "/multi.html": video_page("Loopback Multi", [MP4_360, MP4_180, WEBM_180], TRACKS),
    "/nosubs.html": video_page("Silent Clip", [MP4_180], []),
    "/audio.html": """<!DOCTYPE html><html><head><title>Loopback Tone</title></head><body>
<audio controls><source src="/media/tone.m4a" type="audio/mp4"></audio></body></html>
""",
    "/hls.html": video_page(
        "Loopback Stream", [("/media/hls/index.m3u8", "application/x-mpegURL", "180p")], []
    ),
    "/nomedia.html": """<!DOCTYPE html><html><head><title>Just Text</title></head>
<body><p>No media here.</p></body></html>
""",
}

FEED = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel>
<title>Loopback Podcast</title><link>/</link><description>Test feed</description>
<item><title>Episode One</title><guid>ep1</guid><link>{base}/watch.html</link></item>
<item><title>Episode Two</title><guid>ep2</guid><link>{base}/audio.html</link></item>
<item><title>Episode Three</title><guid>ep3</guid><link>{base}/nosubs.html</link></item>
</channel></rss>
"""

#: A podcast as RSS 2.0 with the iTunes namespace, and the same show as Atom 1.0. Every
#: request gets its own `{token}` in the enclosure URLs (as tracking redirects and signed
#: CDN URLs do); the ETag and Last-Modified are the feed's own, the same for every poll.
PODCAST_RSS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd"
 xmlns:podcast="https://podcastindex.org/namespace/1.0">
<channel>
<title>Loopback Radio{n}</title><link>{base}/</link><description>Two tones</description>
<itunes:author>Tone Makers</itunes:author><itunes:image href="{base}/media/cover.jpg"/>
<item><title>Episode 2: High tone</title><guid isPermaLink="false">lr-ep-2{m}</guid>
<pubDate>Tue, 02 Dec 2025 08:00:00 GMT</pubDate><itunes:episode>2</itunes:episode>
<itunes:duration>00:00:01</itunes:duration>
<description><![CDATA[<p>An <b>880 Hz</b> tone &amp; nothing else.</p>]]></description>
<enclosure url="{base}/media/high.mp3?token={token}" type="audio/mpeg" length="4486"/></item>
<item><title>Episode 1: Low tone</title><guid isPermaLink="false">lr-ep-1{m}</guid>
<pubDate>Mon, 01 Dec 2025 08:00:00 GMT</pubDate><itunes:episode>1</itunes:episode>
<itunes:duration>1</itunes:duration>
<description>A 220 Hz tone.</description>
<podcast:transcript url="{base}/subs/en.vtt" type="text/vtt" language="en"/>
<enclosure url="{base}/media/low.mp3?token={token}" type="audio/mpeg" length="4486"/></item>
</channel></rss>
"""

PODCAST_ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
<title>Loopback Atom Radio</title><id>urn:uuid:loopback-atom-radio</id>
<updated>2025-12-02T08:00:00Z</updated><author><name>Tone Makers</name></author>
<entry><title>Atom Two: High tone</title><id>urn:uuid:atom-ep-2</id>
<published>2025-12-02T08:00:00Z</published><updated>2025-12-02T08:00:00Z</updated>
<summary>An 880 Hz tone.</summary>
<link rel="enclosure" href="{base}/media/high.mp3?sig={token}" type="audio/mpeg" length="4486"/>
</entry>
<entry><title>Atom One: Low tone</title><id>urn:uuid:atom-ep-1</id>
<published>2025-12-01T08:00:00Z</published><updated>2025-12-01T08:00:00Z</updated>
<summary>A 220 Hz tone.</summary>
<link rel="enclosure" href="{base}/media/low.mp3?sig={token}" type="audio/mpeg" length="4486"/>
</entry>
</feed>
"""

CONTENT_TYPES = {
    ".jpg": "image/jpeg",
    ".mp3": "audio/mpeg",
    ".mp4": "video/mp4",
    ".webm": "video/webm",
    ".m4a": "audio/mp4",
    ".m3u8": "application/vnd.apple.mpegurl",
    ".ts": "video/mp2t",
    ".vtt": "text/vtt; charset=utf-8",
}


@dataclass
class Logged:
    method: str
    path: str
    headers: dict[str, str]
    start: float
    end: float = 0.0
    status: int = 0
    body: int = 0  # body bytes sent


@dataclass
class Site:
    """The running site: its base URL, its routes and its request log."""

    base: str = ""
    routes: dict[str, Handler] = field(default_factory=dict)
    log: list[Logged] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None  # set by start()

    def url(self, path: str) -> str:
        return self.base + path

    def route(self, path: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.routes[path] = handler
            return handler

        return register

    def requests(self, path: str) -> list[Logged]:
        """The logged requests whose path (without the query) is `path`."""
        with self.lock:
            return [r for r in self.log if urlsplit(r.path).path == path]

    def clear_log(self) -> None:
        with self.lock:
            self.log.clear()

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()


class Request(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "xdl-test-site/1"
    site: Site

    def log_message(self, format: str, *args: Any) -> None:
        pass

    @property
    def query(self) -> dict[str, str]:
        return {k: v[-1] for k, v in parse_qs(urlsplit(self.path).query).items()}

    def handle_one(self) -> None:
        entry = Logged(self.command, self.path, dict(self.headers.items()), time.monotonic())
        with self.site.lock:
            self.site.log.append(entry)
        self.entry = entry
        path = urlsplit(self.path).path
        handler = self.site.routes.get(path)
        if handler is None:
            for prefix, h in self.site.routes.items():
                if prefix.endswith("/") and path.startswith(prefix):
                    handler = h
                    break
        try:
            if handler is None:
                self.send_bytes(b"not found\n", "text/plain", status=404)
            else:
                handler(self)
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            entry.end = time.monotonic()

    do_GET = do_HEAD = handle_one

    def send_status(self, status: int) -> None:
        self.entry.status = status
        self.send_response(status)

    def last_piece(self) -> None:
        """Called just before the body's last piece is written (a site that counts the
        requests in flight stops counting this one: the client cannot start its next
        request before it has that piece)."""

    def send_bytes(
        self,
        data: bytes,
        content_type: str = "application/octet-stream",
        *,
        status: int = 200,
        etag: str | None = None,
        disposition: str | None = None,
        ranges: bool = True,
        last_modified: float | None = None,
        chunk: int = 256 * 1024,
        drop_after: int | None = None,
        rate: float | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer with `data`, honouring Range, If-Range and the conditional requests
        (If-None-Match, If-Modified-Since: 304) like a real static server; `headers` are
        sent as well (Set-Cookie, Content-Encoding)."""
        if status == 200 and self._not_modified(etag, last_modified):
            self.send_status(304)
            if etag:
                self.send_header("ETag", etag)
            if last_modified is not None:
                self.send_header("Last-Modified", _http_date(last_modified) or "")
            self.end_headers()
            return
        start, end = 0, len(data) - 1
        rng = self.headers.get("Range")
        if_range = self.headers.get("If-Range")
        validator_ok = if_range is None or if_range in (etag, _http_date(last_modified))
        partial = False
        if ranges and rng and rng.startswith("bytes=") and validator_ok and status == 200:
            first, _, last = rng[6:].partition("-")
            try:
                start = int(first) if first else max(0, len(data) - int(last))
                end = min(int(last), end) if first and last else end
            except ValueError:
                start = 0
            if start >= len(data) > 0:
                self.send_status(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            partial = True
        body = data[start : end + 1]
        self.send_status(206 if partial else status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if ranges:
            self.send_header("Accept-Ranges", "bytes")
        if partial:
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        if etag:
            self.send_header("ETag", etag)
        if last_modified is not None:
            self.send_header("Last-Modified", _http_date(last_modified))
        if disposition:
            self.send_header("Content-Disposition", disposition)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command == "HEAD":
            return
        sent = 0
        began = time.monotonic()
        for i in range(0, len(body), chunk):
            piece = body[i : i + chunk]
            if i + chunk >= len(body):
                self.last_piece()
            if drop_after is not None and sent + len(piece) > drop_after:
                self.wfile.write(piece[: max(0, drop_after - sent)])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)
                return
            self.wfile.write(piece)
            sent += len(piece)
            self.entry.body = sent
            if rate:
                ahead = sent / rate - (time.monotonic() - began)
                if ahead > 0:
                    time.sleep(ahead)

    def _not_modified(self, etag: str | None, last_modified: float | None) -> bool:
        """RFC 9110 13.1: If-None-Match (strong or weak comparison of ETags) wins over
        If-Modified-Since, which is used only without it."""
        none_match = self.headers.get("If-None-Match")
        if none_match is not None:
            tags = [t.strip().removeprefix("W/") for t in none_match.split(",")]
            return etag is not None and (etag.removeprefix("W/") in tags or "*" in tags)
        since = self.headers.get("If-Modified-Since")
        if since is None or last_modified is None:
            return False
        try:
            return int(last_modified) <= parsedate_to_datetime(since).timestamp()
        except (TypeError, ValueError):
            return False


def _http_date(ts: float | None) -> str | None:
    return None if ts is None else formatdate(ts, usegmt=True)


def etag_of(data: bytes) -> str:
    return '"' + hashlib.sha256(data).hexdigest()[:16] + '"'


def install_routes(site: Site) -> None:
    """The standard routes every test run gets."""
    for path, page in PAGES.items():
        body = page.encode()
        site.route(path)(lambda r, body=body: r.send_bytes(body, "text/html; charset=utf-8"))

    site.route("/feed.xml")(
        lambda r: r.send_bytes(FEED.replace("{base}", site.base).encode(), "application/rss+xml")
    )

    def podcast(template: str, content_type: str) -> Handler:
        def serve(r: Request) -> None:
            """`?n=K`: the K-th of many alike shows (its own title and guids)."""
            n = r.query.get("n", "")
            with site.lock:
                site.state["tokens"] = token = site.state.get("tokens", 0) + 1
            text = template.replace("{base}", site.base).replace("{n}", f" {n}" if n else "")
            text = text.replace("{m}", f"-{n}" if n else "")
            r.send_bytes(
                text.replace("{token}", f"t{token}").encode(),
                content_type,
                etag=etag_of((text + content_type).encode()),
                last_modified=1_764_662_400,
            )

        return serve

    site.route("/podcast.xml")(podcast(PODCAST_RSS, "application/rss+xml"))
    site.route("/podcast.rss")(podcast(PODCAST_RSS, "text/xml; charset=utf-8"))
    site.route("/podcast.atom")(podcast(PODCAST_ATOM, "application/atom+xml"))
    site.route("/podcast-atom.xml")(podcast(PODCAST_ATOM, "application/xml"))

    @site.route("/media/")
    def media(r: Request) -> None:
        rel = urlsplit(r.path).path[len("/media/") :]
        file = (MEDIA / rel).resolve()
        if MEDIA.resolve() not in file.parents or not file.is_file():
            r.send_bytes(b"not found\n", "text/plain", status=404)
            return
        data = file.read_bytes()
        r.send_bytes(
            data, CONTENT_TYPES.get(file.suffix, "application/octet-stream"), etag=etag_of(data)
        )

    site.route("/subs/en.vtt")(lambda r: r.send_bytes(VTT_EN.encode(), CONTENT_TYPES[".vtt"]))
    site.route("/subs/es.vtt")(lambda r: r.send_bytes(VTT_ES.encode(), CONTENT_TYPES[".vtt"]))

    site.route("/files/report")(
        lambda r: r.send_bytes(
            PDF,
            "application/pdf",
            etag=etag_of(PDF),
            disposition='attachment; filename="Quarterly Report.pdf"',
        )
    )
    site.route("/files/blob.bin")(
        lambda r: r.send_bytes(BLOB, etag=etag_of(BLOB), last_modified=1_700_000_000)
    )
    site.route("/files/evil")(
        lambda r: r.send_bytes(
            b"#!/bin/sh\necho pwned\n", disposition='attachment; filename="../../evil.sh"'
        )
    )
    site.route("/files/norange.bin")(lambda r: r.send_bytes(BLOB, ranges=False))

    @site.route("/files/drop.bin")
    def drop(r: Request) -> None:
        """Drops the connection halfway through the first full request of each `?key=`."""
        key = ("drop", r.query.get("key", ""))
        with site.lock:
            first = key not in site.state
            site.state[key] = True
        full = "Range" not in r.headers
        r.send_bytes(
            BLOB, etag=etag_of(BLOB), drop_after=len(BLOB) // 2 if first and full else None
        )

    @site.route("/files/changing.bin")
    def changing(r: Request) -> None:
        """Its content (and ETag) changes when a test bumps site.state['version']."""
        version = site.state.get("version", 0)
        data = make_bytes(len(BLOB), 100 + version)
        key = ("changing-drop", version)
        with site.lock:
            first = key not in site.state
            site.state[key] = True
        full = "Range" not in r.headers
        r.send_bytes(
            data, etag=etag_of(data), drop_after=len(data) // 2 if first and full else None
        )

    @site.route("/slow")
    def slow(r: Request) -> None:
        """Answers after `?delay=` seconds (default 0.3): a high-latency endpoint."""
        time.sleep(float(r.query.get("delay", "0.3")))
        name = r.query.get("name", "slow.bin")
        body = (name + "\n").encode() * 64
        r.send_bytes(body, disposition=f'attachment; filename="{name}"')

    @site.route("/throttled.bin")
    def throttled(r: Request) -> None:
        r.send_bytes(BLOB[: 1024 * 1024], rate=float(r.query.get("rate", 512 * 1024)))

    @site.route("/hang")
    def hang(r: Request) -> None:
        """Never answers within any sane timeout (gives up after 30 s)."""
        time.sleep(float(r.query.get("delay", "30")))
        r.send_bytes(b"late\n", "text/plain")

    site.route("/404")(lambda r: r.send_bytes(b"not found\n", "text/plain", status=404))
    site.route("/500")(lambda r: r.send_bytes(b"server error\n", "text/plain", status=500))


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up early are part of the tests; say nothing."""


def start(port: int = 0) -> Site:
    """Start the site on 127.0.0.1 (a free port unless given) in a daemon thread."""
    site = Site()
    install_routes(site)
    return serve(site, type("SiteRequest", (Request,), {"site": site}), port)


S = TypeVar("S", bound=Any)


def serve(site: S, handler: type[BaseHTTPRequestHandler], port: int = 0) -> S:
    """`site` served by `handler` on 127.0.0.1 (a free port unless given) in a daemon
    thread; its `server` and `base` set."""
    server = QuietServer(("127.0.0.1", port), handler)
    site.server = server
    site.base = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return site


if __name__ == "__main__":
    import argparse
    import signal
    import sys

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    port = parser.parse_args().port
    running = start(port)
    print(running.base, flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
