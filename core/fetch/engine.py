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
from typing import Any

from .. import errors, feeds
from ..archive import url_key
from ..context import Context, given
from ..inputs import Input, check_url
from ..ratelimit import TokenBucket
from ..stopping import SignalsStop, back_off
from .cache import revalidate
from .feed import fetch_feed
from .job import Job, Probe
from .options import (
    DEFAULT_TEMPLATE,
    BatchProgress,
    FetchOptions,
    Progress,
    check_template,
)
from .result import Attempt, FetchResult, failed, since
from .strategies import REGISTRY, youtube_dl_available

log = logging.getLogger("xdl.fetch")


def fetch_one(
    url: str,
    options: FetchOptions,
    *,
    fields: Mapping[str, Any] | None = None,
    stop: threading.Event | None = None,
    limiter: TokenBucket | None = None,
    progress: Progress | None = None,
    max_wait: float = math.inf,
    ctx: Context | None = None,
) -> list[FetchResult]:
    """Download one input; a playlist gives one result per entry.

    Never raises for a problem with this input: it returns failed results
    (`ok: False`, `error: {code, message}`), `interrupted` when `stop` was set. It raises
    only `errors.Fatal` (a required tool missing, the output dir not writable), which
    stops every input. `fields` are the input's JSON fields: `sha256`, `template` and
    `audio` there override `options` (a wrong type is `bad_input`). `limiter` is a
    `ratelimit.TokenBucket`; when not given, `options.rate_limit` draws on the
    context's bucket for that rate. `ctx` is what the command's downloads share (the
    per-host budget, free space, caches, archives, cookies; `context.Context`): one of
    its own when not given. A refusal (429) pauses the input's host; a pause longer than
    `max_wait` seconds ends the input as `rate_limited` at once.
    """
    started = time.monotonic()
    try:
        opts = options.for_input(fields)
        preflight(opts)
    except errors.Fatal:
        raise
    except errors.XdlError as e:
        return [failed(url, e, (), started)]
    ctx = given(ctx)
    if limiter is None and opts.rate_limit:
        limiter = rate_limiter(ctx, opts.rate_limit)
    stop = stop or threading.Event()
    return run(Job(url, opts, ctx, stop, limiter, progress, started, max_wait, fields or {}))


def fetch_many(
    inputs: Iterable[Input],
    options: FetchOptions,
    *,
    jobs: int = 1,
    stop: threading.Event | None = None,
    progress: BatchProgress | None = None,
    limiter: TokenBucket | None = None,
    ctx: Context | None = None,
) -> Iterator[FetchResult]:
    """Download a batch on `jobs` threads, yielding results as each finishes; the
    threads share `ctx` (one of the batch's own when not given).

    Inputs that failed to parse give failed results; one failure never stops the others.
    `progress(input_url, key, done, total)` is called from the worker threads.
    On KeyboardInterrupt (SIGINT, or SIGTERM as cli.main's Terminated) the workers are
    stopped, unfinished inputs come back as `interrupted` results (their .part files
    kept), and the KeyboardInterrupt is raised again once they are all out.
    `errors.Fatal` (e.g. ffmpeg missing for --audio) is raised before any download.
    """
    preflight(options)
    stop = stop or threading.Event()
    ctx = given(ctx)
    if limiter is None and options.rate_limit:
        limiter = rate_limiter(ctx, options.rate_limit)
    return _batch(inputs, options, max(1, jobs), stop, progress, limiter, ctx)


