"""A download asked to stop (Ctrl-C, SIGTERM, a `queue run` stopping) stops what it
waits on, not only between two reads.

- `during(stop)`: the stop of the download on this thread, while it runs code that
  cannot be handed one (yt-dlp's extraction and downloaders, requests' own calls).
- `watch(stop, sock)` / `done(key)`: a socket whose wait ends when `stop` is set. One
  thread looks at the watched stop events a few times a second and shuts the sockets
  of those set: a server that sends nothing ends the wait at once, where it lasted the
  read timeout (`--timeout`, 30 s; yt-dlp's 20 s).
- Every urllib3 connection (ours through requests, and yt-dlp's) that answers a request
  made inside `during(stop)` is watched until the block ends (`install`, called by the
  modules that import requests or yt-dlp: this one imports neither, so `xdl --help`
  and the start of a command stay without urllib3): a server that takes the request and
  never answers, or whose body stalls while yt-dlp reads it.

What a shut socket makes (an end of the body, a reset) is never the site's answer: the
code that reads says `interrupted` when its stop is set. Connections are kept alive and
shared: a socket is shut only while it still carries the answer its stopped download
was watching (its `turn`: every answer a connection waits for is a new one), never the
next download's that took the connection from the pool meanwhile, for whom an early end
could pass for the end of a body.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import queue
import signal
import socket
import threading
import time
import weakref
from collections.abc import Iterator
from typing import Any, TypeVar

#: How often (seconds) the watcher looks at the stop events.
EVERY = 0.2

T = TypeVar("T")
_local = threading.local()


def current() -> threading.Event | None:
    """The stop of the download running on this thread (`during`), if any."""
    stop: threading.Event | None = getattr(_local, "stop", None)
    return stop


@contextlib.contextmanager
def during(stop: threading.Event | None) -> Iterator[None]:
    """`stop` is this thread's download's while the block runs; the connections that
    answer the block's requests are watched until it ends (their bodies are read
    inside it: yt-dlp's pages, playlists and media)."""
    before, held = current(), getattr(_local, "held", None)
    _local.stop, _local.held = stop, {}
    try:
        yield
    finally:
        for key in _local.held.values():
            done(key)
        _local.stop, _local.held = before, held


class _Watcher:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: dict[int, tuple[threading.Event, socket.socket, int]] = {}
        self._keys = itertools.count()
        self._running = False
        #: How many answers each connection's socket has waited for (see `next_turn`).
        self._turns: weakref.WeakKeyDictionary[socket.socket, int] = weakref.WeakKeyDictionary()

    def next_turn(self, sock: Any) -> None:
        """`sock`'s connection waits for a new answer (maybe another download's, from
        the pool): watches of the answers before it no longer shut it."""
        if isinstance(sock, socket.socket):
            with self._lock:
                self._turns[sock] = self._turns.get(sock, 0) + 1

    def watch(self, stop: threading.Event | None, sock: Any) -> int | None:
        if stop is None or not isinstance(sock, socket.socket):
            return None
        with self._lock:
            key = next(self._keys)
            self._waiting[key] = (stop, sock, self._turns.get(sock, 0))
            if not self._running:
                self._running = True
                threading.Thread(target=self._run, name="xdl-stopper", daemon=True).start()
        return key

    def done(self, key: int | None) -> None:
        if key is not None:
            with self._lock:
                self._waiting.pop(key, None)

    def _run(self) -> None:
        while True:
            time.sleep(EVERY)
            if not self.shut_stopped():
                return

    def shut_stopped(self) -> bool:
        """Shut the sockets of the stopped downloads, those still on the answer they
        watch; False (and the watcher thread ends) when nothing is watched."""
        with self._lock:
            if not self._waiting:
                self._running = False
                return False
            stopped = [k for k, (stop, _, _) in self._waiting.items() if stop.is_set()]
            socks = []
            for k in stopped:
                _, sock, turn = self._waiting.pop(k)
                if self._turns.get(sock, 0) == turn:
                    socks.append(sock)
            # shut while the lock is held: a connection taken from the pool meanwhile
            # (`next_turn`) waits for it, and is not shut after
            for sock in socks:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        return True


_watcher = _Watcher()
watch = _watcher.watch
done = _watcher.done
next_turn = _watcher.next_turn


def install() -> None:
    """Watch every urllib3 connection's wait for an answer (once per process)."""
    import urllib3.connection

    cls = urllib3.connection.HTTPConnection
    if getattr(cls.getresponse, "_xdl_watched", False):
        return
    plain = cls.getresponse

    def getresponse(self: Any, *args: Any, **kwargs: Any) -> Any:
        sock = getattr(self, "sock", None)
        next_turn(sock)
        held: dict[Any, int] | None = getattr(_local, "held", None)
        if held is None:
            return plain(self, *args, **kwargs)
        done(held.pop(sock, None))  # the block's answer before, on this connection
        key = watch(current(), sock)
        if key is not None:
            held[sock] = key  # until the `during` block ends: its body is read in it
        return plain(self, *args, **kwargs)

    getresponse._xdl_watched = True  # type: ignore[attr-defined]
    cls.getresponse = getresponse  # type: ignore[method-assign]


