"""Loopback servers for the benchmarks: nginx when installed (a real sendfile/Range static
server, run with its own temporary config as a non-daemon child), else a small Python one.

Both serve the same tree: files under a data directory, plus `/t/<anything>` answering
the one small file `tiny.txt` (so a queue of 100,000 distinct URLs needs one file).
Files under `/limited/` are sent at most `PER_CONNECTION` bytes a second per connection,
as many servers and CDNs do (nginx's `limit_rate`).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

#: The per-connection cap of `/limited/` (the case aria2c's -x and xdl's -N are for).
PER_CONNECTION = 4 * 1024 * 1024

TYPES = {".bin": "application/octet-stream", ".mp4": "video/mp4", ".txt": "text/plain"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_listening(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


NGINX_CONF = """\
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    types {{ application/octet-stream bin; video/mp4 mp4; text/plain txt; }}
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location /t/ {{ try_files /tiny.txt =404; }}
        location /s/ {{ try_files /small.bin =404; }}
        location /limited/ {{ limit_rate {per_connection}; }}
    }}
}}
"""


class Nginx:
    """nginx in the foreground (master_process off: one process, no user switch)."""

    name = "nginx"

    def __init__(self, root: Path, tmp: Path) -> None:
        self.root, self.tmp = root, tmp
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Nginx:
        self.tmp.mkdir(parents=True, exist_ok=True)
        conf = self.tmp / "nginx.conf"
        conf.write_text(
            NGINX_CONF.format(
                tmp=self.tmp, port=self.port, root=self.root, per_connection=PER_CONNECTION
            )
        )
        exe = shutil.which("nginx") or "/usr/sbin/nginx"
        self.proc = subprocess.Popen(
            [exe, "-p", str(self.tmp), "-c", str(conf), "-e", str(self.tmp / "error.log")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_listening(self.port)
        except RuntimeError:
            self.stop()
            log = (self.tmp / "error.log").read_text(errors="replace")[-500:]
            raise RuntimeError(f"nginx did not start: {log}") from None
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def nginx_available() -> bool:
    return shutil.which("nginx") is not None or os.access("/usr/sbin/nginx", os.X_OK)


class _StaticHandler(BaseHTTPRequestHandler):
    """GET/HEAD of files under `root`, with Range, answered by os.sendfile."""

    protocol_version = "HTTP/1.1"
    root: Path

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path.startswith(("/t/", "/s/")):  # any name: the one tiny or small file
            file = self.root / ("tiny.txt" if path.startswith("/t/") else "small.bin")
        else:
            file = (self.root / path.lstrip("/")).resolve()
        if not file.is_file() or (self.root not in file.parents and file.parent != self.root):
            body = b"not found\n"
            self.send_response(404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command == "GET":
                self.wfile.write(body)
            return
        size = file.stat().st_size
        start, end = 0, size - 1
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if m and int(m.group(1)) < size:
            start = int(m.group(1))
            end = min(int(m.group(2)), end) if m.group(2) else end
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        else:
            self.send_response(200)
        self.send_header("Content-Type", TYPES.get(file.suffix, "application/octet-stream"))
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if self.command == "HEAD":
            return
        self.wfile.flush()
        with file.open("rb") as f, contextlib.suppress(OSError):
            if path.startswith("/limited/"):
                _send_limited(self.wfile, f, start, end - start + 1)
            else:
                self.connection.sendfile(f, start, end - start + 1)

    do_HEAD = do_GET


def _send_limited(out: Any, f: Any, start: int, count: int) -> None:
    """Send `count` bytes from `start` at PER_CONNECTION bytes a second."""
    f.seek(start)
    began, sent = time.monotonic(), 0
    while sent < count and (block := f.read(min(64 * 1024, count - sent))):
        out.write(block)
        sent += len(block)
        ahead = sent / PER_CONNECTION - (time.monotonic() - began)
        if ahead > 0:
            time.sleep(ahead)


class _Quiet(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


class PythonStatic:
    """The fallback static server when nginx is not installed: a thread in this process."""

    name = "python http.server + os.sendfile"

    def __init__(self, root: Path, tmp: Path) -> None:
        handler = type("Static", (_StaticHandler,), {"root": root.resolve()})
        self.server = _Quiet(("127.0.0.1", 0), handler)
        self.port = self.server.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"

    def start(self) -> PythonStatic:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_static(root: Path, tmp: Path, kind: str = "auto") -> Nginx | PythonStatic:
    """nginx when installed (or asked for), else the Python server."""
    if kind == "nginx" or (kind == "auto" and nginx_available()):
        return Nginx(root, tmp).start()
    return PythonStatic(root, tmp).start()