def _batch(
    inputs: Iterable[Input],
    options: FetchOptions,
    jobs: int,
    stop: threading.Event,
    progress: BatchProgress | None,
    limiter: TokenBucket | None,
    ctx: Context,
) -> Iterator[FetchResult]:
    interrupt: BaseException | None = None
    source = iter(inputs)
    exhausted = False
    last_origin = ""
    pending: dict[Future[list[FetchResult]], Input] = {}
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="xdl-fetch")
    signals = SignalsStop(stop).take()  # Ctrl-C: the workers stop, the lines come
    try:
        while True:
            try:
                while not exhausted and not stop.is_set() and len(pending) < jobs:
                    item = signals.next_input(source)  # a silent pipe: a signal ends it
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
                        ctx=ctx,
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
                        yield result.but(source=item.value, last_of_source=i == len(results))
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
        signals.give_back()
    if interrupt is not None or signals.signalled is not None:
        # The inputs not started get their `interrupted` line too, when reading them
        # cannot block: arguments and batch files, not a pipe on stdin.
        if not exhausted and not _from_stdin(last_origin):
            for item in source:
                if _from_stdin(item.origin):
                    break
                error = item.error or errors.Interrupted("interrupted before it started")
                yield failed(item.value, error, (), time.monotonic())
        if interrupt is not None:
            raise interrupt
        signals.raise_signalled()  # as the signal would have (exit 130, 143)


def _from_stdin(origin: str) -> bool:
    return origin.startswith(("stdin", "<stdin>", "-:"))


def preflight(options: FetchOptions) -> None:
    """What must hold before any download starts (errors.Fatal otherwise). Asked again
    of the same options (a batch's plain lines share one), it is one call while the
    output folder is there, not three: one that went away is made again, as at first
    (a link to a folder that went away is not followed to make its target)."""
    checked = options.__dict__.get("_preflighted")
    if checked is not None and os.access(checked, os.W_OK | os.X_OK):
        return
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
        if out.is_symlink() and not out.exists():
            raise errors.OutputNotWritable(
                f"the output directory {out} is a link to {os.readlink(out)}, which is not"
                " there (a drive not mounted?); nothing is made through it"
            ) from e
        raise errors.OutputNotWritable(f"cannot create the output directory {out}: {e}") from e
    if not os.access(out, os.W_OK | os.X_OK):
        raise errors.OutputNotWritable(f"the output directory {out} is not writable")
    object.__setattr__(options, "_preflighted", out)


def rate_limiter(ctx: Context, rate: int) -> TokenBucket:
    """The command's one bucket for `rate`: every job and tier drawing on the same
    --rate-limit shares it (`xdl fetch -j N`, and `xdl queue run -j N` calling fetch_one)."""
    return ctx.once(("rate", rate), lambda: TokenBucket(rate))


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


def run(job: Job) -> list[FetchResult]:
    try:
        with job.budget.download(job.url, job.rule, job.stop):
            results = _run(job)
        if isinstance(results, feeds.Feed):  # each entry holds a slot of its own host
            return fetch_entries(job, results)
        return results
    except errors.Interrupted as e:
        return [failed(job.url, e, (), job.started)]
    finally:
        job.drop_response()


