"""The download archive (`--archive FILE`): what was downloaded, so cron runs skip it.

yt-dlp's format, one entry a line: `extractor id` for media, plus `url <URL>` for plain
HTTP downloads. Appends happen under a file lock, one whole line per write, so several
`xdl` processes can share one archive. The file is read once, and again only when
another process has changed it.

Where each entry's file was saved goes to a sidecar, `FILE.paths` (JSON lines, the last
line for a key wins), so the archive itself stays yt-dlp's and a line skipped because
of the archive can still say where the file is (when it is still there).

Both are read and written only as regular files (a FIFO planted there is refused, not
waited on); the sidecar, xdl's own, never through a link. A line is written whole or not
at all: a write cut short by a full disk is taken back, and a line left unfinished by
someone else is ended before ours, so two entries never run together.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import OutputNotWritable

if TYPE_CHECKING:
    from .context import Context


def media_key(extractor: str, video_id: str) -> str:
    return f"{extractor.lower()} {video_id}"


def url_key(url: str) -> str:
    return f"url {url}"


class Archive:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser()
        self._entries: set[str] = set()
        self._seen: tuple[int, int] | None = None
        self._lock = threading.Lock()
        self.paths_file = self.path.with_name(self.path.name + ".paths")

    def path_of(self, key: str) -> Path | None:
        """Where `key`'s file was saved, if recorded and the file is still there."""
        found: str | None = None
        try:
            with _open_plain(self.paths_file, os.O_RDONLY | os.O_NOFOLLOW) as f:
                for line in f:
                    try:
                        record = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(record, dict) and record.get("key") == key:
                        found = record.get("path")
        except OSError:
            return None
        return Path(found) if isinstance(found, str) and os.path.isfile(found) else None

    def _stat(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return (st.st_size, st.st_mtime_ns)

    def _refresh(self) -> None:
        stat = self._stat()
        if stat == self._seen:
            return
        entries: set[str] = set()
        if stat is not None:
            try:
                with _open_plain(self.path, os.O_RDONLY) as f:
                    entries = {line.strip() for line in f if line.strip()}
            except OSError as e:
                raise OutputNotWritable(f"cannot read the archive {self.path}: {e}") from e
        self._entries, self._seen = entries, stat

    def __contains__(self, key: object) -> bool:
        with self._lock:
            self._refresh()
            return key in self._entries

    def add(self, key: str, path: str | os.PathLike[str] | None = None) -> None:
        """Append `key` (once) under the file lock, and where its file is (`path`)."""
        from filelock import FileLock, Timeout

        with self._lock:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with FileLock(str(self.path) + ".lock", timeout=30):
                    self._refresh()
                    if path is not None:
                        record = json.dumps({"key": key, "path": os.fspath(path)})
                        _append(self.paths_file, record, os.O_NOFOLLOW)
                    if key in self._entries:
                        return
                    _append(self.path, key)
                    self._entries.add(key)
                    self._seen = self._stat()
            except (OSError, Timeout) as e:
                raise OutputNotWritable(f"cannot write the archive {self.path}: {e}") from e


def _open_plain(path: Path, flags: int) -> Any:
    """A regular file opened for reading text (FileNotFoundError when missing)."""
    fd = os.open(path, flags | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        os.set_blocking(fd, True)
        return os.fdopen(fd, encoding="utf-8", errors="replace")
    except BaseException:
        os.close(fd)
        raise


def _append(path: Path, line: str, flags: int = 0) -> None:
    """`line` appended whole in one write (O_APPEND), or not at all (under the lock)."""
    flags |= os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK | os.O_CLOEXEC
    fd = os.open(path, flags, 0o644)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        data = (line + "\n").encode()
        if st.st_size and os.pread(fd, 1, st.st_size - 1) != b"\n":
            data = b"\n" + data  # a line left unfinished: ours is not joined to it
        if os.write(fd, data) != len(data):  # the disk filled up mid-line
            os.ftruncate(fd, st.st_size)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
    finally:
        os.close(fd)


def open_archive(path: str, ctx: Context) -> Archive:
    """The one Archive object of the file in this command's context, shared by all jobs."""
    key = os.path.abspath(os.path.expanduser(path))
    return ctx.once(("archive", key), lambda: Archive(key))
