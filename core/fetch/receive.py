"""A response body into the owned `.part`, at the speed of curl on one connection.

The body is read into a small ring of preallocated buffers (`readinto`: no new bytes per
chunk, no copy in urllib3); each buffer is written by the reading thread while it is
still in the CPU's cache, then hashed by a second thread from the same buffer (hashlib
lets go of the GIL) while the next one is read. The ring bounds the memory in flight.
Limits, the rate (-r), a stop and the progress are the target's, counted as bytes land.

(Measured on the benchmark's machine, 1 GiB from nginx: 1 MiB buffers took twice the
kernel time of 256 KiB ones, their copy into the page cache reading from memory instead
of the cache. `os.splice` socket → file used less CPU at best but was bimodal there: its
large page-cache writes sometimes cost 2× the whole download, so it is not used.)
"""

from __future__ import annotations

import functools
import queue
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..http import Body
    from .target import Target

#: Buffers small enough to stay in the CPU's cache while they are written and hashed,
#: enough of them that the reader does not wait for the hash.
BUFFER = 256 * 1024
RING = 4


def receive(target: Target, body: Body, chunk: int) -> None:
    """Append the rest of `body` to `target` (begun), at most `chunk` bytes at a time."""
    left = body.left()
    size = max(1, min(BUFFER, chunk, left if left is not None else BUFFER))
    free: queue.SimpleQueue[memoryview] = queue.SimpleQueue()
    made = 0
    while True:
        try:
            buffer = free.get_nowait()
        except queue.Empty:
            if made < RING:  # a small body needs one buffer, not four
                buffer, made = memoryview(bytearray(size)), made + 1
            else:
                buffer = free.get()  # the hashing thread gives one back
        n = body.readinto(buffer)
        if not n:
            return
        target.write(buffer[:n], functools.partial(free.put, buffer))