def _run(job: Job) -> list[FetchResult] | feeds.Feed:
    """The input's lines, or the feed it turned out to be (its entries are fetched once
    this input's host slot is given back)."""
    attempts: list[Attempt] = []
    try:
        if job.stop.is_set():
            raise errors.Interrupted("interrupted before it started")
        check_url(job.url)
        check_template(job.o.template)
        if job.archive is not None and url_key(job.url) in job.archive:
            return [job.skipped("archive", job.archive.path_of(url_key(job.url)))]
        key = feeds.archive_key(job.fields)  # a feed entry's: by its feed id, not URL
        if job.archive is not None and key is not None and key in job.archive:
            known = feeds.item_fields(job.fields)
            entry = {k: known.get(k) for k in ("title", "id", "playlist")}
            return [job.skipped("archive", job.archive.path_of(key), **entry)]
        if (hit := revalidate(job)) is not None:  # --cache: a 304 for a kept file
            return hit
        try:
            if (feed := feed_of(job)) is not None:  # RSS/Atom: each entry as an input
                job.drop_response()
                return feed
        except feeds.Unchanged:
            return [job.skipped("unchanged")]
        probing = time.monotonic()
        chain = chain_of(job)
    except errors.Fatal:
        raise
    except errors.XdlError as e:
        if job.stop.is_set() and not isinstance(e, errors.Interrupted):
            e = errors.Interrupted("interrupted")  # what the stop made it: not the site's
        if job.found.probed:  # the probe is the HTTP tier's first request: say so
            tried = (Attempt("http", False, f"{e.code}: {e.message}", since(probing)),)
            return [failed(job.url, e, tried, job.started)]
        return [failed(job.url, e, (), job.started)]
    last: errors.XdlError = errors.DownloadFailed("no downloader could be tried")
    remade = False
    n = 0
    while n < len(chain):
        name = chain[n]
        begun = time.monotonic()
        try:
            if job.stop.is_set():
                raise errors.Interrupted("interrupted")
            started = None
            if name != "http":  # the HTTP tier's requests go through job.get
                started = job.budget.before_request(job.url, job.rule, job.stop, job.max_wait)
            results = REGISTRY[name].run(job)
        except errors.Fatal:
            raise
        except errors.XdlError as e:
            last = e
            if REGISTRY[name].media:
                job.found.media_error = e
            attempts.append(Attempt(name, False, f"{e.code}: {e.message}", since(begun)))
            log.debug("%s: %s failed: %s", job.url, name, e.message)
            if job.stop.is_set():
                break
            if isinstance(e, errors.OutputRemoved) and not remade:
                remade = True  # made again as the batch's check does (never through a
                preflight(job.o)  # link whose target went away: that stops the batch)
                continue
            if job.budget.refuses(job.url, e):  # the same downloader, after the pause
                try:
                    job.refused(e)
                except errors.RateLimited as limited:
                    last = limited
                    break
                continue
            if e.final or transient(e):  # the next downloader would do no better
                break
            if REGISTRY[name].media and e.code != "unsupported_url" and _a_page(job):
                # yt-dlp found media on the page and failed to get it: a plain-file
                # tier would save the page itself as the media
                chain = chain[: n + 1] + [t for t in chain[n + 1 :] if REGISTRY[t].media]
            n += 1
            if n < len(chain):
                job.stop.wait(min(2.0, 0.25 * 2 ** (n - 1)))  # backoff between tiers
            continue
        if started is not None:
            job.budget.served(job.url, started)
        attempts.append(Attempt(name, True, None, since(begun)))
        done = tuple(attempts)
        record_entry(job, results)
        return [r.but(strategy=name, attempts=done, elapsed_s=since(job.started)) for r in results]
    if job.stop.is_set() and not isinstance(last, errors.Interrupted):
        last = errors.Interrupted(errors.STOPPED)
    return [failed(job.url, last, tuple(attempts), job.started)]


def chain_of(job: Job) -> list[str]:
    """Which downloaders to try, in order (the smart first choice when `auto`)."""
    usable = [name for name, s in REGISTRY.items() if s.available()]
    media = [name for name in usable if REGISTRY[name].media]
    files = [name for name in usable if not REGISTRY[name].media]
    everything = media + files
    if job.o.audio:
        everything = media  # only they extract audio
    if job.o.strategy != "auto":
        first = job.o.strategy
        if job.o.audio and not REGISTRY[first].media:
            raise errors.BadInput(f"--audio needs yt-dlp or youtube-dl, not --strategy {first}")
        rest = [t for t in everything if t != first]
        return [first, *rest] if job.o.fallback else [first]
    if job.o.audio:
        chain = media
    elif job.claimed_by_extractor():
        chain = everything
    else:
        job.found.probed = True
        failures = 0
        while True:
            try:
                job.probe_once()
            except errors.XdlError as e:
                if job.budget.refuses(job.url, e):  # asked again after the pause
                    job.found.error = None
                    job.refused(e)
                    continue
                if transient(e) and failures < job.o.retries:  # a 5xx, a reset: again
                    job.found.error = None
                    back_off(job.stop, failures)
                    failures += 1
                    continue
                if e.final or e.code == "interrupted":
                    raise
                log.debug("%s: probe failed (%s); trying yt-dlp first", job.url, e.message)
                job.found.head = None
            break
        head = job.found.head
        if head is not None and _plain_media_file(job, head.mime):
            # A bare video/audio file that needs none of yt-dlp's processing: save it
            # like a file (one request, resumable, its real name); yt-dlp is the fallback.
            chain = files + media
        elif (
            head is None or _YTDLP_TYPES.match(head.mime) or job.manifest()
        ):  # a manifest served as text/plain is a stream too: yt-dlp records it
            job.drop_response()
            chain = everything
        else:
            chain = files
    return chain if job.o.fallback else chain[:1]


