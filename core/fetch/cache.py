"""The download cache (`--cache DIR`): files xdl downloaded, kept so that the same file
is placed again without its bytes crossing the network.

A plain URL's entry is revalidated before each use (`If-None-Match` with its strong
ETag, `If-Modified-Since` with its Last-Modified: only a 304 is a hit); a yt-dlp item's
is keyed by extractor, id and the options that choose or change its bytes (format,
quality, container, audio, embedding, loudness), and used without a media request.
A hit is hard-linked into the output (copied through the owned `Target` across
filesystems, or when the entry was recorded for another origin).

One flat folder, every file written whole (a temporary file, then a rename):

- `KEY.json`: the entry (its key, file name, size, sha256, validators, origin, last use);
- `KEY.SHA256.data`: its bytes, read-only (0444): outputs linked to it share the inode,
  so an in-place write fails instead of changing every copy; a change made anyway
  (size or mtime not those recorded) drops the entry;
- `KEY.lock`: the lock held while the entry is written, placed or evicted;
- `CACHEDIR.TAG`, so backup tools skip the folder.

The cache is a shortcut only: whatever goes wrong with it (unreadable entry, no
validator, a 200 instead of a 304, a size that does not match) means a normal download,
never a failed one.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import stat
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import errors
from ..archive import url_key
from ..files import temp_name
from .options import FetchOptions
from .result import Attempt, FetchResult, since
from .target import (
    ORIGIN_XATTR,
    Target,
    check_size,
    read_origin,
    record_origin,
    sha256_file,
)

if TYPE_CHECKING:
    from ..context import Context
    from .job import Job

log = logging.getLogger("xdl.fetch")

TAG = "CACHEDIR.TAG"
TAG_TEXT = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by xdl (--cache).\n"
    "# For information about cache directory tags see https://bford.info/cachedir/\n"
)
#: Temporary files and unreferenced data older than this are a crashed writer's.
STALE_AFTER = 3600.0
#: Opening files of the cache folder: never through a link, never waiting on a FIFO
#: planted in its place (O_NONBLOCK changes nothing for a regular file).
_NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


def _read_json(path: Path) -> Any:
    """The JSON of the regular file `path` (a record), or None (no file, a link, a FIFO,
    not JSON)."""
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return None
            return json.loads(f.read(1 << 20))
        except (OSError, ValueError, RecursionError):
            return None


@dataclass(frozen=True)
class Entry:
    """One cached file, as its `KEY.json` describes it."""

    key: str
    name: str
    size: int
    sha256: str
    origin: str
    data: str
    mtime_ns: int
    etag: str | None = None
    last_modified: str | None = None
    used: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Entry | None:
        try:
            entry = cls(
                key=str(d["key"]), name=str(d["name"]), size=int(d["size"]),
                sha256=str(d["sha256"]), origin=str(d["origin"]), data=str(d["data"]),
                mtime_ns=int(d["mtime_ns"]), etag=d.get("etag"),
                last_modified=d.get("last_modified"), used=float(d.get("used") or 0.0),
            )  # fmt: skip
        except (KeyError, TypeError, ValueError):
            return None
        if entry.data != f"{entry.key}.{entry.sha256}.data" or "/" in entry.name:
            return None
        return entry


def entry_key(*parts: str) -> str:
    """The file-name key of an entry: a hash of what identifies it."""
    return hashlib.sha256(json.dumps(parts).encode("utf-8")).hexdigest()[:32]


def url_entry_key(url: str) -> str:
    return entry_key(url_key(url))


def media_entry_key(o: FetchOptions, extractor: str, video_id: str) -> str:
    """A yt-dlp item: extractor, id, and every option that chooses or changes its bytes."""
    audio = (o.audio, o.audio_format, o.audio_quality) if o.audio else ()
    chosen = (o.format, o.quality, o.container, o.normalize, o.live_from_start)
    embeds = (o.embed_metadata, o.embed_thumbnail, o.embed_chapters, o.embed_subs)
    langs = tuple(sorted(o.sub_langs)) if o.embed_subs else ()
    return entry_key("media", extractor.lower(), video_id, repr((audio, chosen, embeds, langs)))


def media_cacheable(o: FetchOptions) -> bool:
    """Items that are one file: side files (subtitles, info JSON, the kept video) are
    not cached, so such a download always runs."""
    return not (o.subs or o.write_info_json or o.write_description or o.keep_video)


class Cache:
    """The cache folder `root`, bounded to `max_size` bytes (least recently used out)."""

    def __init__(self, root: Path, max_size: int | None = None) -> None:
        self.root = root
        self.max_size = max_size
        root.mkdir(parents=True, exist_ok=True)
        tag = root / TAG
        if not tag.exists():
            with contextlib.suppress(OSError):
                tag.write_text(TAG_TEXT)

    # -- locks --

    def _lock(self, key: str, wait: bool = True) -> int | None:
        """The lock of `key` (a descriptor to pass to `_unlock`), None if busy and not
        `wait`. The lock file is removed with its entry, so check it is still the one."""
        path = self.root / f"{key}.lock"
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | _NOFOLLOW, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                os.close(fd)
                return None
            except BaseException:
                os.close(fd)
                raise
            try:
                same = os.stat(path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                return fd
            os.close(fd)  # evicted while we waited: take the new one

    @contextlib.contextmanager
    def locked(self, key: str) -> Iterator[None]:
        fd = self._lock(key)
        assert fd is not None
        try:
            yield
        finally:
            os.close(fd)

    # -- reading --

    def get(self, key: str) -> Entry | None:
        """The entry of `key` when its data is there as recorded; None otherwise (an entry
        whose data was changed or lost is dropped)."""
        raw = _read_json(self.root / f"{key}.json")
        entry = Entry.from_dict(raw) if isinstance(raw, dict) else None
        if entry is None or entry.key != key:
            return None
        try:
            st = os.stat(self.root / entry.data, follow_symlinks=False)
        except OSError:
            st = None
        if (
            st is None
            or not stat.S_ISREG(st.st_mode)
            or st.st_size != entry.size
            or st.st_mtime_ns != entry.mtime_ns
        ):
            log.debug("cache: entry %s changed or lost; dropped", key)
            self.drop(key, wait=False)
            return None
        return entry

    def used(self, entry: Entry) -> None:
        """Record a use (the least recently used are evicted first; not the file's atime)."""
        with contextlib.suppress(OSError):
            self._write_entry(Entry(**{**entry.to_dict(), "used": time.time()}))

    def _write_entry(self, entry: Entry) -> None:
        tmp = self.root / f".tmp-{entry.key}-{os.getpid()}-{threading.get_ident()}.json"
        try:
            with open(tmp, "x", encoding="utf-8") as f:
                json.dump(entry.to_dict(), f)
            os.replace(tmp, self.root / f"{entry.key}.json")
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    # -- writing --

    def store(
        self,
        key: str,
        src: Path,
        *,
        name: str,
        size: int,
        sha256: str,
        origin: str,
        etag: str | None = None,
        last_modified: str | None = None,
        inode: tuple[int, int] | None = None,
    ) -> None:
        """Keep the file `src` (just written and checked: `size` bytes, `sha256`) as the
        entry `key`: hard-linked when on the same filesystem (and only when `src` is still
        the file `inode` (st_dev, st_ino) that was checked), else copied and verified.
        Never raises for a problem with the cache (a warning says it)."""
        if self.max_size is not None and size > self.max_size:
            return
        try:
            with self.locked(key):
                self._store(key, src, name, size, sha256, origin, etag, last_modified, inode)
        except (OSError, errors.XdlError) as e:
            log.warning("warning: could not keep %s in the cache %s: %s", name, self.root, e)
            return
        self.evict()

    def _store(
        self,
        key: str,
        src: Path,
        name: str,
        size: int,
        sha256: str,
        origin: str,
        etag: str | None,
        last_modified: str | None,
        inode: tuple[int, int] | None = None,
    ) -> None:
        data = f"{key}.{sha256}.data"
        tmp = self.root / f".tmp-{key}-{os.getpid()}-{threading.get_ident()}.data"
        old = self.get(key)
        try:
            try:
                os.link(src, tmp, follow_symlinks=False)
                linked = True
            except OSError:  # another filesystem, or no hard links there
                self._copy(src, tmp, sha256)  # hashed as it is copied
                linked = False
                with contextlib.suppress(OSError):
                    os.setxattr(tmp, ORIGIN_XATTR, origin.encode("utf-8"), follow_symlinks=False)
            st = os.stat(tmp, follow_symlinks=False)
            swapped = linked and inode is not None and (st.st_dev, st.st_ino) != inode
            if not stat.S_ISREG(st.st_mode) or st.st_size != size or swapped:
                raise errors.DownloadFailed(f"{src} changed before it was cached")
            os.chmod(tmp, 0o444)  # a regular file, checked above
            os.replace(tmp, self.root / data)
            mtime_ns = os.stat(self.root / data, follow_symlinks=False).st_mtime_ns
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        entry = Entry(
            key, name, size, sha256, origin, data, mtime_ns, etag, last_modified, time.time()
        )
        self._write_entry(entry)
        if old is not None and old.data != data:
            with contextlib.suppress(FileNotFoundError):
                (self.root / old.data).unlink()

    @staticmethod
    def _copy(src: Path, tmp: Path, sha256: str) -> None:
        digest = hashlib.sha256()
        fd = os.open(src, os.O_RDONLY | _NOFOLLOW)
        try:
            with os.fdopen(fd, "rb") as f, open(tmp, "xb") as out:
                while block := f.read(1 << 20):
                    digest.update(block)
                    out.write(block)
        except OSError:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise
        if digest.hexdigest() != sha256:
            raise errors.DownloadFailed(f"{src} changed before it was cached")

    # -- placing --

    def place(self, entry: Entry, target: Target, *, overwrite: bool) -> tuple[int, str]:
        """Put the entry's bytes at the target's NAME: a hard link to the cached file (same
        filesystem, same origin), else a copy written and verified through the target."""
        with self.locked(entry.key):
            current = self.get(entry.key)
            if current is None or current.data != entry.data:
                raise errors.DownloadFailed("the cache entry changed meanwhile")
            data = self.root / entry.data
            if entry.origin == target.origin and _link(data, target, overwrite):
                _set_origin(target)
                target.discard()  # the .part we held: the whole file is there now
                self.used(entry)
                return entry.size, entry.sha256
            fd = os.open(data, os.O_RDONLY | _NOFOLLOW)
            with os.fdopen(fd, "rb") as f:
                target.begin(0, entry.size, {"cache": entry.key})
                while block := f.read(1 << 20):
                    target.write(block)
            try:
                placed = target.commit(entry.sha256, None, overwrite=overwrite)
            except errors.ChecksumMismatch:
                self.drop(entry.key, wait=False, locked=True)
                raise
            self.used(entry)
            return placed

    # -- eviction --

    def drop(self, key: str, *, wait: bool = True, locked: bool = False) -> bool:
        """Remove the entry `key` (its data, record and lock); False when it is busy."""
        fd = None if locked else self._lock(key, wait)
        if fd is None and not locked:
            return False
        try:
            raw = _read_json(self.root / f"{key}.json")
            data = raw.get("data") if isinstance(raw, dict) else None
            names = [f"{key}.json"]
            if isinstance(data, str) and data.startswith(key + ".") and "/" not in data:
                names.insert(0, data)
            if not locked:
                names.append(f"{key}.lock")
            for name in names:
                with contextlib.suppress(FileNotFoundError):
                    (self.root / name).unlink()
        finally:
            if fd is not None:
                os.close(fd)
        return True

    def evict(self) -> None:
        """While the cache holds more than `max_size`, drop the least recently used
        entries; clear what crashed writers left."""
        if self.max_size is None:
            return
        entries: list[Entry] = []
        files: dict[str, float] = {}
        now = time.time()
        try:
            listing = list(os.scandir(self.root))
        except OSError:
            return
        for item in listing:
            try:
                age = now - item.stat(follow_symlinks=False).st_mtime
            except OSError:
                continue
            if item.name.startswith(".tmp-") and age > STALE_AFTER:
                with contextlib.suppress(OSError):
                    os.unlink(item.path)
            elif item.name.endswith(".data"):
                files[item.name] = age
            elif item.name.endswith(".json") and not item.name.startswith("."):
                raw = _read_json(Path(item.path))
                entry = Entry.from_dict(raw) if isinstance(raw, dict) else None
                if entry is not None:
                    entries.append(entry)
        kept = {e.data for e in entries}
        for name, age in files.items():  # data no record points to (a crash between renames)
            if name not in kept and age > STALE_AFTER:
                with contextlib.suppress(OSError):
                    (self.root / name).unlink()
        total = sum(e.size for e in entries)
        for entry in sorted(entries, key=lambda e: e.used):
            if total <= self.max_size:
                break
            if self.drop(entry.key, wait=False):
                log.debug("cache: evicted %s (%d bytes)", entry.name, entry.size)
                total -= entry.size


def _link(data: Path, target: Target, overwrite: bool) -> bool:
    """Hard-link `data` as the target's NAME (never over a file unless `overwrite`);
    False when this filesystem cannot (another device, no hard links, too many)."""
    try:
        if not overwrite:
            os.link(data, target.name, dst_dir_fd=target.dirfd, follow_symlinks=False)
            return True
        # A name no download is given (sanitised names never start with a dot), unique
        # to this thread: `NAME.part.cache` may be another source's finished file.
        tmp = temp_name(target.name, "cache")
        try:
            os.link(data, tmp, dst_dir_fd=target.dirfd, follow_symlinks=False)
        except FileExistsError:  # a stale one of ours (this pid and thread, killed)
            return False
        try:
            os.replace(tmp, target.name, src_dir_fd=target.dirfd, dst_dir_fd=target.dirfd)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp, dir_fd=target.dirfd)
        return True
    except FileExistsError:
        raise errors.BadInput(f"{target.final} appeared meanwhile; kept it") from None
    except OSError as e:  # EXDEV, EPERM, EMLINK...: copy instead
        log.debug("cache: cannot link into %s: %s", target.folder, e)
        return False


