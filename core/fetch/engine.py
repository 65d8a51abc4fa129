"""`fetch_one` / `fetch_many`: one input through the chain of downloaders, batches on a
thread pool sharing one rate limit. Every downloader is a `Strategy` from the registry;
each writes through a `target.Target`, which owns the file on disk."""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import os
import re
import shutil
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import errors, feeds
from ..archive import open_archive, url_key
from ..hosts import HostRule, budget, host_of
from ..inputs import Input, check_url
from ..ratelimit import TokenBucket
from . import manifest
from .cache import revalidate
from .feed import fetch_feed
from .options import (
    DEFAULT_TEMPLATE,
    BatchProgress,
    FetchOptions,
    Progress,
    check_template,
)
from .result import Attempt, FetchResult, failed, since
from .strategies import REGISTRY, youtube_dl_available

if TYPE_CHECKING:
    from .. import http

log = logging.getLogger("xdl.fetch")


def http_module() -> Any:
    """core.http, imported on first use (requests is slow to import; `--help` is not)."""
    from .. import http as module

    return module


def fetch_one(
    url: str,
    options: FetchOptions,
    *,
    fields: Mapping[str, Any] | None = None,
    stop: threading.Event | None = None,
    limiter: TokenBucket | None = None,
    progress: Progress | None = None,
    max_wait: float = math.inf,
) -> list[FetchResult]:
    """Download one input; a playlist gives one result per entry.

    Never raises for a problem with this input: it returns failed results
    (`ok: False`, `error: {code, message}`), `interrupted` when `stop` was set. It raises
    only `errors.Fatal` (a required tool missing, the output dir not writable), which
    stops every input. `fields` are the input's JSON fields: `sha256`, `template` and
    `audio` there override `options` (a wrong type is `bad_input`). `limiter` is a
    `ratelimit.TokenBucket`; when not given, `options.rate_limit` draws on the
    process-wide bucket for that rate. A refusal (429) pauses the input's host; a pause
    longer than `max_wait` seconds ends the input as `rate_limited` at once.
    """
    started = time.monotonic()
    try:
        opts = options.for_input(fields)
        preflight(opts)
    except errors.Fatal:
        raise
    except errors.XdlError as e:
        return [failed(url, e, (), started)]
    if limiter is None and opts.rate_limit:
        limiter = shared_limiter(opts.rate_limit)
    job = Job(url, opts, stop or threading.Event(), limiter, progress, started, max_wait)
    job.fields = fields or {}
    return job.run()


def fetch_many(
    inputs: Iterable[Input],
    options: FetchOptions,
    *,
    jobs: int = 1,
    stop: threading.Event | None = None,
    progress: BatchProgress | None = None,
    limiter: TokenBucket | None = None,
) -> Iterator[FetchResult]:
    """Download a batch on `jobs` threads, yielding results as each finishes.

    Inputs that failed to parse give failed results; one failure never stops the others.
    `progress(input_url, key, done, total)` is called from the worker threads.
    On KeyboardInterrupt (SIGINT, or SIGTERM as cli.main's Terminated) the workers are
    stopped, unfinished inputs come back as `interrupted` results (their .part files
    kept), and the KeyboardInterrupt is raised again once they are all out.
    `errors.Fatal` (e.g. ffmpeg missing for --audio) is raised before any download.
    """
    preflight(options)
    stop = stop or threading.Event()
    if limiter is None and options.rate_limit:
        limiter = shared_limiter(options.rate_limit)
    return _batch(inputs, options, max(1, jobs), stop, progress, limiter)


