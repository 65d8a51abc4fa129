"""The download archive (`--archive FILE`): what was downloaded, so cron runs skip it.

yt-dlp's format, one entry a line: `extractor id` for media, plus `url <URL>` for plain
HTTP downloads. Appends happen under a file lock, one whole line per write, so several
`xdl` processes can share one archive. The file is read once, and again only when
another process has changed it.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from .errors import OutputNotWritable


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
            with open(self.path, encoding="utf-8", errors="replace") as f:
                entries = {line.strip() for line in f if line.strip()}
        self._entries, self._seen = entries, stat

    def __contains__(self, key: object) -> bool:
        with self._lock:
            self._refresh()
            return key in self._entries

    def add(self, key: str) -> None:
        """Append `key` (once) under the file lock."""
        from filelock import FileLock, Timeout

        with self._lock:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with FileLock(str(self.path) + ".lock", timeout=30):
                    self._refresh()
                    if key in self._entries:
                        return
                    fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                    try:
                        os.write(fd, (key + "\n").encode())
                    finally:
                        os.close(fd)
                    self._entries.add(key)
                    self._seen = self._stat()
            except (OSError, Timeout) as e:
                raise OutputNotWritable(f"cannot write the archive {self.path}: {e}") from e


_archives: dict[str, Archive] = {}
_archives_lock = threading.Lock()


def open_archive(path: str) -> Archive:
    """One Archive object per file per process, shared by all jobs."""
    key = os.path.abspath(os.path.expanduser(path))
    with _archives_lock:
        if key not in _archives:
            _archives[key] = Archive(key)
        return _archives[key]
