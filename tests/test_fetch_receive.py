"""How a body reaches the disk on the HTTP tier (written on one thread, hashed on
another). Whatever the body's shape, what a user would check holds: the file has the
bytes the server sent, the line's sha256 is theirs, a body cut short is never a complete
file, `-r` still limits, a killed download resumes, the connection is kept alive."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import media_site

XDL = str(Path(sys.executable).parent / "xdl")
#: Written and hashed on second threads (at least target.PIPELINE_FROM).
BIG = media_site.make_bytes(6 * 1024 * 1024 + 4321, 71)
#: Hashed as it is written.
SMALL = media_site.make_bytes(300 * 1024 + 7, 72)
ZIPPED = gzip.compress(BIG, 1)
BODIES = {"big": BIG, "small": SMALL, "gzip": ZIPPED}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(x) for x in out.splitlines() if x.strip()]


def chunked(r: Any, data: bytes) -> None:
    """Transfer-Encoding: chunked, in pieces of uneven sizes (no length known ahead)."""
    r.send_status(200)
    r.send_header("Content-Type", "application/octet-stream")
    r.send_header("Transfer-Encoding", "chunked")
    r.end_headers()
    i, size = 0, 1
    while i < len(data):
        piece = data[i : i + size]
        r.wfile.write(b"%x\r\n" % len(piece) + piece + b"\r\n")
        i, size = i + len(piece), size * 7 % 300_007 + 1
    r.wfile.write(b"0\r\n\r\n")


def unsized(r: Any, data: bytes) -> None:
    """No Content-Length: the body ends when the connection does."""
    r.send_status(200)
    r.send_header("Content-Type", "application/octet-stream")
    r.send_header("Connection", "close")
    r.end_headers()
    r.close_connection = True
    r.wfile.write(data)


def gzipped(r: Any) -> None:
    """A gzip Content-Encoding xdl did not ask for: the file holds what was sent, as
    `curl -o` (without --compressed) keeps it."""
    r.send_bytes(ZIPPED, ranges=False, headers={"Content-Encoding": "gzip"})


@pytest.fixture(scope="module")
def bodies(site: Any) -> Any:
    for key, data in (("big", BIG), ("small", SMALL)):
        etag = media_site.etag_of(data)
        site.route(f"/recv/{key}/identity.bin")(
            lambda r, d=data, e=etag: r.send_bytes(
                d, etag=e, rate=float(r.query.get("rate", 0)) or None, chunk=64 * 1024
            )
        )
        site.route(f"/recv/{key}/chunked.bin")(lambda r, d=data: chunked(r, d))
        site.route(f"/recv/{key}/unsized.bin")(lambda r, d=data: unsized(r, d))
        site.route(f"/recv/{key}/short.bin")(
            lambda r, d=data, e=etag: r.send_bytes(d, etag=e, drop_after=len(d) // 2)
        )
    site.route("/recv/gzip/identity.bin")(gzipped)

    @site.route("/recv/port/")
    def port(r: Any) -> None:
        with site.lock:
            site.state.setdefault("recv-ports", []).append(r.client_address[1])
        r.send_bytes(SMALL)

    return site


@pytest.mark.parametrize(
    ("key", "shape"),
    [
        ("big", "identity"),
        ("big", "chunked"),
        ("big", "unsized"),
        ("gzip", "identity"),
        ("small", "identity"),
        ("small", "chunked"),
        ("small", "unsized"),
    ],
)
def test_every_body_shape_gives_the_bytes_sent(xdl: Any, bodies: Any, key: str, shape: str) -> None:
    data = BODIES[key]
    url = bodies.url(f"/recv/{key}/{shape}.bin")
    ran = xdl("fetch", "--strategy", "http", "--no-fallback", url)
    assert ran.exit_code == 0, ran.stderr
    (line,) = ran.lines
    assert Path(line["path"]).read_bytes() == data
    assert line["sha256"] == sha(data) and line["bytes"] == len(data)
    assert not list(Path.cwd().glob("*.part*"))


@pytest.mark.parametrize("key", ["big", "small"])
def test_a_body_cut_short_is_never_a_complete_file(xdl: Any, bodies: Any, key: str) -> None:
    data = BODIES[key]
    url = bodies.url(f"/recv/{key}/short.bin")
    ran = xdl("fetch", "--strategy", "http", "--no-fallback", "--retries", "0", url)
    assert ran.exit_code == 1
    (line,) = ran.lines
    assert line["ok"] is False and line["error"]["code"] == "network"
    assert not Path("short.bin").exists()
    part = Path("short.bin.part").read_bytes()
    assert 0 < len(part) <= len(data) // 2 and data.startswith(part)  # kept for resuming


@pytest.mark.parametrize("shape", ["identity", "chunked"])
def test_the_rate_limit_holds_whatever_the_body_shape(xdl: Any, bodies: Any, shape: str) -> None:
    rate = 6 * 1024 * 1024
    began = time.monotonic()
    ran = xdl("fetch", "--strategy", "http", "-r", "6M", bodies.url(f"/recv/big/{shape}.bin"))
    took = time.monotonic() - began
    assert ran.exit_code == 0, ran.stderr
    assert ran.lines[0]["sha256"] == sha(BIG)
    # The bucket starts empty and bursts at most 1/16 s of the rate: a machine that is
    # slow only lowers this ratio.
    assert len(BIG) / took < rate * 1.2


def test_a_download_killed_resumes_to_the_same_bytes(bodies: Any, tmp_path: Path) -> None:
    url = bodies.url("/recv/big/identity.bin?rate=2000000")
    first = subprocess.Popen([XDL, "fetch", "--strategy", "http", url], cwd=tmp_path,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    part = tmp_path / "identity.bin.part"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (not part.exists() or part.stat().st_size < 1 << 20):
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=10)
    kept = part.stat().st_size
    assert 0 < kept < len(BIG) and BIG.startswith(part.read_bytes())
    done = subprocess.run([XDL, "fetch", "--strategy", "http", url.split("?")[0]],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    (line,) = lines(done.stdout)
    assert line["resumed_from"] and line["resumed_from"] >= kept
    assert line["sha256"] == sha(BIG) == sha((tmp_path / "identity.bin").read_bytes())
    assert not list(tmp_path.glob("*.part*"))


def test_files_read_to_their_end_leave_the_connection_for_the_next(xdl: Any, bodies: Any) -> None:
    bodies.state["recv-ports"] = []
    urls = [bodies.url(f"/recv/port/{n}.bin") for n in range(3)]
    ran = xdl("fetch", "-j", "1", "--strategy", "http", *urls)
    assert ran.exit_code == 0, ran.stderr
    assert [x["sha256"] for x in ran.lines] == [sha(SMALL)] * 3
    assert len(set(bodies.state["recv-ports"])) == 1  # one connection, kept alive


def test_the_workers_share_one_keep_alive_pool_per_host(xdl: Any, bodies: Any) -> None:
    """-j 4 with --per-host 1: one request at a time goes to the host, so one connection
    serves them all (a pool a worker thread opened one connection a worker)."""
    bodies.state["recv-ports"] = []
    urls = [bodies.url(f"/recv/port/shared-{n}.bin") for n in range(8)]
    ran = xdl("fetch", "-j", "4", "--per-host", "1", "--strategy", "http", *urls)
    assert ran.exit_code == 0, ran.stderr
    assert [x["sha256"] for x in ran.lines] == [sha(SMALL)] * 8
    assert len(set(bodies.state["recv-ports"])) == 1


def test_a_fresh_part_is_not_truncated(
    xdl: Any, bodies: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Truncating the new, empty `.part` to 0 cost 0.3 s a GiB: ext4 then writes the whole
    file out when it is closed (auto_da_alloc). Only a `.part` that is cut is truncated."""
    cuts: list[int] = []
    real = os.ftruncate

    def cut(fd: int, n: int) -> None:  # the .part's cuts (its meta is rewritten whole)
        if os.readlink(f"/proc/self/fd/{fd}").endswith(".part"):
            cuts.append(n)
        real(fd, n)

    monkeypatch.setattr(os, "ftruncate", cut)
    ran = xdl("fetch", "--strategy", "http", bodies.url("/recv/big/identity.bin"))
    assert ran.exit_code == 0 and ran.lines[0]["sha256"] == sha(BIG)
    assert cuts == []
    Path("identity.bin").unlink()  # a .part of another version is still cut
    url = bodies.url("/recv/big/identity.bin")
    Path("identity.bin.part").write_bytes(BIG[:1000] + b"of another version")
    Path("identity.bin.part.meta").write_text(json.dumps({"url": url, "etag": '"old"'}))
    ran = xdl("fetch", "--strategy", "http", url)
    assert ran.exit_code == 0, ran.stderr
    assert ran.lines[0]["resumed_from"] is None and cuts == [0]
    assert Path("identity.bin").read_bytes() == BIG
