"""`--cache DIR`: a file fetched again after its output folder was deleted crosses the
network as one conditional GET answered 304 (0 body bytes), is hard-linked from the
cache, and its line says `cached: true` with the sha256 of the bytes at `path`. Checked
against the loopback site's request log."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import media_site
from xdl.core.fetch.cache import url_entry_key

XDL = str(Path(sys.executable).parent / "xdl")
A = media_site.make_bytes(200 * 1024, 61)
B = media_site.make_bytes(200 * 1024, 62)
C = media_site.make_bytes(200 * 1024, 63)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def origin_of(path: Path) -> str | None:
    try:
        return os.getxattr(path, "user.xdg.origin.url").decode()
    except OSError:  # no user xattrs here: the folder's index
        index = path.parent / ".xdl-origins"
        found = [json.loads(x) for x in index.read_text().splitlines()] if index.exists() else []
        return next((x["url"] for x in found if x["name"] == path.name), None)


@pytest.fixture(scope="module")
def files(site: Any) -> dict[str, str]:
    """Routes of this module: fixed files (ETag and date, date only, no validator) and
    one whose content changes with site.state['cache-version']."""
    for name, data in (("a", A), ("b", B), ("c", C)):
        site.route(f"/cache/{name}.bin")(
            lambda r, data=data: r.send_bytes(
                data, etag=media_site.etag_of(data), last_modified=1_700_000_000
            )
        )
    site.route("/cache/dated.bin")(lambda r: r.send_bytes(A, last_modified=1_700_000_000))
    site.route("/cache/plain.bin")(lambda r: r.send_bytes(A))

    @site.route("/cache/versioned.bin")
    def versioned(r: Any) -> None:
        data = media_site.make_bytes(100 * 1024, 70 + site.state.get("cache-version", 0))
        r.send_bytes(data, etag=media_site.etag_of(data))

    return {name: site.url(f"/cache/{name}.bin") for name in "abc"}


def one(ran: Any) -> dict[str, Any]:
    assert ran.exit_code == 0, ran.stderr
    (line,) = ran.lines
    assert line["ok"], line
    return line


def test_a_second_fetch_after_deleting_the_output_transfers_no_body(xdl, site, files) -> None:
    url = files["a"]
    first = one(xdl("fetch", "--cache", "cache", "-o", "out", url))
    assert "cached" not in first
    shutil.rmtree("out")
    site.clear_log()

    again = one(xdl("fetch", "--cache", "cache", "-o", "out", url))
    assert again["cached"] is True
    path = Path(again["path"])
    assert path == Path("out/a.bin").resolve()
    assert path.read_bytes() == A
    assert again["sha256"] == first["sha256"] == sha(path.read_bytes())
    assert again["bytes"] == len(A)
    (req,) = site.requests("/cache/a.bin")  # one conditional GET, answered 304, no body
    assert req.method == "GET" and req.status == 304 and req.body == 0
    assert req.headers["If-None-Match"] == media_site.etag_of(A)
    assert origin_of(path) == url
    # a hard link to the cache's read-only copy (a write in place would change both)
    assert path.stat().st_nlink == 2
    assert path.stat().st_mode & 0o222 == 0
    assert not list(Path("out").glob("*.part*"))

    # the file is there now: the same source is skipped as before
    third = one(xdl("fetch", "--cache", "cache", "-o", "out", url))
    assert third["skipped"] == "exists" and third["sha256"] == first["sha256"]


def test_without_cache_nothing_is_kept(xdl, site, files) -> None:
    one(xdl("fetch", "-o", "out", files["b"]))
    assert os.stat("out/b.bin").st_nlink == 1
    assert not Path("cache").exists()


def test_a_changed_file_is_fetched_again(xdl, site, files) -> None:
    url = site.url("/cache/versioned.bin")
    site.state["cache-version"] = 0
    first = one(xdl("fetch", "--cache", "cache", "-o", "out", url))
    site.state["cache-version"] = 1  # new content, new ETag
    shutil.rmtree("out")
    site.clear_log()
    again = one(xdl("fetch", "--cache", "cache", "-o", "out", url))
    assert "cached" not in again
    new = media_site.make_bytes(100 * 1024, 71)
    assert Path(again["path"]).read_bytes() == new and again["sha256"] == sha(new)
    assert again["sha256"] != first["sha256"]
    (req,) = site.requests("/cache/versioned.bin")  # the conditional GET's 200 is the download
    assert req.status == 200 and req.body == len(new) and "If-None-Match" in req.headers
    # the cache now holds the new version
    shutil.rmtree("out")
    site.clear_log()
    third = one(xdl("fetch", "--cache", "cache", "-o", "out", url))
    assert third["cached"] is True and third["sha256"] == sha(new)
    assert [r.status for r in site.requests("/cache/versioned.bin")] == [304]


def test_a_date_alone_revalidates_and_no_validator_is_not_cached(xdl, site, files) -> None:
    for path in ("/cache/dated.bin", "/cache/plain.bin"):
        one(xdl("fetch", "--cache", "cache", "-o", "out", site.url(path)))
    shutil.rmtree("out")
    site.clear_log()
    dated = one(xdl("fetch", "--cache", "cache", "-o", "out", site.url("/cache/dated.bin")))
    assert dated["cached"] is True and dated["sha256"] == sha(A)
    (req,) = site.requests("/cache/dated.bin")
    assert req.status == 304 and "If-Modified-Since" in req.headers
    plain = one(xdl("fetch", "--cache", "cache", "-o", "out", site.url("/cache/plain.bin")))
    assert "cached" not in plain  # nothing to revalidate with: downloaded
    (req,) = site.requests("/cache/plain.bin")
    assert req.status == 200 and req.body == len(A)
    assert not any(h.startswith("If-") for h in req.headers)


def test_cache_from_the_environment(xdl, site, files, monkeypatch) -> None:
    monkeypatch.setenv("XDL_CACHE", "envcache")
    one(xdl("fetch", "-o", "out", files["a"]))
    shutil.rmtree("out")
    assert one(xdl("fetch", "-o", "out", files["a"]))["cached"] is True
    assert (Path("envcache") / f"{url_entry_key(files['a'])}.json").is_file()
    monkeypatch.setenv("XDL_CACHE", "")  # empty: off
    shutil.rmtree("out")
    assert "cached" not in one(xdl("fetch", "-o", "out", files["a"]))


def test_a_changed_cached_copy_is_not_used(xdl, site, files) -> None:
    """A cached file changed in place (here through its linked output, made writable
    first) no longer matches its record: dropped, and the file downloaded again."""
    url = files["a"]
    one(xdl("fetch", "--cache", "cache", "-o", "out", url))
    out = Path("out/a.bin")
    out.chmod(0o644)
    with out.open("r+b") as f:
        f.write(b"edited")
    shutil.rmtree("out")
    site.clear_log()
    again = one(xdl("fetch", "--cache", "cache", "-o", "out", url))
    assert "cached" not in again
    assert Path(again["path"]).read_bytes() == A and again["sha256"] == sha(A)
    assert [r.status for r in site.requests("/cache/a.bin")] == [200]


def test_across_filesystems_the_file_is_copied(xdl, site, files, monkeypatch) -> None:
    """Without hard links (another filesystem), stored and placed by copying, verified."""

    def no_links(*args: Any, **kw: Any) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_links)
    one(xdl("fetch", "--cache", "cache", "-o", "out", files["b"]))
    shutil.rmtree("out")
    site.clear_log()
    again = one(xdl("fetch", "--cache", "cache", "-o", "out", files["b"]))
    assert again["cached"] is True
    path = Path(again["path"])
    assert path.read_bytes() == B and again["sha256"] == sha(B)
    assert path.stat().st_nlink == 1 and origin_of(path) == files["b"]
    assert [r.status for r in site.requests("/cache/b.bin")] == [304]


def test_cache_size_evicts_the_least_recently_used(xdl, site, files) -> None:
    cache = Path("cache")
    opts = ("--cache", str(cache), "--cache-size", "450K", "-o", "out")

    def kept() -> set[str]:
        return {n for n, url in files.items() if (cache / f"{url_entry_key(url)}.json").exists()}

    one(xdl("fetch", *opts, files["a"]))
    one(xdl("fetch", *opts, files["b"]))
    assert kept() == {"a", "b"}
    shutil.rmtree("out")
    assert one(xdl("fetch", *opts, files["a"]))["cached"] is True  # a: used last
    one(xdl("fetch", *opts, files["c"]))  # 600K > 450K: b goes
    assert kept() == {"a", "c"}
    assert len(list(cache.glob("*.data"))) == 2
    shutil.rmtree("out")
    site.clear_log()
    assert "cached" not in one(xdl("fetch", *opts, files["b"]))
    assert [r.status for r in site.requests("/cache/b.bin")] == [200]


def test_two_processes_fill_one_cache_at_once(site, files, tmp_path: Path) -> None:
    urls = [files[n] for n in "abc"] + [site.url(f"/cache/versioned.bin?n={i}") for i in range(3)]
    site.state["cache-version"] = 5
    cmd = [XDL, "fetch", "-q", "-j", "3", "--cache", str(tmp_path / "cache")]
    procs = [
        subprocess.Popen(
            [*cmd, "-o", str(tmp_path / f"out{i}"), *urls],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert all(json.loads(x)["ok"] for x in out.splitlines())
    cache = tmp_path / "cache"
    records = [json.loads(p.read_text()) for p in cache.glob("*.json")]
    assert len(records) == len(urls)
    for record in records:  # every entry whole: its data is what the record says
        data = (cache / record["data"]).read_bytes()
        assert len(data) == record["size"] and sha(data) == record["sha256"]
    assert not list(cache.glob(".tmp-*"))
    assert len(list(cache.glob("*.data"))) == len(urls)
    site.clear_log()
    proc = subprocess.run(
        [*cmd, "-o", str(tmp_path / "out3"), *urls], capture_output=True, text=True, timeout=120
    )
    results = [json.loads(x) for x in proc.stdout.splitlines()]
    assert proc.returncode == 0 and all(r.get("cached") for r in results), proc.stderr
    for r in results:
        assert sha(Path(r["path"]).read_bytes()) == r["sha256"]
    assert {r.status for r in site.log} == {304}


# --- the yt-dlp tier: keyed by extractor, id and the requested format ----------------------


def test_a_page_fetched_twice_makes_no_second_media_request(xdl, site) -> None:
    page = site.url("/multi.html")
    first = one(xdl("fetch", "--cache", "cache", "-o", "out", page))
    assert first["strategy"] == "ytdlp" and "cached" not in first
    media = [r for r in site.log if r.path.startswith("/media/")]
    assert media
    shutil.rmtree("out")
    site.clear_log()

    again = one(xdl("fetch", "--cache", "cache", "-o", "out", page))
    assert again["cached"] is True and again["strategy"] == "ytdlp"
    assert [r.path for r in site.log if r.path.startswith("/media/")] == []
    path = Path(again["path"])
    assert path.name == Path(first["path"]).name and path.parent == Path("out").resolve()
    assert again["sha256"] == first["sha256"] == sha(path.read_bytes())
    assert (again["id"], again["extractor"], again["title"]) == (
        first["id"],
        first["extractor"],
        first["title"],
    )
    assert origin_of(path) == page

    # another requested format is another entry: downloaded
    site.clear_log()
    other = one(xdl("fetch", "--cache", "cache", "-o", "out2", "-Q", "worst", page))
    assert "cached" not in other and other["skipped"] is None
    assert other["sha256"] != first["sha256"]
    assert [r for r in site.log if r.path.startswith("/media/")]


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")
def test_extracted_audio_is_cached_with_its_audio_options(xdl, site) -> None:
    page = site.url("/watch.html")
    first = one(xdl("fetch", "--cache", "cache", "-o", "out", "-x", "--audio-format", "mp3", page))
    assert first["path"].endswith(".mp3")
    shutil.rmtree("out")
    site.clear_log()
    again = one(xdl("fetch", "--cache", "cache", "-o", "out", "-x", "--audio-format", "mp3", page))
    assert again["cached"] is True and again["path"] == first["path"]
    assert again["sha256"] == first["sha256"] == sha(Path(again["path"]).read_bytes())
    assert [r for r in site.log if r.path.startswith("/media/")] == []
    shutil.rmtree("out")
    site.clear_log()
    m4a = one(xdl("fetch", "--cache", "cache", "-o", "out", "-x", "--audio-format", "m4a", page))
    assert "cached" not in m4a and m4a["path"].endswith(".m4a")
