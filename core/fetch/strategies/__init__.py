"""The downloaders, one module each, behind one small protocol, in the order tried.

`media` strategies (yt-dlp, youtube-dl) understand pages, playlists and formats; the
others save one file over HTTP. Each writes through `..target.Target`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from . import curl, http, wget, ytdlp
from .ytdlp import youtube_dl_available

if TYPE_CHECKING:
    from ..job import Job
    from ..result import FetchResult


class Strategy(Protocol):
    name: str
    #: Extracts media from pages (and can extract audio), rather than saving one file.
    media: bool
    #: What to say when it is asked for by name and not there.
    missing: str

    def available(self) -> bool: ...

    def run(self, job: Job) -> list[FetchResult]: ...


REGISTRY: dict[str, Strategy] = {
    s.name: s for s in (ytdlp.YTDLP, ytdlp.YOUTUBE_DL, http.HTTP, wget.WGET, curl.CURL)
}

__all__ = ["REGISTRY", "Strategy", "youtube_dl_available"]
