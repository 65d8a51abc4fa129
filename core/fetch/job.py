"""One input on its way through the downloaders: what every downloader is handed.

A `Job` is the request, frozen (URL, options, the input's fields, the command's
`Context` and stop), whose requests all go through its host's budget (`get`, `probe`),
and `found` (a `Probe`): what the site answered so far, the one part that changes (the
first response's head, its GET kept open for the HTTP tier to go on reading, refusals).
It imports no downloader: the engine (`engine.py`) runs the chain, the downloaders
(`strategies/`) take a Job.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import errors, feeds, stopping
from ..archive import open_archive
from ..hosts import HostRule, host_of, paused_error
from ..ratelimit import TokenBucket
from . import manifest
from .options import FetchOptions, Progress
from .result import FetchResult, since

if TYPE_CHECKING:
    from .. import http
    from ..archive import Archive
    from ..context import Context
    from ..hosts import Budget

log = logging.getLogger("xdl.fetch")

#: A refused input is tried again (after the host's pause) this many times at most.
MAX_REFUSALS = 8


def http_module() -> Any:
    """core.http, imported on first use (requests is slow to import; `--help` is not)."""
    from .. import http as module

    return module


@dataclass(frozen=True, eq=False)
class Job:
    """One input through the strategy chain: the request every strategy is handed,
    frozen, and `found`, what the site answered it so far (its only changing part)."""

    url: str
    o: FetchOptions
    ctx: Context
    stop: threading.Event
    limiter: TokenBucket | None = None
    progress: Progress | None = None
    started: float = 0.0
    #: A pause longer than this (seconds) ends the input as `rate_limited` at once
    #: (the queue defers the task to the pause's end instead of holding a worker).
    max_wait: float = math.inf
    fields: Mapping[str, Any] = field(default_factory=dict)  # the input's JSON fields
    found: Probe = field(default_factory=lambda: Probe())

    @property
    def budget(self) -> Budget:
        return self.ctx.budget

    @functools.cached_property
    def rule(self) -> HostRule:
        return HostRule(self.o.per_host, self.o.sleep)

    @functools.cached_property
    def archive(self) -> Archive | None:
        return open_archive(self.o.archive, self.ctx) if self.o.archive else None

    @functools.cached_property
    def out(self) -> Path:
        """The output folder, absolute, its links resolved (once a command: resolving
        looks at each folder on the way, four calls a file)."""
        given = self.o.output_dir
        return self.ctx.once(("out", given), lambda: Path(given).expanduser().resolve())

    def drop_response(self) -> None:
        self.found.drop()

    def probe(self) -> http.Head:
        """What the URL's server says about it (one streaming GET, kept for reuse)."""
        found = self.found
        if found.head is not None:
            return found.head
        # everything slow first (the import of requests, a file read): the request goes
        # out when its budget says, not a first import later
        web, conditional = http_module(), self.conditional()
        started = self.budget.before_request(self.url, self.rule, self.stop, self.max_wait)
        head: http.Head
        head, resp = web.probe(self.url, self.o.net, conditional, self.ctx, self.stop)
        found.adopt(head, resp, self.stop, probed=found.probed)
        self.budget.served(self.url, started)
        return head

    def get(self, headers: Mapping[str, str] | None = None) -> Any:
        """A streaming GET of the input's URL within its host's budget (paced, and
        waiting out the host's pause): what every downloader's own request goes through."""
        http = http_module()
        started = self.budget.before_request(self.url, self.rule, self.stop, self.max_wait)
        resp = http.get(self.url, self.o.net, headers, self.ctx, self.stop)
        self.budget.served(self.url, started)
        return resp

    def refused(self, e: errors.XdlError) -> None:
        """The site refused a request: pause its host for everyone; RateLimited when this
        input was refused too often, or the pause is longer than this run waits."""
        self.found.refusals += 1
        retry_after = e.retry_after if isinstance(e, errors.HttpError) else None
        status = e.details.get("status")
        until = self.budget.refused(self.url, status if isinstance(status, int) else 429,
                                    retry_after)  # fmt: skip
        host = host_of(self.url)
        banned = status == 403  # asking again is what gets a client banned for longer
        if banned or self.found.refusals > MAX_REFUSALS or until - time.time() > self.max_wait:
            raise paused_error(host, until, e.message) from None

    def conditional(self) -> dict[str, str]:
        """If-None-Match / If-Modified-Since of a feed polled before into this archive."""
        if self.found.conditional is None:
            self.found.conditional = feeds.conditional_headers(self.url, self.o.archive)
        return self.found.conditional

    def probe_once(self) -> http.Head:
        """`probe`, but a probe that failed already (the feed check's) is not sent again."""
        if self.found.error is not None:
            raise self.found.error
        return self.probe()

    def manifest(self) -> str | None:
        """The stream manifest this URL serves (`HLS playlist`, `DASH manifest`...), else
        None: told by its content type, or by its first bytes when the type leaves it open
        (text-like bodies, or a URL named like one): those of the probe's own GET."""
        if self.found.manifest is None:
            try:
                head = self.probe()
            except errors.XdlError:
                return None  # nothing to judge by; the download itself says what is wrong
            kind = manifest.by_type(head.content_type)
            if kind is None and manifest.worth_sniffing(head.content_type, head.length, head.url):
                kind = manifest.by_content(self.first_bytes())
            self.found.manifest = kind or ""
        return self.found.manifest or None

    def first_bytes(self) -> bytes:
        """The body's first bytes: read from the probe's open GET when there is one (and
        handed back to whoever reads it next: no second request), else a ranged GET."""
        resp = self.found.response
        try:
            if resp is not None and not resp.headers.get("Content-Encoding"):
                first = bytes(resp.raw.read(manifest.SNIFF_BYTES) or b"")
                resp.raw = _Replayed(first, resp.raw)
                return first
            http = http_module()
            resp = http.get(
                self.url, self.o.net, {"Range": f"bytes=0-{manifest.SNIFF_BYTES - 1}"}, self.ctx,
                self.stop,
            )  # fmt: skip
            with resp, http.watched(resp, self.stop):
                return bytes(resp.raw.read(manifest.SNIFF_BYTES, decode_content=True) or b"")
        except Exception as e:  # the download itself will say what is wrong
            log.debug("%s: could not read its first bytes: %s", self.url, e)
            return b""

    def claimed_by_extractor(self) -> bool:
        """Whether a site's own yt-dlp extractor takes the URL (asked once)."""
        from ..extractors import extractor_for

        if self.found.claimed is None:
            self.found.claimed = extractor_for(self.url) is not None
        return self.found.claimed

    def skipped(self, why: str, path: Path | None = None, **kw: Any) -> FetchResult:
        size = path.stat().st_size if path is not None and path.exists() else None
        return FetchResult(
            url=self.url,
            ok=True,
            path=str(path) if path else None,
            bytes=size,
            skipped=why,
            elapsed_s=since(self.started),
            **kw,
        )


