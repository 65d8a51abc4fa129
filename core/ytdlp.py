"""The one module that imports yt-dlp: its Python API, its errors turned into ours.

yt-dlp never writes to stdout here: every message goes to our logger (stderr).
"""

from __future__ import annotations

import errno
import gc
import logging
import os
import re
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import yt_dlp
from yt_dlp.downloader import external as _external
from yt_dlp.networking.exceptions import HTTPError, RequestError, TransportError
from yt_dlp.postprocessor import ffmpeg as _ffmpeg_pp
from yt_dlp.utils import (
    DownloadCancelled,
    DownloadError,
    ExtractorError,
    Popen,
    UnsupportedError,
    YoutubeDLError,
)

from . import errors, stopping
from .inputs import refused
from .network import NetworkOptions

log = logging.getLogger("xdl.yt-dlp")

VERSION: str = yt_dlp.version.__version__


class _Logger:
    """yt-dlp's logger interface, on our stderr logger."""

    def debug(self, msg: str) -> None:
        # yt-dlp sends info messages through debug() too, prefixed by "[debug] " or not.
        log.debug(msg.removeprefix("[debug] "))

    def info(self, msg: str) -> None:
        log.debug(msg)

    def warning(self, msg: str) -> None:
        if "Falling back on generic information extractor" in msg:
            log.debug(msg)
        else:
            log.warning(msg.removeprefix("WARNING: "))

    def error(self, msg: str) -> None:
        # Errors are raised as DownloadError as well; say them once, as our error line.
        log.debug(msg)


BASE_PARAMS: dict[str, Any] = {
    "quiet": True,
    "no_warnings": False,
    "noprogress": True,
    "logger": _Logger(),
    "color": {"stdout": "never", "stderr": "never"},
    "ignoreerrors": False,
    "noplaylist": False,
    # Trust our own checks: never let yt-dlp write next to the user's files by surprise.
    "paths": {},
}


class _StoppablePopen(Popen):  # type: ignore[misc]
    """The process of yt-dlp's external downloaders (ffmpeg, which records live streams),
    whose wait also ends when the download on this thread is asked to stop: a Ctrl-C
    seen by our main thread (or SIGTERM, or a `queue run` stopping) reaches ffmpeg, which
    otherwise records until the stream ends. It ends the way yt-dlp ends it on Ctrl-C:
    a KeyboardInterrupt in the wait, on which yt-dlp sends ffmpeg `q`, so the file is
    finished and playable, and kept as the recording of a live stream."""

    _xdl_stopping = False

    def wait(self, timeout: float | None = None) -> int:
        stop = stopping.current()
        if stop is None or timeout is not None:
            return int(super().wait(timeout))
        if self._xdl_stopping:
            return self._wait_stopped()
        while True:
            try:
                code = int(super().wait(0.2))
            except subprocess.TimeoutExpired:
                if stop.is_set():
                    self._xdl_stopping = True
                    raise KeyboardInterrupt from None
                continue
            # 255: ffmpeg stopped by a signal, as Ctrl-C sends it to the whole terminal
            # process group; it has finished the file. Our main thread sees it too.
            if code == 255 and stop.wait(1.0):
                self._xdl_stopping = True
                raise KeyboardInterrupt
            return code

    def _wait_stopped(self) -> int:
        """ffmpeg asked to stop (`q` on its stdin, or one Ctrl-C) looks at that only between
        packets: a live stream that stalls, no new segment listed, keeps it waiting on the
        playlist for good. A second SIGINT ends that wait, and ffmpeg still finishes its
        file; SIGKILL only if even that is not heard."""
        for then in (signal.SIGINT, signal.SIGINT, signal.SIGKILL):
            try:
                return int(super().wait(STOP_GRACE))
            except subprocess.TimeoutExpired:
                self.send_signal(then)
        return int(super().wait())


#: Seconds a stopped ffmpeg has to finish its file before the next, firmer signal.
STOP_GRACE = 2.0

# Only ExternalFD's subclasses use this name; each behaves the same with no stop given.
_external.Popen = _StoppablePopen

