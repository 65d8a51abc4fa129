"""Rendering results the same way for every command (SPEC §3, §4).

stdout carries JSON lines (or a table for people at a terminal); stderr says what
failed, in short lines. The exit code comes from what was emitted.

Every line written is JSON (NaN and infinities become null), can be encoded, and is one
line for any reader: a lone surrogate in a row (the URL or path of an input that failed
for holding one), NEL, U+2028 and U+2029 are written as their JSON escapes (`\\ud800`),
never a UnicodeEncodeError that would end the batch, never a break that splits a line.
"""

from __future__ import annotations

import codecs
import contextlib
import json
import logging
import math
import os
import re
import select
import sys
import textwrap
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import IO, Any, Protocol

from xdl.cli.run import tracebacks_wanted
from xdl.core.errors import InternalError, OutputNotWritable, XdlError
from xdl.core.inputs import Input, shorten, shown
from xdl.core.stopping import BLOCKED, blocking, signal_waited

log = logging.getLogger("xdl")


#: What a line must not hold raw: a UTF-16 surrogate alone (it has no UTF-8 encoding),
#: and the line breaks other than LF that readers split on (Python's `splitlines`,
#: JavaScript before ES2019): NEL, LINE SEPARATOR, PARAGRAPH SEPARATOR.
_UNSAFE = re.compile("[\ud800-\udfff\x85\u2028\u2029]")


def encodable(text: str) -> str:
    """`text` with any lone surrogate, NEL, U+2028 or U+2029 escaped (`\\ud800`, valid
    inside a JSON string too): writing it as UTF-8 cannot fail, and it stays one line
    for every reader."""
    if text.isascii() or not _UNSAFE.search(text):
        return text
    return _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _as_json_escapes(e: UnicodeError) -> tuple[str, int]:
    """The characters an output's encoding has not, as JSON's `\\u` escapes (a UTF-16
    pair beyond the BMP): valid inside the JSON strings they can only be in."""
    if not isinstance(e, UnicodeEncodeError):
        raise e
    said = []
    for ch in e.object[e.start : e.end]:
        code = ord(ch)
        if code > 0xFFFF:
            code -= 0x10000
            said.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}")
        else:
            said.append(f"\\u{code:04x}")
    return "".join(said), e.end


codecs.register_error("xdl-json-escapes", _as_json_escapes)


class ReaderGone(Exception):
    """stdout's reader went away (`xdl ... | head -1`): stop quietly, exit 0."""


class Result(Protocol):
    def to_dict(self) -> dict[str, Any]: ...


Row = dict[str, Any]
Columns = Sequence[tuple[str, str]]


class Output:
    """Emits result rows as JSON lines, or as a table when asked or at a terminal."""

    def __init__(
        self,
        mode: str | None = None,
        columns: Columns | None = None,
        stream: IO[str] | None = None,
        key: str = "url",
        prints: Sequence[str] = (),
    ) -> None:
        self.stream = stream or sys.stdout
        self.prints = tuple(prints)
        self.columns = columns
        self.key = key
        tty = self.stream.isatty() if hasattr(self.stream, "isatty") else False
        self.tty = tty
        self.table = bool(columns) and (mode == "table" or (mode is None and tty))
        self.rows: list[Row] = []
        self.failures = 0
        self.count = 0
        self._held: list[str] | None = None  # lines kept for a write (`together`)
        self._held_size = 0  # their bytes

    def emit(self, result: Result | Row) -> None:
        row = result if isinstance(result, dict) else result.to_dict()
        self.count += 1
        if row.get("ok") is False:
            self.failures += 1
        if self.table:
            self.rows.append(row)
            return
        if self.prints:
            self._print(row)
            return
        line = encodable(_dumps(row)) + "\n"
        if self._held is None:
            write_out(line, self.stream)
            return
        size = len(line) if line.isascii() else len(line.encode("utf-8", "replace"))
        if self._held and self._held_size + size > _WHOLE:
            self._write_held()
        self._held.append(line)
        self._held_size += size

    @contextlib.contextmanager
    def together(self) -> Iterator[None]:
        """The lines emitted inside, ready at the same moment (a chunk of `queue add`),
        are written a few at a time, not one write and flush a line: each write at most
        PIPE_BUF bytes, which a pipe takes whole or not at all. A larger write into a
        pipe whose reader went (`| head`) was cut short with no error, and the next
        10,000 tasks were added; one stopped by Ctrl-C left half a line."""
        self._held, self._held_size = [], 0
        try:
            yield
        finally:
            self._write_held()
            self._held = None

    def _write_held(self) -> None:
        if self._held:
            text = "".join(self._held)
            self._held.clear()
            self._held_size = 0
            write_out(text, self.stream)

    def _print(self, row: Row) -> None:
        """`--print TEMPLATE`: a line per template for each item that did not fail."""
        if row.get("ok") is False:
            return
        from xdl.core.ytdlp import print_template

        write_out("".join(encodable(print_template(t, row)) + "\n" for t in self.prints),
                  self.stream)  # fmt: skip

    def fail(self, item: Input | str, error: XdlError, **extra: Any) -> None:
        """A failed line for one input, and a one-line message on stderr."""
        value = item.value if isinstance(item, Input) else item
        self.emit({"ok": False, self.key: value, **extra, "error": error.to_dict()})
        log.error("%s: %s", shown(value), encodable(error.message))  # after: the line counts

    def each(self, items: Iterable[Input], work: Callable[[Input], Iterable[Result | Row]]) -> None:
        """Run `work` on each input, emitting its rows; one failure never stops the others,
        not even a bug (`internal_error`; XDL_DEBUG=1 raises it, with its traceback)."""
        for item in items:
            if item.error is not None:
                self.fail(item, item.error)
                continue
            try:
                for row in work(item):
                    self.emit(row)
            except XdlError as e:
                if e.exit_code != 1:
                    raise
                self.fail(item, e)
            except (ReaderGone, BrokenPipeError):
                raise
            except Exception as e:
                if tracebacks_wanted():
                    raise
                log.debug("internal error on %s", shown(item.value), exc_info=True)
                what = shorten(f"{type(e).__name__}: {e}", 300)
                self.fail(item, InternalError(f"internal error: {what} (XDL_DEBUG=1 shows where)"))

    def close(self) -> int:
        """Print the table (if any) and return the exit code: 1 when anything failed."""
        if self.table and self.columns:
            import shutil  # here: only a table for a terminal needs it

            width = shutil.get_terminal_size().columns if self.tty else None
            self.stream.write(encodable(render_table(self.rows, self.columns, self.key, width)))
            self.stream.flush()
        return 1 if self.failures else 0


