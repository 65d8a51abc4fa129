"""The owned target (core/fetch/target.py) at the edges of its life: a kill at each link,
rename and unlink that puts a file in place (strace's injection), claims of one name
racing that window, a `.part` swapped for a link while it is written, a file swapped
before --cache keeps it, links and FIFOs planted where xdl reads or writes, a disk that
fills up on each tier (ffmpeg's output included).

Each test checks what a user sees: the line (code, sha256 against the bytes at its
path), the exit code, the files left in the folder."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

import media_site
from xdl.core import errors
from xdl.core.fetch.target import Target

XDL = str(Path(sys.executable).parent / "xdl")
BIG = media_site.make_bytes(3 << 20, 83)
DATA = media_site.make_bytes(320 * 1024, 81)  # above SMALL_FILE: written with a meta
SMALL = media_site.make_bytes(2048, 82)  # at most SMALL_FILE: no meta
OTHER = media_site.make_bytes(48 * 1024, 82)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(x) for x in out.splitlines() if x.strip()]


def run(*args: str, cwd: Path, timeout: float = 120) -> tuple[int, list[dict[str, Any]], str]:
    proc = subprocess.run([XDL, *args], cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=timeout)  # fmt: skip
    return proc.returncode, lines(proc.stdout), proc.stderr


@pytest.fixture
def work() -> Path:
    return Path.cwd()


@pytest.fixture(scope="module")
def routes(site: Any) -> Any:
    site.route("/tgt/a/same.bin")(lambda r: r.send_bytes(DATA, etag='"tgt-a"'))
    site.route("/tgt/small/same.bin")(lambda r: r.send_bytes(SMALL, etag='"tgt-small"'))
    site.route("/tgt/b/same.bin")(lambda r: r.send_bytes(OTHER, etag='"tgt-b"'))

    @site.route("/tgt/n/same.bin")
    def numbered(r: Any) -> None:
        n = int(r.query["n"])
        r.send_bytes(media_site.make_bytes(8 * 1024 + n, 100 + n))

    @site.route("/tgt/swap.bin")
    def swap(r: Any) -> None:
        """Serves BIG; the first time for `key`, once xdl's `.part` of it is there, it is
        renamed away and a link to `victim` put in its place (mid-download)."""
        folder, victim = Path(r.query["dir"]), Path(r.query["victim"])
        with site.lock:
            first = r.command != "HEAD" and r.query["key"] not in site.state
            if first:
                site.state[r.query["key"]] = True
        part = folder / "swap.bin.part"

        def swap_part() -> None:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not (part.exists() and part.stat().st_size):
                time.sleep(0.01)
            part.rename(folder / "moved.part")
            part.symlink_to(victim)

        if not first or r.headers.get("Range"):  # segments: the .part is there, sized
            if first:
                swap_part()
            r.send_bytes(BIG, etag='"tgt-swap"')
            return
        r.send_status(200)
        r.send_header("Content-Length", str(len(BIG)))
        r.send_header("Accept-Ranges", "bytes")
        r.send_header("ETag", '"tgt-swap"')
        r.end_headers()
        r.wfile.write(BIG[: 64 << 10])
        r.wfile.flush()
        swap_part()
        r.wfile.write(BIG[64 << 10 :])

    @site.route("/tgt/nolength.bin")
    def nolength(r: Any) -> None:  # no Content-Length: no space can be reserved ahead
        r.send_status(200)
        r.send_header("Content-Type", "application/octet-stream")
        r.send_header("Connection", "close")
        r.end_headers()
        r.close_connection = True
        if r.command != "HEAD":
            for i in range(0, 2 * len(BIG), 64 << 10):
                r.wfile.write((BIG + BIG)[i : i + (64 << 10)])

    @site.route("/tgt/sized.bin")
    def sized(r: Any) -> None:
        r.send_bytes(media_site.make_bytes(int(r.query["size"]), 84))

    @site.route("/tgt/fills.bin")
    def fills(r: Any) -> None:
        """BIG in ranges; once xdl's `.part` is there (space reserved), another program
        fills the disk."""
        folder = Path(r.query["dir"])
        if r.command != "HEAD" and r.headers.get("Range"):
            with site.lock:
                first = not (folder / "filler").exists()
                if first:
                    (folder / "filler").write_bytes(b"")
            if first:
                try:
                    with open(folder / "filler", "wb") as f:
                        while True:
                            f.write(bytes(64 << 10))
                            f.flush()
                except OSError:
                    pass
        r.send_bytes(BIG, etag='"tgt-fills"')

    page = (
        "<html><head><title>Swapped</title></head><body>"
        '<video src="/tgt/swap.mp4" type="video/mp4"></video></body></html>'
    )
    site.route("/tgt/swap.html")(lambda r: r.send_bytes(page.encode(), "text/html"))

    @site.route("/tgt/swap.mp4")
    def swap_media(r: Any) -> None:
        """The media yt-dlp fetches; once its `.part` has bytes, it is renamed away and a
        link to `victim` put in its place (the folder and victim in site.state)."""
        if r.command == "HEAD" or "swap-dir" not in site.state:
            r.send_bytes(BIG, "video/mp4")
            return
        folder, victim = site.state.pop("swap-dir"), site.state["swap-victim"]
        r.send_status(200)
        r.send_header("Content-Type", "video/mp4")
        r.send_header("Content-Length", str(len(BIG)))
        r.end_headers()
        r.wfile.write(BIG[: 64 << 10])
        r.wfile.flush()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            parts = [p for p in folder.iterdir() if p.name.endswith(".mp4.part")]
            if parts and parts[0].stat().st_size:
                parts[0].rename(folder / "moved")
                parts[0].symlink_to(victim)
                break
            time.sleep(0.01)
        r.wfile.write(BIG[64 << 10 :])

    return site


# -- 6: a kill between link(NAME.part -> NAME) and unlink(NAME.part) ----------------------


def killed_after_link(folder: Path, name: str, url: str) -> None:
    """The disk as a kill -9 between the link into place and the unlink of `.part` leaves
    it: NAME and NAME.part one file (its origin recorded), the meta still there."""
    os.link(folder / name, folder / f"{name}.part")
    (folder / f"{name}.part.meta").write_text(json.dumps({"url": url}))


def test_a_kill_after_the_link_into_place_does_not_fail_the_item_forever(
    routes: Any, work: Path
) -> None:
    url = routes.url("/tgt/a/same.bin")
    out = work / "out"
    code, got, err = run("fetch", "--strategy", "http", "-o", str(out), url, cwd=work)
    assert code == 0, err
    killed_after_link(out, "same.bin", url)
    code, got, err = run("fetch", "--strategy", "http", "-o", str(out), url, cwd=work)
    assert code == 0, (got, err)
    assert got[0]["skipped"] == "exists" and got[0]["sha256"] == sha(DATA)
    assert sorted(p.name for p in out.iterdir()) == ["same.bin"]
    assert (out / "same.bin").read_bytes() == DATA


def test_a_kill_after_the_link_into_place_lets_another_source_take_a_distinct_name(
    routes: Any, work: Path
) -> None:
    a, b = routes.url("/tgt/a/same.bin"), routes.url("/tgt/b/same.bin")
    out = work / "out"
    assert run("fetch", "--strategy", "http", "-o", str(out), a, cwd=work)[0] == 0
    killed_after_link(out, "same.bin", a)
    code, got, err = run("fetch", "--strategy", "http", "-o", str(out), b, cwd=work)
    assert code == 0, (got, err)
    assert Path(got[0]["path"]).name == "same (1).bin"
    assert Path(got[0]["path"]).read_bytes() == OTHER and got[0]["sha256"] == sha(OTHER)
    assert (out / "same.bin").read_bytes() == DATA
    assert sorted(p.name for p in out.iterdir()) == ["same (1).bin", "same.bin"]


def test_overwrite_after_a_kill_after_the_link_into_place(routes: Any, work: Path) -> None:
    url = routes.url("/tgt/a/same.bin")
    out = work / "out"
    assert run("fetch", "--strategy", "http", "-o", str(out), url, cwd=work)[0] == 0
    killed_after_link(out, "same.bin", url)
    code, got, err = run("fetch", "--overwrite", "--strategy", "http", "-o", str(out), url,
                         cwd=work)  # fmt: skip
    assert code == 0, (got, err)
    assert got[0]["sha256"] == sha(DATA) and not got[0].get("skipped"), got[0]
    assert sorted(p.name for p in out.iterdir()) == ["same.bin"]
    assert (out / "same.bin").read_bytes() == DATA


@pytest.mark.parametrize("with_name", [False, True])
def test_a_planted_hard_link_at_the_part_is_still_refused(
    routes: Any, work: Path, with_name: bool
) -> None:
    """NAME.part a second name of a file elsewhere (and NAME too, when `with_name`): not a
    leftover of ours (no origin recorded), refused; the file elsewhere untouched."""
    out, victim = work / "out", work / "victim.txt"
    out.mkdir()
    victim.write_bytes(b"precious\n")
    os.link(victim, out / "same.bin.part")
    if with_name:
        os.link(victim, out / "same.bin")
    code, got, _ = run("fetch", "--strategy", "http", "-o", str(out),
                       routes.url("/tgt/a/same.bin"), cwd=work)  # fmt: skip
    assert code == 1 and got[0]["error"]["code"] == "bad_input"
    assert victim.read_bytes() == b"precious\n"
    assert (out / "same.bin.part").exists()


@pytest.mark.skipif(not shutil.which("strace"), reason="strace is not installed")
@pytest.mark.parametrize(
    ("where", "overwrite", "syscall", "nth"),
    [
        ("a", False, "linkat", 1),  # before the link into place: the .part resumes
        ("a", False, "unlinkat", 1),  # linked, the meta still there
        ("a", False, "unlinkat", 2),  # linked, the meta gone, the .part not yet
        ("a", True, "unlinkat", 1),  # --overwrite: before the meta goes
        ("a", True, "renameat", 1),  # --overwrite: before the rename into place
        ("small", False, "linkat", 1),  # a small file (no meta): before the link
        ("small", False, "unlinkat", 1),  # linked, the .part not yet removed
        ("small", True, "renameat", 1),  # --overwrite: before the rename into place
    ],
)
def test_a_kill_at_each_step_of_putting_the_file_in_place_is_recovered(
    routes: Any, work: Path, where: str, overwrite: bool, syscall: str, nth: int
) -> None:
    """kill -9 (strace's injection) at each link, rename and unlink of the commit; the
    next run ends with the one whole file and nothing else in the folder."""
    url, out = routes.url(f"/tgt/{where}/same.bin"), work / "out"
    data = DATA if where == "a" else SMALL
    args = ["fetch", "--strategy", "http", "-o", str(out), url]
    if overwrite:
        assert run(*args, cwd=work)[0] == 0
        (out / "same.bin").write_bytes(b"an older version\n")  # what --overwrite replaces
        args.insert(1, "--overwrite")
    killed = subprocess.run(
        ["strace", "-f", "-qq", "-o", os.devnull, "-e", f"trace={syscall}",
         "-e", f"inject={syscall}:signal=KILL:when={nth}", XDL, *args],
        cwd=work, stdin=subprocess.DEVNULL, capture_output=True, timeout=120,
    )  # fmt: skip
    assert killed.returncode != 0 and killed.stdout == b"", killed
    code, got, err = run(*args, cwd=work)
    assert code == 0, (got, err)
    assert got[0]["sha256"] == sha(data) == sha((out / "same.bin").read_bytes())
    assert sorted(p.name for p in out.iterdir()) == ["same.bin"]
    code, got, err = run(*args, cwd=work)  # and again: the same
    assert code == 0 and sorted(p.name for p in out.iterdir()) == ["same.bin"], (got, err)


@pytest.mark.skipif(not shutil.which("strace"), reason="strace is not installed")
def test_a_kill_before_ytdlp_renames_its_whole_part_is_recovered(routes: Any, work: Path) -> None:
    """Killed between the end of yt-dlp's download and its rename: the whole `.part`
    made every later run fail (a resume past the end is 416, which yt-dlp does not
    recover from) and the page was saved instead of the video."""
    url, out = routes.url("/watch.html"), work / "out"
    killed = subprocess.run(
        ["strace", "-f", "-qq", "-o", os.devnull, "-e", "trace=rename",
         "-e", "inject=rename:signal=KILL:when=1", XDL, "fetch", "-o", str(out), url],
        cwd=work, stdin=subprocess.DEVNULL, capture_output=True, timeout=120,
    )  # fmt: skip
    assert killed.returncode != 0 and killed.stdout == b"", killed
    parts = [p for p in out.iterdir() if p.name.endswith(".mp4.part")]
    assert len(parts) == 1 and parts[0].stat().st_size > 0
    code, got, err = run("fetch", "-o", str(out), url, cwd=work)
    assert code == 0, (got, err)
    path = Path(got[0]["path"])
    assert got[0]["strategy"] == "ytdlp" and path.suffix == ".mp4", got[0]
    assert sha(path.read_bytes()) == got[0]["sha256"]
    assert sorted(p.name for p in out.iterdir()) == [path.name]


@pytest.mark.skipif(not shutil.which("strace"), reason="strace is not installed")
def test_a_kill_after_ytdlp_put_the_file_in_place_does_not_download_it_twice(
    routes: Any, work: Path
) -> None:
    """Killed after yt-dlp renamed the file into place, before the line: the next run
    knows the file as this source's (`exists`), not another's to keep beside a second
    copy `NAME (1)`; no meta is left behind."""
    url, out = routes.url("/watch.html"), work / "out"
    code, planned, _ = run("fetch", "--dry-run", "-o", str(out), url, cwd=work)
    final = planned[0]["path"]
    killed = subprocess.run(
        ["strace", "-f", "-qq", "-o", os.devnull, "-P", final, "-e", "trace=openat",
         "-e", "inject=openat:signal=KILL:when=1", XDL, "fetch", "-o", str(out), url],
        cwd=work, stdin=subprocess.DEVNULL, capture_output=True, timeout=120,
    )  # fmt: skip
    assert killed.returncode != 0 and killed.stdout == b"", killed
    assert Path(final).exists()
    code, got, err = run("fetch", "-o", str(out), url, cwd=work)
    assert code == 0, (got, err)
    assert got[0]["path"] == final and got[0]["skipped"] == "exists", got[0]
    assert sha(Path(final).read_bytes()) == got[0]["sha256"]
    assert sorted(p.name for p in out.iterdir()) == [Path(final).name]


def test_overwrite_from_the_cache_keeps_a_file_named_like_its_temporary(
    routes: Any, work: Path
) -> None:
    """`same.bin.part.cache` is a name a server may give (only `.part` endings are
    refused): placing `same.bin` from --cache with --overwrite must not remove it."""
    url, cache = routes.url("/tgt/a/same.bin"), work / "cache"
    assert run("fetch", "--cache", str(cache), "-o", str(work / "first"), url, cwd=work)[0] == 0
    out = work / "out"
    out.mkdir()
    (out / "same.bin.part.cache").write_bytes(b"someone's own file\n")
    code, got, err = run("fetch", "--overwrite", "--cache", str(cache), "-o", str(out), url,
                         cwd=work)  # fmt: skip
    assert code == 0 and got[0].get("cached"), (got, err)
    assert (out / "same.bin.part.cache").read_bytes() == b"someone's own file\n"
    assert sha((out / "same.bin").read_bytes()) == got[0]["sha256"] == sha(DATA)
    assert sorted(p.name for p in out.iterdir()) == ["same.bin", "same.bin.part.cache"]


def test_an_empty_part_left_beside_a_finished_file_is_cleared(routes: Any, work: Path) -> None:
    """A run killed while it looked at a finished file (its claim makes `.part`, then
    sees the file is there) leaves an empty `.part`: the next run clears it."""
    url, out = routes.url("/tgt/a/same.bin"), work / "out"
    assert run("fetch", "--strategy", "http", "-o", str(out), url, cwd=work)[0] == 0
    (out / "same.bin.part").write_bytes(b"")
    (out / "same.bin.part.meta").write_text(json.dumps({"url": url}))
    code, got, err = run("fetch", "--strategy", "http", "-o", str(out), url, cwd=work)
    assert code == 0 and got[0]["skipped"] == "exists", (got, err)
    assert sorted(p.name for p in out.iterdir()) == ["same.bin"]


@pytest.mark.parametrize("page", ["/tgt/a/same.bin", "/watch.html"])
def test_a_file_swapped_before_it_is_cached_is_not_cached(
    routes: Any, work: Path, xdl: Any, monkeypatch: pytest.MonkeyPatch, page: str
) -> None:
    """Another file of the same size put at the final name just before --cache keeps it
    (an attacker in the folder, simulated at that moment): the cache must not keep it
    under the checksum of the download, or a later `cached: true` line lies."""
    from xdl.core.fetch import cache as cache_module

    real_store = cache_module.Cache.store

    def swapped_store(self: Any, key: str, src: Path, **kw: Any) -> None:
        other = src.with_name("other")
        other.write_bytes(bytes(src.stat().st_size))
        os.replace(other, src)
        real_store(self, key, src, **kw)

    monkeypatch.setattr(cache_module.Cache, "store", swapped_store)
    url, cache = routes.url(page), str(work / "cache")
    first = xdl("fetch", "--cache", cache, "-o", "one", url)
    assert first.exit_code == 0, first.stderr
    monkeypatch.setattr(cache_module.Cache, "store", real_store)
    again = xdl("fetch", "--cache", cache, "-o", "two", url)
    assert again.exit_code == 0, again.stderr
    line = again.lines[0]
    assert sha(Path(line["path"]).read_bytes()) == line["sha256"], line
    assert not line.get("cached")


@pytest.mark.parametrize("planted", ["lock", "json", "data"])
def test_links_planted_in_the_cache_folder_are_never_written_through(
    routes: Any, work: Path, planted: str
) -> None:
    from xdl.core.fetch.cache import url_entry_key

    url, cache = routes.url("/tgt/a/same.bin"), work / "cache"
    victim = work / "victim.txt"
    victim.write_bytes(b"precious\n")
    cache.mkdir()
    key = url_entry_key(url)
    name = {"lock": f"{key}.lock", "json": f"{key}.json", "data": f"{key}.{sha(DATA)}.data"}
    (cache / name[planted]).symlink_to(victim)
    for out in ("one", "two"):
        code, got, err = run("fetch", "--cache", str(cache), "-o", str(work / out), url,
                             cwd=work)  # fmt: skip
        assert code == 0, (got, err)
        assert sha(Path(got[0]["path"]).read_bytes()) == got[0]["sha256"] == sha(DATA)
        assert "Traceback" not in err
    assert victim.read_bytes() == b"precious\n"


@pytest.mark.parametrize("fifo", ["same.bin.part.meta", ".xdl-origins", "cache-record"])
def test_a_fifo_planted_where_xdl_reads_or_writes_does_not_hang_it(
    routes: Any, work: Path, fifo: str
) -> None:
    """Opening a FIFO waits for its other end: one planted at the meta, the origins
    index or a cache record hung xdl for ever (SIGTERM too: the thread is in open)."""
    from xdl.core.fetch.cache import url_entry_key

    url, out, cache = routes.url("/tgt/a/same.bin"), work / "out", work / "cache"
    out.mkdir()
    cache.mkdir()
    if fifo == "cache-record":
        os.mkfifo(cache / f"{url_entry_key(url)}.json")
    else:
        os.mkfifo(out / fifo)
    if fifo == ".xdl-origins":  # read when a file of that name has no origin xattr
        (out / "same.bin").write_bytes(b"the user's own\n")
    code, got, err = run("fetch", "--strategy", "http", "--cache", str(cache), "-o", str(out),
                         url, cwd=work, timeout=60)  # fmt: skip
    if fifo == "same.bin.part.meta":
        assert code == 1 and got[0]["error"]["code"] == "bad_input", (got, err)
    else:
        assert code == 0, (got, err)
        assert sha(Path(got[0]["path"]).read_bytes()) == got[0]["sha256"] == sha(DATA)
    assert "Traceback" not in err


def claim_write_commit(folder: Path, origin: str, data: bytes) -> Path:
    with Target.claim(folder, "clip.bin", origin) as target:
        assert target.done is None
        target.begin(0, len(data), {})
        target.write(data)
        target.commit()
        return target.final


def test_claims_of_one_name_for_different_sources_never_fail(tmp_path: Path) -> None:
    """Four threads claim one name for different sources while the others link theirs
    into place: each gets its own distinct name, none fails, no `.part` is left."""
    folder = tmp_path / "race"
    folder.mkdir()
    failures: list[BaseException] = []
    placed: dict[str, Path] = {}
    lock = threading.Lock()

    def worker(t: int) -> None:
        for i in range(40):
            origin = f"https://example.invalid/{t}/{i}"
            data = f"{origin}\n".encode() * 50
            try:
                path = claim_write_commit(folder, origin, data)
            except BaseException as e:  # counted: the test says which
                with lock:
                    failures.append(e)
                continue
            with lock:
                placed[origin] = path
            assert path.read_bytes() == data

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == [], failures[:3]
    assert len(set(placed.values())) == 160
    left = sorted(p.name for p in folder.iterdir() if ".part" in p.name)
    assert left == [], left


def test_many_jobs_of_one_name_leave_no_stray_part(routes: Any, work: Path) -> None:
    urls = [routes.url(f"/tgt/n/same.bin?n={n}") for n in range(16)]
    out = work / "out"
    code, got, err = run("fetch", "-j", "8", "--strategy", "http", "-o", str(out), *urls,
                         cwd=work)  # fmt: skip
    assert code == 0, err
    assert len({x["path"] for x in got}) == 16
    for line in got:
        assert sha(Path(line["path"]).read_bytes()) == line["sha256"]
    assert [p.name for p in out.iterdir() if ".part" in p.name] == []


def test_claim_on_a_leftover_link_of_a_user_file_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "f"
    folder.mkdir()
    (folder / "elsewhere").write_bytes(b"x")
    os.link(folder / "elsewhere", folder / "clip.bin.part")
    with pytest.raises(errors.BadInput):
        Target.claim(folder, "clip.bin", "https://example.invalid/x")


# -- 7: a `.part` renamed away mid-download and replaced by a link ---------------------


@pytest.mark.parametrize(
    "strategy", ["http", "http-segments", "curl", "wget"], ids=lambda s: s.replace("-", "_")
)
def test_a_part_swapped_for_a_link_mid_download_is_refused(
    routes: Any, work: Path, strategy: str
) -> None:
    if strategy in ("curl", "wget") and not shutil.which(strategy):
        pytest.skip(f"{strategy} not installed")
    out, victim = work / "out", work / "victim.txt"
    out.mkdir()
    victim.write_bytes(b"precious\n")
    url = (
        routes.url("/tgt/swap.bin")
        + "?"
        + urlencode({"dir": str(out), "victim": str(victim), "key": f"{work}-{strategy}"})
    )
    args = ["fetch", "--no-fallback", "--retries", "0", "-o", str(out)]
    if strategy == "http-segments":
        args += ["--strategy", "http", "--connections", "4"]
    else:
        args += ["--strategy", strategy]
    code, got, err = run(*args, url, cwd=work)
    assert code == 1, (got, err)
    assert got[0]["error"]["code"] == "bad_input", got
    assert "replaced" in got[0]["error"]["message"]
    assert victim.read_bytes() == b"precious\n"
    assert not os.path.lexists(out / "swap.bin")  # nothing put in place, no link
    assert (out / "swap.bin.part").is_symlink()  # the planted link left as it was


def test_a_ytdlp_part_swapped_for_a_link_leaves_no_link_as_the_file(
    routes: Any, work: Path
) -> None:
    out, victim = work / "out", work / "victim.txt"
    out.mkdir()
    victim.write_bytes(b"precious\n")
    routes.state["swap-victim"] = victim
    routes.state["swap-dir"] = out
    code, got, err = run("fetch", "--no-fallback", "-o", str(out), routes.url("/tgt/swap.html"),
                         cwd=work)  # fmt: skip
    assert code == 1, (got, err)
    assert [p.name for p in out.iterdir() if p.is_symlink()] == []  # no link named as the file
    assert victim.read_bytes() == b"precious\n"
    assert got[0]["error"]["code"] == "bad_input" and "replaced" in got[0]["error"]["message"]


# -- 8: a full disk, on every tier ------------------------------------------------------


def final_files(folder: Path) -> list[str]:
    """What looks like a finished download in `folder` (not a working file, not filler)."""
    working = (".part", ".part.meta", ".ytdl", "filler", ".xdl-origins")
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(working)
                  and ".part-Frag" not in p.name)  # fmt: skip


def fill(folder: Path, leave: int) -> None:
    free = shutil.disk_usage(folder).free
    (folder / "filler").write_bytes(bytes(max(0, free - leave)))


@pytest.mark.parametrize("page", ["watch.html", "hls.html", "audio.html"])
def test_a_full_disk_on_the_ytdlp_tier_is_no_space(
    routes: Any, work: Path, tiny_disk: Path, page: str
) -> None:
    fill(tiny_disk, 12 << 10)
    code, got, err = run("fetch", "--strategy", "ytdlp", "--no-fallback", "--min-free", "0",
                         "-o", str(tiny_disk), routes.url(f"/{page}"), cwd=work)  # fmt: skip
    assert code == 1, (got, err)
    assert got[0]["error"]["code"] == "no_space", got[0]["error"]
    assert "disk is full" in got[0]["error"]["message"]
    assert "internal error" not in err and "Traceback" not in err
    assert final_files(tiny_disk) == []


@pytest.mark.parametrize("strategy", ["http", "curl", "wget"])
def test_a_full_disk_on_the_plain_tiers_is_no_space(
    routes: Any, work: Path, tiny_disk: Path, strategy: str
) -> None:
    if strategy != "http" and not shutil.which(strategy):
        pytest.skip(f"{strategy} not installed")
    url = routes.url("/tgt/nolength.bin")
    code, got, err = run("fetch", "--strategy", strategy, "--no-fallback", "--retries", "0",
                         "-o", str(tiny_disk), url, cwd=work)  # fmt: skip
    assert code == 1, (got, err)
    assert got[0]["error"]["code"] == "no_space", got[0]["error"]
    assert "internal error" not in err and "Traceback" not in err
    assert final_files(tiny_disk) == []
    assert (tiny_disk / "nolength.bin.part").stat().st_size > 0  # kept


def test_a_disk_filled_by_another_under_segments_is_no_space(
    routes: Any, work: Path, tiny_disk: Path
) -> None:
    url = routes.url("/tgt/fills.bin") + "?" + urlencode({"dir": str(tiny_disk)})
    code, got, err = run("fetch", "--strategy", "http", "--no-fallback", "--retries", "0",
                         "--connections", "4", "--min-free", "0", "-o", str(tiny_disk), url,
                         cwd=work)  # fmt: skip
    assert code == 1, (got, err)
    assert got[0]["error"]["code"] == "no_space", got[0]["error"]
    assert "internal error" not in err and "Traceback" not in err
    assert final_files(tiny_disk) == []


def test_a_disk_that_fills_while_ffmpeg_converts_is_no_space_not_a_cut_file(
    routes: Any, work: Path, tiny_disk: Path
) -> None:
    """ffmpeg exits 0 when the disk fills as it writes the end of its output: the line
    said ok for an mp3 cut short. Room for the download (12 KiB), not for the mp3."""
    fill(tiny_disk, 20 << 10)
    code, got, err = run("fetch", "--strategy", "ytdlp", "--no-fallback", "--min-free", "0",
                         "--audio", "--audio-format", "mp3", "-o", str(tiny_disk),
                         routes.url("/audio.html"), cwd=work)  # fmt: skip
    assert code == 1, (got, err)
    assert got[0]["error"]["code"] == "no_space", got[0]["error"]
    assert [p.name for p in tiny_disk.iterdir() if p.suffix == ".mp3"] == []


@pytest.mark.skipif(not shutil.which("strace"), reason="strace is not installed")
def test_a_full_disk_where_the_origin_is_recorded_in_the_folder_is_no_space(
    routes: Any, work: Path, tiny_disk: Path
) -> None:
    """A filesystem without xattrs (strace makes fsetxattr fail as on FAT) records the
    origin in `.xdl-origins`; the download filled the disk to its last block, so that
    line cannot be written: no_space, not an internal error, the file not put in place."""
    fill(tiny_disk, 64 << 10)
    size = shutil.disk_usage(tiny_disk).free  # the .part fills it (small: no meta)
    url = routes.url(f"/tgt/sized.bin?size={size}")
    done = subprocess.run(
        ["strace", "-f", "-qq", "-o", os.devnull, "-e", "trace=fsetxattr",
         "-e", "inject=fsetxattr:error=EOPNOTSUPP", XDL, "fetch", "--strategy", "http",
         "--no-fallback", "--min-free", "0", "-o", str(tiny_disk), url],
        cwd=work, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    got = lines(done.stdout)
    assert done.returncode == 1, (got, done.stderr)
    assert got[0]["error"]["code"] == "no_space", got[0]["error"]
    assert "internal error" not in done.stderr
    assert final_files(tiny_disk) == []


def test_a_folder_planted_at_the_meta_fails_that_input_only(routes: Any, work: Path) -> None:
    """A directory where the `.part.meta` goes ended the whole batch (exit 3, no line for
    any input); now that input fails `bad_input` and the next one is fetched."""
    out = work / "out"
    out.mkdir()
    (out / "same.bin.part.meta").mkdir()
    other = routes.url("/tgt/sized.bin?size=4096")
    code, got, err = run("fetch", "--strategy", "http", "-o", str(out),
                         routes.url("/tgt/a/same.bin"), other, cwd=work, timeout=60)  # fmt: skip
    assert code == 1, (got, err)
    assert [line["ok"] for line in got] == [False, True], got
    assert got[0]["error"]["code"] == "bad_input"
    assert "Traceback" not in err


def test_a_small_file_held_by_another_source_is_not_waited_for(
    site: Any, routes: Any, work: Path
) -> None:
    """A small download writes no meta; its `.part` says its source by an xattr, so a
    process fetching another URL of the same name goes on to a distinct name at once
    instead of waiting out the first download (here held open until the second ends)."""
    held = threading.Event()

    @site.route("/tgt/held/same.bin")
    def held_open(r: Any) -> None:
        r.send_status(200)
        r.send_header("Content-Length", str(len(SMALL)))
        r.end_headers()
        r.wfile.write(SMALL[:100])
        r.wfile.flush()
        held.wait(60)
        r.wfile.write(SMALL[100:])

    out = work / "out"
    out.mkdir()
    first = subprocess.Popen(
        [XDL, "fetch", "--strategy", "http", "-o", str(out), routes.url("/tgt/held/same.bin")],
        cwd=work, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not (out / "same.bin.part").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (out / "same.bin.part").exists()
        assert not (out / "same.bin.part.meta").exists()  # small: no meta
        code, got, err = run("fetch", "--strategy", "http", "-o", str(out),
                             routes.url("/tgt/small/same.bin"), cwd=work, timeout=20)  # fmt: skip
        assert first.poll() is None  # the first is still held open: nobody waited for it
        assert code == 0, (got, err)
        assert Path(got[0]["path"]).name == "same (1).bin"
        assert sha(Path(got[0]["path"]).read_bytes()) == sha(SMALL)
    finally:
        held.set()
        stdout, _ = first.communicate(timeout=60)
    done = lines(stdout.decode())
    assert done[0]["ok"] and Path(done[0]["path"]).name == "same.bin", done
    assert sorted(p.name for p in out.iterdir()) == ["same (1).bin", "same.bin"]


def test_free_space_is_read_once_a_second_and_counts_what_was_promised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch of small files asks the disk for its free space once a second, not once a
    file; in between every byte promised counts as written, and a promise the estimate
    cannot keep reads the disk again before it is refused."""
    from xdl.core.files import SpaceBook

    free = [10 << 20]
    reads: list[Path] = []

    def usage(path: Any) -> Any:
        reads.append(Path(path))
        return shutil._ntuple_diskusage(free[0], 0, free[0])  # type: ignore[attr-defined]

    monkeypatch.setattr(shutil, "disk_usage", usage)
    book = SpaceBook()
    mb = 1 << 20
    releases = [book.reserve(tmp_path, mb, 0) for _ in range(5)]
    assert len(reads) == 1  # five promises, one reading
    with pytest.raises(errors.NoSpace):  # 5 held + 6 > 10: read again, then refused
        book.reserve(tmp_path, 6 * mb, 0)
    assert len(reads) == 2
    for release in releases:
        release()
    book.reserve(tmp_path, 6 * mb, 0)  # the estimate (10 - 5 promised) is short: read
    assert len(reads) == 3
    free[0] = 1 << 20  # the disk filled up meanwhile (another program)
    monkeypatch.setattr(SpaceBook, "FRESH", 0.0)  # the reading is stale
    with pytest.raises(errors.NoSpace):
        book.reserve(tmp_path, 2 * mb, 0)
    assert len(reads) == 4


def test_a_reading_taken_while_a_download_writes_counts_what_it_has_still_to_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reading does not show what a download promised before it has still to write: the
    estimate keeps it out even after that download gives its promise back (found by the
    attack: an 8 MiB disk took 2 MiB more than it had, --min-free not kept)."""
    from xdl.core.files import SpaceBook

    mb = 1 << 20
    free = [8 * mb]
    monkeypatch.setattr(
        shutil,
        "disk_usage",
        lambda p: shutil._ntuple_diskusage(free[0], 0, free[0]),  # type: ignore[attr-defined]
    )
    book = SpaceBook()
    release_a = book.reserve(tmp_path, 4 * mb, 0)  # A: promised, not written yet
    monkeypatch.setattr(SpaceBook, "FRESH", 0.0)
    book.reserve(tmp_path, 1 * mb, 0)  # B: a fresh reading, 8 MiB free (A's not on disk)
    monkeypatch.setattr(SpaceBook, "FRESH", 60.0)
    free[0] = 4 * mb  # A wrote its 4 MiB
    release_a()
    with pytest.raises(errors.NoSpace):  # 4 MiB free, 1 owed to B: 5 do not fit
        book.reserve(tmp_path, 5 * mb, 0)


def test_a_hard_link_planted_at_the_meta_leaves_the_users_file_whole(
    routes: Any, work: Path
) -> None:
    """NAME.part.meta a second name of the user's file: refused, and the file keeps its
    bytes (the meta was cut to nothing before its links were looked at)."""
    out, victim = work / "out", work / "victim.txt"
    out.mkdir()
    victim.write_bytes(b"precious\n")
    os.link(victim, out / "same.bin.part.meta")
    code, got, err = run("fetch", "--strategy", "http", "-o", str(out),
                         routes.url("/tgt/a/same.bin"), cwd=work)  # fmt: skip
    assert code == 1 and got[0]["error"]["code"] == "bad_input", (got, err)
    assert victim.read_bytes() == b"precious\n"


@pytest.mark.parametrize("same_source", [True, False])
def test_a_file_put_over_ours_right_after_overwrite_is_judged_by_its_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, same_source: bool
) -> None:
    """--overwrite renames `.part` over NAME, then looks at NAME. Another run of the same
    source, right behind, may have put its own file there already: it stands (taking it
    out left that run's line pointing at nothing; 3 processes racing lost files in 1 of
    8 rounds). What is not of our source there was swapped in: taken out, as before."""
    from xdl.core.fetch.target import ORIGIN_XATTR

    origin = "http://example.com/a.bin"
    target = Target.claim(tmp_path, "a.bin", origin, overwrite=True, expected=3)
    target.begin(0, 3, {})
    target.write(b"abc")
    real = os.replace

    def then_another(src: Any, dst: Any, **kw: Any) -> None:
        real(src, dst, **kw)
        other = tmp_path / "other"
        other.write_bytes(b"abc")
        if same_source:
            os.setxattr(other, ORIGIN_XATTR, origin.encode())
        real(other, tmp_path / "a.bin")

    monkeypatch.setattr(os, "replace", then_another)
    try:
        if same_source:
            assert target.commit(overwrite=True)[0] == 3
            assert (tmp_path / "a.bin").read_bytes() == b"abc"
        else:
            with pytest.raises(errors.BadInput, match="replaced meanwhile"):
                target.commit(overwrite=True)
            assert not (tmp_path / "a.bin").exists()
    finally:
        target.release_folder()


def test_an_output_folder_removed_while_downloading_is_said_so(tmp_path: Path) -> None:
    """`rm -rf` of the output folder under a long download: the line says the folder was
    removed (it said `.part` was replaced, which sent users looking for an intruder), and
    nothing is made anywhere."""
    folder = tmp_path / "out"
    folder.mkdir()
    target = Target.claim(folder, "a.bin", "http://example.com/a.bin", expected=3)
    try:
        target.begin(0, 3, {})
        target.write(b"abc")
        shutil.rmtree(folder)
        with pytest.raises(errors.BadInput, match=f"the output directory {folder} was removed"):
            target.commit()
        assert not folder.exists()
    finally:
        target.release_folder()


@pytest.mark.parametrize("when", ["before the claim", "while downloading", "its .part alone"])
def test_an_output_folder_removed_during_a_batch_is_made_again_for_the_file_it_held(
    routes: Any, site: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, when: str
) -> None:
    """`rm -rf OUT` during `fetch -j 8`: the folder is made again for the files after it
    (README), and now for those it caught too. Removed between the batch's check and a
    file's claim, the claim raised a bare FileNotFoundError (`internal_error`), or the
    `.part` could not be made (`output_not_writable`, which stopped the whole batch);
    removed under a download, its line said `.part` was replaced. Each is made again
    once, and the file downloaded into it."""
    from xdl.core.fetch import FetchOptions, fetch_one

    out = tmp_path / "out"
    out.mkdir()
    claim, commit = Target.claim.__func__, Target.commit  # type: ignore[attr-defined]
    removed: list[str] = []

    def claim_after_rm(cls: Any, folder: Path, *args: Any, **kwargs: Any) -> Target:
        if when == "before the claim" and not removed:
            removed.append(when)
            shutil.rmtree(out)
        return claim(cls, folder, *args, **kwargs)

    def commit_after_rm(self: Target, *args: Any, **kwargs: Any) -> Any:
        if when != "before the claim" and not removed:
            removed.append(when)
            if when == "its .part alone":
                os.unlink(out / self.part_name)
            else:
                shutil.rmtree(out)
        return commit(self, *args, **kwargs)

    monkeypatch.setattr(Target, "claim", classmethod(claim_after_rm))
    monkeypatch.setattr(Target, "commit", commit_after_rm)
    [result] = fetch_one(site.url("/tgt/a/same.bin"), FetchOptions(output_dir=str(out)))
    assert removed == [when]
    assert result.ok, result.error
    assert [a.ok for a in result.attempts] == [False, True]
    assert "removed" in result.attempts[0].error
    assert (out / "same.bin").read_bytes() == DATA and result.sha256 == sha(DATA)
    assert sorted(p.name for p in out.iterdir()) == ["same.bin"]


def test_an_output_link_whose_target_went_away_mid_batch_still_stops_it(
    routes: Any, site: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Made again only as the batch's check would: never through a `-o` link whose target
    went away (a drive unmounted): the batch stops, and nothing is made there."""
    from xdl.core.fetch import FetchOptions, fetch_one

    drive = tmp_path / "drive"
    drive.mkdir()
    link = tmp_path / "out"
    link.symlink_to(drive)
    claim = Target.claim.__func__  # type: ignore[attr-defined]

    def claim_after_unmount(cls: Any, folder: Path, *args: Any, **kwargs: Any) -> Target:
        if drive.exists():
            shutil.rmtree(drive)
        return claim(cls, folder, *args, **kwargs)

    monkeypatch.setattr(Target, "claim", classmethod(claim_after_unmount))
    with pytest.raises(errors.OutputNotWritable, match=f"is a link to {drive}, which is not"):
        fetch_one(site.url("/tgt/a/same.bin"), FetchOptions(output_dir=str(link)))
    assert not drive.exists()
