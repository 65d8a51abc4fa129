"""`xdl fetch`: the download engine.

Strategies (yt-dlp, youtube-dl, direct HTTP, wget, curl) behind one interface, tried in
order until one succeeds; a smart first choice; the safety rules of SPEC §5; batches on a
thread pool sharing one rate limit. Click-free: `xdl fetch` and `xdl queue run` both call
`fetch_one` / `fetch_many`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import errors
from .archive import media_key, open_archive, url_key
from .inputs import Input, check_url
from .names import filename_from_url, inside, with_extension
from .network import NetworkOptions
from .partfile import PartFile, check_free_space, sha256_file
from .ratelimit import HostPacer, TokenBucket

if TYPE_CHECKING:
    from . import http

log = logging.getLogger("xdl.fetch")


def _http() -> Any:
    """core.http, imported on first use (requests is slow to import; `--help` is not)."""
    from . import http as module

    return module


DEFAULT_TEMPLATE = "%(title)s [%(id)s].%(ext)s"
STRATEGIES = ("auto", "ytdlp", "youtube-dl", "http", "wget", "curl")
AUDIO_FORMATS = ("best", "mp3", "m4a", "opus", "flac", "wav")
QUALITIES = ("best", "worst", "2160p", "1440p", "1080p", "720p", "480p", "360p")
CONTAINERS = ("mp4", "mkv", "webm")

#: progress(key, done_bytes, total_bytes_or_None); called from worker threads.
Progress = Callable[[str, int, "int | None"], None]


@dataclass(frozen=True)
class FetchOptions:
    """Every option of one download task (what `queue add` stores with a task).

    JSON-serialisable with `to_dict()`; `from_dict()` ignores unknown keys and fills
    missing ones with defaults, so a queue written by another xdl version still loads.
    Sizes and rates are in bytes (per second).
    """

    output_dir: str = "."
    template: str = DEFAULT_TEMPLATE
    audio: bool = False
    audio_format: str = "best"
    audio_quality: str | None = None
    keep_video: bool = False
    quality: str | None = None
    format: str | None = None
    container: str | None = None
    subs: bool = False
    sub_langs: tuple[str, ...] = ()
    write_info_json: bool = False
    write_description: bool = False
    embed_metadata: bool = False
    embed_thumbnail: bool = False
    embed_subs: bool = False
    embed_chapters: bool = False
    normalize: bool = False
    playlist_items: str | None = None
    max_downloads: int | None = None
    live_from_start: bool = False
    strategy: str = "auto"
    fallback: bool = True
    rate_limit: int | None = None
    sleep: float = 0.0
    retries: int = 3
    archive: str | None = None
    overwrite: bool = False
    min_size: int | None = None
    max_size: int | None = None
    sha256: str | None = None
    net: NetworkOptions = field(default_factory=NetworkOptions)
    dry_run: bool = False

    @property
    def timeout(self) -> float | None:
        return self.net.timeout

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["sub_langs"] = list(self.sub_langs)
        d["net"] = {**dataclasses.asdict(self.net), "headers": dict(self.net.headers)}
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> FetchOptions:
        d = dict(d or {})
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {k: v for k, v in d.items() if k in names and k != "net"}
        if "sub_langs" in kwargs:
            langs = kwargs["sub_langs"]
            kwargs["sub_langs"] = (
                tuple(x.strip() for x in langs.split(",") if x.strip())
                if isinstance(langs, str)
                else tuple(langs or ())
            )
        raw_net = dict(d.get("net") or {})
        for key in ("timeout", "proxy", "user_agent", "headers", "cookies"):
            if key in d and key not in raw_net:  # flat keys, as a hand-written file may have
                raw_net[key] = d[key]
        net_names = {f.name for f in dataclasses.fields(NetworkOptions)}
        net = {k: v for k, v in raw_net.items() if k in net_names}
        net["headers"] = dict(net.get("headers") or {})
        return cls(**kwargs, net=NetworkOptions(**net))

    def replace(self, **changes: Any) -> FetchOptions:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class Attempt:
    """One strategy's try at one input."""

    strategy: str
    ok: bool
    error: str | None
    elapsed_s: float

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class FetchResult:
    """The result line of one downloaded (or skipped, or failed) item."""

    url: str
    ok: bool
    path: str | None = None
    bytes: int | None = None
    sha256: str | None = None
    strategy: str | None = None
    attempts: tuple[Attempt, ...] = ()
    title: str | None = None
    id: str | None = None
    extractor: str | None = None
    elapsed_s: float = 0.0
    resumed_from: int | None = None
    skipped: str | None = None
    error: dict[str, Any] | None = None
    playlist: str | None = None
    playlist_index: int | None = None
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["attempts"] = [a.to_dict() for a in self.attempts]
        if self.playlist is None and self.playlist_index is None:
            del d["playlist"], d["playlist_index"]
        if not self.dry_run:
            del d["dry_run"]
        return d