class SignalsStop:
    """While a batch runs (`take()`, then `give_back()`), SIGINT and SIGTERM only set
    `stop`: the batch's workers stop, and every line of what they did still comes.
    Raised as KeyboardInterrupt wherever the main thread was, a signal lost lines: the
    result just taken off a queue, or every line still to come when it landed while the
    caller printed one (`fetch -j 8`, one Ctrl-C: 2 rounds in 10 lost a downloaded
    file's line and 180 `interrupted` ones). `raise_signalled()`, at the end, calls the
    handler put aside for the first signal: the command ends as it did (130, 143).

    Only in the `xdl` command (`take_signals`): a program that calls `fetch_many` keeps
    its signals as they are (it may leave a batch unread, where a handler of ours would
    swallow its Ctrl-C). Only Python handlers on the main thread are put aside. The
    handler passes the signal to a thread of ours (`SimpleQueue.put` may be called from
    a handler; `Event.set` might wait on a lock the interrupted code holds)."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self.signalled: int | None = None
        #: While set, a signal is raised at once, as before: the main thread may be
        #: blocked where only that ends the wait (reading the next input from a pipe).
        self.raising = False
        self._taken: dict[int, Any] = {}
        self._calls: queue.SimpleQueue[int | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._forced: float | None = None  # the `blocking()` wait a signal was raised in

    def take(self) -> SignalsStop:
        """Put the handlers aside (in the `xdl` command, on the main thread)."""
        if not _by_command or threading.current_thread() is not threading.main_thread():
            return self
        for number in (signal.SIGINT, signal.SIGTERM):
            handler = signal.getsignal(number)
            if callable(handler):
                self._taken[number] = handler
                signal.signal(number, self._on_signal)
        if self._taken:
            self._thread = threading.Thread(target=self._pass_on, name="xdl-signals", daemon=True)
            self._thread.start()
        return self

    def next_input(self, source: Iterator[T]) -> T | None:
        """The next of `source`, None at its end. A signal is raised at once while it is
        read from a pipe or a terminal (`Inputs.may_wait`): there only that ends a wait
        for a line that may never come."""
        self.raising = getattr(source, "may_wait", False)
        try:
            return next(source, None)
        finally:
            self.raising = False

    def _on_signal(self, number: int, frame: Any) -> None:
        if self.raising:  # said, as a held one is: what the caller still waits on after
            self._held(number)  # it (a queue lock, a write) gives up past BLOCKED
        if self.raising or self._thread is None:  # (ended: left in place by a batch after)
            self._taken[number](number, frame)
        self._calls.put(number)

    def _held(self, number: int) -> None:
        global _held_since, _first
        if self.signalled is None:
            self.signalled = number
            _held_since = time.monotonic()
        if _first is None:
            _first = number

    def _pass_on(self) -> None:
        while True:
            try:
                number = self._calls.get(timeout=BLOCKED / 4)
            except queue.Empty:
                self._unless_blocked()
                continue
            if number is None:
                return
            self._held(number)
            self.stop.set()

    def _unless_blocked(self) -> None:
        """Signalled, and the main thread has waited in one `blocking()` call for longer
        than BLOCKED seconds (its output is a pipe nobody reads, the queue is locked by
        another process): the signal is sent again and raised this time, as it was
        before this class, so that it never waits on a reader that does not read."""
        since = _blocked_since
        if self.signalled is None or since is None or since == self._forced:
            return
        if time.monotonic() - since >= BLOCKED:
            self._forced = since  # once a wait: the raise ends it
            self.raising = True
            os.kill(os.getpid(), self.signalled)

    def give_back(self) -> None:
        """The handlers put aside back in place."""
        for number, handler in self._taken.items():
            if signal.getsignal(number) == self._on_signal:  # else a later batch's: it
                signal.signal(number, handler)  # puts ours back, which passes it on
        if self._thread is not None:
            self._calls.put(None)
            self._thread.join()
            self._thread = None

    def raise_signalled(self) -> None:
        """As the first signal would have, had it not only stopped the batch."""
        if self.signalled is not None:
            self._taken[self.signalled](self.signalled, None)


def back_off(stop: threading.Event, attempt: int) -> None:
    """The wait before a request is sent again after failed attempt `attempt` (from 0):
    0.5 s, doubling, at most 4 s. A stop in the wait is `Interrupted`: no request more
    (a Ctrl-C in the waits sent every retry left at once)."""
    if stop.wait(min(4.0, 0.5 * 2**attempt)):
        from .errors import Interrupted

        raise Interrupted("interrupted")


#: A signal waits this long (seconds) for a main thread blocked in `blocking()`.
BLOCKED = 1.0
_blocked_since: float | None = None
_held_since: float | None = None  # when a signal was first held back (monotonic)
_first: int | None = None  # the first signal a batch took, whichever batch


def first_signal() -> int | None:
    """The first SIGINT or SIGTERM a batch of this process took (None: none): the one
    the exit status says, whatever a second one raised on the way out."""
    return _first


def signal_waited() -> bool:
    """Whether a signal held back for the lines' sake (`SignalsStop`) has waited BLOCKED
    seconds or more: a write that is still waiting for its reader is given up."""
    since = _held_since
    return since is not None and time.monotonic() - since >= BLOCKED


@contextlib.contextmanager
def blocking() -> Iterator[None]:
    """The main thread's call inside may wait for good on something outside (a pipe's
    reader, another process's lock): a signal held back for the lines' sake ends it if
    it has waited over BLOCKED seconds (`SignalsStop`)."""
    global _blocked_since
    _blocked_since = time.monotonic()
    try:
        yield
    finally:
        _blocked_since = None


_by_command = False


def take_signals() -> None:
    """The `xdl` command's batches take SIGINT and SIGTERM (`SignalsStop`)."""
    global _by_command
    _by_command = True
