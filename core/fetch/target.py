"""The owned output file (SPEC §5): the one place where a download meets the disk.

Every downloader writes through a `Target`. It holds, for the download's whole life:

- an exclusive `flock` on `NAME.part`, so no other thread or process writes into it; a
  second writer of the same source waits for the first, a different source moves on to
  a distinct name (`NAME (1).ext`);
- files opened relative to the folder's descriptor with `O_NOFOLLOW` and `O_NONBLOCK`
  (a planted link is `bad_input`, its target untouched; a planted FIFO never makes xdl
  wait), hard-linked `.part` files refused — except the one
  a download leaves when it is killed between linking `.part` into place and unlinking
  it (the very inode of NAME, whose origin is recorded): that `.part` is removed once
  its lock is free, the finished file kept;
- the file put in place is the file of our descriptor (linked through /proc/self/fd), and
  only while `NAME.part` is still that file: one renamed away and replaced is refused;
- the origin of the file (`user.xdg.origin.url`, as `curl --xattr` and `wget --xattr`
  write it; a `.xdl-origins` file in the folder where the filesystem has no xattrs), so
  `skipped: "exists"` answers only for the same source;
- the size rule, the free space reserved across the jobs of one command, `no_space` on
  a full disk (the `.part` kept), and the checksum of the bytes written to the file.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import queue
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import errors
from ..files import (
    NOFOLLOW,
    SpaceBook,
    is_no_space,
    lstat_in,
    no_space,
    open_error,
    open_folder,
    open_plain,
    refuse_link,
    removed_before,
)
from ..names import distinct_name
from ..ratelimit import TokenBucket

#: progress(key, done_bytes, total_bytes_or_None)
ProgressFn = Callable[[str, int, "int | None"], None]

ORIGIN_XATTR = "user.xdg.origin.url"
ORIGINS_FILE = ".xdl-origins"
#: Free space kept beyond a download's announced size (`--min-free`), in bytes.
FREE_SPACE_MARGIN = 16 * 1024 * 1024
#: Downloads at least this big (or of unknown size) are written and hashed on a second
#: thread while the next chunk is read (hashlib and file writes release the GIL).
PIPELINE_FROM = 4 * 1024 * 1024
#: How many distinct names (`NAME (1).ext` ...) are tried before giving up.
MAX_DISTINCT = 1000
#: A download known to be at most this long writes no `.part.meta`: after an
#: interruption it starts again whole (a meta written and removed costs more than the
#: file itself: ~1.2 ms a file on ext4). Its `.part` says whose it is by an xattr.
SMALL_FILE = 256 * 1024

#: Link a file by its descriptor (`linkat` through /proc): the file we wrote, not what
#: is at its name by now.
_PROC_FD = os.path.isdir("/proc/self/fd")


def check_size(size: int | None, min_size: int | None, max_size: int | None) -> None:
    """The one --min-size / --max-size rule, for an announced or a written size."""
    if size is None:
        return
    if max_size is not None and size > max_size:
        raise errors.TooLarge(f"{size} bytes is more than --max-size {max_size}", bytes=size)
    if min_size is not None and size < min_size:
        raise errors.TooSmall(f"{size} bytes is less than --min-size {min_size}", bytes=size)


def check_no_links(folder: Path, stem: str) -> None:
    """BadInput when a symbolic link in `folder` starts with `stem`: where a downloader
    that opens its own files (yt-dlp) would write NAME, NAME.part, NAME.en.vtt..."""
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return
    for entry in entries:
        if entry.name.startswith(stem) and entry.is_symlink():
            raise refuse_link(folder / entry.name)


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


# -- origins ------------------------------------------------------------------------------


def read_origin(dirfd: int, name: str) -> str | None:
    """Where the file `name` came from: its xattr, else the folder's `.xdl-origins`."""
    try:
        fd = os.open(name, os.O_RDONLY | NOFOLLOW, dir_fd=dirfd)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return os.getxattr(fd, ORIGIN_XATTR).decode("utf-8", "replace")
    except OSError:
        pass
    finally:
        os.close(fd)
    return _origins_file(dirfd).get(name)


def _xattr_origin(fd: int) -> str | None:
    """The origin a small download's `.part` was marked with when claimed, if any."""
    try:
        return os.getxattr(fd, ORIGIN_XATTR).decode("utf-8", "replace")
    except OSError:
        return None


