"""A download's stop shuts the socket it waits on, and only while that socket still
carries the answer it watches: connections are kept alive and shared by the workers, and
the next download on a connection must never see its body cut short by another's stop."""

from __future__ import annotations

import http.server
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

import media_site
from xdl.core import http as xdl_http  # installs the watch of every getresponse
from xdl.core import stopping
from xdl.core.fetch import FetchOptions, fetch_many
from xdl.core.inputs import iter_inputs

BODY = 32 * 1024 * 1024  # more than the sockets' buffers hold: read after the stop


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.path == "/first":  # kept alive: its connection goes back to the pool
            self.send_response(200)
            self.send_header("Content-Length", "5")
            self.end_headers()
            self.wfile.write(b"hello")
            return
        # a body that ends when the server closes: an early end would pass for its end
        self.send_response(200)
        self.send_header("Connection", "close")
        self.end_headers()
        block = b"x" * (1 << 20)
        for _ in range(BODY // len(block)):
            self.wfile.write(block)
        self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def keepalive_site() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_stopped_download_shuts_the_socket_it_watches() -> None:
    ours, peer = socket.socketpair()
    with ours, peer:
        stop = threading.Event()
        key = stopping.watch(stop, ours)
        stop.set()
        stopping._watcher.shut_stopped()
        stopping.done(key)
        assert ours.recv(1) == b""  # shut: the wait ends at once


def test_a_stop_leaves_a_socket_that_moved_on_to_another_answer() -> None:
    ours, peer = socket.socketpair()
    with ours, peer:
        stop = threading.Event()
        key = stopping.watch(stop, ours)
        stopping.next_turn(ours)  # the connection waits for another download's answer
        stop.set()
        stopping._watcher.shut_stopped()
        stopping.done(key)
        peer.sendall(b"still open")
        assert ours.recv(64) == b"still open"


def test_a_stop_does_not_cut_the_body_of_the_next_download_on_its_connection(
    keepalive_site: str,
) -> None:
    """One download's body ended and its connection went back to the pool; the next
    download took it. The first one's stop, seen late, leaves the second's body whole
    (it was read to its end at the server's close: cut short, it looked complete)."""
    session = requests.Session()
    site = keepalive_site
    first = session.get(f"{site}/first", stream=True)
    sock = first.raw.connection.sock
    stop = threading.Event()
    key = stopping.watch(stop, sock)  # as `http.chunks` watches a body it reads
    assert first.content == b"hello"  # read: the connection is back in the pool
    second = session.get(f"{site}/second", stream=True)
    assert xdl_http._socket_of(second) is sock  # the same kept-alive connection
    stop.set()
    stopping._watcher.shut_stopped()  # what the watcher thread does a few times a second
    stopping.done(key)
    got = 0
    while block := second.raw.read(1 << 20):
        got += len(block)
    assert got == BODY
    session.close()


# -- Ctrl-C during a batch: every input still gets its line ------------------------------


@pytest.fixture(scope="module")
def slow_files(site: Any) -> Any:
    @site.route("/stopping/")
    def slow(r: Any) -> None:
        time.sleep(0.05)
        r.send_bytes(media_site.make_bytes(4096, 7))

    return site


def test_ctrl_c_while_the_caller_prints_a_line_loses_no_line(
    slow_files: Any, tmp_path: Path
) -> None:
    """`fetch -j 8` prints each result from the main thread. A Ctrl-C there raised in the
    printing code, which closed the batch: the files still downloading were finished
    with no line, and the inputs not started had no `interrupted` line (one Ctrl-C: 2
    rounds in 10). Now it stops the batch, every line still comes (done ones `ok`, the
    rest `interrupted`), then KeyboardInterrupt, and Ctrl-C is Python's again."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers are set on the main thread only")
    urls = [slow_files.url(f"/stopping/{i}.bin") for i in range(24)]
    before = signal.getsignal(signal.SIGINT)
    seen: list[Any] = []
    with pytest.raises(KeyboardInterrupt):
        for result in fetch_many(iter_inputs(urls), FetchOptions(output_dir=str(tmp_path)), jobs=4):
            seen.append(result)
            if len(seen) == 3:
                os.kill(os.getpid(), signal.SIGINT)  # lands here, in the caller's code
    assert signal.getsignal(signal.SIGINT) is before
    assert sorted(r.url for r in seen) == sorted(urls)  # one line each
    done = {r.path for r in seen if r.ok}
    assert done == {str(p) for p in tmp_path.glob("*.bin")}  # no file without its line
    interrupted = [r for r in seen if not r.ok]
    assert interrupted and all(r.error["code"] == "interrupted" for r in interrupted)