#: What ffmpeg says when it could not write its output. It still exits 0 when the disk
#: fills while it writes the end of the file (the trailer, the close): its output then
#: looks finished but is cut short.
_FFMPEG_WRITE_FAILED = re.compile(
    r"No space left on device|Disk quota exceeded|Error writing trailer|Error closing file"
)


def _checked_run_ffmpeg(
    self: Any, input_path_opts: Any, output_path_opts: Any, **kwargs: Any
) -> str:
    """yt-dlp's real_run_ffmpeg, failing (and its output removed) when ffmpeg could not
    write its output, even when it exited 0."""
    stderr: str = _real_run_ffmpeg(self, input_path_opts, output_path_opts, **kwargs)
    found = _FFMPEG_WRITE_FAILED.search(stderr or "")
    if found is None:
        return stderr
    for out_path, _ in output_path_opts:
        if out_path and os.path.isfile(out_path) and not os.path.islink(out_path):
            os.unlink(out_path)
    line = next((x for x in stderr.splitlines() if found.group(0) in x), found.group(0))
    raise _ffmpeg_pp.FFmpegPostProcessorError(f"ffmpeg could not write its output: {line}")


stopping.install()  # a download's stop reaches yt-dlp's requests (core/stopping.py)
_real_run_ffmpeg = _ffmpeg_pp.FFmpegPostProcessor.real_run_ffmpeg
_ffmpeg_pp.FFmpegPostProcessor.real_run_ffmpeg = _checked_run_ffmpeg


class _YoutubeDL(yt_dlp.YoutubeDL):  # type: ignore[misc]
    """yt-dlp, but a `--cookies` file is only read: yt-dlp writes its jar back into it
    when it closes (adding the cookies sites set), which would change the user's file
    and carry one command's cookies into the next."""

    def save_cookies(self) -> None:
        pass


def make(params: Mapping[str, Any] | None = None) -> yt_dlp.YoutubeDL:
    """A YoutubeDL with xdl's base parameters, plus `params`."""
    return _YoutubeDL({**BASE_PARAMS, **(params or {})})


def file_namer(params: Mapping[str, Any]) -> Callable[[dict[str, Any]], str]:
    """yt-dlp's `prepare_filename` under `params` (outtmpl, paths...), from a YoutubeDL
    that only names files: no extractors loaded, so it costs next to nothing."""
    ydl = yt_dlp.YoutubeDL({**BASE_PARAMS, **params}, auto_init=False)
    return lambda info: str(ydl.prepare_filename(info))


