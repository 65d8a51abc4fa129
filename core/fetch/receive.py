"""A response body into the owned `.part`, at the speed of curl on one connection.

The bytes are written on the thread that reads them and hashed on a second one (hashlib
lets go of the GIL), in one of two ways:

- spliced: on a plain-HTTP connection with a known length the kernel moves the body
  socket → pipe → file (`os.splice`), no copy through Python; the second thread hashes
  the file just behind the writer, so the checksum is of the bytes on disk;
- read: otherwise (TLS, chunked, no length) into a small ring of preallocated buffers
  (`readinto`, no new bytes per chunk), each written while it is still in the CPU's cache
  and hashed by the second thread from the same buffer; the ring bounds the memory.

Limits, the rate (-r), a stop and the progress are the target's, counted as bytes land.
"""

from __future__ import annotations

import fcntl
import functools
import os
import queue
from typing import TYPE_CHECKING

from .. import errors

if TYPE_CHECKING:
    from ..http import Body
    from .target import Target

#: Bodies at least this big are spliced when they can be (smaller ones are not worth a
#: thread, and keep their connection open for the next request).
SPLICE_FROM = 4 * 1024 * 1024
#: The pipe between socket and file, and so the most moved per splice.
PIPE_SIZE = 1024 * 1024
#: The ring a body is read into when it is not spliced: buffers small enough to stay in
#: the CPU's cache while they are written and hashed (1 MiB ones measured 2× slower),
#: enough of them that the reader does not wait for the hash.
BUFFER = 256 * 1024
RING = 4


def receive(target: Target, body: Body, chunk: int) -> None:
    """Append the rest of `body` to `target` (begun), at most `chunk` bytes at a time."""
    first = body.read_buffered()
    big = (body.left() or 0) >= SPLICE_FROM
    if big and body.spliceable() and _splice(target, body, first, chunk):
        return
    _read(target, body, first, chunk)


def _splice(target: Target, body: Body, first: bytes, chunk: int) -> bool:
    """Splice the body into the file; False when this socket cannot be spliced (nothing
    was taken from it: the caller reads it instead)."""
    try:
        r, w = os.pipe2(os.O_CLOEXEC)
    except OSError:
        return False
    try:
        try:
            fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
        except OSError:
            pass  # the default pipe (64 KiB) works, in more calls
        most = min(chunk, fcntl.fcntl(w, fcntl.F_GETPIPE_SZ))
        started = False
        while True:
            target.check_stop()
            n = body.splice_to(w, most)
            if n is None:
                if started:
                    raise errors.NetworkError("the connection could not be read on")
                return False  # this socket cannot be spliced: read it
            if not started:
                target.hash_from_file()
                if first:
                    target.write(first)
                started = True
            if n == 0:
                return True
            if not target.splice_in(r, n):
                _read(target, body, b"", chunk)  # the file cannot: read the rest
                return True
    finally:
        os.close(r)
        os.close(w)


def _read(target: Target, body: Body, first: bytes, chunk: int) -> None:
    """Read the body into a ring of buffers, each written and then hashed beside."""
    if first:
        target.write(first)
    left = body.left()
    size = max(1, min(BUFFER, chunk, left if left is not None else BUFFER))
    free: queue.SimpleQueue[memoryview] = queue.SimpleQueue()
    made = 0
    while True:
        try:
            buffer = free.get_nowait()
        except queue.Empty:
            if made < RING:
                buffer, made = memoryview(bytearray(size)), made + 1
            else:
                buffer = free.get()  # the hashing thread gives one back
        n = body.readinto(buffer)
        if not n:
            return
        target.write(buffer[:n], functools.partial(free.put, buffer))