class Probe:
    """What the site answered one input so far: the first response's head and its open
    GET (which the HTTP tier goes on reading: `take_response`), and what was learnt
    from it and from the downloaders tried."""

    def __init__(self) -> None:
        self.head: http.Head | None = None
        self.response: Any = None  # the probe's open GET, which the HTTP tier may reuse
        self.probed = False  # the first request was the probe (the HTTP tier's own)
        self.error: errors.XdlError | None = None  # the feed check's probe failed so
        self.manifest: str | None = None  # "" when not a manifest
        self.claimed: bool | None = None
        self.conditional: dict[str, str] | None = None
        self.refusals = 0
        #: Why the last media tier (yt-dlp) failed, for the line of a manifest refused.
        self.media_error: errors.XdlError | None = None
        self._watching: int | None = None

    def adopt(
        self, head: http.Head, response: Any, stop: threading.Event, probed: bool = True
    ) -> None:
        """The probe's answer (or a conditional GET of the cache): its GET is kept open,
        and `stop` set shuts it while it waits to be read (a feed's or a manifest's
        first bytes, which a server may never send)."""
        self.head, self.response, self.probed = head, response, probed
        self._watching = http_module().watch(response, stop)

    def take_response(self) -> Any:
        """The probe's open GET, handed over to the one who reads it (None when none)."""
        resp, self.response = self.response, None
        stopping.done(self._watching)
        self._watching = None
        return resp

    def drop(self) -> None:
        resp = self.take_response()
        if resp is not None:
            resp.close()


class _Replayed:
    """A response body whose first bytes were read already: `read` gives them again
    first, then goes on with the body; everything else is the body's own."""

    def __init__(self, first: bytes, raw: Any) -> None:
        self._first = first
        self._raw = raw

    def read(self, amt: int | None = None, *args: Any, **kwargs: Any) -> bytes:
        if not self._first:
            return bytes(self._raw.read(amt, *args, **kwargs))
        if amt is None:
            rest = bytes(self._raw.read(None, *args, **kwargs))
            data, self._first = self._first + rest, b""
            return data
        data, self._first = self._first[:amt], self._first[amt:]
        return data

    def read1(self, amt: int = -1, *args: Any, **kwargs: Any) -> bytes:
        if not self._first:
            return bytes(self._raw.read1(amt, *args, **kwargs))
        data = self.read(amt if amt > 0 else len(self._first))  # what was read, first
        if amt > len(data):  # and what the body has next (a small file's whole rest)
            data += bytes(self._raw.read1(amt - len(data), *args, **kwargs))
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)
