"""One bandwidth budget shared by every job and every downloader, and per-host pauses."""

from __future__ import annotations

import threading
import time
from urllib.parse import urlsplit


class TokenBucket:
    """A token bucket of `rate` bytes per second, safe to share between threads.

    `consume(n)` takes n bytes from the bucket and sleeps off any debt, so the total of
    all callers stays at `rate` however many threads draw on it. It starts empty: the
    first second is not a free burst.
    """

    def __init__(self, rate: float, burst: float | None = None) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = float(rate)
        self.burst = float(burst if burst is not None else rate / 16)
        self._tokens = 0.0
        self._last = time.monotonic()
        self._lock = threading.Lock()

    def consume(self, n: int, stop: threading.Event | None = None) -> None:
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= n
            debt = -self._tokens
        if debt > 0:
            wait = debt / self.rate
            if stop is not None:
                stop.wait(wait)
            else:
                time.sleep(wait)

    def chunk_size(self, preferred: int) -> int:
        """A read size that keeps the flow smooth at this rate (about 1/8 s of data)."""
        return max(16 * 1024, min(preferred, int(self.rate / 8)))


class HostPacer:
    """Keeps at least `interval` seconds between request starts to the same host."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._next: dict[str, float] = {}
        self._lock = threading.Lock()

    def wait(self, url: str, stop: threading.Event | None = None) -> None:
        if self.interval <= 0:
            return
        host = (urlsplit(url).hostname or "").lower()
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next.get(host, now))
            self._next[host] = start + self.interval
        if start > now:
            if stop is not None:
                stop.wait(start - now)
            else:
                time.sleep(start - now)
