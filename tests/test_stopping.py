"""A download's stop shuts the socket it waits on, and only while that socket still
carries the answer it watches: connections are kept alive and shared by the workers, and
the next download on a connection must never see its body cut short by another's stop."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator

import pytest
import requests

from xdl.core import http as xdl_http  # installs the watch of every getresponse
from xdl.core import stopping

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
def site() -> Iterator[str]:
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
    site: str,
) -> None:
    """One download's body ended and its connection went back to the pool; the next
    download took it. The first one's stop, seen late, leaves the second's body whole
    (it was read to its end at the server's close: cut short, it looked complete)."""
    session = requests.Session()
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