def extract(
    url: str,
    *,
    net: NetworkOptions | None = None,
    flat: bool = False,
    process: bool = True,
    params: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """yt-dlp's sanitised info dict for `url`, without downloading."""
    opts = {**(net or NetworkOptions()).ytdlp_params(), **(params or {})}
    if flat:
        opts["extract_flat"] = "in_playlist"
    with collector_paused(), make(opts) as ydl:
        with translate_errors(url):
            info = ydl.extract_info(url, download=False, process=process)
        if info is None:
            raise errors.UnsupportedUrl(f"nothing to extract from {url}")
        return dict(ydl.sanitize_info(page_title(info)))


def page_title(info: dict[str, Any]) -> dict[str, Any]:
    """A page with one HTML5 video keeps its own title: yt-dlp numbers the embeds of a
    page, `Title (1)` with id `page-1`, even when there is only one (the id stays, as
    archives know it; the stray ` (1)` goes)."""
    title = info.get("title")
    if (
        info.get("_type", "video") == "video"
        and info.get("extractor_key") in ("HTML5MediaEmbed", "Generic")
        and isinstance(title, str)
        and title.endswith(" (1)")
        and str(info.get("id", "")).endswith("-1")
    ):
        info["title"] = title[: -len(" (1)")]
        if info.get("fulltitle") == title:
            info["fulltitle"] = info["title"]
    return info


_paused = 0
_paused_lock = threading.Lock()
_collecting = True


@contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while yt-dlp extracts: a page read through the
    generic extractor imports most of yt-dlp's ~1800 extractor classes, and the collector,
    triggered by those allocations, scans the growing heap again and again (~8 % of
    `xdl info` on one page). It runs again once no extraction is under way (threads
    count). Only around `extract` (info, formats, transcript: one input at a time),
    which takes a second: never around a download, nor in `fetch -j N`, whose jobs
    overlap and would keep it off."""
    global _paused, _collecting
    with _paused_lock:
        if _paused == 0:
            _collecting = gc.isenabled()
            gc.disable()
        _paused += 1
    try:
        yield
    finally:
        with _paused_lock:
            _paused -= 1
            if _paused == 0 and _collecting:
                gc.enable()


def download(
    url: str,
    params: Mapping[str, Any],
    progress: Callable[[dict[str, Any]], None] | None = None,
    postprocessed: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Download `url` with yt-dlp and return the sanitised info dict of what it did."""
    opts = dict(params)
    if progress:
        opts["progress_hooks"] = [progress]
    if postprocessed:
        opts["postprocessor_hooks"] = [postprocessed]
    with make(opts) as ydl:
        with translate_errors(url):
            info = ydl.extract_info(url, download=True)
        if info is None:
            raise errors.DownloadFailed(f"yt-dlp downloaded nothing from {url}")
        return dict(ydl.sanitize_info(info))


@contextmanager
def translate_errors(url: str) -> Iterator[None]:
    """Re-raise yt-dlp's exceptions as xdl's own, with a stable code."""
    try:
        yield
    except DownloadCancelled:  # --max-downloads and the like: the caller's to handle
        raise
    except (YoutubeDLError, RequestError) as e:
        # YoutubeDLError: DownloadError, ExtractorError, and those yt-dlp lets out of
        # process_info (UnavailableVideoError wraps an OSError such as a full disk).
        raise to_xdl_error(e) from e
    except OSError as e:
        if full_disk(e) is None:
            raise
        raise to_xdl_error(e) from e


def full_disk(exc: BaseException) -> OSError | None:
    """The ENOSPC / EDQUOT error behind `exc` (its exc_info, cause or context), if any."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            return e
        info = getattr(e, "exc_info", None)
        if isinstance(info, tuple) and len(info) > 1 and isinstance(info[1], BaseException):
            todo.append(info[1])
        todo += [e.__cause__, e.__context__]
    return None


def no_space_error(e: OSError) -> errors.NoSpace:
    where = f" while writing {os.path.basename(e.filename)}" if e.filename else ""
    return errors.NoSpace(
        f"the disk is full{where}: {e.strerror or 'no space left on device'};"
        " the .part is kept for resuming"
    )


def to_xdl_error(exc: BaseException) -> errors.XdlError:
    full = full_disk(exc)
    if full is not None:
        return no_space_error(full)
    cause: BaseException | None = exc
    if isinstance(exc, DownloadError) and exc.exc_info and exc.exc_info[1] is not None:
        cause = exc.exc_info[1]
    while isinstance(cause, ExtractorError) and cause.exc_info and cause.exc_info[1] is not None:
        if cause.exc_info[1] is cause:
            break
        cause = cause.exc_info[1]
    message = _clean(str(exc))
    refused = refused_url(f"{message} {cause}")
    if refused is not None:
        return refused
    if isinstance(cause, UnsupportedError) or "Unsupported URL" in message:
        return errors.UnsupportedUrl("no media found on the page")
    if isinstance(cause, HTTPError):
        status, reason = cause.status, cause.reason or ""
        if status in (404, 410):
            return errors.NotFound(f"HTTP {status} {reason}".strip(), status=status)
        error = errors.HttpError(f"HTTP {status} {reason}".strip(), status=status)
        response = getattr(cause, "response", None)
        headers = getattr(response, "headers", None)
        error.retry_after = headers.get("Retry-After") if headers is not None else None
        return error
    text = f"{message} {cause!r}".lower()
    if "no space left on device" in text or "errno 28" in text:
        return errors.NoSpace(f"the disk is full: {message}")
    if "timed out" in text or "timeout" in text:
        return errors.Timeout(message)
    if isinstance(cause, TransportError) or "connection" in text or "resolve" in text:
        return errors.NetworkError(message)
    if "requested format is not available" in text:
        return errors.NoFormats(message)
    if "ffmpeg" in text and ("not found" in text or "not installed" in text):
        return errors.ToolMissing(message)
    return errors.DownloadFailed(message)


def refused_url(message: str) -> errors.UnsupportedUrl | None:
    """A redirect (or a link on the page) to a URL that no handler may open, such as
    `file:///etc/passwd`: yt-dlp's networking refuses it; we say so as unsupported_url."""
    text = message.lower()
    if "unsupported url scheme" not in text and "no connection adapters were found" not in text:
        return None
    return refused(message)


def _clean(message: str) -> str:
    message = re.sub(r"^(ERROR: )?(\[[\w:]+\] )?", "", message.strip())
    return message.splitlines()[0] if message else "yt-dlp failed"


def plan(
    url: str,
    *,
    net: NetworkOptions | None = None,
    params: Mapping[str, Any] | None = None,
    known: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """What `download` would fetch, without downloading: one dict per item, with the file
    name yt-dlp would write (`_xdl_filename`) and, in a playlist, `_xdl_playlist[_index]`.
    `known` as for `download_recorded`."""
    opts = {**(net or NetworkOptions()).ytdlp_params(), **(params or {})}
    with make(opts) as ydl:
        with translate_errors(url):
            info = ydl.extract_info(url, download=False, process=False)
            if info is not None:
                info = ydl.process_ie_result(
                    with_known(page_title(info), known or {}), download=False
                )
        if info is None:
            return []
        items: list[dict[str, Any]] = []
        if info.get("_type") == "playlist":
            name = info.get("title") or info.get("id")
            for index, entry in enumerate(info.get("entries") or [], 1):
                if entry:
                    entry["_xdl_playlist"] = name
                    entry["_xdl_playlist_index"] = entry.get("playlist_index") or index
                    items.append(entry)
        else:
            items.append(info)
        for entry in items:
            entry["_xdl_filename"] = ydl.prepare_filename(entry)
        return [dict(ydl.sanitize_info(entry)) for entry in items]


def break_on_existing() -> BaseException:
    """What a match filter raises to stop a playlist at an archived entry (yt-dlp's own
    --break-on-existing: its playlist loop stops there)."""
    from yt_dlp.utils import ExistingVideoReached

    stop: BaseException = ExistingVideoReached()
    return stop


def with_known(first: dict[str, Any], known: Mapping[str, Any]) -> dict[str, Any]:
    """An extracted item (before yt-dlp processes it) with the fields a JSON input line
    knows better than the site: a feed entry's title, guid (its `id`, so its file name
    and archive key do not depend on the enclosure URL), date, show and numbers. Set
    before processing, so the template, the tags and the archive all see them."""
    if not known:
        return first
    kind = first.get("_type", "video")
    if kind == "video":
        return {**first, **known}
    if kind in ("url", "url_transparent"):  # yt-dlp keeps the inner id for these
        return {**first, **known, "_type": "url_transparent"}
    return first  # a page with several items: each keeps its own


def download_with_youtube_dl(
    url: str,
    params: Mapping[str, Any],
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """The youtube-dl fallback (only when the `youtube_dl` module is installed)."""
    import importlib

    try:
        ydl_module: Any = importlib.import_module("youtube_dl")
    except ImportError as e:
        raise errors.ToolMissing("youtube_dl is not installed") from e
    dropped = ("outtmpl", "paths", "match_filter", "final_ext", "trim_file_name", "download_ranges")
    opts: dict[str, Any] = {k: v for k, v in params.items() if k not in dropped}
    known = ("FFmpegExtractAudio", "FFmpegVideoRemuxer", "FFmpegEmbedSubtitle")
    opts["postprocessors"] = [
        {k: v for k, v in pp.items() if k != "nopostoverwrites"}
        for pp in opts.get("postprocessors") or []
        if pp.get("key") in known
    ]
    if opts.get("format"):
        opts["format"] = youtube_dl_format(str(opts["format"]))
    home = (params.get("paths") or {}).get("home", ".")
    template = (params.get("outtmpl") or {}).get("default", "%(title)s [%(id)s].%(ext)s")
    opts.update(quiet=True, no_warnings=True, noprogress=True, logger=_Logger())
    opts["outtmpl"] = f"{home}/{template}"
    if progress:
        opts["progress_hooks"] = [progress]
    try:
        ydl = ydl_module.YoutubeDL(opts)
    except Exception as e:  # an option this old youtube-dl does not know
        raise errors.DownloadFailed(f"youtube-dl: {e}") from e
    with ydl:
        try:
            info = ydl.extract_info(url, download=True)
        except Exception as e:  # youtube-dl's own error classes
            message = _clean(str(e))
            if "404" in message or "Not Found" in message:
                raise errors.NotFound(message) from e
            raise errors.DownloadFailed(f"youtube-dl: {message}") from e
        if not info:
            raise errors.DownloadFailed(f"youtube-dl downloaded nothing from {url}")
        entries = info.get("entries") if info.get("_type") == "playlist" else [info]
        for entry in entries or []:
            if entry and "requested_downloads" not in entry:
                entry["requested_downloads"] = [{"filepath": _youtube_dl_file(ydl, entry)}]
        return dict(info)


def _youtube_dl_file(ydl: Any, entry: Mapping[str, Any]) -> str:
    """The file youtube-dl left: its planned name, or that name after audio extraction."""
    from pathlib import Path

    planned = Path(ydl.prepare_filename(entry))
    for ext in ("", ".mp3", ".m4a", ".opus", ".flac", ".wav", ".ogg", ".aac"):
        candidate = planned.with_suffix(ext) if ext else planned
        if candidate.exists():
            return str(candidate)
    return str(planned)


# --- subtitles (xdl transcript) ---------------------------------------------------------


def fetch_text(
    url: str,
    *,
    net: NetworkOptions | None = None,
    headers: Mapping[str, str] | None = None,
    limit: int = 64 * 1024 * 1024,
) -> bytes:
    """The body of `url` (a subtitle track) through yt-dlp's networking, so the proxy,
    cookies and headers of `net` apply as they do to extraction."""
    from yt_dlp.networking import Request
    from yt_dlp.networking.exceptions import RequestError

    with make((net or NetworkOptions()).ytdlp_params()) as ydl:
        try:
            with ydl.urlopen(Request(url, headers=dict(headers or {}))) as response:
                data: bytes = response.read(limit + 1)
        except RequestError as e:
            raise to_xdl_error(e) from e
    if len(data) > limit:
        raise errors.TooLarge(f"subtitle track larger than {limit // 2**20} MiB: {url}")
    return data


def render_template(template: str, info: Mapping[str, Any]) -> str:
    """A file name from yt-dlp's output template syntax (`%(title)s.%(ext)s`), each field
    sanitised the way yt-dlp does it."""
    with make({}) as ydl:
        return str(ydl.evaluate_outtmpl(template, dict(info), True))


def unsmuggle(url: str) -> tuple[str, dict[str, Any]]:
    """A URL without the `#__youtubedl_smuggle=` data yt-dlp's extractors hide in it
    (a feed's guid rides there as `force_videoid`), and that data."""
    from yt_dlp.utils import unsmuggle_url

    clean, data = unsmuggle_url(url, {})
    return str(clean), dict(data or {})


def print_template(template: str, fields: Mapping[str, Any]) -> str:
    """One `--print` line from a result's fields, in yt-dlp's template syntax
    (`%(title)s`, `%(bytes)d`, `%(path)q`, `%(title,id)s`, `%(x|default)s`); a bare field
    name means `%(name)s`, as in yt-dlp. Not sanitised: a path prints as it is."""
    import re

    if re.fullmatch(r"[\w.]+", template):
        template = f"%({template})s"
    with make({}) as ydl:
        return str(ydl.evaluate_outtmpl(template, dict(fields), False))


def download_recorded(
    url: str,
    params: Mapping[str, Any],
    progress: Callable[[dict[str, Any]], None] | None = None,
    claim: Callable[[dict[str, Any], str], str | None] | None = None,
    stop: threading.Event | None = None,
    defaults: Mapping[str, Any] | None = None,
    known: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Like `download`, for `xdl fetch`: errors about the URL itself raise (with their
    codes); in a playlist, an entry that fails does not stop the others (its message is
    in `_xdl_errors`); --max-downloads ends the playlist with what was downloaded.

    `claim(info, planned_path)` is called for each item before yt-dlp opens any file for
    it; it may return another name (relative to the output folder) to write it under.
    `defaults` fill an item's fields the site left empty before it is named (what a JSON
    input line knew: the show a feed entry came from); `known` fields replace the
    site's (a feed entry's title, guid, date...: `with_known`).
    `stop` set ends a recording by ffmpeg (a live stream: its file is kept and finished;
    otherwise errors.Interrupted)."""
    try:
        with stopping.during(stop):
            return _download_recorded(url, params, progress, claim, defaults or {}, known or {})
    except KeyboardInterrupt:
        if stop is None or not stop.is_set():
            raise
        raise errors.Interrupted(errors.STOPPED) from None


def _download_recorded(
    url: str,
    params: Mapping[str, Any],
    progress: Callable[[dict[str, Any]], None] | None,
    claim: Callable[[dict[str, Any], str], str | None] | None,
    defaults: Mapping[str, Any],
    known: Mapping[str, Any],
) -> dict[str, Any]:
    from yt_dlp.postprocessor.common import PostProcessor
    from yt_dlp.utils import ExistingVideoReached, MaxDownloadsReached

    finished: list[dict[str, Any]] = []
    failures: list[str] = []

    files: dict[str, list[dict[str, str]]] = {}

    class _Record(PostProcessor):  # type: ignore[misc]
        def run(self, info: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
            finished.append(dict(info))  # a copy: yt-dlp empties the original later
            files[str(info.get("id"))] = written_files(info)
            return [], info

    class _Errors(_Logger):
        def error(self, msg: str) -> None:
            super().error(msg)
            failures.append(_clean(msg))

    class _Claim(PostProcessor):  # type: ignore[misc]
        """Runs before yt-dlp names the item's files: the template back to the user's,
        then the name `claim` chooses written in as a literal."""

        def run(self, info: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
            assert claim is not None
            for key, value in defaults.items():
                if info.get(key) is None:
                    info[key] = value
            ydl = self._downloader
            ydl.params["outtmpl"]["default"] = template
            ydl.params["trim_file_name"] = trim
            chosen = claim(info, ydl.prepare_filename(info))
            if chosen is not None:
                ydl.params["outtmpl"]["default"] = chosen.replace("%", "%%")
                ydl.params["trim_file_name"] = 0
            return [], info

    opts = {**params, "logger": _Errors()}
    if progress:
        opts["progress_hooks"] = [progress]
    with make(opts) as ydl:
        ydl.add_post_processor(_Record(ydl), when="after_move")
        template = ydl.params["outtmpl"]["default"]
        trim = ydl.params.get("trim_file_name")
        if claim is not None:
            ydl.add_post_processor(_Claim(ydl), when="video")
        first: dict[str, Any] | None = None
        try:
            with translate_errors(url):
                first = ydl.extract_info(url, download=False, process=False)
                if first is None:
                    raise errors.UnsupportedUrl(f"nothing to extract from {url}")
                first = with_known(page_title(first), known)
                if first.get("_type") in ("playlist", "multi_video"):
                    ydl.params["ignoreerrors"] = "only_download"  # entries fail one by one
                info = ydl.process_ie_result(first, download=True)
        except (MaxDownloadsReached, ExistingVideoReached) as stop:  # --break-on-existing
            entries = [
                {**ydl.sanitize_info(e), "_xdl_files": files.get(str(e.get("id")), [])}
                for e in finished
            ]
            head = entries[0] if entries else {}
            return {
                "_type": "playlist",
                "title": head.get("playlist_title")
                or head.get("playlist")
                or (first or {}).get("title"),
                "entries": entries,
                "_xdl_errors": failures,
                "_xdl_broke_on_existing": isinstance(stop, ExistingVideoReached),
            }
        if info is None:
            raise errors.DownloadFailed(failures[-1] if failures else f"nothing from {url}")
        result = dict(ydl.sanitize_info(info))
        result["_xdl_errors"] = failures if result.get("_type") == "playlist" else []
        for item in result.get("entries") or [result]:
            if isinstance(item, dict):
                item["_xdl_files"] = files.get(str(item.get("id")), [])
        return result


AUDIO_EXTS = ("mp3", "m4a", "opus", "ogg", "oga", "flac", "wav", "aac", "mka")
VIDEO_EXTS = ("mp4", "webm", "mkv", "mov", "m4v", "flv", "avi", "ts")


def written_files(info: Mapping[str, Any]) -> list[dict[str, str]]:
    """Every file on disk for one item yt-dlp processed, with what each is: media or
    audio (and the video --keep-video kept), subtitles, info_json, description,
    thumbnail. From the info dict where yt-dlp records them; each one checked to exist."""
    found: list[dict[str, str]] = []

    def add(path: Any, kind: str, **extra: str) -> None:
        if isinstance(path, str) and path and os.path.isfile(path):
            path = os.path.abspath(path)
            if all(f["path"] != path for f in found):
                found.append({"path": path, "kind": kind, **extra})

    media = info.get("filepath")
    base = os.path.splitext(media)[0] if isinstance(media, str) else None
    if isinstance(media, str):
        add(media, "audio" if media.rsplit(".", 1)[-1].lower() in AUDIO_EXTS else "media")
    if base is not None:
        for ext in VIDEO_EXTS:  # the video --keep-video kept beside the extracted audio
            add(f"{base}.{ext}", "media")
    for lang, sub in (info.get("requested_subtitles") or {}).items():
        if isinstance(sub, Mapping):
            add(sub.get("filepath"), "subtitles", lang=str(lang))
    add(info.get("infojson_filename") or info.get("__infojson_filename"), "info_json")
    if base is not None:
        add(f"{base}.description", "description")
    for thumb in info.get("thumbnails") or []:
        if isinstance(thumb, Mapping):
            add(thumb.get("filepath"), "thumbnail")
    return found


def error_from_message(message: str) -> errors.XdlError:
    """One of our errors for a message yt-dlp reported (when there is no exception)."""
    match = re.search(r"HTTP Error (\d{3})", message)
    if match and match.group(1) in ("404", "410"):
        return errors.NotFound(message, status=int(match.group(1)))
    if match:
        return errors.HttpError(message, status=int(match.group(1)))
    if "Unsupported URL" in message:
        return errors.UnsupportedUrl(message)
    if "No space left on device" in message or "Errno 28" in message:
        return errors.NoSpace(message)
    return errors.DownloadFailed(message)


_YDL_FORMAT_NAMES = {
    "bv*": "bestvideo", "bv": "bestvideo", "ba": "bestaudio", "b": "best",
    "wv*": "worstvideo", "wv": "worstvideo", "wa": "worstaudio", "w": "worst",
}  # fmt: skip


def youtube_dl_format(selector: str) -> str:
    """yt-dlp's short format names (`ba/b`, `bv*+ba`) spelled out for youtube-dl."""
    return re.sub(
        r"(?<![\w\[*])(bv\*|bv|ba|b|wv\*|wv|wa|w)(?![\w*])",
        lambda m: _YDL_FORMAT_NAMES[m.group(1)],
        selector,
    )


def playlist_indices(items: str, count: int) -> list[int]:
    """The 1-based indices `--playlist-items` names among `count` entries, in yt-dlp's
    syntax and order (`1,3-5`, `-2:`, `::2`); `bad_input` when it does not parse."""
    from yt_dlp.utils import PlaylistEntries

    try:
        parts = list(PlaylistEntries.parse_playlist_items(items))
    except ValueError as e:
        raise errors.BadInput(f"--playlist-items: {e}") from None
    chosen: list[int] = []
    for part in parts:
        if isinstance(part, int):
            part = slice(part, part)
        step = part.step or 1
        if part.start is None:
            start = 0 if step > 0 else count - 1
        else:
            start = part.start - 1 if part.start >= 0 else count + part.start
        if part.stop is None:
            stop = 0 if step < 0 else count
        else:
            stop = int(part.stop - 1 if part.stop >= 0 else count + part.stop)
        stop += 1 if step > 0 else -1
        for i in range(start, stop, step):
            if 0 <= i < count:
                chosen.append(i + 1)
    return chosen