def fetch_one(
    url: str,
    options: FetchOptions,
    *,
    fields: Mapping[str, Any] | None = None,
    stop: threading.Event | None = None,
    limiter: TokenBucket | None = None,
    progress: Progress | None = None,
) -> list[FetchResult]:
    """Download one input; a playlist gives one result per entry.

    Never raises for a problem with this input: it returns failed results
    (`ok: False`, `error: {code, message}`), `interrupted` when `stop` was set. It raises
    only `errors.Fatal` (a required tool missing, the output dir not writable), which
    stops every input. `fields` are the input's JSON fields: `sha256`, `template` and
    `audio` there override `options`. `limiter` is a `ratelimit.TokenBucket`; when not
    given, `options.rate_limit` draws on the process-wide bucket for that rate.
    """
    started = time.monotonic()
    try:
        opts = _with_fields(options, fields or {})
        preflight(opts)
    except errors.Fatal:
        raise
    except errors.XdlError as e:
        return [_failed(url, e, (), started)]
    if limiter is None and opts.rate_limit:
        limiter = shared_limiter(opts.rate_limit)
    job = _Job(url, opts, stop or threading.Event(), limiter, progress, started)
    return job.run()


def fetch_many(
    inputs: Iterable[Input],
    options: FetchOptions,
    *,
    jobs: int = 1,
    stop: threading.Event | None = None,
    progress: Progress | None = None,
    limiter: TokenBucket | None = None,
) -> Iterator[FetchResult]:
    """Download a batch on `jobs` threads, yielding results as each finishes.

    Inputs that failed to parse give failed results; one failure never stops the others.
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
    progress: Progress | None,
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
                        yield _failed(item.value, item.error, (), time.monotonic())
                        continue
                    future = pool.submit(
                        fetch_one,
                        item.value,
                        options,
                        fields=item.fields,
                        stop=stop,
                        limiter=limiter,
                        progress=progress,
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
                            _failed(
                                item.value,
                                errors.DownloadFailed(f"internal error: {type(e).__name__}: {e}"),
                                (),
                                time.monotonic(),
                            )
                        ]
                    yield from results
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
                yield _failed(item.value, error, (), time.monotonic())
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
    if options.strategy == "youtube-dl" and not _youtube_dl_available():
        raise errors.ToolMissing("--strategy youtube-dl: the youtube_dl module is not installed")
    if options.strategy in ("wget", "curl") and not shutil.which(options.strategy):
        raise errors.ToolMissing(f"--strategy {options.strategy}: {options.strategy} not on PATH")
    if options.dry_run:
        return
    out = Path(options.output_dir).expanduser()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise errors.OutputNotWritable(f"cannot create the output directory {out}: {e}") from e
    if not os.access(out, os.W_OK | os.X_OK):
        raise errors.OutputNotWritable(f"the output directory {out} is not writable")


def _with_fields(options: FetchOptions, fields: Mapping[str, Any]) -> FetchOptions:
    """Per-input overrides a JSON input line may carry: sha256, template, audio."""
    changes: dict[str, Any] = {}
    sha = fields.get("sha256")
    if isinstance(sha, str) and sha.strip():
        sha = sha.strip().lower()
        if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
            raise errors.BadInput(f"the input's sha256 is not a SHA-256 hex digest: {sha!r}")
        changes["sha256"] = sha
    if isinstance(fields.get("template"), str) and fields["template"].strip():
        changes["template"] = fields["template"]
    if isinstance(fields.get("audio"), bool):
        changes["audio"] = fields["audio"]
    return options.replace(**changes) if changes else options


def _failed(
    url: str, error: errors.XdlError, attempts: tuple[Attempt, ...], started: float, **kw: Any
) -> FetchResult:
    return FetchResult(
        url=url,
        ok=False,
        attempts=attempts,
        elapsed_s=round(time.monotonic() - started, 3),
        error=error.to_dict(),
        **kw,
    )


def _youtube_dl_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("youtube_dl") is not None


_limiters: dict[int, TokenBucket] = {}


def shared_limiter(rate: int) -> TokenBucket:
    """The process's one bucket for `rate`: every job and tier drawing on the same
    --rate-limit shares it (`xdl fetch -j N`, and `xdl queue run -j N` calling fetch_one)."""
    with _pacers_lock:
        return _limiters.setdefault(rate, TokenBucket(rate))


_pacers: dict[float, HostPacer] = {}
_pacers_lock = threading.Lock()


def _pacer(interval: float) -> HostPacer:
    """One per-host pacer per interval per process, shared by all jobs."""
    with _pacers_lock:
        return _pacers.setdefault(interval, HostPacer(interval))


class _Stopped(BaseException):
    """Raised inside yt-dlp's progress hook to stop it (a BaseException: never swallowed)."""


