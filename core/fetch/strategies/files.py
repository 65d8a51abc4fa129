"""What the plain-file downloaders (HTTP, wget, curl) share: the file's real name, the
checks before a byte is written, the owned target, and the line of a saved file."""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ... import errors
from ...archive import url_key
from ...names import filename_from_url, with_extension
from ..result import FetchResult
from ..target import Target, check_size, sha256_file

if TYPE_CHECKING:
    from ..job import Job


@functools.lru_cache(maxsize=16)
def _which(program: str, path: str | None) -> bool:
    return shutil.which(program, path=path) is not None


def on_path(program: str) -> bool:
    """Whether `program` is on PATH (asked once per PATH: not a directory walk per input)."""
    return _which(program, os.environ.get("PATH"))


def default_timeout() -> float:
    from ...http import DEFAULT_TIMEOUT

    return DEFAULT_TIMEOUT


def user_agent() -> str:
    from ...http import USER_AGENT

    return USER_AGENT


def chunk_size(job: Job) -> int:
    from ...http import CHUNK

    return job.limiter.chunk_size(CHUNK) if job.limiter else CHUNK


def file_name(job: Job) -> str:
    """The plain file's real name: Content-Disposition, else the URL (sanitised)."""
    head = job.probe()
    return head.filename or with_extension(filename_from_url(head.url), head.content_type)


def open_target(job: Job, name: str, length: int | None) -> Target | list[FetchResult]:
    """The owned target for `name`, or the line that ends this input before any byte is
    written: a dry run, the same source's file already there, a size out of bounds."""
    o = job.o
    refuse_manifest(job)
    if o.dry_run:
        path = job.out / name
        return [
            FetchResult(
                url=job.url, ok=True, path=str(path), bytes=length, title=path.stem,
                elapsed_s=0.0, dry_run=True,
            )
        ]  # fmt: skip
    check_size(length, o.min_size, o.max_size)
    target = Target.claim(
        job.out,
        name,
        job.url,
        overwrite=o.overwrite,
        stop=job.stop,
        limiter=job.limiter,
        progress=job.progress,
        max_size=o.max_size,
        margin=o.free_space_margin,
        space=job.ctx.space,
        same_part=same_content(job),
        expected=length,
    )
    if target.done is not None:
        target.release_folder()
        path = target.done
        digest = sha256_file(path)
        if o.sha256 and digest != o.sha256:  # what is there is not what was asked for
            raise errors.ChecksumMismatch(
                f"{path.name} is here already with sha256 {digest}, not the expected"
                f" {o.sha256}; --overwrite downloads it again"
            )
        return [job.skipped("exists", path, title=path.stem, sha256=digest)]
    return target


def refuse_manifest(job: Job) -> None:
    """A stream's playlist or manifest is not its media: no plain-file tier saves one as
    the download (unless the user asked for a plain-file tier by name: then the text is
    what they want)."""
    from . import REGISTRY

    if job.o.strategy != "auto" and not REGISTRY[job.o.strategy].media:
        return
    kind = job.manifest()
    if kind is None:
        return
    why = job.found.media_error
    tried = (
        f"yt-dlp could not record it ({why.code}: {why.message})"
        if why
        else ("only yt-dlp can record it, and it was not tried")
    )
    error = errors.NoFormats(f"a stream manifest ({kind}), not media; {tried}")
    error.final = True
    raise error


def same_content(job: Job) -> Callable[[dict[str, Any]], bool]:
    """A `.part` another URL left holds this file when both have the same strong ETag."""
    etag = job.found.head.etag if job.found.head is not None else None

    def same(meta: dict[str, Any]) -> bool:
        return bool(etag) and not str(etag).startswith("W/") and meta.get("etag") == etag

    return same


def saved(
    job: Job,
    target: Target,
    size: int,
    digest: str,
    resumed: int | None,
    validators: tuple[str | None, str | None] | None = None,
) -> FetchResult:
    """The line of a saved file; kept in --cache when it has `validators` (ETag,
    Last-Modified) to revalidate it with."""
    if job.archive is not None:
        job.archive.add(url_key(job.url), target.final)
    if validators is not None and job.o.cache:
        from ..cache import keep_file

        keep_file(job, target.final, size, digest, *validators, inode=target.identity())
    return FetchResult(
        url=job.url,
        ok=True,
        path=str(target.final),
        bytes=size,
        sha256=digest,
        title=Path(target.name).stem,
        resumed_from=resumed,
    )


def piped(job: Job, tool: str, cmd: list[str]) -> list[FetchResult]:
    """Run wget/curl writing to a pipe; we write the owned `.part` (hash, limits,
    progress) from the start: they do not resume."""
    try:
        name = file_name(job)
        length = job.found.head.length if job.found.head else None
    except errors.XdlError as e:
        if e.final or job.o.dry_run:
            raise
        name, length = filename_from_url(job.url), None
    job.drop_response()
    target = open_target(job, name, length)
    if isinstance(target, list):
        return target
    with target, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL)
        assert proc.stdout is not None
        try:
            target.begin(0, length, {"tool": tool})
            fd = proc.stdout.fileno()
            while data := os.read(fd, chunk_size(job)):
                target.write(data)
            code = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            proc.stdout.close()
        if code != 0:
            target.discard()
            err.seek(0)
            raise tool_error(tool, code, err.read().decode("utf-8", "replace"))
        size, digest = target.commit(job.o.sha256, job.o.min_size, overwrite=job.o.overwrite)
        return [saved(job, target, size, digest, None)]


def tool_error(tool: str, code: int, stderr: str) -> errors.XdlError:
    from ...http import status_error

    text = " ".join(stderr.split())[:300] or f"{tool} exited with {code}"
    match = re.search(r"(?:error:? |ERROR )(\d{3})", text)
    if match:
        status = int(match.group(1))
        return status_error(status, "", "") if status >= 400 else errors.HttpError(text)
    if (tool == "curl" and code == 28) or (tool == "wget" and "timed out" in text):
        return errors.Timeout(f"{tool}: {text}")
    if (tool == "curl" and code == 1) or "unsupported scheme" in text.lower():
        return errors.UnsupportedUrl(f"{tool}: {text}")
    return errors.NetworkError(f"{tool}: {text}")