def _a_page(job: Job) -> bool:
    """An HTML page, or a URL a site's extractor claims (not probed: a page too)."""
    head = job.found.head
    return head is None or head.mime in ("text/html", "application/xhtml+xml")


def _plain_media_file(job: Job, mime: str) -> bool:
    """A direct media file that yt-dlp would only save as is, under a stranger name."""
    o = job.o
    needs_ytdlp = (
        o.audio or o.format or o.quality or o.container or o.subs or o.write_info_json
        or o.write_description or o.embed_metadata or o.embed_thumbnail or o.embed_subs
        or o.embed_chapters or o.normalize or o.playlist_items or o.auto_subs
        or o.template != DEFAULT_TEMPLATE or feeds.is_entry(job.fields)
    )  # fmt: skip
    return bool(_DIRECT_MEDIA.match(mime)) and not needs_ytdlp


def feed_of(job: Job) -> feeds.Feed | None:
    """The RSS/Atom feed this URL serves, read from the probe's own GET (conditional
    with --archive: `feeds.Unchanged` on a 304), else None. Asked of every input
    when xdl picks the downloader, but a feed entry's own and a site's page."""
    if job.o.strategy != "auto" or feeds.is_entry(job.fields):
        return None
    if feeds.named_as_media(job.url):  # an enclosure itself: no request to tell
        return None
    # a feed polled before (its ETag known) is one still: no extractor to ask
    if not job.conditional() and job.claimed_by_extractor():
        return None
    try:
        job.found.probed = True
        head = job.probe()
    except errors.XdlError as e:
        job.found.error = e  # the downloaders' chain decides what it means
        return None
    if head.status == 304:
        raise feeds.Unchanged(job.url)
    if head.mime not in feeds.FEED_TYPES:
        if head.mime not in feeds.MAYBE_TYPES:
            return None
        if not feeds.looks_like_feed(head.content_type, job.first_bytes()):
            return None
    body = feeds.read_body(job.found.response.raw, job.url)
    return feeds.parse(body, job.url, etag=head.etag, modified=head.last_modified)


def fetch_entries(job: Job, feed: feeds.Feed) -> list[FetchResult]:
    """Each entry of `feed` fetched as its `info --flat` line would be."""
    each = job.o.replace(playlist_items=None, max_downloads=None)

    def one(url: str, fields: Mapping[str, Any]) -> list[FetchResult]:
        started = time.monotonic()
        return run(dataclasses.replace(job, url=url, o=each, started=started, fields=fields,
                                       found=Probe()))  # fmt: skip

    return fetch_feed(feed, job.o, one, archive=job.archive, stopped=job.stop.is_set)


def record_entry(job: Job, results: list[FetchResult]) -> None:
    """A feed entry's file goes in the archive under its feed id as well."""
    key = feeds.archive_key(job.fields)
    if job.archive is None or key is None or job.o.dry_run:
        return
    for result in results:
        if result.ok and result.path:
            job.archive.add(key, result.path)


__all__ = ["fetch_many", "fetch_one", "preflight", "rate_limiter", "youtube_dl_available"]
