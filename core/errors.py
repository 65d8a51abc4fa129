"""xdl's own errors, each with a stable machine `code` (SPEC §3) and an exit code (SPEC §4).

Adapters catch third-party exceptions where they call the library and raise these
instead; the CLI turns them into result lines and exit codes in one place.
"""

from __future__ import annotations

from typing import Any


class XdlError(Exception):
    """An error about one input: it becomes a failed result line, and exit 1."""

    code = "error"
    exit_code = 1
    #: True when no other download strategy can do better (404, checksum mismatch...).
    final = False

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **self.details}


class BadInput(XdlError):
    code = "bad_input"
    final = True


class OutputRemoved(BadInput):
    """What a download was writing went away under it: the output folder (between the
    batch's check and the claim, or while downloading) or its `.part` (`rm -rf OUT`
    during a batch). The engine makes the folder again, as the batch's check does, and
    tries once more."""


class UnsupportedUrl(XdlError):
    code = "unsupported_url"


class NotFound(XdlError):
    code = "not_found"
    final = True


class HttpError(XdlError):
    code = "http_error"
    #: The response's Retry-After header, when it had one (a refusal: 429, 503).
    retry_after: str | None = None


class RateLimited(XdlError):
    """The site refused (429, or 503 with Retry-After) past what this run waits for:
    `host` is paused until `until` (Unix time). The queue waits for it; no other
    downloader is tried (it would be refused too, or save the refusal's page)."""

    code = "rate_limited"
    final = True


class NetworkError(XdlError):
    code = "network"


class Timeout(XdlError):
    code = "timeout"


class TooLarge(XdlError):
    code = "too_large"
    final = True


class TooSmall(XdlError):
    code = "too_small"
    final = True


class ChecksumMismatch(XdlError):
    code = "checksum_mismatch"
    final = True


class NoSpace(XdlError):
    code = "no_space"
    final = True


class NoFormats(XdlError):
    code = "no_formats"


class NoSubtitles(XdlError):
    code = "no_subtitles"
    final = True


class ParseError(XdlError):
    code = "parse_error"
    final = True


class DownloadFailed(XdlError):
    code = "download_failed"


#: The message of a download stopped by the user (Ctrl-C, SIGTERM, a queue stopping).
STOPPED = "interrupted; what came is kept in a .part, if any, for resuming"


class Interrupted(XdlError):
    code = "interrupted"
    final = True


class InternalError(XdlError):
    """A bug met on one input: that input fails, the batch goes on (SPEC §3)."""

    code = "internal_error"
    final = True


class Fatal(XdlError):
    """An error that stops the whole command: nothing can work (exit 3)."""

    code = "fatal"
    exit_code = 3
    final = True


class ToolMissing(Fatal):
    code = "tool_missing"


class OutputNotWritable(Fatal):
    code = "output_not_writable"


class ConfigError(Fatal):
    code = "config_error"


class QueueCorrupt(Fatal):
    code = "queue_corrupt"


class QueueLocked(Fatal):
    code = "queue_locked"


class QueueUnavailable(Fatal):
    """The queue's server cannot be reached or used (down, refused, no such database)."""

    code = "queue_unavailable"


class NotSupported(XdlError):
    """A command this store cannot do, and what to use instead: a usage error (exit 2)."""

    code = "not_supported"
    exit_code = 2
    final = True
