"""yt-dlp and youtube-dl: pages, playlists and formats.

yt-dlp opens its own files, so the rules of SPEC §5 are applied around it: before it
names an item's files (a "video" stage post-processor) the item's target is claimed —
its folders opened without following links, no link planted where it will write, a
distinct name when the name is another source's — and while it downloads, the progress
hook stops it past --max-size (inflated content included).
"""

from __future__ import annotations

import dataclasses
import errno
import functools
import hashlib
import logging
import os
import re
import stat
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ... import errors
from ...archive import media_key
from ...feeds import is_entry, item_fields
from ...inputs import shown
from ...names import sanitize_filename
from ..cache import keep_media, media_hit
from ..options import FetchOptions
from ..result import FetchResult, since
from ..target import Target, check_no_links, check_size, record_origin

if TYPE_CHECKING:
    from ..job import Job

log = logging.getLogger("xdl.fetch")


def _sha256_fd(fd: int) -> str:
    h = hashlib.sha256()
    while block := os.read(fd, 1 << 20):
        h.update(block)
    return h.hexdigest()


@functools.cache
def youtube_dl_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("youtube_dl") is not None


class _Stopped(BaseException):
    """Raised inside yt-dlp's progress hook to stop it (a BaseException: never swallowed)."""


class _Media:
    """What an item's download through yt-dlp holds: claimed targets, reserved space,
    errors our own hooks raised, bytes seen per file."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.o = job.o
        self.out = job.out
        self.targets: list[Target] = []
        self.releases: list[Callable[[], None]] = []
        self.raised: dict[str, errors.XdlError] = {}
        self.parts: set[str] = set()
        self.skipped_archive: set[str] = set()
        self.downloading: set[str] = set()
        self.seen: dict[str, int] = {}
        self.cached: dict[str, FetchResult] = {}  # by id: items placed from --cache
        self.interrupted_live = False

    def close(self) -> None:
        for target in self.targets:
            target.release_folder()
        for release in self.releases:
            release()

    def fail(self, error: errors.XdlError) -> errors.XdlError:
        self.raised[error.message] = error
        return error

    # -- before yt-dlp downloads --

    def match_filter(self, info: Mapping[str, Any], *, incomplete: bool = False) -> str | None:
        if not incomplete and not self.o.dry_run:
            self.check_announced_size(info)
        archive = self.job.archive
        key = info.get("extractor_key") or info.get("ie_key") or info.get("extractor")
        if archive is not None and key and media_key(str(key), str(info.get("id"))) in archive:
            self.skipped_archive.add(str(info.get("id")))
            if self.o.break_on_existing:
                from ... import ytdlp

                raise ytdlp.break_on_existing()
            return "already in the archive"
        if not incomplete and self.from_cache(info):
            return "placed from the cache"
        return None

    def from_cache(self, info: Mapping[str, Any]) -> bool:
        """--cache: the item placed from the cache, with no media request; False when
        it is not there (or not usable: then yt-dlp downloads it)."""

        def claim(ext: str) -> Target:
            self.claim({**info, "ext": ext.lstrip(".")}, self.cached_name(info, ext))
            return self.targets[-1]

        hit = media_hit(self.job, info, claim)
        if hit is None:
            return False
        self.cached[str(info.get("id"))] = hit
        return True

    def cached_name(self, info: Mapping[str, Any], ext: str) -> str:
        """The path yt-dlp would give the item, ending in `ext` (the cached file's)."""
        from ... import ytdlp

        naming = ("outtmpl", "paths", "trim_file_name", "windowsfilenames")
        params = {k: v for k, v in ytdlp_params(self.o).items() if k in naming}
        name = ytdlp.file_namer(params)(dict(info))
        old = "." + str(info.get("ext") or "")
        return (name[: -len(old)] if name.endswith(old) else name) + ext

    def check_announced_size(self, info: Mapping[str, Any]) -> None:
        """--max-size, --min-size and free space, before yt-dlp downloads, when the chosen
        format(s) say their size (raised through yt-dlp: not one of its exceptions)."""
        formats = info.get("requested_formats") or [info]
        sizes = [f.get("filesize") or f.get("filesize_approx") for f in formats]
        if not sizes or not all(isinstance(x, (int, float)) and x > 0 for x in sizes):
            return
        size = int(sum(sizes))
        try:
            check_size(size, self.o.min_size, self.o.max_size)
            space = self.job.ctx.space
            self.releases.append(space.reserve(self.out, size, self.o.free_space_margin))
        except errors.XdlError as e:
            raise self.fail(e) from None

    def claim(self, info: dict[str, Any], planned: str) -> str | None:
        """Own the item's file before yt-dlp opens it; the name to use instead, if any.
        yt-dlp takes a playlist's items one after another: the one before is finished."""
        for target in self.targets:
            target.release_folder()
        self.targets.clear()
        try:
            return self._claim(info, Path(planned))
        except errors.XdlError as e:
            raise self.fail(e) from None

    def _claim(self, info: dict[str, Any], planned: Path) -> str | None:
        try:
            relative = planned.relative_to(self.out)
        except ValueError:
            raise errors.BadInput(
                f"the template puts the file outside --output-dir: {planned}"
            ) from None
        *folders, name = relative.parts
        safe_folders = tuple(sanitize_filename(f) for f in folders)
        safe = sanitize_filename(name)
        ext = "." + str(info.get("ext") or "")
        if not safe.endswith(ext):  # sanitising cut the extension: put it back
            safe = sanitize_filename(Path(safe).stem[: max(1, len(safe) - len(ext))] + ext)
        origin = str(info.get("webpage_url") or info.get("original_url") or self.job.url)
        final_ext = self.o.audio_format if self.o.audio and self.o.audio_format != "best" else None
        target = Target.claim(
            self.out, safe, origin, overwrite=self.o.overwrite, stop=self.job.stop,
            parts=safe_folders, also_ext=final_ext,
        )  # fmt: skip
        self.targets.append(target)
        check_no_links(target.folder, Path(target.name).stem)
        if target.fd is not None:
            # On the `.part` now: yt-dlp writes into it and renames it into place, so a
            # kill before our line still leaves NAME with its origin (else the next run
            # takes it for another source's and downloads it again as `NAME (1)`).
            record_origin(target.fd, target.dirfd, target.name, origin)
        # When the file is there already (target.done), yt-dlp finds it under the name
        # chosen here and says so; we answer `exists`.
        if (*safe_folders, target.name) == relative.parts:
            return None
        return str(Path(*safe_folders, target.name))

    # -- while it downloads --

    def hook(self, d: Mapping[str, Any]) -> None:
        job = self.job
        name = str(d.get("filename") or "")
        info = d.get("info_dict") or {}
        if job.stop.is_set():
            if not (info.get("is_live") and d.get("status") == "finished"):
                raise _Stopped()
            self.interrupted_live = True  # its recording so far, kept and finished
        if d.get("status") == "finished" and "elapsed" in d:
            # Written now, not found there: ffmpeg (a live stream, a section) reports
            # only this. A file already there is reported `finished` without `elapsed`.
            self.downloading.add(str(info.get("id")))
        if d.get("status") != "downloading":
            return
        self.downloading.add(str(info.get("id")))
        if d.get("tmpfilename"):
            self.parts.add(str(d["tmpfilename"]))
        done = int(d.get("downloaded_bytes") or 0)
        delta = done - self.seen.get(name, 0)
        self.seen[name] = done
        try:
            check_size(sum(self.seen.values()), None, self.o.max_size)
        except errors.TooLarge as e:
            raise self.fail(e) from None
        if job.limiter is not None and delta > 0:
            job.limiter.consume(delta, job.stop)
            if job.stop.is_set():
                raise _Stopped()
        if job.progress:
            total = d.get("total_bytes") or d.get("total_bytes_estimate")
            job.progress(Path(name).name, done, int(total) if total else None)

    def empty_stale_parts(self) -> bool:
        """After HTTP 416 to a resume: empty the item's `.part` files (NAME.part and the
        formats' NAME.fID.EXT.part; ours while we hold the item's claim) so that yt-dlp
        starts them again. yt-dlp's own answer to a 416 (asking again without a range, to
        see whether the `.part` is whole) sends the range again and fails; a kill between
        a finished download and its rename left the item failing forever (yt-dlp issue
        12994). True when there was one to empty."""
        emptied = False
        for target in self.targets:
            stem = re.escape(os.path.splitext(target.name)[0])
            ours = re.compile(rf"(?:{re.escape(target.name)}|{stem}\.f[\w-]+\.\w+)\.part")
            try:
                names = [e.name for e in os.scandir(target.folder) if ours.fullmatch(e.name)]
            except OSError:
                continue
            for name in names:
                try:
                    fd = os.open(name, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC,
                                 dir_fd=target.dirfd)  # fmt: skip
                except OSError:
                    continue
                try:
                    st = os.fstat(fd)
                    if stat.S_ISREG(st.st_mode) and st.st_nlink == 1 and st.st_size:
                        os.ftruncate(fd, 0)
                        emptied = True
                finally:
                    os.close(fd)
        return emptied

    def drop_parts(self) -> None:
        """The `.part` files of a download stopped past --max-size."""
        for part in self.parts:
            Path(part).unlink(missing_ok=True)

    # -- what it did --

    def results(self, info: Mapping[str, Any]) -> list[FetchResult]:
        job = self.job
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
                "url": job.url if playlist is None else entry_url(entry, job.url),
                "title": entry.get("title"),
                "id": entry.get("id"),
                "extractor": entry.get("extractor_key") or entry.get("extractor"),
                **where,
            }
            hit = self.cached.get(str(entry.get("id")))
            if hit is not None:
                if job.archive is not None and common["extractor"] and common["id"]:
                    job.archive.add(media_key(str(common["extractor"]), str(common["id"])))
                results.append(dataclasses.replace(hit, **common))
                continue
            if str(entry.get("id")) in self.skipped_archive:
                key = media_key(str(common["extractor"]), str(common["id"]))
                known = self.job.archive.path_of(key) if self.job.archive else None
                path = str(known) if known else None
                results.append(FetchResult(ok=True, skipped="archive", path=path, **common))
                continue
            downloads = entry.get("requested_downloads") or []
            filepath = downloads[-1].get("filepath") if downloads else entry.get("filepath")
            if not filepath or not os.path.lexists(filepath):
                if self.o.max_downloads is not None and playlist is not None:
                    continue  # not reached because of --max-downloads
                raise errors.DownloadFailed("the downloader reported no file")
            results.append(self.saved(entry, Path(filepath), common))
        if info.get("_xdl_broke_on_existing"):  # the archived entry it stopped at
            listed = {str(r.id) for r in results}
            for vid in sorted(self.skipped_archive - listed):
                results.append(
                    FetchResult(url=job.url, ok=True, skipped="archive", id=vid, playlist=playlist)
                )
        for message in info.get("_xdl_errors") or []:
            from ...ytdlp import error_from_message

            error = self.raised.get(message) or error_from_message(message)
            results.append(
                FetchResult(url=job.url, ok=False, error=error.to_dict(), playlist=playlist)
            )
        if not any(r.ok for r in results):
            failed = errors.DownloadFailed(
                results[0].error["message"] if results and results[0].error else "nothing"
            )
            # yt-dlp understood the URL (a playlist): saving the page instead is no answer
            failed.final = playlist is not None
            raise failed
        return results

    def saved(self, entry: Mapping[str, Any], path: Path, common: dict[str, Any]) -> FetchResult:
        """The line of one item's file, after checking it is a plain file inside -o."""
        o = self.o
        fresh = str(entry.get("id")) in self.downloading
        folder = path.parent.resolve()
        if fresh and path.is_symlink() and (folder == self.out or self.out in folder.parents):
            # Our claim checked no link was there: yt-dlp renamed one into place (its
            # `.part` renamed away and replaced while it wrote). Not left as the file.
            path.unlink()
            raise errors.BadInput(
                f"{path.name}.part was replaced by a link while downloading; nothing kept"
            )
        if path.is_symlink() or self.out not in path.resolve().parents:
            raise errors.BadInput(f"refusing a file outside --output-dir or a link: {path}")
        if o.normalize and fresh:
            normalize_audio(path, o.audio_quality)
        size = path.stat().st_size
        if fresh and size == 0 and self.interrupted_live:  # stopped while ffmpeg probed
            path.unlink()
            raise errors.Interrupted("interrupted before the recording had any media")
        if fresh:
            try:
                check_size(size, o.min_size, o.max_size)
            except errors.XdlError:
                path.unlink()
                raise
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise errors.BadInput(f"refusing a link: {path}") from None
            raise errors.DownloadFailed(f"cannot read {path}: {e.strerror}") from None
        try:
            # The checksum, the origin and what the cache keeps: one file, this one.
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_size != size:
                raise errors.BadInput(f"{path} was replaced while it was checked")
            digest = _sha256_fd(fd)
            if o.sha256 and digest != o.sha256 and fresh:
                path.unlink()
                raise errors.ChecksumMismatch(
                    f"sha256 is {digest}, expected {o.sha256}; file removed", sha256=digest
                )
            if fresh:
                origin = str(entry.get("webpage_url") or entry.get("original_url") or self.job.url)
                dirfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                try:
                    record_origin(fd, dirfd, path.name, origin)
                finally:
                    os.close(dirfd)
                keep_media(job=self.job, info=entry, path=path, size=size, sha256=digest,
                           origin=origin, inode=(st.st_dev, st.st_ino))  # fmt: skip
        finally:
            os.close(fd)
        archive = self.job.archive
        # a feed entry is archived by its feed and guid (the engine's `record_entry`):
        # `generic 1` would shadow guid 1 of every other feed
        by_id = archive is not None and not is_entry(self.job.fields)
        if archive is not None and by_id and common["extractor"] and common["id"]:
            archive.add(media_key(str(common["extractor"]), str(common["id"])), path)
        live = None
        if fresh and entry.get("is_live"):
            live = "interrupted" if self.interrupted_live else "ended"
        return FetchResult(
            ok=True,
            path=str(path),
            bytes=size,
            sha256=digest,
            skipped=None if fresh else "exists",
            files=tuple(entry.get("_xdl_files") or ()),
            live=live,
            **common,
        )

    def planned(self, entries: list[dict[str, Any]]) -> list[FetchResult]:
        results = []
        for entry in entries:
            name = entry.get("_xdl_filename")
            if name and self.o.audio and self.o.audio_format not in ("best",):
                name = str(Path(name).with_suffix("." + self.o.audio_format))
            results.append(
                FetchResult(
                    url=self.job.url
                    if entry.get("_xdl_playlist") is None
                    else entry_url(entry, self.job.url),
                    ok=True,
                    path=name,
                    bytes=entry.get("filesize") or entry.get("filesize_approx"),
                    title=entry.get("title"),
                    id=entry.get("id"),
                    extractor=entry.get("extractor_key"),
                    playlist=entry.get("_xdl_playlist"),
                    playlist_index=entry.get("_xdl_playlist_index"),
                    elapsed_s=since(self.job.started),
                    dry_run=True,
                )
            )
        if not results:
            raise errors.NoFormats(f"nothing to download at {self.job.url}")
        return results


