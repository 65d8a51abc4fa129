"""What one download attempt and one input came to: the JSON line of `xdl fetch`."""

from __future__ import annotations

import copy
import dataclasses
import time
from dataclasses import dataclass
from typing import Any

from .. import errors


@dataclass(frozen=True)
class Attempt:
    """One strategy's try at one input."""

    strategy: str
    ok: bool
    error: str | None
    elapsed_s: float

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


@dataclass(frozen=True)
class FetchResult:
    """The result line of one downloaded (or skipped, or failed) item."""

    url: str
    ok: bool
    path: str | None = None
    bytes: int | None = None
    sha256: str | None = None
    strategy: str | None = None
    attempts: tuple[Attempt, ...] = ()
    title: str | None = None
    id: str | None = None
    extractor: str | None = None
    elapsed_s: float = 0.0
    resumed_from: int | None = None
    skipped: str | None = None
    error: dict[str, Any] | None = None
    playlist: str | None = None
    playlist_index: int | None = None
    #: A live stream's recording: how it ended ("ended", "interrupted").
    live: str | None = None
    dry_run: bool = False
    #: every file on disk for the item: {"path", "kind"} (media, audio, subtitles,
    #: info_json, description, thumbnail); a plain download's is its one file.
    files: tuple[dict[str, str], ...] = ()
    cached: bool = False
    #: A playlist downloaded as one queue task: each entry's result (this one is the
    #: task's: ok when all are, their bytes added up).
    entries: tuple[FetchResult, ...] = ()
    #: Not in the line: the batch input this result answers, and whether it is that
    #: input's last result (a playlist gives several), for progress displays.
    source: str | None = dataclasses.field(default=None, compare=False)
    last_of_source: bool = dataclasses.field(default=True, compare=False)

    def but(self, **changes: Any) -> FetchResult:
        """`dataclasses.replace(self, **changes)`, without its call of `__init__` with
        every field (14 us, made twice a line)."""
        unknown = changes.keys() - _FIELDS
        if unknown:
            raise TypeError(f"FetchResult has no field {', '.join(sorted(unknown))}")
        new = object.__new__(FetchResult)
        new.__dict__.update(self.__dict__, **changes)
        return new

    def to_dict(self) -> dict[str, Any]:
        # by hand: dataclasses.asdict copies deeply, and cost 1.5 ms a line
        d = {name: getattr(self, name) for name in _LINE_FIELDS}
        if self.error is not None:
            d["error"] = copy.deepcopy(self.error)
        d["attempts"] = [a.to_dict() for a in self.attempts]
        d["files"] = [dict(f) for f in self.files] or (
            [{"path": self.path, "kind": "media"}] if self.path else []
        )
        if self.playlist is None and self.playlist_index is None:
            del d["playlist"], d["playlist_index"]
        if self.live is None:
            del d["live"]
        if not self.dry_run:
            del d["dry_run"]
        if not self.cached:
            del d["cached"]
        if self.entries:
            d["entries"] = [e.to_dict() for e in self.entries]
        else:
            del d["entries"]
        return d


_LINE_FIELDS = tuple(f.name for f in dataclasses.fields(FetchResult) if f.compare)
_FIELDS = frozenset(f.name for f in dataclasses.fields(FetchResult))


def failed(
    url: str, error: errors.XdlError, attempts: tuple[Attempt, ...], started: float, **kw: Any
) -> FetchResult:
    return FetchResult(
        url=url,
        ok=False,
        attempts=attempts,
        elapsed_s=since(started),
        error=error.to_dict(),
        **kw,
    )


def since(t: float) -> float:
    return round(time.monotonic() - t, 3)