def record_origin(fd: int, dirfd: int, name: str, origin: str) -> None:
    """Record `origin` with the open file `fd` (to be called `name`); NoSpace when the
    disk is too full for it (a file whose origin is not recorded is taken for another
    source's by the next run)."""
    try:
        os.setxattr(fd, ORIGIN_XATTR, origin.encode("utf-8"))
        return
    except OSError as e:
        if is_no_space(e):
            raise no_space(name, e) from None
    line = json.dumps({"name": name, "url": origin}, ensure_ascii=False) + "\n"
    try:
        out = os.open(ORIGINS_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT | NOFOLLOW, 0o644,
                      dir_fd=dirfd)  # fmt: skip
    except OSError as e:
        if is_no_space(e):
            raise no_space(ORIGINS_FILE, e) from None
        return
    try:
        if not stat.S_ISREG(os.fstat(out).st_mode):
            return
        fcntl.flock(out, fcntl.LOCK_EX)
        os.write(out, line.encode("utf-8"))
    except OSError as e:
        if is_no_space(e):
            raise no_space(ORIGINS_FILE, e) from None
        raise
    finally:
        os.close(out)


def _origins_file(dirfd: int) -> dict[str, str]:
    try:
        fd = os.open(ORIGINS_FILE, os.O_RDONLY | NOFOLLOW, dir_fd=dirfd)
    except OSError:
        return {}
    found: dict[str, str] = {}
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return found
        for raw in f:
            try:
                rec = json.loads(raw)
                if isinstance(rec.get("name"), str) and isinstance(rec.get("url"), str):
                    found[rec["name"]] = rec["url"]
            except (ValueError, AttributeError, RecursionError):
                continue
    return found


# -- the owned target ---------------------------------------------------------------------