class _StalePart(Exception):
    """A resume answered 416; the item's `.part` files were emptied: download again."""

    def __init__(self, error: errors.XdlError) -> None:
        super().__init__(error.message)
        self.error = error


def _download(job: Job, youtube_dl: bool) -> list[FetchResult]:
    params = ytdlp_params(job.o)
    try:
        try:
            return _download_with(job, youtube_dl, params)
        except _StalePart as stale:
            log.debug("%s: %s on resuming; the .part started again", job.url, stale.error.message)
            try:
                return _download_with(job, youtube_dl, params, again=True)
            except _StalePart as still:
                raise still.error from None
    except errors.DownloadFailed as e:
        if not params.get("live_from_start") or "downloaded from the start" not in e.message:
            raise
    # The site (a plain HLS or DASH stream, most of them) has no "from the start" formats:
    # yt-dlp refuses --live-from-start rather than record from now. Record from now.
    log.warning(
        "%s: this live stream can only be recorded from now, not from its start",
        shown(job.url),
    )
    del params["live_from_start"]
    return _download_with(job, youtube_dl, params)


def _download_with(
    job: Job, youtube_dl: bool, params: dict[str, Any], again: bool = False
) -> list[FetchResult]:
    from ... import ytdlp

    media = _Media(job)
    params = {**params, "match_filter": media.match_filter}
    try:
        if job.o.dry_run:
            if youtube_dl:
                raise errors.DownloadFailed("--dry-run is not supported with youtube-dl")
            known = item_fields(job.fields)
            return media.planned(ytdlp.plan(job.url, net=job.o.net, params=params, known=known))
        full = {**job.o.net.ytdlp_params(), **params}
        try:
            if youtube_dl:
                if not youtube_dl_available():
                    raise errors.ToolMissing("youtube_dl is not installed")
                info = ytdlp.download_with_youtube_dl(job.url, full, media.hook)
            else:
                info = ytdlp.download_recorded(
                    job.url, full, media.hook, media.claim, stop=job.stop,
                    defaults=input_defaults(job.fields), known=item_fields(job.fields),
                )  # fmt: skip
        except _Stopped:
            raise errors.Interrupted(errors.STOPPED) from None
        except errors.TooLarge:
            media.drop_parts()
            raise
        except errors.HttpError as e:
            if e.details.get("status") == 416 and not again and media.empty_stale_parts():
                raise _StalePart(e) from None
            raise
        if any(isinstance(e, errors.TooLarge) for e in media.raised.values()):
            media.drop_parts()
        return media.results(info)
    finally:
        media.close()


