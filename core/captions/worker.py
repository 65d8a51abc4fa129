"""A second process that reads the next piece of a large WebVTT file of word timings
(YouTube's automatic captions) while this one cleans the current piece (`captions.CueReader`).

Reading a piece (word timings off, then the cues found by one regex) needs nothing from
the pieces before it and is half the work; a machine has more than one core. The worker
only reads text: every decision, count and error stays in the main process, which does
the work itself when the worker has gone."""

from __future__ import annotations

import os
import signal
import time
from multiprocessing.connection import Connection

from .vtt import Prepared, prepare


class Worker:
    """One forked process: `send` a piece, later `recv` what `captions.prepare` made of
    it. Send the next piece only after receiving the last one (both ends block on a
    full pipe).

    A bare `os.fork` (not `multiprocessing.Process`): the child runs only the loop below
    and leaves by `os._exit`, so it never flushes what this process had buffered for
    stdout, never runs its exit handlers and never prints a traceback."""

    def __init__(self) -> None:
        down_r, down_w = os.pipe()
        up_r, up_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                os.close(down_w)
                os.close(up_r)
                _serve(Connection(down_r, writable=False), Connection(up_w, readable=False))
                code = 0
            finally:
                os._exit(code)
        os.close(down_r)
        os.close(up_w)
        self._pid = pid
        self._to = Connection(down_w, readable=False)
        self._from = Connection(up_r, writable=False)

    def send(self, text: str) -> None:
        self._to.send(text)

    def recv(self) -> Prepared:
        got = self._from.recv()
        if not isinstance(got, Prepared):
            raise EOFError("the worker sent something else")
        return got

    def close(self) -> None:
        """Stop the worker (it ends when its pipe closes) and reap it."""
        self._to.close()
        self._from.close()
        deadline = time.monotonic() + 2.0
        while True:
            try:
                done, _ = os.waitpid(self._pid, os.WNOHANG)
            except ChildProcessError:
                return
            if done:
                return
            if time.monotonic() > deadline:
                os.kill(self._pid, signal.SIGKILL)
                os.waitpid(self._pid, 0)
                return
            time.sleep(0.005)


def _serve(down: Connection, up: Connection) -> None:
    # Ctrl-C reaches the whole process group: the main process handles it and closes
    # the pipes, which ends this loop. SIGTERM ends the worker at once.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    while True:
        try:
            text = down.recv()
            up.send(prepare(text))
        except Exception:  # the pipe closed, or anything else: the main process goes on
            return
