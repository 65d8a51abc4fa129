"""`xdl fetch`: the download engine (click-free; `xdl queue run` uses it too).

- `options`: what a download is asked to do; `result`: what it came to.
- `engine`: fetch_one / fetch_many, the chain of downloaders, batches on threads.
- `strategies`: one module per downloader (yt-dlp, youtube-dl, HTTP, wget, curl).
- `target`: the owned output file — lock, no-follow, names, origin, limits, checksum.
"""

from .engine import fetch_many, fetch_one, preflight, rate_limiter
from .options import (
    AUDIO_FORMATS,
    CONTAINERS,
    DEFAULT_TEMPLATE,
    QUALITIES,
    STRATEGIES,
    FetchOptions,
    check_sha256,
    split_langs,
)
from .result import Attempt, FetchResult
from .strategies.ytdlp import ytdlp_params

__all__ = [
    "AUDIO_FORMATS",
    "CONTAINERS",
    "DEFAULT_TEMPLATE",
    "QUALITIES",
    "STRATEGIES",
    "Attempt",
    "FetchOptions",
    "FetchResult",
    "check_sha256",
    "fetch_many",
    "fetch_one",
    "preflight",
    "rate_limiter",
    "split_langs",
    "ytdlp_params",
]