#: Fields of a JSON input line (`xdl info --flat FEED`) that name what yt-dlp, given the
#: entry alone, does not know: the show it belongs to.
_INPUT_DEFAULTS = {
    "playlist": ("playlist", "playlist_title"),
    "playlist_title": ("playlist_title",),
    "playlist_id": ("playlist_id",),
    "channel": ("channel",),
    "uploader": ("uploader",),
}


def input_defaults(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The item fields a JSON input line fills in (strings only)."""
    out: dict[str, Any] = {}
    for name, keys in _INPUT_DEFAULTS.items():
        value = fields.get(name)
        if isinstance(value, str) and value.strip():
            for key in keys:
                out.setdefault(key, value.strip())
    return out


class YtDlp:
    name = "ytdlp"
    media = True
    missing = ""

    def available(self) -> bool:
        return True

    def run(self, job: Job) -> list[FetchResult]:
        return _download(job, youtube_dl=False)


class YoutubeDl:
    name = "youtube-dl"
    media = True
    missing = "--strategy youtube-dl: the youtube_dl module is not installed"

    def available(self) -> bool:
        return youtube_dl_available()

    def run(self, job: Job) -> list[FetchResult]:
        return _download(job, youtube_dl=True)


YTDLP = YtDlp()
YOUTUBE_DL = YoutubeDl()


def entry_url(entry: Mapping[str, Any], default: str) -> str:
    """A playlist entry's own URL, without yt-dlp's `#__youtubedl_smuggle` data."""

    url = str(entry.get("webpage_url") or entry.get("original_url") or entry.get("url") or default)
    return re.sub(r"#__youtubedl_smuggle=.*$", "", url)


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
        "noplaylist": o.no_playlist,
        # yt-dlp counts characters: 80 of them stay under 255 bytes even in 3-byte scripts
        "trim_file_name": 80,
        # ffmpeg (which records live streams) writes each packet as it comes: stopped while
        # a stalled stream keeps it waiting, it can only be interrupted, and the recording
        # so far is on disk, not lost in its buffer (see ytdlp._StoppablePopen).
        "external_downloader_args": {"ffmpeg_o": ["-flush_packets", "1"]},
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
    if o.subs or o.embed_subs or o.auto_subs:
        params["writesubtitles"] = o.subs or o.embed_subs
        params["writeautomaticsub"] = o.auto_subs
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
    if o.connections > 1:
        params["concurrent_fragment_downloads"] = o.connections  # yt-dlp's -N
    if o.live_duration:
        params["download_ranges"] = LiveSection(o.live_duration)
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


class LiveSection:
    """yt-dlp's download_ranges for --live-duration: the first SECONDS of a live stream
    (ffmpeg's -t), the whole of anything else."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __call__(self, info: Mapping[str, Any], ydl: Any) -> list[dict[str, Any]]:
        if info.get("is_live"):
            return [{"start_time": 0, "end_time": self.seconds}]
        return [{}]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LiveSection) and other.seconds == self.seconds

    def __repr__(self) -> str:
        return f"LiveSection({self.seconds})"


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


def normalize_audio(path: Path, quality: str | None = None) -> None:
    """Loudness-normalise `path` in place with ffmpeg's loudnorm (EBU R128, -16 LUFS),
    at its own sample rate (loudnorm works at 192 kHz) and, for a lossy format, at the
    bitrate `--audio-quality` asked for (`128`, `128K`): the podcast profile's MP3 128k
    stays 128k, whatever the extraction copied."""
    codec = list(_AUDIO_CODECS.get(path.suffix.lower(), ["-c:a", "aac", "-b:a", "192k"]))
    bitrate = (quality or "").strip().lower().rstrip("k")
    lossy = path.suffix.lower() not in (".flac", ".wav")
    if lossy and bitrate.isdigit() and int(bitrate) > 10:
        codec = [*codec[:2], "-b:a", f"{int(bitrate)}k"]
    rate = _sample_rate(path)
    tmp = path.with_name(path.stem + ".normalizing" + path.suffix)
    cmd = ["ffmpeg", "-nostdin", "-y", "-loglevel", "error", "-i", str(path), "-map", "0:a"]
    if path.suffix.lower() in (".mp3", ".m4a", ".flac"):  # the cover art, as embedded
        cmd += ["-map", "0:v?", "-c:v", "copy"]
    cmd += ["-af", "loudnorm=I=-16:TP=-1.5:LRA=11", *codec]
    cmd += (["-ar", str(rate)] if rate else []) + ["-map_metadata", "0", str(tmp)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise errors.DownloadFailed(f"ffmpeg loudnorm failed: {proc.stderr.strip()[:200]}")
    os.replace(tmp, path)


def _sample_rate(path: Path) -> int | None:
    """The first audio stream's sample rate (ffprobe), None when it cannot say."""
    try:
        proc = subprocess.run(
            ["ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries",
             "stream=sample_rate", "-of", "csv=p=0", str(path)],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    value = proc.stdout.strip().split("\n")[0]
    return int(value) if value.isdigit() and 8000 <= int(value) <= 192000 else None
