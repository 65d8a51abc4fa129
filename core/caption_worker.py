"""A second process that reads the next piece of a large WebVTT file of word timings
(YouTube's automatic captions) while this one cleans the current piece (`captions.CueReader`).

Reading a piece (word timings off, then the cues found by one regex) needs nothing from
the pieces before it and is half the work; a machine has more than one core. The worker
only reads text: every decision, count and error stays in the main process, which does
the work itself when the worker has gone."""

from __future__ import annotations

import multiprocessing
import signal
from typing import Any

from .captions import Prepared, prepare


class Worker:
    """One forked process: `send` a piece, later `recv` what `captions.prepare` made of
    it. Send the next piece only after receiving the last one (both ends block on a
    full pipe)."""

    def __init__(self) -> None:
        ctx = multiprocessing.get_context("fork")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child, self._conn), daemon=True)
        self._proc.start()
        child.close()

    def send(self, text: str) -> None:
        self._conn.send(text)

    def recv(self) -> Prepared:
        got = self._conn.recv()
        assert isinstance(got, Prepared)
        return got

    def close(self) -> None:
        """Stop the worker (it ends when its pipe closes) and wait for it."""
        self._conn.close()
        self._proc.join(2.0)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join()
        self._proc.close()


def _serve(conn: Any, parent: Any) -> None:
    # Ctrl-C reaches the whole process group: the parsing process handles it (and
    # closes the pipe, which ends this loop); SIGTERM ends the worker at once.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    parent.close()
    while True:
        try:
            text = conn.recv()
        except (EOFError, OSError):
            return
        try:
            conn.send(prepare(text))
        except (BrokenPipeError, OSError):
            return
