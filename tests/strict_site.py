"""A strict site on 127.0.0.1: it enforces a rate limit the way real sites do (issue 20).

Per instance (`Rules`): at most N requests in flight, at most R served a second (a
sliding one-second window), 429 for the first K requests of each path, `Retry-After`
on refusals (none, seconds, or an HTTP date), a ban (403 to everything for a while)
after B refusals within W seconds, and a per-response delay or bandwidth so that a
download takes measurable time. Its counters (served, refused by status, banned
answers, bans, peak in flight, a log of every request) are what the politeness tests
and the bench judge xdl by: from the outside, as a site would.

Routes: `/f/<n>.bin` (deterministic bytes, Content-Length, ETag, Range), `/v/<n>.html`
(an HTML5 page with `<video><source src="/media/<n>.mp4">`) and `/media/<n>.mp4`
(tests/media/clip-180p.mp4). `?delay=S` and `?rate=BYTES_PER_S` on a URL override the
rules' delay and bandwidth for that request (one slow download among fast ones).

Run it by hand: `python tests/strict_site.py --per-second 4 --retry-after 1` prints the
base URL and serves.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from email.utils import formatdate
from typing import Any
from urllib.parse import urlsplit

import media_site
from media_site import MEDIA, QuietServer, etag_of, make_bytes, serve, video_page

CLIP = MEDIA / "clip-180p.mp4"
FILE_SIZE = 32 * 1024


@dataclass(frozen=True)
class Rules:
    """What the site enforces; every limit is off unless set."""

    #: At most this many requests in flight; the one past it is answered `busy_status`.
    max_in_flight: int | None = None
    busy_status: int = 429
    #: At most this many requests served in any one second (sliding); past it, 429.
    per_second: float | None = None
    #: `Retry-After` on refusals: None (no header), or seconds from now ...
    retry_after: float | None = None
    #: ... written as an HTTP date (rounded up to the next whole second) when True.
    retry_after_date: bool = False
    #: The first K requests of each path (starting with `refuse_prefix`) are answered 429.
    refuse_first: int = 0
    refuse_prefix: str = "/"
    #: B refusals within W seconds ban the client: 403 to everything for `ban_seconds`.
    ban_after: int = 12
    ban_window: float = 10.0
    ban_seconds: float = 30.0
    #: Seconds before a served answer starts, and its body's bandwidth (bytes/s).
    delay: float = 0.0
    bandwidth: float | None = None
    #: Size of the `/f/<n>.bin` files.
    file_size: int = FILE_SIZE


@dataclass(frozen=True)
class Hit:
    """One request as the site saw it: wall-clock start (time.time()), path, answer."""

    t: float
    method: str
    path: str
    status: int
    retry_after: str | None = None


@dataclass
class StrictSite:
    """The running site: its base URL, its rules and its counters (all under `lock`)."""

    rules: Rules
    base: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)
    served: int = 0
    refused: dict[int, int] = field(default_factory=dict)
    banned_answers: int = 0
    bans: int = 0
    in_flight: int = 0
    peak_in_flight: int = 0
    log: list[Hit] = field(default_factory=list)
    banned_until: float = 0.0
    _window: deque[float] = field(default_factory=deque)  # served request starts, 1 s
    _refusals: deque[float] = field(default_factory=deque)  # refusal times, ban window
    _per_path: dict[str, int] = field(default_factory=dict)
    server: QuietServer | None = None

    def url(self, path: str) -> str:
        return self.base + path

    @property
    def host(self) -> str:
        """The host as xdl keys it: `127.0.0.1:PORT`."""
        return urlsplit(self.base).netloc

    @property
    def refusals(self) -> int:
        """Every 429 / 503 the site answered (not the 403s of a ban)."""
        with self.lock:
            return sum(self.refused.values())

    def hits(self, path: str | None = None) -> list[Hit]:
        with self.lock:
            return [h for h in self.log if path is None or h.path == path]

    def reset(self, **rules: Any) -> None:
        """Forget every counter, the ban and the windows; `rules` replace some rules."""
        with self.lock:
            self.rules = replace(self.rules, **rules)
            self.served = self.banned_answers = self.bans = 0
            self.in_flight = self.peak_in_flight = 0
            self.refused = {}
            self.log = []
            self.banned_until = 0.0
            self._window.clear()
            self._refusals.clear()
            self._per_path.clear()

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()

    # --- the decision, taken under the lock when a request arrives -----------------

    def admit(self, method: str, path: str) -> tuple[int, str | None]:
        """The answer's status for a request arriving now (200: serve it) and its
        Retry-After. A served request stays in flight until `leave()`."""
        rules = self.rules
        now = time.monotonic()
        wall = time.time()
        with self.lock:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            status = 200
            if now < self.banned_until:
                status = 403
            else:
                count = self._per_path.get(path, 0) + 1
                self._per_path[path] = count
                while self._window and self._window[0] <= now - 1.0:
                    self._window.popleft()
                if path.startswith(rules.refuse_prefix) and count <= rules.refuse_first:
                    status = 429
                elif rules.max_in_flight is not None and self.in_flight > rules.max_in_flight:
                    status = rules.busy_status
                elif rules.per_second is not None and len(self._window) >= rules.per_second:
                    status = 429
            after = None
            if status == 200:
                self.served += 1
                self._window.append(now)
            elif status == 403:
                self.banned_answers += 1
            else:
                self.refused[status] = self.refused.get(status, 0) + 1
                after = self._retry_after(wall)
                self._refusals.append(now)
                while self._refusals and self._refusals[0] <= now - rules.ban_window:
                    self._refusals.popleft()
                if len(self._refusals) >= rules.ban_after:
                    self.bans += 1
                    self.banned_until = now + rules.ban_seconds
                    self._refusals.clear()
            self.log.append(Hit(wall, method, path, status, after))
            return status, after

    def leave(self) -> None:
        with self.lock:
            self.in_flight -= 1

    def _retry_after(self, wall: float) -> str | None:
        seconds = self.rules.retry_after
        if seconds is None:
            return None
        if self.rules.retry_after_date:
            return formatdate(float(int(wall + seconds) + 1), usegmt=True)
        return f"{seconds:g}"


_FILE = re.compile(r"^/f/(\d+)\.bin$")
_PAGE = re.compile(r"^/v/(\d+)\.html$")
_CLIP = re.compile(r"^/media/(\d+)\.mp4$")


class StrictRequest(media_site.Request):
    """media_site's request (Range, ETag, bandwidth in send_bytes) behind the rules."""

    strict: StrictSite
    counted = False  # in the site's count of requests in flight

    def handle_one(self) -> None:
        path = urlsplit(self.path).path
        self.entry = media_site.Logged(
            self.command, self.path, dict(self.headers.items()), time.monotonic()
        )
        status, after = self.strict.admit(self.command, path)
        self.counted = True
        try:
            if status != 200:
                self.refuse(status, after)
            else:
                self.serve(path)
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            self.last_piece()

    def last_piece(self) -> None:
        """Out of the count in flight before the last piece of the body goes out, not
        after: the client may start its next request as soon as it has it, and a server
        thread slow to come back (a loaded machine) counted both (peak 3 for a limit of
        2, once in a CI run)."""
        if self.counted:
            self.counted = False
            self.strict.leave()

    do_GET = do_HEAD = handle_one

    def refuse(self, status: int, after: str | None) -> None:
        body = b"too many requests\n" if status != 403 else b"banned\n"
        self.send_status(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        if after is not None:
            self.send_header("Retry-After", after)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def serve(self, path: str) -> None:
        rules = self.strict.rules
        delay = float(self.query.get("delay", rules.delay))
        if delay:
            time.sleep(delay)
        rate = float(self.query["rate"]) if "rate" in self.query else rules.bandwidth
        if m := _FILE.match(path):
            data = file_bytes(int(m.group(1)), rules.file_size)
            self.send_bytes(data, etag=etag_of(data), rate=rate, chunk=4096)
        elif m := _PAGE.match(path):
            page = video_page(
                f"Strict Clip {m.group(1)}",
                [(f"/media/{m.group(1)}.mp4", "video/mp4", "180p")],
                [],
            )
            self.send_bytes(page.encode(), "text/html; charset=utf-8")
        elif _CLIP.match(path):
            data = CLIP.read_bytes()
            self.send_bytes(data, "video/mp4", etag=etag_of(data), rate=rate, chunk=16 * 1024)
        else:
            self.send_bytes(b"not found\n", "text/plain", status=404)


def file_bytes(n: int, size: int = FILE_SIZE) -> bytes:
    """The bytes of `/f/<n>.bin` (the same on every run)."""
    return make_bytes(size, 1000 + n)


def start(rules: Rules | None = None, **kw: Any) -> StrictSite:
    """Start a strict site on 127.0.0.1 (a free port) in a daemon thread:
    `start(per_second=4, retry_after=1)`."""
    site = StrictSite(replace(rules or Rules(), **kw))
    return serve(site, type("StrictSiteRequest", (StrictRequest,), {"strict": site}))


if __name__ == "__main__":
    import argparse
    import signal
    import sys

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-in-flight", type=int)
    parser.add_argument("--per-second", type=float)
    parser.add_argument("--retry-after", type=float)
    parser.add_argument("--retry-after-date", action="store_true")
    parser.add_argument("--refuse-first", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.0)
    args = parser.parse_args()
    running = start(**{k: v for k, v in vars(args).items() if v is not None})
    print(running.base, flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
