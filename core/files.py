"""Files that xdl writes whole (subtitles, Markdown) and the rules every file it writes
follows (SPEC §5): opened relative to a folder's descriptor without following links,
never into a FIFO or a file with other hard links, written under a temporary name and
linked into place. The downloads' owned target (`fetch.target`) builds on these.
"""

from __future__ import annotations

import errno
import io
import math
import os
import shutil
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from . import errors

#: Opening a name in the folder: never through a link, never waiting on a FIFO planted
#: there (O_NONBLOCK changes nothing for a regular file; a FIFO is then refused).
NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


def is_no_space(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def no_space(where: object, exc: BaseException | None = None) -> errors.NoSpace:
    why = f": {exc.strerror}" if isinstance(exc, OSError) and exc.strerror else ""
    return errors.NoSpace(f"the disk is full while writing {where}{why}; the .part is kept")


def refuse_link(where: object) -> errors.BadInput:
    return errors.BadInput(f"refusing to write through a symbolic link: {where}")


def open_folder(root: Path, parts: tuple[str, ...] = (), create: bool = True) -> int:
    """A descriptor of `root/parts...`, each folder below `root` opened without following
    links (and created when missing). `root` itself is the user's `-o`: it may be a link."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    where = root
    try:
        for part in parts:
            if part in ("", ".", ".."):
                raise errors.BadInput(f"not a folder name inside --output-dir: {part!r}")
            where = where / part
            if create:
                try:
                    os.mkdir(part, 0o777, dir_fd=fd)
                except FileExistsError:
                    pass
            try:
                child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | NOFOLLOW, dir_fd=fd)
            except OSError as e:
                if e.errno == errno.ELOOP:
                    raise refuse_link(where) from None
                if e.errno == errno.ENOTDIR:
                    if stat.S_ISLNK(os.stat(part, dir_fd=fd, follow_symlinks=False).st_mode):
                        raise refuse_link(where) from None
                    raise errors.BadInput(f"not a folder: {where}") from None
                raise
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def lstat_in(name: str, dirfd: int) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dirfd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def removed_before(folder: Path, name: str) -> errors.OutputRemoved:
    """The output folder went away before `name` was made in it (`rm -rf OUT`)."""
    return errors.OutputRemoved(
        f"the output directory {folder} was removed before {name} could be written"
    )


def open_error(e: OSError, path: Path) -> errors.XdlError:
    """Why a file could not be made (every caller creates): a plain name in a folder we
    hold open is missing only when the folder itself was removed."""
    if e.errno == errno.ENOENT:
        return removed_before(path.parent, path.name)
    if e.errno == errno.ELOOP:
        return refuse_link(path)
    if e.errno in (errno.ENXIO, errno.EISDIR):  # a FIFO (no reader), a socket, a folder
        return errors.BadInput(f"refusing to write into {path}: not a plain file")
    if is_no_space(e):
        return no_space(path, e)
    return errors.OutputNotWritable(f"cannot open {path}: {e.strerror}")


def open_plain(name: str, dirfd: int, flags: int, where: Path) -> int:
    """Open `name` in the folder without following a link; only regular files, never one
    with other hard links (its other name may be anywhere)."""
    try:  # cut (O_TRUNC) only once it is known to be ours to cut
        fd = os.open(name, (flags & ~os.O_TRUNC) | NOFOLLOW, 0o644, dir_fd=dirfd)
    except OSError as e:
        raise open_error(e, where / name) from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_nlink > 1:
        os.close(fd)
        raise errors.BadInput(f"refusing to write into {where / name}: not a plain file")
    if flags & os.O_TRUNC and st.st_size:
        os.ftruncate(fd, 0)
    return fd


def temp_name(name: str, tag: str) -> str:
    """A temporary name beside `name` that no download is given (a sanitised name never
    starts with a dot), unique to this process and thread, under 255 bytes."""
    short = name.encode("utf-8")[:150].decode("utf-8", "ignore")
    return f".{short}.{os.getpid()}.{threading.get_ident()}.{tag}"


def write_new(
    dest: Path, content: str | bytes | IO[bytes], overwrite: bool, root: Path | None = None
) -> bool:
    """Write a file (subtitles, Markdown) whole, from memory or a binary stream: to a new
    temporary file beside it, then linked into place. False (nothing written) when `dest`
    exists and `overwrite` is off; a link at `dest`, or in its folders below `root`, is
    refused."""
    folder = root if root is not None else dest.parent
    parts = dest.parent.relative_to(root).parts if root is not None else ()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        dirfd = open_folder(folder, parts)
    except OSError as e:
        raise errors.OutputNotWritable(f"cannot write in {folder}: {e.strerror or e}") from None
    if isinstance(content, str):
        content = content.encode("utf-8")
    stream = io.BytesIO(content) if isinstance(content, bytes) else content
    name = dest.name
    tmp = temp_name(name, "tmp")
    kw = {"src_dir_fd": dirfd, "dst_dir_fd": dirfd}
    try:
        found = lstat_in(name, dirfd)
        if found is not None and stat.S_ISLNK(found.st_mode):
            raise refuse_link(dest)
        if found is not None and not overwrite:
            return False
        fd = open_plain(tmp, dirfd, os.O_WRONLY | os.O_CREAT | os.O_EXCL, dest.parent)
        try:
            while view := memoryview(stream.read(1 << 20)):
                while view:
                    view = view[os.write(fd, view) :]
        except OSError as e:
            raise (no_space(dest, e) if is_no_space(e) else e) from None
        finally:
            os.close(fd)
        if overwrite:
            os.replace(tmp, name, **kw)
            return True
        try:
            os.link(tmp, name, follow_symlinks=False, **kw)
        except FileExistsError:
            return False
        except OSError:  # no hard links on this filesystem
            if lstat_in(name, dirfd) is not None:
                return False
            os.rename(tmp, name, **kw)
        return True
    finally:
        try:
            os.unlink(tmp, dir_fd=dirfd)
        except FileNotFoundError:
            pass
        os.close(dirfd)


class SpaceBook:
    """Free space promised to the downloads of one command, per filesystem (its
    `Context` holds it): `-j N` downloads check the disk together, not each alone.

    The disk's free space is read afresh for each promise, but within `FRESH` seconds
    of the last reading: the estimate is that reading less every byte promised and not
    yet given back when it was taken (what those downloads have still to write, as the
    disk does not show it yet) and every byte promised since. A batch of small files
    asks the filesystem once a second, not once a file; a promise that the estimate
    cannot keep reads the disk again before it says `no_space`."""

    #: How long a reading of the free space stands in for a new one (seconds).
    FRESH = 1.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[int, int] = {}
        self._seen: dict[int, tuple[float, int]] = {}  # device -> (when, estimate)

    def reserve(
        self, directory: Path, needed: int, margin: int, device: int | None = None
    ) -> Callable[[], None]:
        """Promise `needed` bytes in `directory` (on `device`, when the caller knows it;
        NoSpace when they are not there); returns the function that gives them back."""
        try:
            if device is None:
                device = os.stat(directory).st_dev
            if not self._promise(device, needed, margin):
                free = shutil.disk_usage(directory).free
                self._promise(device, needed, margin, free, directory)
        except OSError:
            return lambda: None
        released = threading.Event()

        def release() -> None:
            if not released.is_set():
                released.set()
                with self._lock:
                    self._held[device] = max(0, self._held.get(device, 0) - needed)

        return release

    def _promise(
        self, device: int, needed: int, margin: int, free: int | None = None,
        where: Path | None = None,
    ) -> bool:  # fmt: skip
        """Hold `needed` bytes against `free` (a new reading), or against the last
        reading while it is fresh (False when there is none, or it is short)."""
        now = time.monotonic()
        with self._lock:
            held = self._held.get(device, 0)
            if free is None:
                when, left = self._seen.get(device, (-math.inf, 0))
                if now - when > self.FRESH or needed + margin > left:
                    return False
            else:
                when, left = now, free - held
                self._seen[device] = (when, left)
                if needed + margin > left:
                    raise errors.NoSpace(
                        f"needs {needed} bytes but only {free - held} are free in {where}"
                        f" (keeping --min-free {margin})",
                        needed=needed,
                        free=max(0, free - held),
                    )
            self._seen[device] = (when, left - needed)
            self._held[device] = held + needed
            return True


# -- folders and links --------------------------------------------------------------------