def _set_origin(target: Target) -> None:
    """The linked file carries the cached file's origin (same inode); say it where it
    does not (a filesystem without xattrs: the folder's `.xdl-origins`)."""
    if read_origin(target.dirfd, target.name) == target.origin:
        return
    fd = os.open(target.name, os.O_RDONLY | _NOFOLLOW, dir_fd=target.dirfd)
    try:
        record_origin(fd, target.dirfd, target.name, target.origin)
    finally:
        os.close(fd)


# -- one cache per folder per command ----------------------------------------------------


def open_cache(o: FetchOptions, ctx: Context) -> Cache | None:
    """The cache of these options (None when off, a dry run, or the folder unusable): one
    object per folder in the command's context."""
    if not o.cache or o.dry_run:
        return None
    root = Path(o.cache).expanduser().resolve()

    def make() -> Cache | None:
        try:
            return Cache(root, o.cache_size)
        except OSError as e:
            log.warning("warning: --cache %s is not usable (%s); downloading without", root, e)
            return None

    return ctx.once(("cache", str(root), o.cache_size), make)


# -- the plain-file tier -----------------------------------------------------------------


def revalidate(job: Job) -> list[FetchResult] | None:
    """A plain URL's cached file, placed once the server answered 304 to a conditional
    GET. None otherwise: no entry, no validator, or a fresh answer — then the open
    response is the job's probe, which the HTTP tier goes on reading."""
    o = job.o
    cache = open_cache(o, job.ctx)
    if cache is None or o.audio or o.strategy not in ("auto", "http"):
        return None
    entry = cache.get(url_entry_key(job.url))
    if entry is None or (o.sha256 and o.sha256 != entry.sha256):
        return None
    headers: dict[str, str] = {}
    if entry.etag:
        headers["If-None-Match"] = entry.etag
    if entry.last_modified:
        headers["If-Modified-Since"] = entry.last_modified
    if not headers:
        return None
    try:
        check_size(entry.size, o.min_size, o.max_size)
    except errors.XdlError:
        return None
    from .. import http

    begun = time.monotonic()
    try:
        resp = job.get(headers)
    except errors.XdlError as e:  # the normal download says what is wrong
        log.debug("%s: cache revalidation failed: %s", job.url, e.message)
        return None
    if resp.status_code != 304:
        job.found.adopt(http.head_of(resp), resp, job.stop)
        return None
    resp.close()
    log.debug("%s: 304, using the cached %s", job.url, entry.name)
    target = Target.claim(
        job.out, entry.name, job.url, overwrite=o.overwrite, stop=job.stop,
        progress=job.progress, max_size=o.max_size, margin=o.free_space_margin,
        space=job.ctx.space,
    )  # fmt: skip
    with target:
        if target.done is not None:
            done = target.done
            return [job.skipped("exists", done, title=done.stem, sha256=sha256_file(done))]
        try:
            size, digest = cache.place(entry, target, overwrite=o.overwrite)
        except (errors.DownloadFailed, errors.ChecksumMismatch) as e:
            log.debug("%s: cache entry not usable: %s", job.url, e.message)
            return None
        path = target.final
    if job.archive is not None:
        job.archive.add(url_key(job.url))
    return [
        FetchResult(
            url=job.url, ok=True, path=str(path), bytes=size, sha256=digest, title=path.stem,
            strategy="http", attempts=(Attempt("http", True, None, since(begun)),),
            elapsed_s=since(job.started), cached=True,
        )
    ]  # fmt: skip


