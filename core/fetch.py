"""`xdl fetch`: the download engine.

Strategies (yt-dlp, youtube-dl, direct HTTP, wget, curl) behind one interface, tried in
order until one succeeds; a smart first choice; the safety rules of SPEC §5; batches on a
thread pool sharing one rate limit. Click-free: `xdl fetch` and `xdl queue run` both call
`fetch_one` / `fetch_many`.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .inputs import Input
from .network import NetworkOptions

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
    limiter: Any = None,
    progress: Progress | None = None,
) -> list[FetchResult]:
    """Download one input; a playlist gives one result per entry.

    Never raises for a problem with this input: it returns failed results
    (`ok: False`, `error: {code, message}`), `interrupted` when `stop` was set. It raises
    only `errors.Fatal` (a required tool missing, the output dir not writable), which
    stops every input. `fields` are the input's JSON fields: `sha256`, `template` and
    `audio` there override `options`. `limiter` is a shared `ratelimit.TokenBucket`.
    """
    raise NotImplementedError("fetch_one: engine landing next")


def fetch_many(
    inputs: Iterable[Input],
    options: FetchOptions,
    *,
    jobs: int = 1,
    stop: threading.Event | None = None,
    progress: Progress | None = None,
    limiter: Any = None,
) -> Iterator[FetchResult]:
    """Download a batch on `jobs` threads, yielding results as each finishes.

    Inputs that failed to parse give failed results; one failure never stops the others.
    When `stop` is set, unfinished inputs come back as `interrupted` results.
    """
    raise NotImplementedError("fetch_many: engine landing next")
