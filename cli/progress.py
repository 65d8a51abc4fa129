"""What stderr shows while downloads run: tqdm bars for people at a terminal, or with
`--progress json` one JSON object a line for programs (SPEC §3)."""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from xdl.core.hosts import Budget

F = TypeVar("F", bound=Callable[..., Any])
MODES = ("bars", "json", "none")
#: At most this many progress events a second per item.
JSON_EVERY = 0.25

PROGRESS_HELP = (
    "Progress on stderr: bars (tqdm), json (one JSON object a line: see Progress events) "
    "or none [default: bars when stderr is a terminal, else none]. --progress alone: bars."
)


def progress_option(f: F) -> F:
    """--progress [bars|json|none] and --no-progress, resolved into `progress: str`
    ("bars", "json" or "none"). `--progress URL` (the old flag) still means bars."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        value = kwargs.pop("progress")
        off = kwargs.pop("no_progress")
        if value is not None and value not in MODES:
            if "inputs" not in kwargs:
                raise click.BadParameter(
                    f"{value!r} is not one of {', '.join(MODES)}", param_hint="--progress"
                )
            kwargs["inputs"] = (value, *kwargs["inputs"])
            value = "bars"
        if off:
            value = "none"
        if value is None:
            quiet = click.get_current_context().meta.get("xdl.quiet")
            shown = sys.stderr is not None and sys.stderr.isatty()  # (None: `2>&-`)
            value = "bars" if shown and not quiet else "none"
        kwargs["progress"] = value
        return f(*args, **kwargs)

    decorated = click.option("--no-progress", is_flag=True, help="No progress on stderr.")(wrapper)
    return click.option(
        "--progress",
        is_flag=False,
        flag_value="bars",
        default=None,
        metavar="[bars|json|none]",
        help=PROGRESS_HELP,
        shell_complete=lambda ctx, param, incomplete: [
            m for m in MODES if m.startswith(incomplete)
        ],
    )(decorated)  # type: ignore[return-value]


@dataclass
class _Item:
    started: float
    files: dict[str, tuple[int, int | None]] = field(default_factory=dict)
    last: float = 0.0
    results: list[Mapping[str, Any]] = field(default_factory=list)

    def received(self) -> int:
        return sum(done for done, _ in self.files.values())

    def total(self) -> int | None:
        totals = [total for _, total in self.files.values()]
        return None if not totals or None in totals else sum(t or 0 for t in totals)


class JsonLog(logging.Formatter):
    """With --progress json, warnings and errors are events too: every stderr line parses."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(
            {
                "event": "log",
                "level": record.levelname.lower(),
                "time": round(record.created, 3),
                "message": record.getMessage(),
            },
            ensure_ascii=False,
        )


class JsonProgress:
    """`--progress json`: a `start`, some `progress` (at most 4 a second) and a `done`
    event per item, one JSON object a line on stderr. `bytes` never goes back. While it
    is open, xdl's log lines are JSON too (event: log, level, message)."""

    def __init__(self, stream: IO[str] | None = None, every: float = JSON_EVERY) -> None:
        self.stream = stream
        self.every = every
        self.lock = threading.Lock()
        self.items: dict[tuple[str, int | None], _Item] = {}
        self.formats = [(h, h.formatter) for h in logging.getLogger("xdl").handlers]
        for handler, _ in self.formats:
            handler.setFormatter(JsonLog())

    def start(self, url: str, task: int | None = None) -> None:
        with self.lock:
            self._item(url, task)

    def update(
        self, url: str, key: str, done: int, total: int | None, task: int | None = None
    ) -> None:
        now = time.monotonic()
        with self.lock:
            item = self._item(url, task)
            before = item.files.get(key, (0, None))[0]
            item.files[key] = (max(before, done), total)
            finished = total is not None and done >= total
            if now - item.last < self.every and not finished:
                return
            item.last = now
            self._write("progress", url, task, item, now, file=key)

    def finished(
        self,
        row: Mapping[str, Any],
        task: int | None = None,
        source: str | None = None,
        last: bool = True,
    ) -> None:
        """A result for the input `source` (default: the row's url); the input's `done`
        event comes with its `last` result (a playlist's entries are counted in it)."""
        url = source or str(row.get("url") or "")
        now = time.monotonic()
        with self.lock:
            item = self._item(url, task)
            item.results.append(row)
            if not last:
                return
            del self.items[(url, task)]
            rows = item.results
            errors = [r.get("error") for r in rows if r.get("ok") is False]
            error = errors[0] if errors else None
            sizes = [r.get("bytes") for r in rows]
            extra: dict[str, Any] = {}
            if len(rows) > 1:
                extra["entries"] = len(rows)
            self._write(
                "done",
                url,
                task,
                item,
                now,
                ok=not errors,
                path=rows[0].get("path") if len(rows) == 1 else None,
                size=None if None in sizes else sum(sizes),
                error=error.get("code") if isinstance(error, Mapping) else None,
                **extra,
            )

    def waiting(self, host: str, until: float) -> None:
        """A host refused requests: every download from it waits until `until`."""
        row = {"event": "waiting", "host": host, "time": round(time.time(), 3)}
        row["until"] = round(until, 3)
        with self.lock:
            self._line(row)

    @contextmanager
    def above(self) -> Iterator[None]:
        yield

    def close(self) -> None:
        for handler, formatter in self.formats:
            handler.setFormatter(formatter)

    def _item(self, url: str, task: int | None) -> _Item:
        item = self.items.get((url, task))
        if item is None:
            item = self.items[(url, task)] = _Item(time.monotonic())
            self._write("start", url, task, item, item.started)
        return item

    def _write(
        self, event: str, url: str, task: int | None, item: _Item, now: float, **extra: Any
    ) -> None:
        received, total = item.received(), item.total()
        elapsed = now - item.started
        speed = received / elapsed if elapsed > 0 and received else None
        eta = (total - received) / speed if speed and total is not None else None
        row: dict[str, Any] = {"event": event, "url": url}
        if task is not None:
            row["task"] = task
        row.update(
            time=round(time.time(), 3),
            bytes=received,
            total=total,
            speed=round(speed) if speed is not None else None,
            eta=round(max(eta, 0.0), 1) if eta is not None else None,
            elapsed_s=round(elapsed, 3),
            **extra,
        )
        self._line(row)

    def _line(self, row: Mapping[str, Any]) -> None:
        """One event line; a progress reader that went away stops no download."""
        stream = self.stream or sys.stderr
        try:
            stream.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
            stream.flush()
        except (BrokenPipeError, ValueError):
            pass


