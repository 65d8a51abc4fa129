"""A download's stop shuts the socket it waits on, and only while that socket still
carries the answer it watches: connections are kept alive and shared by the workers, and
the next download on a connection must never see its body cut short by another's stop."""

from __future__ import annotations

import http.server
import json
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


@pytest.fixture
def taken(monkeypatch: pytest.MonkeyPatch) -> None:
    """As in the `xdl` command: its batches take SIGINT and SIGTERM."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers are set on the main thread only")
    monkeypatch.setattr(stopping, "_by_command", True)


def test_ctrl_c_while_the_caller_prints_a_line_loses_no_line(
    slow_files: Any, tmp_path: Path, taken: None
) -> None:
    """`fetch -j 8` prints each result from the main thread. A Ctrl-C there raised in the
    printing code, which closed the batch: the files still downloading were finished
    with no line, and the inputs not started had no `interrupted` line (one Ctrl-C: 2
    rounds in 10). Now it stops the batch, every line still comes (done ones `ok`, the
    rest `interrupted`), then KeyboardInterrupt, and Ctrl-C is Python's again."""
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


def test_a_program_calling_fetch_many_keeps_its_signals(
    slow_files: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the `xdl` command's batches take SIGINT: a program may leave a batch unread,
    and a handler of ours would then swallow its Ctrl-C."""
    monkeypatch.setattr(stopping, "_by_command", False)  # (a command run in this process)
    before = signal.getsignal(signal.SIGINT)
    batch = fetch_many(
        iter_inputs([slow_files.url("/stopping/a.bin")]), FetchOptions(output_dir=str(tmp_path))
    )
    next(batch)
    assert signal.getsignal(signal.SIGINT) is before
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)  # Ctrl-C still ends the wait at once


def test_batches_ended_out_of_order_give_ctrl_c_back(
    slow_files: Any, tmp_path: Path, taken: None
) -> None:
    """Two batches read in turn end in the order they started, not the reverse: the first
    could not put Python's handler back (the second's was in place), and the second then
    put back the first's, whose thread had ended. An ended batch's handler passes the
    signal on: Ctrl-C raises again."""
    options = FetchOptions(output_dir=str(tmp_path))
    first = fetch_many(iter_inputs([slow_files.url("/stopping/b.bin")]), options)
    second = fetch_many(iter_inputs([slow_files.url("/stopping/c.bin")]), options)
    next(first)
    next(second)
    assert list(first) == [] and list(second) == []
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)


def test_inputs_say_whether_reading_them_can_wait(tmp_path: Path) -> None:
    """A signal is raised at once only while the next input may come from a pipe (only
    that ends its wait); raised while a regular `-a` file was read, it ended the reading
    and the inputs not started lost their `interrupted` lines (7 of 15 rounds)."""
    import io

    listed = tmp_path / "urls.txt"
    listed.write_bytes(b"https://a.example/1\n")
    with listed.open("rb") as f:
        assert not iter_inputs(["https://a.example/0"], f, str(listed)).may_wait
    assert not iter_inputs([], io.BytesIO(b"https://a.example/1\n")).may_wait
    r, w = os.pipe()
    with os.fdopen(r, "rb") as pipe, os.fdopen(w, "wb") as writer:
        writer.write(b"https://a.example/2\n")
        writer.close()
        inputs = iter_inputs(["https://a.example/0"], stdin=pipe)
        assert inputs.may_wait  # the pipe is still to be read
        assert [i.value for i in inputs] == ["https://a.example/0", "https://a.example/2"]
        assert not inputs.may_wait  # read to its end


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_ends_a_fetch_whose_stderr_nobody_reads(
    site: Any, tmp_path: Path, sig: int, code: int
) -> None:
    """Its stderr a full pipe nobody reads, a `fetch` with a failure a line waits in a
    write of its messages. A signal (a supervisor's `kill`) must not wait with it: past
    a second its messages are dropped (nobody would read them), every input still has
    its line on stdout, and the exit is 130 (143). It waited for good: at each message,
    then in the blank line click wrote to stderr before xdl's own handling."""
    import subprocess
    import sys

    count = 40
    urls = tmp_path / "urls.txt"
    urls.write_text("".join(site.url(f"/nope/{i}.bin") + "\n" for i in range(count)))
    exe = Path(sys.executable).parent / "xdl"
    reader, writer = os.pipe()
    os.set_blocking(writer, False)
    with pytest.raises(BlockingIOError):  # full before xdl writes a byte
        while True:
            os.write(writer, b"x" * 4096)
    os.set_blocking(writer, True)
    with (tmp_path / "out").open("w+b") as out:
        args = ["fetch", "-j", "4", "--strategy", "http", "-o", str(tmp_path / "d")]
        proc = subprocess.Popen(
            [str(exe), *args, "-a", str(urls)], stdout=out, stderr=writer, stdin=subprocess.DEVNULL
        )
        os.close(writer)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not _in_its_batch(proc.pid, tmp_path / "d"):
                time.sleep(0.05)  # its first failure's message waits: the batch has begun
            proc.send_signal(sig)
            assert proc.wait(timeout=30) == code
        finally:
            proc.kill()
            os.close(reader)
        out.seek(0)
        lines = out.read().decode().splitlines()
    assert len(lines) == count


def _in_its_batch(pid: int, folder: Path) -> bool:
    """Whether `fetch` (process `pid`) runs its batch: its folder made, and one of its
    threads waits to write (a pipe's write, or a poll for room in it: Linux /proc)."""
    if not folder.is_dir():
        return False
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            wchan = (task / "wchan").read_text()
        except OSError:
            continue
        if "poll" in wchan or ("pipe" in wchan and "write" in wchan):
            return True
    return False


def test_a_fetch_with_stderr_closed_still_fetches(slow_files: Any, tmp_path: Path) -> None:
    """`2>&-`: sys.stderr is None. Asking it whether it is a terminal (for the bars)
    ended every `fetch` with exit 3, no line, no file."""
    import subprocess
    import sys

    exe = Path(sys.executable).parent / "xdl"
    url = slow_files.url("/stopping/closed.bin")
    ran = subprocess.run(
        [str(exe), "fetch", "-o", str(tmp_path), url],
        capture_output=False, stdout=subprocess.PIPE, preexec_fn=lambda: os.close(2),
    )  # fmt: skip
    assert ran.returncode == 0
    assert json.loads(ran.stdout)["ok"] is True
    assert (tmp_path / "closed.bin").stat().st_size == 4096


@pytest.mark.parametrize("gap", [0.005, 0.02])
def test_a_second_signal_does_not_change_the_exit_status(tmp_path: Path, gap: float) -> None:
    """SIGINT, then SIGTERM a few ms later (and the reverse): the status is the first's.
    The second landed while the interpreter shut down, its handlers back to the
    defaults, and killed it by that signal."""
    import subprocess
    import sys

    exe = Path(sys.executable).parent / "xdl"
    pairs = ((signal.SIGINT, signal.SIGTERM, 130), (signal.SIGTERM, signal.SIGINT, 143))
    for first, second, code in pairs:
        proc = subprocess.Popen(
            [str(exe), "fetch", "-o", str(tmp_path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip (a pipe that stays open: it waits for its first line)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not _waits_on_stdin(proc.pid):
            time.sleep(0.05)
        proc.send_signal(first)
        time.sleep(gap)
        if proc.poll() is None:
            proc.send_signal(second)
        assert proc.wait(timeout=30) == code


def _waits_on_stdin(pid: int) -> bool:
    """Whether process `pid`'s main thread waits in a read of a pipe (Linux /proc)."""
    try:
        wchan = Path(f"/proc/{pid}/wchan").read_text()
    except OSError:
        return False
    return "pipe" in wchan and "read" in wchan
