"""Direct HTTP: one ranged, resumable GET into the owned `.part` (Range + If-Range)."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

from ... import errors
from ...hosts import is_refusal
from ...stopping import back_off
from . import files, segments

if TYPE_CHECKING:
    from ..job import Job
    from ..result import FetchResult

log = logging.getLogger("xdl.fetch")


class Http:
    name = "http"
    media = False
    missing = ""

    def available(self) -> bool:
        return True

    def run(self, job: Job) -> list[FetchResult]:
        from ... import http

        name = _named(job)
        head = job.found.head
        target = files.open_target(job, name, head.length if head else None)
        if isinstance(target, list):
            return target
        o = job.o
        with target:
            etag = head.etag if head and head.etag and not head.etag.startswith("W/") else None
            validator = etag or (head.last_modified if head else None)
            if (
                o.connections > 1
                and head is not None
                and head.accept_ranges
                and head.length is not None
                and head.length >= 2 * segments.MIN_RANGE
                and validator
            ):
                try:
                    meta = {"etag": etag, "last_modified": head.last_modified}
                    size, digest, from_ = segments.download(
                        job, target, head.length, validator, o.connections, meta
                    )
                    kept = (etag, head.last_modified)  # for --cache
                    return [files.saved(job, target, size, digest, from_, kept)]
                except segments.RangesRefused as e:
                    log.debug("%s: %s; one connection", job.url, e)
                    target.restart()
            for attempt in range(o.retries + 1):
                offset, meta = target.saved()
                if meta.get("ranges"):  # written at offsets: keep what has no gap before it
                    offset = segments.contiguous(meta["ranges"])
                # A strong ETag identifies the content wherever it came from (signed URLs
                # change); a date alone only counts for the same URL.
                validator = meta.get("etag") or (
                    meta.get("last_modified") if meta.get("url") == job.url else None
                )
                headers: dict[str, str] = {}
                if offset and isinstance(validator, str):
                    headers = {"Range": f"bytes={offset}-", "If-Range": validator}
                else:
                    offset = 0
                try:
                    first = job.found.take_response()  # the probe's GET, from byte 0
                    if first is not None and headers:
                        first.close()
                        first = None
                    resp = first if first is not None else job.get(headers)
                    with resp:
                        if resp.status_code == 416:  # our .part is no use: start again
                            target.restart()
                            raise errors.NetworkError("HTTP 416: the saved .part did not fit")
                        total = _length(resp.headers.get("Content-Length"))
                        resumed: int | None = None
                        if offset and resp.status_code == 206:
                            start, full = _content_range(resp.headers.get("Content-Range"))
                            if start != offset:
                                target.restart()
                                raise errors.NetworkError("the server resumed at the wrong offset")
                            total = full if full is not None else _plus(total, offset)
                            resumed = offset
                        elif resp.status_code != 200:
                            raise errors.HttpError(f"HTTP {resp.status_code} {resp.reason}")
                        else:
                            offset = 0  # 200 to a ranged request: changed, or no ranges
                        etag = resp.headers.get("ETag")
                        target.begin(
                            offset,
                            total,
                            {
                                "etag": etag if etag and not etag.startswith("W/") else None,
                                "last_modified": resp.headers.get("Last-Modified"),
                                "total": total,
                            },
                        )
                        for data in http.chunks(resp, files.chunk_size(job), stop=job.stop):
                            target.write(data)
                        size, digest = target.commit(o.sha256, o.min_size, overwrite=o.overwrite)
                        kept = (etag, resp.headers.get("Last-Modified"))  # for --cache
                        return [files.saved(job, target, size, digest, resumed, kept)]
                except (errors.NetworkError, errors.Timeout, errors.HttpError) as e:
                    target.finish_writing()
                    _wait_to_retry(job, e, attempt)
        raise errors.DownloadFailed("out of retries")  # not reached


def _named(job: Job) -> str:
    """The file's name from the probe's answer; a probe that failed on the way (a reset,
    an answer cut in its headers, a 503) is sent again as the download's requests are."""
    for attempt in range(job.o.retries + 1):
        try:
            return files.file_name(job)
        except (errors.NetworkError, errors.Timeout, errors.HttpError) as e:
            _wait_to_retry(job, e, attempt)
    raise errors.DownloadFailed("out of retries")  # not reached


def _wait_to_retry(job: Job, e: errors.XdlError, attempt: int) -> None:
    """Raise `e` when it is not to be retried (a refusal, which the engine waits out for
    the host; a 4xx; the last attempt; a stop), else wait before attempt `attempt + 2`."""
    status = e.details.get("status")
    retryable = status is None or status >= 500 or status == 408
    if is_refusal(e) or attempt >= job.o.retries or not retryable or job.stop.is_set():
        raise e
    log.debug("%s: %s; retrying (%d)", job.url, e.message, attempt + 1)
    back_off(job.stop, attempt)


def _length(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def _plus(total: int | None, offset: int) -> int | None:
    return None if total is None else total + offset


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    match = re.match(r"bytes (\d+)-(\d+)/(\d+|\*)", value or "")
    if not match:
        return None, None
    full = match.group(3)
    return int(match.group(1)), int(full) if full.isdigit() else None


HTTP = Http()