#: Content types yt-dlp should look at first (pages, feeds, media, playlists).
_YTDLP_TYPES = re.compile(
    r"^(text/html|application/xhtml\+xml|video/|audio/|application/(x-)?mpegurl|"
    r"application/vnd\.apple\.mpegurl|application/dash\+xml|application/(rss|atom)\+xml|"
    r"application/xml|text/xml|application/ogg)"
)
_FILE_TIERS = ("http", "wget", "curl")
#: A single media file (not a playlist or manifest such as audio/mpegurl or video/vnd.*).
_DIRECT_MEDIA = re.compile(r"^(video|audio)/(?!.*(mpegurl|dash|vnd\.))[\w.+-]+$")


class _Job:
    """One input through the strategy chain."""

    def __init__(
        self,
        url: str,
        options: FetchOptions,
        stop: threading.Event,
        limiter: TokenBucket | None,
        progress: Progress | None,
        started: float,
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
        self.pacer = _pacer(options.sleep)
        self.archive = open_archive(options.archive) if options.archive else None
        self.out = Path(options.output_dir).expanduser()

    # -- the chain ------------------------------------------------------------------

    def run(self) -> list[FetchResult]:
        try:
            return self._run()
        finally:
            self._drop_response()

    def _drop_response(self) -> Any:
        resp, self.response = self.response, None
        if resp is not None:
            resp.close()

    def _run(self) -> list[FetchResult]:
        attempts: list[Attempt] = []
        try:
            if self.stop.is_set():
                raise errors.Interrupted("interrupted before it started")
            check_url(self.url)
            _check_template(self.o.template)
            if self.archive is not None and url_key(self.url) in self.archive:
                return [self._skipped("archive")]
            probing = time.monotonic()
            chain = self.chain()
        except errors.Fatal:
            raise
        except errors.XdlError as e:
            if self.probed:  # the probe is the HTTP tier's first request: say so
                tried = (Attempt("http", False, f"{e.code}: {e.message}", _since(probing)),)
                return [_failed(self.url, e, tried, self.started)]
            return [_failed(self.url, e, (), self.started)]
        last: errors.XdlError = errors.DownloadFailed("no downloader could be tried")
        for n, name in enumerate(chain):
            if n:
                self.stop.wait(min(2.0, 0.25 * 2 ** (n - 1)))  # backoff between tiers
            begun = time.monotonic()
            try:
                if self.stop.is_set():
                    raise errors.Interrupted("interrupted")
                if not (name == "http" and self.response is not None):  # a new request
                    self.pacer.wait(self.url, self.stop)
                results = getattr(self, "_" + name.replace("-", "_"))()
            except errors.Fatal:
                raise
            except errors.XdlError as e:
                last = e
                attempts.append(Attempt(name, False, f"{e.code}: {e.message}", _since(begun)))
                log.debug("%s: %s failed: %s", self.url, name, e.message)
                if e.final or self.stop.is_set():
                    break
                continue
            attempts.append(Attempt(name, True, None, _since(begun)))
            done = tuple(attempts)
            return [
                dataclasses.replace(r, strategy=name, attempts=done, elapsed_s=_since(self.started))
                for r in results
            ]
        if self.stop.is_set() and not isinstance(last, errors.Interrupted):
            last = errors.Interrupted("interrupted; the .part file is kept for resuming")
        return [_failed(self.url, last, tuple(attempts), self.started)]

    def chain(self) -> list[str]:
        """Which downloaders to try, in order (the smart first choice when `auto`)."""
        media_tiers = ["ytdlp"] + (["youtube-dl"] if _youtube_dl_available() else [])
        everything = media_tiers + ["http"] + [t for t in ("wget", "curl") if shutil.which(t)]
        if self.o.audio:
            everything = media_tiers  # only they extract audio
        if self.o.strategy != "auto":
            first = self.o.strategy
            if self.o.audio and first not in media_tiers:
                raise errors.BadInput(f"--audio needs yt-dlp or youtube-dl, not --strategy {first}")
            rest = [t for t in everything if t != first]
            return [first, *rest] if self.o.fallback else [first]
        if self.o.audio:
            chain = media_tiers
        elif self._claimed_by_extractor():
            chain = everything
        else:
            self.pacer.wait(self.url, self.stop)
            try:
                self.probed = True
                self.head, self.response = _http().probe(self.url, self.o.net)
            except errors.XdlError as e:
                if e.final:
                    raise
                log.debug("%s: probe failed (%s); trying yt-dlp first", self.url, e.message)
                self.head = None
            files = [t for t in everything if t in _FILE_TIERS]
            if self.head is not None and self._plain_media_file(self.head.mime):
                # A bare video/audio file that needs none of yt-dlp's processing: save it
                # like a file (one request, resumable, its real name); yt-dlp is the fallback.
                chain = files + media_tiers
            elif self.head is None or _YTDLP_TYPES.match(self.head.mime):
                self._drop_response()
                chain = everything
            else:
                chain = files
        return chain if self.o.fallback else chain[:1]

    def _plain_media_file(self, mime: str) -> bool:
        """A direct media file that yt-dlp would only save as is, under a stranger name."""
        o = self.o
        needs_ytdlp = (
            o.audio or o.format or o.quality or o.container or o.subs or o.write_info_json
            or o.write_description or o.embed_metadata or o.embed_thumbnail or o.embed_subs
            or o.embed_chapters or o.normalize or o.playlist_items
            or o.template != DEFAULT_TEMPLATE
        )  # fmt: skip
        return bool(_DIRECT_MEDIA.match(mime)) and not needs_ytdlp

    def _claimed_by_extractor(self) -> bool:
        from . import ytdlp

        return ytdlp.extractor_for(self.url) is not None

    def _skipped(self, why: str, path: Path | None = None, **kw: Any) -> FetchResult:
        size = path.stat().st_size if path is not None and path.exists() else None
        return FetchResult(
            url=self.url,
            ok=True,
            path=str(path) if path else None,
            bytes=size,
            skipped=why,
            elapsed_s=_since(self.started),
            **kw,
        )

    # -- direct HTTP, wget, curl --------------------------------------------------------

    def _target(self) -> Path:
        """The plain file's path: its real name (Content-Disposition, else the URL)."""
        if self.head is None:
            self.head, self.response = _http().probe(self.url, self.o.net)
        head = self.head
        name = head.filename or with_extension(filename_from_url(head.url), head.content_type)
        return inside(self.out, name)

    def _plain_checks(self) -> tuple[Path, list[FetchResult] | None]:
        path = self._target()
        length = self.head.length if self.head else None
        if self.o.dry_run:
            return path, [
                FetchResult(
                    url=self.url,
                    ok=True,
                    path=str(path),
                    bytes=length,
                    title=path.stem,
                    elapsed_s=_since(self.started),
                    dry_run=True,
                )
            ]
        if path.exists() and not self.o.overwrite:
            return path, [self._skipped("exists", path, title=path.stem)]
        if length is not None:
            if self.o.max_size is not None and length > self.o.max_size:
                raise errors.TooLarge(
                    f"{length} bytes is more than --max-size {self.o.max_size}", bytes=length
                )
            if self.o.min_size is not None and length < self.o.min_size:
                raise errors.TooSmall(
                    f"{length} bytes is less than --min-size {self.o.min_size}", bytes=length
                )
        return path, None

    def _part(self, path: Path, tag: str = "") -> PartFile:
        return PartFile(
            path,
            stop=self.stop,
            limiter=self.limiter,
            progress=self.progress,
            key=path.name,
            max_size=self.o.max_size,
            tag=tag,
        )

    def _done_plain(self, path: Path, size: int, digest: str, resumed: int | None) -> FetchResult:
        if self.archive is not None:
            self.archive.add(url_key(self.url))
        return FetchResult(
            url=self.url,
            ok=True,
            path=str(path),
            bytes=size,
            sha256=digest,
            title=path.stem,
            resumed_from=resumed,
        )

    def _http(self) -> list[FetchResult]:
        path, early = self._plain_checks()
        if early is not None:
            return early
        part = self._part(path)
        chunk = self.limiter.chunk_size(_http().CHUNK) if self.limiter else _http().CHUNK
        for attempt in range(self.o.retries + 1):
            offset, meta = part.saved()
            # A strong ETag identifies the content wherever it came from (signed URLs
            # change); a date alone only counts for the same URL.
            validator = meta.get("etag") or (
                meta.get("last_modified") if meta.get("url") == self.url else None
            )
            headers: dict[str, str] = {}
            if offset and validator:
                headers = {"Range": f"bytes={offset}-", "If-Range": str(validator)}
            else:
                offset = 0
            try:
                reuse = self._drop_response() if headers else self.response
                self.response = None
                resp = reuse if reuse is not None else _http().get(self.url, self.o.net, headers)
                with resp:
                    if resp.status_code == 416:  # our .part is no use: start again
                        part.discard()
                        raise errors.NetworkError("HTTP 416: the saved .part did not fit")
                    total = _length(resp.headers.get("Content-Length"))
                    resumed: int | None = None
                    if offset and resp.status_code == 206:
                        start, full = _content_range(resp.headers.get("Content-Range"))
                        if start != offset:
                            part.discard()
                            raise errors.NetworkError("the server resumed at the wrong offset")
                        total = full if full is not None else _plus(total, offset)
                        resumed = offset
                    elif resp.status_code != 200:
                        raise errors.HttpError(f"HTTP {resp.status_code} {resp.reason}")
                    else:
                        offset = 0  # 200 to a ranged request: changed, or no ranges; restart
                    etag = resp.headers.get("ETag")
                    last_modified = resp.headers.get("Last-Modified")
                    part.begin(
                        offset,
                        total,
                        {
                            "url": self.url,
                            "etag": etag if etag and not etag.startswith("W/") else None,
                            "last_modified": last_modified,
                            "total": total,
                        },
                    )
                    for data in _http().chunks(resp, chunk):
                        part.write(data)
                    size, digest = part.commit(self.o.sha256, self.o.min_size)
                    return [self._done_plain(path, size, digest, resumed)]
            except (errors.NetworkError, errors.Timeout, errors.HttpError) as e:
                part.close()
                status = e.details.get("status")
                retryable = status is None or status >= 500 or status in (408, 429)
                if attempt >= self.o.retries or not retryable or self.stop.is_set():
                    raise
                log.debug("%s: %s; retrying (%d)", self.url, e.message, attempt + 1)
                self.stop.wait(min(4.0, 0.5 * 2**attempt))
            finally:
                part.close()
        raise errors.DownloadFailed("out of retries")  # not reached

    def _wget(self) -> list[FetchResult]:
        cmd = ["wget", "-nv", "-O", "-", f"--tries={self.o.retries + 1}"]
        net = self.o.net
        cmd += [f"--timeout={net.timeout or _http().DEFAULT_TIMEOUT:g}"]
        cmd += [f"--user-agent={net.user_agent or _http().USER_AGENT}"]
        cmd += [f"--header={k}: {v}" for k, v in net.headers.items()]
        if net.cookies:
            cmd += [f"--load-cookies={net.cookies}"]
        if net.proxy:
            cmd += ["-e", "use_proxy=yes", "-e", f"http_proxy={net.proxy}"]
            cmd += ["-e", f"https_proxy={net.proxy}"]
        return self._piped("wget", [*cmd, "--", self.url])

    def _curl(self) -> list[FetchResult]:
        net = self.o.net
        cmd = ["curl", "--fail", "--location", "--silent", "--show-error", "--globoff"]
        cmd += ["--retry", str(self.o.retries), "--connect-timeout", "15"]
        if net.timeout:
            cmd += ["--speed-time", f"{net.timeout:g}", "--speed-limit", "1"]
        cmd += ["--user-agent", net.user_agent or _http().USER_AGENT]
        for k, v in net.headers.items():
            cmd += ["--header", f"{k}: {v}"]
        if net.cookies:
            cmd += ["--cookie", net.cookies]
        if net.proxy:
            cmd += ["--proxy", net.proxy]
        return self._piped("curl", [*cmd, "--", self.url])

    def _piped(self, tool: str, cmd: list[str]) -> list[FetchResult]:
        """Run wget/curl writing to a pipe; we write the .part (hash, limit, progress)."""
        if not shutil.which(tool):
            raise errors.ToolMissing(f"{tool} is not on PATH")
        try:
            path, early = self._plain_checks()
        except errors.XdlError as e:
            if e.final:
                raise
            path, early = inside(self.out, filename_from_url(self.url)), None
            if self.o.dry_run:
                raise
        self._drop_response()
        if early is not None:
            return early
        part = self._part(path, tag=tool)
        total = self.head.length if self.head else None
        chunk = self.limiter.chunk_size(_http().CHUNK) if self.limiter else _http().CHUNK
        with tempfile.TemporaryFile() as err:
            proc = subprocess.Popen(
                cmd, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL
            )
            assert proc.stdout is not None
            try:
                part.begin(0, total, {"url": self.url})
                fd = proc.stdout.fileno()
                while data := os.read(fd, chunk):
                    part.write(data)
                code = proc.wait()
            except BaseException:
                proc.kill()
                proc.wait()
                part.close()
                raise
            finally:
                proc.stdout.close()
            if code != 0:
                part.discard()
                err.seek(0)
                raise _tool_error(tool, code, err.read().decode("utf-8", "replace"))
        size, digest = part.commit(self.o.sha256, self.o.min_size)
        self._part(path).discard()  # the HTTP tier's partial copy, if any, is no longer needed
        return [self._done_plain(path, size, digest, None)]

    # -- yt-dlp and youtube-dl --------------------------------------------------------

    def _ytdlp(self) -> list[FetchResult]:
        from . import ytdlp

        return self._media(ytdlp.download_recorded, ytdlp.plan)

    def _youtube_dl(self) -> list[FetchResult]:
        from . import ytdlp

        if not _youtube_dl_available():
            raise errors.ToolMissing("youtube_dl is not installed")
        return self._media(ytdlp.download_with_youtube_dl, None)

    def _media(
        self, download: Callable[..., Any], plan: Callable[..., Any] | None
    ) -> list[FetchResult]:
        o = self.o
        params = ytdlp_params(o)
        skipped_archive: set[str] = set()
        downloading: set[str] = set()
        seen: dict[str, int] = {}
        archive = self.archive

        def match_filter(info: Mapping[str, Any], *, incomplete: bool = False) -> str | None:
            if not incomplete and not o.dry_run:
                self._check_announced_size(info)
            if archive is None or not info.get("id"):
                return None
            key = info.get("extractor_key") or info.get("ie_key") or info.get("extractor")
            if key and media_key(str(key), str(info["id"])) in archive:
                skipped_archive.add(str(info["id"]))
                return "already in the archive"
            return None

        def hook(d: Mapping[str, Any]) -> None:
            if self.stop.is_set():
                raise _Stopped()
            name = str(d.get("filename") or "")
            if d.get("status") != "downloading":
                return
            downloading.add(str((d.get("info_dict") or {}).get("id")))
            done = int(d.get("downloaded_bytes") or 0)
            delta = done - seen.get(name, 0)
            seen[name] = done
            if self.limiter is not None and delta > 0:
                self.limiter.consume(delta, self.stop)
                if self.stop.is_set():
                    raise _Stopped()
            if self.progress:
                total = d.get("total_bytes") or d.get("total_bytes_estimate")
                self.progress(Path(name).name, done, int(total) if total else None)

        params["match_filter"] = match_filter
        if o.dry_run:
            if plan is None:
                raise errors.DownloadFailed("--dry-run is not supported with youtube-dl")
            return self._planned(plan(self.url, net=o.net, params=params))
        try:
            info = download(self.url, {**o.net.ytdlp_params(), **params}, hook)
        except _Stopped:
            raise errors.Interrupted("interrupted; the .part file is kept for resuming") from None
        return self._media_results(info, skipped_archive, downloading)

    def _check_announced_size(self, info: Mapping[str, Any]) -> None:
        """--max-size, --min-size and free space, before yt-dlp downloads, when the chosen
        format(s) say their size (raised through yt-dlp: not one of its exceptions)."""
        formats = info.get("requested_formats") or [info]
        sizes = [f.get("filesize") or f.get("filesize_approx") for f in formats]
        if not sizes or not all(isinstance(x, (int, float)) and x > 0 for x in sizes):
            return
        size = int(sum(sizes))
        if self.o.max_size is not None and size > self.o.max_size:
            raise errors.TooLarge(
                f"{size} bytes is more than --max-size {self.o.max_size}", bytes=size
            )
        if self.o.min_size is not None and size < self.o.min_size:
            raise errors.TooSmall(f"{size} bytes is less than --min-size {self.o.min_size}")
        check_free_space(self.out, size)

    def _planned(self, entries: list[dict[str, Any]]) -> list[FetchResult]:
        results = []
        for entry in entries:
            name = entry.get("_xdl_filename")
            if name and self.o.audio and self.o.audio_format not in ("best",):
                name = str(Path(name).with_suffix("." + self.o.audio_format))
            results.append(
                FetchResult(
                    url=self.url
                    if entry.get("_xdl_playlist") is None
                    else _entry_url(entry, self.url),
                    ok=True,
                    path=name,
                    bytes=entry.get("filesize") or entry.get("filesize_approx"),
                    title=entry.get("title"),
                    id=entry.get("id"),
                    extractor=entry.get("extractor_key"),
                    playlist=entry.get("_xdl_playlist"),
                    playlist_index=entry.get("_xdl_playlist_index"),
                    elapsed_s=_since(self.started),
                    dry_run=True,
                )
            )
        if not results:
            raise errors.NoFormats(f"nothing to download at {self.url}")
        return results

    def _media_results(
        self, info: Mapping[str, Any], skipped_archive: set[str], downloading: set[str]
    ) -> list[FetchResult]:
        playlist: str | None = None
        if info.get("_type") == "playlist":
            entries = list(info.get("entries") or [])
            playlist = info.get("title") or info.get("id")
        else:
            entries = [info]
        results: list[FetchResult] = []
        for index, entry in enumerate(entries, 1):
            if not entry:
                continue
            where: dict[str, Any] = {}
            if playlist is not None:
                where = {
                    "playlist": playlist,
                    "playlist_index": entry.get("playlist_index") or index,
                }
            common = {
                "url": self.url if playlist is None else _entry_url(entry, self.url),
                "title": entry.get("title"),
                "id": entry.get("id"),
                "extractor": entry.get("extractor_key") or entry.get("extractor"),
                **where,
            }
            if str(entry.get("id")) in skipped_archive:
                results.append(FetchResult(ok=True, skipped="archive", **common))
                continue
            downloads = entry.get("requested_downloads") or []
            filepath = downloads[-1].get("filepath") if downloads else entry.get("filepath")
            if not filepath or not Path(filepath).exists():
                if self.o.max_downloads is not None and playlist is not None:
                    continue  # not reached because of --max-downloads
                raise errors.DownloadFailed("the downloader reported no file")
            path = Path(filepath).resolve()
            if self.out.resolve() not in path.parents:
                raise errors.BadInput(f"the template put the file outside --output-dir: {path}")
            fresh = str(entry.get("id")) in downloading
            if self.o.normalize and fresh:
                _normalize_audio(path)
            size = path.stat().st_size
            if self.o.max_size is not None and size > self.o.max_size and fresh:
                path.unlink()
                raise errors.TooLarge(f"{size} bytes is more than --max-size {self.o.max_size}")
            if self.o.min_size is not None and size < self.o.min_size and fresh:
                path.unlink()
                raise errors.TooSmall(f"{size} bytes is less than --min-size {self.o.min_size}")
            digest = sha256_file(path)
            if self.o.sha256 and digest != self.o.sha256 and fresh:
                path.unlink()
                raise errors.ChecksumMismatch(
                    f"sha256 is {digest}, expected {self.o.sha256}; file removed", sha256=digest
                )
            if self.archive is not None and common["extractor"] and common["id"]:
                self.archive.add(media_key(str(common["extractor"]), str(common["id"])))
            results.append(
                FetchResult(
                    ok=True,
                    path=str(path),
                    bytes=size,
                    sha256=digest,
                    skipped=None if fresh else "exists",
                    **common,
                )
            )
        for message in info.get("_xdl_errors") or []:
            from .ytdlp import error_from_message

            results.append(
                FetchResult(
                    url=self.url,
                    ok=False,
                    error=error_from_message(message).to_dict(),
                    playlist=playlist,
                )
            )
        if not any(r.ok for r in results):
            failed = errors.DownloadFailed(
                results[0].error["message"] if results and results[0].error else "nothing"
            )
            # yt-dlp understood the URL (a playlist): saving the page instead is no answer
            failed.final = playlist is not None
            raise failed
        return results


def ytdlp_params(o: FetchOptions) -> dict[str, Any]:
    """yt-dlp's parameters for these options (network ones come from `o.net`)."""
    out = str(Path(o.output_dir).expanduser().resolve())
    params: dict[str, Any] = {
        "outtmpl": {"default": o.template},
        "paths": {"home": out, "temp": out},
        "retries": o.retries,
        "fragment_retries": o.retries,
        "extractor_retries": o.retries,
        "continuedl": True,
        "overwrites": True if o.overwrite else None,
        "windowsfilenames": False,
        "noplaylist": False,
        # yt-dlp counts characters: 80 of them stay under 255 bytes even in 3-byte scripts
        "trim_file_name": 80,
    }
    fmt = o.format
    if fmt is None and o.audio:
        fmt = "ba/b"
    elif fmt is None and o.quality and o.quality not in ("best", "worst"):
        h = int(o.quality.rstrip("p"))
        fmt = f"bv*[height<={h}]+ba/b[height<={h}]/wv*+ba/w"
    elif fmt is None and o.quality == "worst":
        fmt = "wv*+wa/w"
    if fmt:
        params["format"] = fmt
    if o.container and not o.audio:
        params["merge_output_format"] = o.container
    if o.subs or o.embed_subs:
        params["writesubtitles"] = True
        params["subtitleslangs"] = list(o.sub_langs) or ["all"]
    if o.write_info_json:
        params["writeinfojson"] = True
    if o.write_description:
        params["writedescription"] = True
    if o.sleep:
        params["sleep_interval_requests"] = o.sleep  # between yt-dlp's own page requests
    if o.playlist_items:
        params["playlist_items"] = o.playlist_items
    if o.max_downloads:
        params["max_downloads"] = o.max_downloads
    if o.live_from_start:
        params["live_from_start"] = True
    pps: list[dict[str, Any]] = []
    if o.audio:
        pps.append(
            {
                "key": "FFmpegExtractAudio",
                "preferredcodec": o.audio_format,
                # "192K" as on yt-dlp's command line, which strips the K before its API.
                "preferredquality": (o.audio_quality or "5").rstrip("kK"),
                "nopostoverwrites": False,
            }
        )
        if o.keep_video:
            params["keepvideo"] = True
        if o.audio_format != "best":
            params["final_ext"] = o.audio_format  # so an existing .mp3 counts as done
    elif o.container:
        pps.append({"key": "FFmpegVideoRemuxer", "preferedformat": o.container})
        params["final_ext"] = o.container
    if o.embed_subs and not o.audio:
        pps.append({"key": "FFmpegEmbedSubtitle", "already_have_subtitle": o.subs})
    if o.embed_metadata or o.embed_chapters:
        pps.append(
            {
                "key": "FFmpegMetadata",
                "add_metadata": o.embed_metadata,
                "add_chapters": o.embed_chapters,
            }
        )
    if o.embed_thumbnail:
        params["writethumbnail"] = True
        pps.append({"key": "EmbedThumbnail", "already_have_thumbnail": False})
    if pps:
        params["postprocessors"] = pps
    return params


_AUDIO_CODECS = {
    ".mp3": ["-c:a", "libmp3lame", "-q:a", "2"],
    ".m4a": ["-c:a", "aac", "-b:a", "192k"],
    ".aac": ["-c:a", "aac", "-b:a", "192k"],
    ".opus": ["-c:a", "libopus", "-b:a", "128k"],
    ".ogg": ["-c:a", "libvorbis", "-q:a", "5"],
    ".flac": ["-c:a", "flac"],
    ".wav": ["-c:a", "pcm_s16le"],
    ".webm": ["-c:a", "libopus", "-b:a", "128k"],
}


def _normalize_audio(path: Path) -> None:
    """Loudness-normalise `path` in place with ffmpeg's loudnorm (EBU R128, -16 LUFS)."""
    codec = _AUDIO_CODECS.get(path.suffix.lower(), ["-c:a", "aac", "-b:a", "192k"])
    tmp = path.with_name(path.stem + ".normalizing" + path.suffix)
    cmd = ["ffmpeg", "-nostdin", "-y", "-loglevel", "error", "-i", str(path), "-map", "0:a"]
    cmd += ["-af", "loudnorm=I=-16:TP=-1.5:LRA=11", *codec, str(tmp)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise errors.DownloadFailed(f"ffmpeg loudnorm failed: {proc.stderr.strip()[:200]}")
    os.replace(tmp, path)


def _check_template(template: str) -> None:
    parts = template.replace("\\", "/").split("/")
    if template.startswith(("/", "~")) or ".." in parts:
        raise errors.BadInput(f"the template must stay inside --output-dir: {template!r}")


def _tool_error(tool: str, code: int, stderr: str) -> errors.XdlError:
    text = " ".join(stderr.split())[:300] or f"{tool} exited with {code}"
    match = re.search(r"(?:error:? |ERROR )(\d{3})", text)
    if match:
        status = int(match.group(1))
        return _http().status_error(status, "", "") if status >= 400 else errors.HttpError(text)
    if (tool == "curl" and code == 28) or (tool == "wget" and "timed out" in text):
        return errors.Timeout(f"{tool}: {text}")
    return errors.NetworkError(f"{tool}: {text}")


def _length(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def _plus(total: int | None, offset: int) -> int | None:
    return None if total is None else total + offset


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    match = re.match(r"bytes (\d+)-(\d+)/(\d+|\*)", value or "")
    if not match:
        return None, None
    full = match.group(3)
    return int(match.group(1)), int(full) if full.isdigit() else None


def _entry_url(entry: Mapping[str, Any], default: str) -> str:
    """A playlist entry's own URL, without yt-dlp's `#__youtubedl_smuggle` data."""
    url = str(entry.get("webpage_url") or entry.get("original_url") or entry.get("url") or default)
    return re.sub(r"#__youtubedl_smuggle=.*$", "", url)


def _since(t: float) -> float:
    return round(time.monotonic() - t, 3)