class Target:
    """One download's output file: `NAME.part` locked and written, then renamed to NAME.

    `claim()` either returns an owned Target (`.done` is None) or one whose `.done` is the
    existing file of the same source (then nothing is held). Use as a context manager:
    leaving it releases the lock and closes the files.
    """

    def __init__(self, folder: Path, dirfd: int, name: str, origin: str) -> None:
        self.folder = folder
        self.dirfd = dirfd
        self.name = name
        self.origin = origin
        self.done: Path | None = None
        self.fd: int | None = None
        self._identity: tuple[int, int] | None = None  # (st_dev, st_ino) of self.fd's file
        self._origin_marked = False  # the origin xattr is on our file already
        self._placed = False  # linked into place as NAME, `.part` unlinked by us
        self._claimed_size: int | None = None  # `.part`'s length, until we change it
        self.written = 0
        self.total: int | None = None
        self._wrote_meta = False
        self._meta_absent = False  # no `.part.meta` at all when we last looked
        self.small = False  # set by claim(): no meta unless one is there already
        self._hash = hashlib.sha256()
        self._release_space: Callable[[], None] = lambda: None
        self._stages: list[_Stage] = []
        # set by claim(): how the download is written
        self.stop: threading.Event | None = None
        self.limiter: TokenBucket | None = None
        self.progress: ProgressFn | None = None
        self.max_size: int | None = None
        self.margin = FREE_SPACE_MARGIN
        self.space = SpaceBook()  # set by claim(): the command's

    @property
    def final(self) -> Path:
        return self.folder / self.name

    @property
    def part_name(self) -> str:
        return self.name + ".part"

    @property
    def meta_name(self) -> str:
        return self.name + ".part.meta"

    # -- claiming --

    @classmethod
    def claim(
        cls,
        folder: Path,
        name: str,
        origin: str,
        *,
        overwrite: bool = False,
        stop: threading.Event | None = None,
        limiter: TokenBucket | None = None,
        progress: ProgressFn | None = None,
        max_size: int | None = None,
        margin: int = FREE_SPACE_MARGIN,
        space: SpaceBook | None = None,
        parts: tuple[str, ...] = (),
        also_ext: str | None = None,
        same_part: Callable[[dict[str, Any]], bool] | None = None,
        expected: int | None = None,
    ) -> Target:
        """Own `folder/parts.../name` (or a distinct name) for `origin`. `also_ext` is the
        extension the file will end with after processing (`--audio-format mp3`): a
        file of that name counts as this one. `same_part(meta)` says whether a `.part`
        left by another URL holds the same content (the HTTP tier compares strong ETags:
        a signed URL changes, its file does not). `expected`: the length the server
        announced (a small file is written without a meta)."""
        where = folder.joinpath(*parts)
        try:
            dirfd = open_folder(folder, parts)
        except FileNotFoundError:  # removed since the batch's check (a race with `rm -rf`)
            raise removed_before(where, name) from None
        try:
            for n in range(MAX_DISTINCT):
                candidate = name if n == 0 else distinct_name(name, n)
                target = cls(where, dirfd, candidate, origin)
                target.stop, target.limiter, target.progress = stop, limiter, progress
                target.max_size, target.margin = max_size, margin
                target.space = space or target.space
                target.small = expected is not None and expected <= SMALL_FILE
                if target._take(overwrite, also_ext, same_part):
                    return target
        except BaseException:
            os.close(dirfd)
            raise
        os.close(dirfd)
        raise errors.BadInput(f"{MAX_DISTINCT} files named like {name!r} are there already")

    def _take(
        self,
        overwrite: bool,
        also_ext: str | None = None,
        same_part: Callable[[dict[str, Any]], bool] | None = None,
    ) -> bool:
        """Lock this candidate's `.part` for our origin; False when it is another's."""
        while True:
            fd, st = self._open_part()
            if st.st_nlink > 1:
                # A second name of the finished NAME: its download is between the link
                # into place and the unlink of `.part`, or was killed there.
                finished = self._finished_origin(st)
                if finished is None:
                    now = os.fstat(fd)
                    if self._part_is(now) and now.st_nlink > 1:
                        os.close(fd)
                        raise errors.BadInput(
                            f"refusing to write into {self.folder / self.part_name}:"
                            " not a plain file"
                        )
                    os.close(fd)  # its owner unlinked it meanwhile (and NAME went on)
                    continue
                if finished != self.origin:  # NAME is another source's: a distinct name
                    if _try_lock(fd):
                        self._drop_finished_part(st)
                    os.close(fd)
                    return False
            if not self._lock(fd):
                os.close(fd)
                return False
            held = lstat_in(self.part_name, self.dirfd)
            if held is None or (held.st_dev, held.st_ino) != (st.st_dev, st.st_ino):
                os.close(fd)  # the holder before us renamed or removed it: look again
                continue
            st = held  # our file's stat as it is now (its links: a stat of the same inode)
            if st.st_nlink > 1:  # its owner is gone (we hold the lock): drop the 2nd name
                if self._finished_origin(st) is None:
                    os.close(fd)
                    raise errors.BadInput(
                        f"refusing to write into {self.folder / self.part_name}: not a plain file"
                    )
                self._drop_finished_part(st)
                os.close(fd)
                continue
            self.fd, self._identity = fd, (st.st_dev, st.st_ino)
            self._claimed_size = st.st_size
            break
        names = [self.name]
        if also_ext and not self.name.endswith("." + also_ext):
            names.append(os.path.splitext(self.name)[0] + "." + also_ext)
        for name in names:
            found = lstat_in(name, self.dirfd)
            if found is None:
                continue
            if stat.S_ISLNK(found.st_mode):
                self.close()
                raise refuse_link(self.folder / name)
            mine = stat.S_ISREG(found.st_mode) and read_origin(self.dirfd, name) == self.origin
            if not mine:
                self.close()
                return False
            if not overwrite:
                self.close()
                self.done = self.folder / name
                return True
        meta = self._read_meta()
        holder = meta.get("url") if isinstance(meta.get("url"), str) else None
        others = holder is not None and holder != self.origin
        if others and (same_part is None or not same_part(meta)):
            self.close()
            return False
        if self.small and self._meta_absent:  # said by an xattr, not a meta (SMALL_FILE)
            try:
                os.setxattr(self.fd, ORIGIN_XATTR, self.origin.encode("utf-8"))
                self._origin_marked = True
            except OSError:  # no xattrs here: a claim of another source waits for the lock
                pass
            return True
        # Say whose it is at once: a download of another source that finds it locked
        # moves on to a distinct name instead of waiting for this one to end.
        try:
            self.write_meta(meta)
        except BaseException:
            self.close()
            raise
        return True

    def _open_part(self) -> tuple[int, os.stat_result]:
        """Our `.part` and its stat, opened without following a link and created when
        missing (only a regular file; its links are the caller's to judge)."""
        try:
            fd = os.open(self.part_name, os.O_RDWR | os.O_CREAT | NOFOLLOW, 0o644,
                         dir_fd=self.dirfd)  # fmt: skip
        except OSError as e:
            raise open_error(e, self.folder / self.part_name) from None
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise errors.BadInput(
                f"refusing to write into {self.folder / self.part_name}: not a plain file"
            )
        return fd, st

    def _part_is(self, st: os.stat_result) -> bool:
        """Whether `.part` is (still) the file of stat `st`."""
        held = lstat_in(self.part_name, self.dirfd)
        return held is not None and (held.st_dev, held.st_ino) == (st.st_dev, st.st_ino)

    def _finished_origin(self, part: os.stat_result) -> str | None:
        """The origin of NAME when `.part` (stat `part`) is a second name of it, a file a
        download of ours finished (its origin recorded); else None (a link planted to a
        file elsewhere, or to one of the user's own)."""
        final = lstat_in(self.name, self.dirfd)
        if final is None or not stat.S_ISREG(final.st_mode):
            return None
        if (final.st_dev, final.st_ino) != (part.st_dev, part.st_ino):
            return None
        return read_origin(self.dirfd, self.name)

    def _drop_finished_part(self, part: os.stat_result) -> None:
        """Remove a `.part` left as a second name of the finished NAME (and its meta), its
        owner gone (the caller holds its lock). The finished file is kept."""
        if self._part_is(part):
            self._unlink(self.meta_name)
            self._unlink(self.part_name)

    def _lock(self, fd: int) -> bool:
        """Wait for the lock on `fd` while its holder is downloading the same source (or
        has not said yet which); False at once when it holds it for another source."""
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                pass
            holder = self._meta_origin() or _xattr_origin(fd)
            if holder is not None and holder != self.origin:
                return False
            if self.stop is not None and self.stop.wait(0.1):
                raise errors.Interrupted("interrupted while another download held the file")
            if self.stop is None:
                time.sleep(0.1)

    def _meta_origin(self) -> str | None:
        meta = self._read_meta()
        url = meta.get("url")
        return url if isinstance(url, str) else None

    def _read_meta(self) -> dict[str, Any]:
        self._meta_absent = False
        try:
            fd = os.open(self.meta_name, os.O_RDONLY | NOFOLLOW, dir_fd=self.dirfd)
        except FileNotFoundError:
            self._meta_absent = True
            return {}
        except OSError:
            return {}
        try:
            with os.fdopen(fd, "rb") as f:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    return {}
                meta = json.loads(f.read(1 << 16))
        except (OSError, ValueError, RecursionError):
            return {}
        return meta if isinstance(meta, dict) else {}

    # -- writing --

    def saved(self) -> tuple[int, dict[str, Any]]:
        """(bytes already in our `.part`, its saved validators) — (0, {}) when none."""
        size = self._size()
        return size, (self._read_meta() if size else {})

    def _size(self) -> int:
        """`.part`'s length: as the claim saw it while nothing was written since."""
        assert self.fd is not None
        if self._claimed_size is not None:
            return self._claimed_size
        return os.fstat(self.fd).st_size

    def write_meta(self, meta: dict[str, Any]) -> None:
        data = json.dumps({**meta, "url": self.origin}).encode("utf-8")
        fd = open_plain(self.meta_name, self.dirfd, os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                        self.folder)  # fmt: skip
        self._wrote_meta = True
        try:
            os.write(fd, data)
        except OSError as e:
            raise (no_space(self.folder / self.meta_name, e) if is_no_space(e) else e) from None
        finally:
            os.close(fd)

    def begin(self, offset: int, total: int | None, meta: dict[str, Any]) -> None:
        """Start writing at `offset` (what is past it is cut); size and free space checked
        first."""
        assert self.fd is not None
        self.check_stop()
        check_size(total, None, self.max_size)
        self._release_space()
        if total is not None:
            device = self._identity[0] if self._identity else None
            self._release_space = self.space.reserve(
                self.folder, total - offset, self.margin, device
            )
        self.total = total
        self._hash = hashlib.sha256()
        self.written = 0
        if offset:
            os.lseek(self.fd, 0, os.SEEK_SET)
            while self.written < offset and (block := os.read(self.fd, 1 << 20)):
                self._hash.update(block)
                self.written += len(block)
            if self.written != offset:
                raise errors.DownloadFailed("the .part changed while resuming")
        if self._size() > offset:
            # Only when there is something to cut: on ext4 a truncate to 0 makes the last
            # close write the whole file out first (auto_da_alloc), 0.3 s a GiB.
            os.ftruncate(self.fd, offset)
        if offset or self._claimed_size is None:  # a new descriptor is at 0 already
            os.lseek(self.fd, offset, os.SEEK_SET)
        self._claimed_size = None  # written from here on
        if self._wrote_meta or not (self.small and offset == 0 and total is not None
                                    and total <= SMALL_FILE):  # fmt: skip
            self.write_meta(meta)
        if total is None or total - offset >= PIPELINE_FROM:
            self._stages = [
                _Stage(self._write_all, "xdl-write"),
                _Stage(self._hash.update, "xdl-hash"),
            ]
        if self.progress:
            self.progress(self.name, self.written, total)

    # -- writing at offsets (several connections) --

    def preallocate(self, total: int, meta: dict[str, Any]) -> None:
        """Make `.part` `total` bytes long (sparse) for writes at offsets; size and free
        space checked first."""
        self._claimed_size = None
        assert self.fd is not None
        self.check_stop()
        check_size(total, None, self.max_size)
        self._release_space()
        allocated = os.fstat(self.fd).st_blocks * 512
        needed = max(0, total - allocated)
        self._release_space = self.space.reserve(self.folder, needed, self.margin)
        self.total = total
        os.ftruncate(self.fd, total)
        self.write_meta(meta)

    def write_at(self, data: bytes | bytearray | memoryview, pos: int) -> None:
        """Write `data` at `pos` (safe from several threads: no shared file position)."""
        self._claimed_size = None
        assert self.fd is not None
        view = memoryview(data)
        try:
            while view:
                n = os.pwrite(self.fd, view, pos)
                view, pos = view[n:], pos + n
        except OSError as e:
            raise self._write_error(e) from None

    def hash_from_disk(self, h: Any, start: int, end: int) -> None:
        """Add bytes `start`..`end` of `.part`, as they are on disk, to the hash `h`."""
        assert self.fd is not None
        while start < end and (block := os.pread(self.fd, min(4 << 20, end - start), start)):
            h.update(block)
            start += len(block)

    def adopt_hash(self, h: Any, length: int) -> None:
        """The checksum of `.part`'s `length` bytes, taken from disk by the caller (writes
        at offsets cannot be hashed as they come)."""
        self._hash, self.written = h, length

    def restart(self) -> None:
        """Throw away what `.part` holds (the server's file is not the one it began)."""
        self._claimed_size = None
        assert self.fd is not None
        self.finish_writing()
        os.ftruncate(self.fd, 0)
        self._unlink(self.meta_name)

    def _write_all(self, data: bytes | bytearray) -> None:
        assert self.fd is not None
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view) :]

    def write(self, data: bytes | bytearray) -> None:
        self.check_stop()
        if self._stages:
            if any(stage.failure is not None for stage in self._stages):
                self.finish_writing()
            for stage in self._stages:
                stage.put(data)
        else:
            try:
                self._write_all(data)
            except OSError as e:
                raise self._write_error(e) from None
            self._hash.update(data)
        self.written += len(data)
        try:
            check_size(self.written, None, self.max_size)
        except errors.TooLarge:
            self.discard()
            raise
        if self.limiter is not None:
            self.limiter.consume(len(data), self.stop)
        if self.progress:
            self.progress(self.name, self.written, self.total)

    def _write_error(self, e: OSError) -> errors.XdlError:
        if is_no_space(e):
            return no_space(self.folder / self.part_name, e)
        return errors.DownloadFailed(f"cannot write {self.folder / self.part_name}: {e}")

    def check_stop(self) -> None:
        if self.stop is not None and self.stop.is_set():
            raise errors.Interrupted("interrupted; the .part file is kept for resuming")

    def finish_writing(self) -> None:
        """Wait for the writer and hasher threads; raise what they met."""
        stages, self._stages = self._stages, []
        failure = next((f for stage in stages if (f := stage.finish()) is not None), None)
        if isinstance(failure, OSError):
            raise self._write_error(failure) from failure
        if failure is not None:
            raise failure

    def commit(
        self, sha256: str | None = None, min_size: int | None = None, *, overwrite: bool = False
    ) -> tuple[int, str]:
        """Check length, size and checksum of what is in `.part`, then rename it to NAME
        (never over a file that appeared meanwhile unless `overwrite`)."""
        assert self.fd is not None
        self.finish_writing()
        if self.total is not None and self.written != self.total:
            raise errors.NetworkError(
                f"got {self.written} of {self.total} bytes", bytes=self.written
            )
        on_disk = os.fstat(self.fd).st_size
        if on_disk != self.written:
            raise errors.DownloadFailed(
                f"{self.part_name} holds {on_disk} bytes, {self.written} were written"
            )
        digest = self._hash.hexdigest()
        try:
            check_size(self.written, min_size, None)
        except errors.TooSmall:
            self.discard()
            raise
        if sha256 and digest != sha256.lower():
            self.discard()
            raise errors.ChecksumMismatch(
                f"sha256 is {digest}, expected {sha256.lower()}; file removed", sha256=digest
            )
        if not self._origin_marked:
            record_origin(self.fd, self.dirfd, self.name, self.origin)
        self._rename(overwrite)
        self._release_space()
        return self.written, digest

    def _rename(self, overwrite: bool) -> None:
        """Put the file we wrote in place as NAME: the file of our descriptor, whatever
        is at `NAME.part` by now (a `.part` renamed away and replaced, by a link or
        another file, is refused and nothing is put in place)."""
        found = lstat_in(self.part_name, self.dirfd)
        if found is None:
            raise self._removed()
        if not self._is_ours(found):
            raise errors.BadInput(
                f"{self.folder / self.part_name} was replaced while downloading;"
                " nothing was put in place"
            )
        if overwrite:  # one rename (a kill leaves no temporary name), checked after
            self._rename_final(replace=True)
            self._placed = True
            return
        try:
            self._link_final(self.name)
        except FileExistsError:
            raise errors.BadInput(f"{self.final} appeared while downloading; kept it") from None
        except FileNotFoundError:  # removed since the look above (a file of no name left)
            raise self._removed() from None
        except OSError:  # no hard links here (FAT, some network filesystems)
            if lstat_in(self.name, self.dirfd) is not None:
                raise errors.BadInput(f"{self.final} appeared while downloading") from None
            self._rename_final()
            self._placed = True
            return
        # The meta first, while `.part` is still ours: once it is gone, another claim may
        # make a new `.part` (and meta) of this name. A kill from here on leaves `.part` a
        # second name of NAME: the next claim removes it.
        self._drop_meta()
        if self._is_ours(lstat_in(self.part_name, self.dirfd)):
            self._unlink(self.part_name)
            self._placed = True

    def _removed(self) -> errors.OutputRemoved:
        """Our `.part` is gone from its folder: the folder was removed, or the file."""
        assert self.dirfd >= 0
        if os.fstat(self.dirfd).st_nlink == 0:
            gone = f"the output directory {self.folder} was removed while downloading {self.name}"
        else:
            gone = f"{self.folder / self.part_name} was removed while downloading"
        return errors.OutputRemoved(f"{gone}; nothing was put in place")

    def _drop_meta(self) -> None:
        if self._wrote_meta or not (self.small and self._meta_absent):
            self._unlink(self.meta_name)
        self._wrote_meta = False

    def identity(self) -> tuple[int, int] | None:
        """(st_dev, st_ino) of the file we wrote (None once closed)."""
        return self._identity if self.fd is not None else None

    def _is_ours(self, found: os.stat_result | None) -> bool:
        """Whether `found` (an lstat) is the very file of our descriptor."""
        assert self.fd is not None
        return found is not None and (found.st_dev, found.st_ino) == self._identity

    def _link_final(self, name: str) -> None:
        """Link the file of our descriptor as `name` (FileExistsError when taken)."""
        assert self.fd is not None
        if _PROC_FD:
            os.link(f"/proc/self/fd/{self.fd}", name, dst_dir_fd=self.dirfd,
                    follow_symlinks=True)  # fmt: skip
        else:
            os.link(self.part_name, name, src_dir_fd=self.dirfd, dst_dir_fd=self.dirfd,
                    follow_symlinks=False)  # fmt: skip
            if not self._is_ours(lstat_in(name, self.dirfd)):  # swapped since we looked
                self._unlink(name)
                raise errors.BadInput(f"{self.folder / self.part_name} was replaced meanwhile")

    def _rename_final(self, replace: bool = False) -> None:
        """Rename `.part` to NAME (where there are no hard links), then check that what
        arrived is our file; a file swapped in meanwhile is taken back out."""
        kw = {"src_dir_fd": self.dirfd, "dst_dir_fd": self.dirfd}
        self._drop_meta()  # while `.part` is ours (see _rename)
        try:
            (os.replace if replace else os.rename)(self.part_name, self.name, **kw)
        except FileNotFoundError:  # removed since the look before
            raise self._removed() from None
        found = lstat_in(self.name, self.dirfd)
        if self._is_ours(found):
            return
        if found is not None and read_origin(self.dirfd, self.name) == self.origin:
            # Ours was put in place, and another download of the same source (another
            # `--overwrite` run) put its own there since: it stands (taking it out left
            # that download's line pointing at nothing, then at another source's file).
            return
        self._unlink(self.name)
        raise errors.BadInput(f"{self.folder / self.part_name} was replaced meanwhile")

    def _unlink(self, name: str) -> None:
        try:
            os.unlink(name, dir_fd=self.dirfd)
        except FileNotFoundError:
            pass

    def discard(self) -> None:
        """Remove our `.part` and its meta (it is ours: we hold its lock)."""
        try:
            self.finish_writing()
        except errors.XdlError:
            pass
        if self.fd is not None and self._is_ours(lstat_in(self.part_name, self.dirfd)):
            self._unlink(self.meta_name)  # the meta first: the `.part` is ours till it goes
            self._unlink(self.part_name)
            self._wrote_meta = False
        self._release_space()

    def close(self) -> None:
        """Release the lock and the files; an empty `.part` is removed."""
        try:
            self.finish_writing()
        except errors.XdlError:
            pass
        self._release_space()
        if self.fd is not None and self._placed:  # `.part` is NAME now: nothing left
            os.close(self.fd)
            self.fd = None
        if self.fd is not None:
            held = lstat_in(self.part_name, self.dirfd)
            if self._is_ours(held) and held is not None and held.st_size == 0:
                # Nothing to resume (ours to remove: we hold its lock; whoever waits for
                # it looks again). The meta first (see _rename); one we did not write was
                # left by a run killed before it removed it (a link is not removed).
                meta = lstat_in(self.meta_name, self.dirfd)
                if self._wrote_meta or (meta is not None and stat.S_ISREG(meta.st_mode)):
                    self._unlink(self.meta_name)
                self._unlink(self.part_name)
            elif held is None and self._wrote_meta:  # renamed away by its downloader (yt-dlp)
                self._unlink(self.meta_name)
            os.close(self.fd)
            self.fd = None

    def release_folder(self) -> None:
        self.close()
        if self.dirfd >= 0:
            os.close(self.dirfd)
            self.dirfd = -1

    def __enter__(self) -> Target:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release_folder()


class _Stage:
    """One thread doing one thing to every chunk, in order (writing, or hashing): the two
    run side by side, as hashlib and file writes let go of the GIL."""

    def __init__(self, work: Callable[[bytes | bytearray], object], name: str) -> None:
        self.work = work
        self.failure: BaseException | None = None
        self.queue: queue.Queue[bytes | bytearray | None] = queue.Queue(maxsize=4)
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (data := self.queue.get()) is not None:
            if self.failure is None:
                try:
                    self.work(data)
                except BaseException as e:
                    self.failure = e

    def put(self, data: bytes | bytearray) -> None:
        self.queue.put(data)

    def finish(self) -> BaseException | None:
        self.queue.put(None)
        self.thread.join()
        return self.failure


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()