def _batch(
    inputs: Iterable[Input],
    options: FetchOptions,
    jobs: int,
    stop: threading.Event,
    progress: BatchProgress | None,
    limiter: TokenBucket | None,
) -> Iterator[FetchResult]:
    interrupt: BaseException | None = None
    source = iter(inputs)
    exhausted = False
    last_origin = ""
    pending: dict[Future[list[FetchResult]], Input] = {}
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="xdl-fetch")
    try:
        while True:
            try:
                while not exhausted and not stop.is_set() and len(pending) < jobs:
                    item = next(source, None)
                    if item is None:
                        exhausted = True
                        break
                    last_origin = item.origin
                    if item.error is not None:
                        yield failed(item.value, item.error, (), time.monotonic())
                        continue
                    future = pool.submit(
                        fetch_one,
                        item.value,
                        options,
                        fields=item.fields,
                        stop=stop,
                        limiter=limiter,
                        progress=functools.partial(progress, item.value) if progress else None,
                    )
                    pending[future] = item
                if not pending:
                    break
                done, _ = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                for future in done:
                    item = pending.pop(future)
                    try:
                        results = future.result()
                    except errors.Fatal:
                        stop.set()
                        raise
                    except Exception as e:  # a bug must not take the batch down
                        log.debug("internal error on %s", item.value, exc_info=True)
                        results = [
                            failed(
                                item.value,
                                errors.InternalError(f"{type(e).__name__}: {e}"),
                                (),
                                time.monotonic(),
                            )
                        ]
                    for i, result in enumerate(results, 1):
                        yield dataclasses.replace(
                            result, source=item.value, last_of_source=i == len(results)
                        )
            except KeyboardInterrupt as e:
                stop.set()
                interrupt = interrupt or e
    except GeneratorExit:  # the caller stopped reading (broken pipe, its own interrupt)
        stop.set()
        raise
    finally:
        if interrupt is not None:
            stop.set()
        pool.shutdown(wait=True, cancel_futures=False)
    if interrupt is not None:
        # The inputs not started get their `interrupted` line too, when reading them
        # cannot block: arguments and batch files, not a pipe on stdin.
        if not exhausted and not _from_stdin(last_origin):
            for item in source:
                if _from_stdin(item.origin):
                    break
                error = item.error or errors.Interrupted("interrupted before it started")
                yield failed(item.value, error, (), time.monotonic())
        raise interrupt


def _from_stdin(origin: str) -> bool:
    return origin.startswith(("stdin", "<stdin>", "-:"))


def preflight(options: FetchOptions) -> None:
    """What must hold before any download starts (errors.Fatal otherwise)."""
    if (options.audio or options.normalize) and not shutil.which("ffmpeg"):
        raise errors.ToolMissing(
            "ffmpeg is needed for --audio but was not found on PATH; install it "
            "(Debian/Ubuntu: sudo apt install ffmpeg; macOS: brew install ffmpeg; "
            "Windows: winget install ffmpeg) and try again"
        )
    if options.strategy != "auto" and not REGISTRY[options.strategy].available():
        raise errors.ToolMissing(REGISTRY[options.strategy].missing)
    if options.dry_run:
        return
    out = Path(options.output_dir).expanduser()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise errors.OutputNotWritable(f"cannot create the output directory {out}: {e}") from e
    if not os.access(out, os.W_OK | os.X_OK):
        raise errors.OutputNotWritable(f"the output directory {out} is not writable")


_limiters: dict[int, TokenBucket] = {}
_limiters_lock = threading.Lock()
#: A refused input is tried again (after the host's pause) this many times at most.
MAX_REFUSALS = 8


def shared_limiter(rate: int) -> TokenBucket:
    """The process's one bucket for `rate`: every job and tier drawing on the same
    --rate-limit shares it (`xdl fetch -j N`, and `xdl queue run -j N` calling fetch_one)."""
    with _limiters_lock:
        return _limiters.setdefault(rate, TokenBucket(rate))


def transient(e: errors.XdlError) -> bool:
    """A failure that the same downloader may not meet again later (a timeout, a reset, a
    5xx, a refusal): never a reason to try the next downloader, which would meet it too
    (or save the refusal's page as the media)."""
    if isinstance(e, errors.NetworkError | errors.Timeout):
        return True
    status = e.details.get("status") if isinstance(e, errors.HttpError) else None
    return isinstance(status, int) and (status >= 500 or status in (408, 429))