#: The most `together` writes at once: what a pipe takes whole (POSIX: at least 512).
_WHOLE = getattr(select, "PIPE_BUF", 512)


def _dumps(row: Row) -> str:
    """A row as one JSON object: NaN and infinities (which JSON has not, and which xdl's
    own reader refuses) become null."""
    try:
        return json.dumps(row, ensure_ascii=False, default=str, allow_nan=False)
    except ValueError:
        return json.dumps(_finite(row), ensure_ascii=False, default=str, allow_nan=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def write_out(text: str, stream: IO[str] | None = None) -> None:
    """`text` on stdout (or `stream`), flushed; a reader that went away (a closed pipe:
    `| head`) is ReaderGone, which ends the command quietly: the one place for it. Any
    other failure to write (a full disk, `> /dev/full`) ends the command with exit 3 and
    a one-line error, not an internal error."""
    out = stream if stream is not None else sys.stdout
    if out is None:  # closed (`>&-`)
        raise OutputNotWritable("cannot write the output: stdout is closed")
    started = time.monotonic()
    try:
        with blocking():  # a reader that does not read: a signal still ends the wait
            try:
                out.write(text)
            except UnicodeEncodeError:  # PYTHONIOENCODING=ascii: the line still comes
                encoding = getattr(out, "encoding", None) or "ascii"
                out.write(text.encode(encoding, "xdl-json-escapes").decode(encoding))
            out.flush()
    except KeyboardInterrupt:  # (SIGTERM's too)
        if out is sys.stdout and time.monotonic() - started >= BLOCKED:
            silence_stdout()  # nobody reads: the interpreter's last flush would wait
        raise
    except BrokenPipeError:
        silence_stdout()
        raise ReaderGone() from None
    except OSError as e:
        if out is sys.stdout:
            silence_stdout()
        raise OutputNotWritable(f"cannot write the output: {e.strerror or e}") from None


def write_err(text: str, patience: float | None = None) -> None:
    """`text` on stderr (a warning, an error's line). A reader that does not read (a full
    pipe) holds it only until a signal held back has waited BLOCKED seconds, or for
    `patience` seconds: then it is dropped, as it would never be read, and neither a
    worker nor the exit waits on it for good. A stderr that cannot be written drops it."""
    err = sys.stderr
    if err is None:  # closed (`2>&-`): nowhere to say it
        return
    try:
        fd = err.fileno()
    except (AttributeError, OSError, ValueError):  # not a descriptor (tests' streams)
        with contextlib.suppress(AttributeError, OSError, ValueError):
            err.write(text)
            err.flush()
        return
    data = text.encode(getattr(err, "encoding", None) or "utf-8", "backslashreplace")
    began = time.monotonic()
    waiting = select.poll()
    waiting.register(fd, select.POLLOUT)
    while data:
        late = signal_waited() or (patience is not None and time.monotonic() - began >= patience)
        if not waiting.poll(0 if late else 250):  # no room: its reader is slow, or gone
            if late:
                return
            continue
        try:
            data = data[os.write(fd, data[:_WHOLE]) :]  # at most PIPE_BUF: never waits
        except BlockingIOError:
            continue
        except OSError:  # closed, a full disk: nowhere to say it
            return


def silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def render_table(
    rows: list[Row], columns: Columns, key: str = "url", total_width: int | None = None
) -> str:
    """A plain aligned table; failed rows show their error instead of the columns.
    Columns are cut at 60 characters, except the last, wrapped to `total_width`."""
    if not rows:
        return ""
    header = [title for _, title in columns]
    body: list[list[str]] = []
    failed: list[str] = []
    for row in rows:
        if row.get("ok") is False:
            err = row.get("error") or {}
            failed.append(f"FAILED {row.get(key)}: {err.get('code')}: {err.get('message')}")
            continue
        body.append([_cell(row.get(name)) for name, _ in columns])
    widths = [
        max(len(h), *(len(r[i]) for r in body)) if body else len(h) for i, h in enumerate(header)
    ]
    widths = [min(w, 60) for w in widths[:-1]] + widths[-1:]
    lines = []
    if body:
        lines.append("  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip())
        indent = sum(w + 2 for w in widths[:-1])
        room = max(total_width - indent, 40) if total_width else None
        for r in body:
            # The last column (a message, a hint) is never cut: it wraps under itself.
            cells = [_fit(c, w).ljust(w) for c, w in zip(r[:-1], widths[:-1])]
            last = textwrap.wrap(r[-1], room) if room and len(r[-1]) > room else [r[-1]]
            lines.append("  ".join([*cells, last[0] if last else ""]).rstrip())
            lines.extend(" " * indent + more for more in last[1:])
    lines.extend(failed)
    return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False) if value else "-"
    return str(value).replace("\n", " ")


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