def keep_file(
    job: Job,
    path: Path,
    size: int,
    sha256: str,
    etag: str | None,
    last_modified: str | None,
    inode: tuple[int, int] | None = None,
) -> None:
    """Keep a file the HTTP tier downloaded (the file `inode`, at `path`), when it has a
    validator to revalidate with."""
    cache = open_cache(job.o, job.ctx)
    strong = etag if etag and not etag.startswith("W/") else None
    if cache is None or not (strong or last_modified):
        return
    cache.store(
        url_entry_key(job.url), path, name=path.name, size=size, sha256=sha256,
        origin=job.url, etag=strong, last_modified=last_modified, inode=inode,
    )  # fmt: skip


# -- the yt-dlp tier ---------------------------------------------------------------------


def _media_key(job: Job, info: Mapping[str, Any]) -> str | None:
    extractor = info.get("extractor_key") or info.get("extractor")
    if not extractor or not info.get("id") or info.get("is_live") or not media_cacheable(job.o):
        return None
    return media_entry_key(job.o, str(extractor), str(info["id"]))


def media_hit(
    job: Job, info: Mapping[str, Any], claim: Callable[[str], Target]
) -> FetchResult | None:
    """A yt-dlp item placed from the cache (its extractor, id and format options known
    once yt-dlp chose the format, before any media request): the line's path, bytes and
    sha256, or None. `claim(ext)` owns the item's file as yt-dlp would name it, ending
    in `ext` (the cached file's: audio extraction may have changed it)."""
    o = job.o
    cache = open_cache(o, job.ctx)
    key = _media_key(job, info) if cache is not None else None
    entry = cache.get(key) if cache is not None and key is not None else None
    if cache is None or entry is None or (o.sha256 and o.sha256 != entry.sha256):
        return None
    try:
        check_size(entry.size, o.min_size, o.max_size)
        target = claim(os.path.splitext(entry.name)[1])
        if target.done is not None:
            return None  # there already: yt-dlp finds it, the line says `exists`
        size, digest = cache.place(entry, target, overwrite=o.overwrite)
    except errors.Interrupted:
        raise
    except errors.XdlError as e:
        log.debug("%s: not placed from the cache: %s", job.url, e.message)
        return None
    log.debug("%s: %s placed from the cache", job.url, target.name)
    return FetchResult(
        url=job.url, ok=True, path=str(target.final), bytes=size, sha256=digest, cached=True
    )


def keep_media(
    *,
    job: Job,
    info: Mapping[str, Any],
    path: Path,
    size: int,
    sha256: str,
    origin: str,
    inode: tuple[int, int] | None = None,
) -> None:
    """Keep the file of a yt-dlp item just downloaded (not a live recording, not one with
    side files): the file `inode`, hashed, at `path`."""
    cache = open_cache(job.o, job.ctx)
    key = _media_key(job, info) if cache is not None else None
    if cache is not None and key is not None and not info.get("was_live"):
        cache.store(key, path, name=path.name, size=size, sha256=sha256, origin=origin, inode=inode)