#: Content types yt-dlp should look at first (pages, feeds, media, playlists).
_YTDLP_TYPES = re.compile(
    r"^(text/html|application/xhtml\+xml|video/|audio/|application/(x-)?mpegurl|"
    r"application/vnd\.apple\.mpegurl|application/dash\+xml|application/(rss|atom)\+xml|"
    r"application/xml|text/xml|application/ogg)"
)
#: A single media file (not a playlist or manifest such as audio/mpegurl or video/vnd.*).
_DIRECT_MEDIA = re.compile(r"^(video|audio)/(?!.*(mpegurl|dash|vnd\.))[\w.+-]+$")


class Job:
    """One input through the strategy chain: what every strategy is handed."""

    def __init__(
        self,
        url: str,
        options: FetchOptions,
        stop: threading.Event,
        limiter: TokenBucket | None,
        progress: Progress | None,
        started: float,
        max_wait: float = math.inf,
    ) -> None:
        self.url = url
        self.o = options
        self.stop = stop
        self.limiter = limiter
        self.progress = progress
        self.started = started
        self.head: http.Head | None = None
        self.response: Any = None  # the probe's open GET, which the HTTP tier may reuse
        self.probed = False
        self.budget = budget()
        self.rule = HostRule(options.per_host, options.sleep)
        #: A pause longer than this (seconds) ends the input as `rate_limited` at once
        #: (the queue defers the task to the pause's end instead of holding a worker).
        self.max_wait = max_wait
        self.refusals = 0
        self.archive = open_archive(options.archive) if options.archive else None
        self.out = Path(options.output_dir).expanduser()
        self.folders: tuple[str, ...] = ()
        self.fields: Mapping[str, Any] = {}  # the input's JSON fields
        #: Why the last media tier (yt-dlp) failed, for the line of a manifest refused.
        self.media_error: errors.XdlError | None = None
        self._manifest: str | None = None
        self.entries_of: feeds.Feed | None = None  # the feed this URL turned out to be
        self._probe_error: errors.XdlError | None = None  # the feed check's probe failed
        self._claimed: bool | None = None
        self._conditional: dict[str, str] | None = None

    def run(self) -> list[FetchResult]:
        try:
            with self.budget.download(self.url, self.rule, self.stop):
                results = self._run()
            if self.entries_of is not None:  # each entry holds a slot of its own host
                return self.fetch_entries(self.entries_of)
            return results
        except errors.Interrupted as e:
            return [failed(self.url, e, (), self.started)]
        finally:
            self.drop_response()

    def drop_response(self) -> None:
        resp, self.response = self.response, None
        if resp is not None:
            resp.close()

    def probe(self) -> http.Head:
        """What the URL's server says about it (one streaming GET, kept for reuse)."""
        if self.head is None:
            started = self.budget.before_request(self.url, self.rule, self.stop)
            conditional = self.conditional()
            self.head, self.response = http_module().probe(self.url, self.o.net, conditional)
            self.budget.served(self.url, started)
        return self.head

    def get(self, headers: Mapping[str, str] | None = None) -> Any:
        """A streaming GET of the input's URL within its host's budget (paced, and
        waiting out the host's pause): what every downloader's own request goes through."""
        started = self.budget.before_request(self.url, self.rule, self.stop)
        resp = http_module().get(self.url, self.o.net, headers)
        self.budget.served(self.url, started)
        return resp

    def refused(self, e: errors.XdlError) -> None:
        """The site refused a request: pause its host for everyone; RateLimited when this
        input was refused too often, or the pause is longer than this run waits."""
        self.refusals += 1
        retry_after = e.retry_after if isinstance(e, errors.HttpError) else None
        status = e.details.get("status")
        until = self.budget.refused(self.url, status if isinstance(status, int) else 429,
                                    retry_after)  # fmt: skip
        host = host_of(self.url)
        banned = status == 403  # asking again is what gets a client banned for longer
        if banned or self.refusals > MAX_REFUSALS or until - time.time() > self.max_wait:
            raise errors.RateLimited(
                f"{host} refused requests ({e.message}); paused until "
                + time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(until)),
                host=host,
                until=round(until, 3),
            ) from None

    def conditional(self) -> dict[str, str]:
        """If-None-Match / If-Modified-Since of a feed polled before into this archive."""
        if self._conditional is None:
            self._conditional = feeds.conditional_headers(self.url, self.o.archive)
        return self._conditional

    def probe_once(self) -> http.Head:
        """`probe`, but a probe that failed already (the feed check's) is not sent again."""
        if self._probe_error is not None:
            raise self._probe_error
        return self.probe()

    def _run(self) -> list[FetchResult]:
        attempts: list[Attempt] = []
        try:
            if self.stop.is_set():
                raise errors.Interrupted("interrupted before it started")
            check_url(self.url)
            self.folders = check_template(self.o.template)
            if self.archive is not None and url_key(self.url) in self.archive:
                return [self.skipped("archive", self.archive.path_of(url_key(self.url)))]
            key = feeds.archive_key(self.fields)  # a feed entry's: by its feed id, not URL
            if self.archive is not None and key is not None and key in self.archive:
                known = feeds.item_fields(self.fields)
                entry = {k: known.get(k) for k in ("title", "id", "playlist")}
                return [self.skipped("archive", self.archive.path_of(key), **entry)]
            if (hit := revalidate(self)) is not None:  # --cache: a 304 for a kept file
                return hit
            try:
                if (feed := self.feed()) is not None:  # RSS/Atom: each entry as an input
                    self.drop_response()
                    self.entries_of = feed  # fetched once this job's host slot is given back
                    return []
            except feeds.Unchanged:
                return [self.skipped("unchanged")]
            probing = time.monotonic()
            chain = self.chain()
        except errors.Fatal:
            raise
        except errors.XdlError as e:
            if self.probed:  # the probe is the HTTP tier's first request: say so
                tried = (Attempt("http", False, f"{e.code}: {e.message}", since(probing)),)
                return [failed(self.url, e, tried, self.started)]
            return [failed(self.url, e, (), self.started)]
        last: errors.XdlError = errors.DownloadFailed("no downloader could be tried")
        n = 0
        while n < len(chain):
            name = chain[n]
            begun = time.monotonic()
            try:
                if self.stop.is_set():
                    raise errors.Interrupted("interrupted")
                started = None
                if name != "http":  # the HTTP tier's requests go through self.get
                    started = self.budget.before_request(self.url, self.rule, self.stop)
                results = REGISTRY[name].run(self)
            except errors.Fatal:
                raise
            except errors.XdlError as e:
                last = e
                if REGISTRY[name].media:
                    self.media_error = e
                attempts.append(Attempt(name, False, f"{e.code}: {e.message}", since(begun)))
                log.debug("%s: %s failed: %s", self.url, name, e.message)
                if self.stop.is_set():
                    break
                if self.budget.refuses(self.url, e):  # the same downloader, after the pause
                    try:
                        self.refused(e)
                    except errors.RateLimited as limited:
                        last = limited
                        break
                    continue
                if e.final or transient(e):  # the next downloader would do no better
                    break
                if REGISTRY[name].media and e.code != "unsupported_url" and self._a_page():
                    # yt-dlp found media on the page and failed to get it: a plain-file
                    # tier would save the page itself as the media
                    chain = chain[: n + 1] + [t for t in chain[n + 1 :] if REGISTRY[t].media]
                n += 1
                if n < len(chain):
                    self.stop.wait(min(2.0, 0.25 * 2 ** (n - 1)))  # backoff between tiers
                continue
            if started is not None:
                self.budget.served(self.url, started)
            attempts.append(Attempt(name, True, None, since(begun)))
            done = tuple(attempts)
            self.record_entry(results)
            return [
                dataclasses.replace(r, strategy=name, attempts=done, elapsed_s=since(self.started))
                for r in results
            ]
        if self.stop.is_set() and not isinstance(last, errors.Interrupted):
            last = errors.Interrupted("interrupted; the .part file is kept for resuming")
        return [failed(self.url, last, tuple(attempts), self.started)]

    def chain(self) -> list[str]:
        """Which downloaders to try, in order (the smart first choice when `auto`)."""
        usable = [name for name, s in REGISTRY.items() if s.available()]
        media = [name for name in usable if REGISTRY[name].media]
        files = [name for name in usable if not REGISTRY[name].media]
        everything = media + files
        if self.o.audio:
            everything = media  # only they extract audio
        if self.o.strategy != "auto":
            first = self.o.strategy
            if self.o.audio and not REGISTRY[first].media:
                raise errors.BadInput(f"--audio needs yt-dlp or youtube-dl, not --strategy {first}")
            rest = [t for t in everything if t != first]
            return [first, *rest] if self.o.fallback else [first]
        if self.o.audio:
            chain = media
        elif self._claimed_by_extractor():
            chain = everything
        else:
            self.probed = True
            failures = 0
            while True:
                try:
                    self.probe_once()
                except errors.XdlError as e:
                    if self.budget.refuses(self.url, e):  # asked again after the pause
                        self._probe_error = None
                        self.refused(e)
                        continue
                    if transient(e) and failures < self.o.retries:  # a 5xx, a reset: again
                        self._probe_error = None
                        failures += 1
                        self.stop.wait(min(4.0, 0.5 * 2 ** (failures - 1)))
                        continue
                    if e.final or e.code == "interrupted":
                        raise
                    log.debug("%s: probe failed (%s); trying yt-dlp first", self.url, e.message)
                    self.head = None
                break
            if self.head is not None and self._plain_media_file(self.head.mime):
                # A bare video/audio file that needs none of yt-dlp's processing: save it
                # like a file (one request, resumable, its real name); yt-dlp is the fallback.
                chain = files + media
            elif (
                self.head is None or _YTDLP_TYPES.match(self.head.mime) or self.manifest()
            ):  # a manifest served as text/plain is a stream too: yt-dlp records it
                self.drop_response()
                chain = everything
            else:
                chain = files
        return chain if self.o.fallback else chain[:1]

    def _a_page(self) -> bool:
        """An HTML page, or a URL a site's extractor claims (not probed: a page too)."""
        return self.head is None or self.head.mime in ("text/html", "application/xhtml+xml")

    def _plain_media_file(self, mime: str) -> bool:
        """A direct media file that yt-dlp would only save as is, under a stranger name."""
        o = self.o
        needs_ytdlp = (
            o.audio or o.format or o.quality or o.container or o.subs or o.write_info_json
            or o.write_description or o.embed_metadata or o.embed_thumbnail or o.embed_subs
            or o.embed_chapters or o.normalize or o.playlist_items or o.auto_subs
            or o.template != DEFAULT_TEMPLATE or feeds.is_entry(self.fields)
        )  # fmt: skip
        return bool(_DIRECT_MEDIA.match(mime)) and not needs_ytdlp

    def feed(self) -> feeds.Feed | None:
        """The RSS/Atom feed this URL serves, read from the probe's own GET (conditional
        with --archive: `feeds.Unchanged` on a 304), else None. Asked of every input
        when xdl picks the downloader, but a feed entry's own and a site's page."""
        if self.o.strategy != "auto" or feeds.is_entry(self.fields):
            return None
        if feeds.named_as_media(self.url):  # an enclosure itself: no request to tell
            return None
        # a feed polled before (its ETag known) is one still: no extractor to ask
        if not self.conditional() and self._claimed_by_extractor():
            return None
        try:
            self.probed = True
            head = self.probe()
        except errors.XdlError as e:
            self._probe_error = e  # the downloaders' chain decides what it means
            return None
        if head.status == 304:
            raise feeds.Unchanged(self.url)
        if head.mime not in feeds.FEED_TYPES:
            if head.mime not in feeds.MAYBE_TYPES:
                return None
            if not feeds.looks_like_feed(head.content_type, self._first_bytes()):
                return None
        body = feeds.read_body(self.response.raw, self.url)
        return feeds.parse(body, self.url, etag=head.etag, modified=head.last_modified)

    def fetch_entries(self, feed: feeds.Feed) -> list[FetchResult]:
        """Each entry of `feed` fetched as its `info --flat` line would be."""
        each = self.o.replace(playlist_items=None, max_downloads=None)

        def run(url: str, fields: Mapping[str, Any]) -> list[FetchResult]:
            job = Job(
                url, each, self.stop, self.limiter, self.progress, time.monotonic(), self.max_wait
            )
            job.fields = fields
            return job.run()

        return fetch_feed(feed, self.o, run, archive=self.archive, stopped=self.stop.is_set)

    def record_entry(self, results: list[FetchResult]) -> None:
        """A feed entry's file goes in the archive under its feed id as well."""
        key = feeds.archive_key(self.fields)
        if self.archive is None or key is None or self.o.dry_run:
            return
        for result in results:
            if result.ok and result.path:
                self.archive.add(key, result.path)

    def manifest(self) -> str | None:
        """The stream manifest this URL serves (`HLS playlist`, `DASH manifest`...), else
        None: told by its content type, or by its first bytes when the type leaves it open
        (text-like bodies, or a URL named like one): those of the probe's own GET."""
        if self._manifest is None:
            try:
                head = self.probe()
            except errors.XdlError:
                return None  # nothing to judge by; the download itself says what is wrong
            kind = manifest.by_type(head.content_type)
            if kind is None and manifest.worth_sniffing(head.content_type, head.length, head.url):
                kind = manifest.by_content(self._first_bytes())
            self._manifest = kind or ""
        return self._manifest or None

    def _first_bytes(self) -> bytes:
        """The body's first bytes: read from the probe's open GET when there is one (and
        handed back to whoever reads it next: no second request), else a ranged GET."""
        resp = self.response
        try:
            if resp is not None and not resp.headers.get("Content-Encoding"):
                first = bytes(resp.raw.read(manifest.SNIFF_BYTES) or b"")
                resp.raw = _Replayed(first, resp.raw)
                return first
            resp = http_module().get(
                self.url, self.o.net, {"Range": f"bytes=0-{manifest.SNIFF_BYTES - 1}"}
            )
            with resp:
                return bytes(resp.raw.read(manifest.SNIFF_BYTES, decode_content=True) or b"")
        except Exception as e:  # the download itself will say what is wrong
            log.debug("%s: could not read its first bytes: %s", self.url, e)
            return b""

    def _claimed_by_extractor(self) -> bool:
        """Whether a site's own yt-dlp extractor takes the URL (asked once)."""
        from ..extractors import extractor_for

        if self._claimed is None:
            self._claimed = extractor_for(self.url) is not None
        return self._claimed

    def skipped(self, why: str, path: Path | None = None, **kw: Any) -> FetchResult:
        size = path.stat().st_size if path is not None and path.exists() else None
        return FetchResult(
            url=self.url,
            ok=True,
            path=str(path) if path else None,
            bytes=size,
            skipped=why,
            elapsed_s=since(self.started),
            **kw,
        )


class _Replayed:
    """A response body whose first bytes were read already: `read` gives them again
    first, then goes on with the body; everything else is the body's own."""

    def __init__(self, first: bytes, raw: Any) -> None:
        self._first = first
        self._raw = raw

    def read(self, amt: int | None = None, *args: Any, **kwargs: Any) -> bytes:
        if not self._first:
            return bytes(self._raw.read(amt, *args, **kwargs))
        if amt is None:
            rest = bytes(self._raw.read(None, *args, **kwargs))
            data, self._first = self._first + rest, b""
            return data
        data, self._first = self._first[:amt], self._first[amt:]
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


__all__ = ["Job", "fetch_many", "fetch_one", "preflight", "shared_limiter", "youtube_dl_available"]