class _AboveBars(logging.Handler):
    """xdl's log lines, written above the bars (tqdm.write), never inside one."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm

        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:
            self.handleError(record)


class Bars:
    """One tqdm bar per active download and an overall count (of `total` when the
    number of inputs is known), on stderr. While they are up, log lines are printed
    above them, and stdout's lines go out through `above()` so that no line is shared."""

    def __init__(self, total: int | None = None) -> None:
        logger = logging.getLogger("xdl")
        self.handlers = list(logger.handlers)
        if self.handlers:
            above = _AboveBars()
            above.setFormatter(self.handlers[0].formatter)
            logger.handlers = [above]
        self.lock = threading.Lock()
        self.bars: dict[str, Any] = {}
        self.keys: dict[str, set[str]] = {}  # input url -> its bars' keys
        self.overall: Any = None
        self.total = total
        self.done = 0
        # A terminal that reports a 0x0 size (some ptys) would get no bars at all.
        try:
            size = os.get_terminal_size(sys.stderr.fileno())
            self.columns, self.rows = size.columns or 100, size.lines or 24
        except (OSError, ValueError, AttributeError):
            self.columns, self.rows = 100, 24
        self.columns = min(self.columns, 120)

    def start(self, url: str, task: int | None = None) -> None:
        pass

    @contextmanager
    def above(self) -> Iterator[None]:
        """Write to stdout or stderr with the bars cleared, then draw them again."""
        from tqdm import tqdm

        with self.lock, tqdm.external_write_mode(file=sys.stderr):
            yield

    def update(
        self, url: str, key: str, done: int, total: int | None, task: int | None = None
    ) -> None:
        from tqdm import tqdm

        with self.lock:
            bar = self.bars.get(key)
            if bar is None:
                bar = tqdm(
                    total=total,
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    desc=key[:40],
                    leave=False,
                    file=sys.stderr,
                    ncols=self.columns,
                    nrows=self.rows,
                )
                self.bars[key] = bar
                self.keys.setdefault(url, set()).add(key)
            if total and bar.total != total:
                bar.total = total
            bar.update(done - bar.n)
            if total and done >= total:
                bar.close()
                del self.bars[key]

    def finished(
        self,
        row: Mapping[str, Any],
        task: int | None = None,
        source: str | None = None,
        last: bool = True,
    ) -> None:
        from tqdm import tqdm

        with self.lock:
            for key in self.keys.pop(source or str(row.get("url") or ""), ()) if last else ():
                bar = self.bars.pop(key, None)
                if bar is not None:  # a failed or stopped download: its bar goes too
                    bar.close()
            self.done += 1
            if self.overall is None and (self.done > 1 or (self.total or 0) > 1):
                self.overall = tqdm(
                    desc="done",
                    unit=" items",
                    total=self.total,
                    file=sys.stderr,
                    initial=self.done - 1,
                    ncols=self.columns,
                    nrows=self.rows,
                )
            if self.overall is not None:
                self.overall.update(1)

    def close(self) -> None:
        if self.handlers:
            logging.getLogger("xdl").handlers = self.handlers
            self.handlers = []
        with self.lock:
            for bar in self.bars.values():
                bar.close()
            self.bars.clear()
            if self.overall is not None:
                self.overall.close()
                self.overall = None


Reporter = JsonProgress | Bars


def reporter(mode: str, total: int | None = None, budget: Budget | None = None) -> Reporter | None:
    """The progress display for --progress MODE, or None; JSON events say when the
    downloads of `budget` wait for a site."""
    if mode == "json":
        events = JsonProgress()
        if budget is not None:
            budget.on_waiting = events.waiting
        return events
    if mode == "bars":
        return Bars(total)
    return None
