"""Every file xdl writes has one owner (SPEC §5), tried as an attacker would: colliding
names under -j and in the queue, two processes on one URL, planted links, a server that
lies about names and sizes, a full disk. Each test checks the bytes on disk against the
line, the files that were not written, and the exit code."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import Any

import pytest

import media_site

XDL = str(Path(sys.executable).parent / "xdl")
BIG = media_site.make_bytes(1024 * 1024, 41)
SMALL = media_site.make_bytes(20 * 1024, 42)
OTHER = media_site.make_bytes(30 * 1024, 43)
PRECIOUS = b"the user's own bytes\n"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha(path: Path) -> str:
    return sha(Path(path).read_bytes())


def lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(x) for x in out.splitlines() if x.strip()]


def start(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [XDL, *args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> tuple[int, Any, str]:
    proc = start(*args, cwd=cwd, env=env)
    out, err = proc.communicate(timeout=120)
    return proc.returncode, lines(out), err


def unchunked(r: Any, data: bytes, content_type: str = "application/octet-stream") -> None:
    """Answer with no Content-Length: the size is known only at the end."""
    r.send_status(200)
    r.send_header("Content-Type", content_type)
    r.send_header("Connection", "close")
    r.end_headers()
    r.close_connection = True
    for i in range(0, len(data), 64 * 1024):
        r.wfile.write(data[i : i + 64 * 1024])


@pytest.fixture
def work() -> Path:
    """The test's own empty working folder (conftest's xdl_env made it and went there)."""
    return Path.cwd()


@pytest.fixture(scope="module")
def own(site: Any) -> Any:
    @site.route("/own/a/y1")
    def slow_a(r: Any) -> None:
        r.send_bytes(BIG, etag='"own-a"', rate=float(r.query.get("rate", 400_000)))

    site.route("/own/b/y1")(lambda r: r.send_bytes(SMALL, etag='"own-b"'))
    site.route("/own/a/report.pdf")(lambda r: r.send_bytes(SMALL, "application/pdf"))
    site.route("/own/b/report.pdf")(lambda r: r.send_bytes(OTHER, "application/pdf"))
    site.route("/own/plain.bin")(lambda r: r.send_bytes(SMALL, etag='"own-plain"'))

    @site.route("/own/named")
    def named(r: Any) -> None:
        r.send_bytes(OTHER, disposition=r.query["cd"])

    site.route("/own/legit.bin")(lambda r: r.send_bytes(SMALL, etag='"legit"'))
    site.route("/own/nolength.bin")(lambda r: unchunked(r, BIG * 6))

    @site.route("/own/sized.bin")
    def sized(r: Any) -> None:
        size = int(r.query["size"])
        r.send_bytes(media_site.make_bytes(size, 7), rate=float(r.query.get("rate", 0)) or None)

    bomb = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip: 64 MiB of zeros in ~64 KB
    zipped = b"".join(bomb.compress(bytes(1 << 20)) for _ in range(64)) + bomb.flush()

    @site.route("/own/bomb.mp4")
    def gzip_bomb(r: Any) -> None:
        r.send_status(200)
        r.send_header("Content-Type", "video/mp4")
        r.send_header("Content-Encoding", "gzip")
        r.send_header("Content-Length", str(len(zipped)))
        r.end_headers()
        if r.command != "HEAD":
            for i in range(0, len(zipped), 4096):
                r.wfile.write(zipped[i : i + 4096])
                time.sleep(0.002)

    assert len(gzip.decompress(zipped)) == 64 << 20
    return site


# -- one owner, distinct names -----------------------------------------------------------


def test_two_sources_with_one_name_under_j_keep_both_files(own: Any, work: Path) -> None:
    code, out, err = run("fetch", "-j", "2", own.url("/own/a/y1"), own.url("/own/b/y1"), cwd=work)
    assert code == 0, err
    by_url = {x["url"]: x for x in out}
    a, b = by_url[own.url("/own/a/y1")], by_url[own.url("/own/b/y1")]
    assert a["path"] != b["path"]
    assert {Path(a["path"]).name, Path(b["path"]).name} == {"y1", "y1 (1)"}
    assert a["sha256"] == sha(BIG) == file_sha(a["path"])
    assert b["sha256"] == sha(SMALL) == file_sha(b["path"])
    assert sorted(p.name for p in work.iterdir() if p.name != ".xdl-origins") == [
        "y1",
        "y1 (1)",
    ]


def test_a_rerun_skips_only_the_same_source(own: Any, work: Path) -> None:
    code, first, _ = run("fetch", own.url("/own/b/y1"), cwd=work)
    assert code == 0 and first[0]["skipped"] is None
    code, again, _ = run("fetch", own.url("/own/b/y1"), cwd=work)
    assert code == 0
    assert again[0]["skipped"] == "exists" and again[0]["path"] == first[0]["path"]
    assert again[0]["sha256"] == sha(SMALL) == file_sha(again[0]["path"])
    code, other, _ = run("fetch", own.url("/own/a/y1?rate=100000000"), cwd=work)
    assert code == 0 and other[0]["skipped"] is None
    assert Path(other[0]["path"]).name == "y1 (1)"
    assert file_sha(work / "y1") == sha(SMALL) and file_sha(work / "y1 (1)") == sha(BIG)


def test_the_origin_is_recorded_as_curl_and_wget_do(own: Any, work: Path) -> None:
    code, out, _ = run("fetch", own.url("/own/b/y1"), cwd=work)
    assert code == 0
    path = out[0]["path"]
    try:
        origin = os.getxattr(path, "user.xdg.origin.url").decode()
    except OSError:  # no user xattrs on this filesystem: the folder's index instead
        rec = json.loads((work / ".xdl-origins").read_text().splitlines()[-1])
        origin = rec["url"]
    assert origin == own.url("/own/b/y1")


def test_a_users_own_file_is_never_taken_for_a_download(own: Any, work: Path) -> None:
    (work / "plain.bin").write_bytes(PRECIOUS)
    code, out, _ = run("fetch", own.url("/own/plain.bin"), cwd=work)
    assert code == 0 and out[0]["skipped"] is None
    assert Path(out[0]["path"]).name == "plain (1).bin"
    assert (work / "plain.bin").read_bytes() == PRECIOUS
    assert file_sha(out[0]["path"]) == out[0]["sha256"] == sha(SMALL)


def test_two_processes_on_one_url_never_share_the_part(own: Any, work: Path) -> None:
    url = own.url("/own/a/y1?rate=600000")
    procs = [start("fetch", "--strategy", "http", url, cwd=work) for _ in range(2)]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        results += lines(out)
    assert sorted(str(x["skipped"]) for x in results) == ["None", "exists"]
    assert {x["path"] for x in results} == {str(work / "y1")}
    assert all(x["sha256"] == sha(BIG) for x in results)
    assert file_sha(work / "y1") == sha(BIG)
    assert not list(work.glob("*.part*"))


def test_a_waiting_process_resumes_when_the_owner_is_killed(own: Any, work: Path) -> None:
    import signal

    url = own.url("/own/a/y1?rate=300000")
    first = start("fetch", "--strategy", "http", url, cwd=work)
    part = work / "y1.part"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (not part.exists() or part.stat().st_size < 200_000):
        time.sleep(0.05)
    second = start("fetch", "--strategy", "http", url, cwd=work)
    time.sleep(0.5)  # it is waiting for the lock
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=10)
    kept = part.stat().st_size
    out, err = second.communicate(timeout=60)
    assert second.returncode == 0, err
    (line,) = lines(out)
    assert line["skipped"] is None and line["resumed_from"] and line["resumed_from"] >= kept
    assert line["sha256"] == sha(BIG) == file_sha(work / "y1")
    assert not list(work.glob("*.part*"))


def test_the_queue_gives_each_source_its_own_file(own: Any, work: Path) -> None:
    env = {**os.environ, "XDL_QUEUE": str(work / "q.json")}
    urls = [own.url("/own/a/report.pdf"), own.url("/own/b/report.pdf")]
    code, _, err = run("queue", "add", "-o", str(work / "out"), *urls, cwd=work, env=env)
    assert code == 0, err
    code, out, err = run("queue", "run", cwd=work, env=env)
    assert code == 0, err
    by_url = {x["url"]: x for x in out}
    assert all(x["ok"] and x.get("skipped") is None for x in out)
    a, b = by_url[urls[0]], by_url[urls[1]]
    assert a["path"] != b["path"]
    assert file_sha(a["path"]) == a["sha256"] == sha(SMALL)
    assert file_sha(b["path"]) == b["sha256"] == sha(OTHER)


def test_two_pages_that_ytdlp_names_alike_keep_both_files(own: Any, work: Path) -> None:
    """yt-dlp's generic extractor gives both the same name: the second page's
    video is saved under a distinct name, before yt-dlp opens a file."""
    for n, clip in ((1, "/media/clip-180p.mp4"), (2, "/media/clip-360p.mp4")):
        page = media_site.video_page("Same Title", [(clip, "video/mp4", "180p")], []).encode()
        own.route(f"/own/p{n}/watch.html")(lambda r, body=page: r.send_bytes(body, "text/html"))
    urls = [own.url("/own/p1/watch.html"), own.url("/own/p2/watch.html")]
    code, out, err = run("fetch", "-j", "2", *urls, cwd=work)
    assert code == 0, err
    by_url = {x["url"]: x for x in out}
    paths = {by_url[u]["path"] for u in urls}
    first, second = sorted((Path(p) for p in paths), key=lambda p: len(p.name))
    assert second.name == f"{first.stem} (1){first.suffix}", paths
    media = media_site.MEDIA
    assert file_sha(by_url[urls[0]]["path"]) == file_sha(media / "clip-180p.mp4")
    assert file_sha(by_url[urls[1]]["path"]) == file_sha(media / "clip-360p.mp4")
    assert all(file_sha(x["path"]) == x["sha256"] for x in out)
    code, again, _ = run("fetch", *urls, cwd=work)
    assert code == 0 and [x["skipped"] for x in again] == ["exists", "exists"]
    assert {x["path"] for x in again} == paths


# -- links ---------------------------------------------------------------------------------


@pytest.mark.parametrize("planted", ["plain.bin", "plain.bin.part", "plain.bin.part.meta"])
def test_a_planted_link_is_refused_and_its_target_untouched(
    own: Any, work: Path, planted: str
) -> None:
    out_dir, victim = work / "out", work / "victim.txt"
    out_dir.mkdir()
    victim.write_bytes(PRECIOUS)
    (out_dir / planted).symlink_to(victim)
    for strategy in ("http", "curl", "wget"):
        if not shutil.which(strategy) and strategy != "http":
            continue
        args = ["fetch", "--no-fallback", "--strategy", strategy, "-o", str(out_dir)]
        code, out, err = run(*args, own.url("/own/plain.bin"), cwd=work)
        assert code == 1, err
        assert out[0]["error"]["code"] == "bad_input"
        assert planted in out[0]["error"]["message"]
        assert victim.read_bytes() == PRECIOUS
        assert (out_dir / planted).is_symlink()
        names = {p.name for p in out_dir.iterdir()}
        assert names == {planted}, names


def test_a_hard_link_at_the_part_is_refused(own: Any, work: Path) -> None:
    out_dir, victim = work / "out", work / "victim.txt"
    out_dir.mkdir()
    victim.write_bytes(PRECIOUS)
    os.link(victim, out_dir / "plain.bin.part")
    code, out, _ = run("fetch", "--strategy", "http", "-o", str(out_dir), own.url("/own/plain.bin"),
                       cwd=work)  # fmt: skip
    assert code == 1 and out[0]["error"]["code"] == "bad_input"
    assert victim.read_bytes() == PRECIOUS


def test_a_template_folder_that_is_a_link_is_refused_before_writing(site: Any, work: Path) -> None:
    out_dir, elsewhere = work / "out", work / "elsewhere"
    out_dir.mkdir()
    elsewhere.mkdir()
    (out_dir / "clips").symlink_to(elsewhere)
    code, out, err = run(
        "fetch", "-o", str(out_dir), "--template", "clips/%(title)s.%(ext)s",
        site.url("/watch.html"), cwd=work,
    )  # fmt: skip
    assert code == 1, err
    assert out[0]["error"]["code"] == "bad_input" and "clips" in out[0]["error"]["message"]
    assert list(elsewhere.iterdir()) == []


def test_a_link_where_ytdlp_would_write_is_refused(site: Any, work: Path) -> None:
    code, out, _ = run("fetch", "--dry-run", site.url("/watch.html"), cwd=work)
    name = Path(out[0]["path"]).name
    victim = work / "victim.txt"
    victim.write_bytes(PRECIOUS)
    out_dir = work / "out"
    out_dir.mkdir()
    (out_dir / (name + ".part")).symlink_to(victim)
    code, out, err = run("fetch", "-o", str(out_dir), site.url("/watch.html"), cwd=work)
    assert code == 1, err
    assert out[0]["error"]["code"] == "bad_input"
    assert victim.read_bytes() == PRECIOUS
    assert {p.name for p in out_dir.iterdir()} == {name + ".part"}


# -- names from a lying server -------------------------------------------------------------


@pytest.mark.parametrize(
    ("disposition", "expected"),
    [
        ('attachment; filename="legit.bin.part"', "legit.bin_part"),
        ('attachment; filename="legit.bin.part.meta"', "legit.bin.part_meta"),
        ("attachment; filename*=UTF-8''invoice%E2%80%AEfdp.exe", "invoicefdp.exe"),
        ("attachment; filename*=UTF-8''zero%E2%80%8Bwidth.txt", "zerowidth.txt"),
    ],
)
def test_a_server_cannot_plant_working_files_or_spoof_names(
    own: Any, work: Path, disposition: str, expected: str
) -> None:
    from urllib.parse import quote

    code, out, err = run("fetch", own.url("/own/named?cd=" + quote(disposition)), cwd=work)
    assert code == 0, err
    assert Path(out[0]["path"]).name == expected
    assert file_sha(out[0]["path"]) == out[0]["sha256"] == sha(OTHER)
    code, out, _ = run("fetch", own.url("/own/legit.bin"), cwd=work)
    assert code == 0 and out[0]["resumed_from"] is None
    assert file_sha(work / "legit.bin") == out[0]["sha256"] == sha(SMALL)


def test_a_name_of_250_bytes_still_downloads(own: Any, work: Path) -> None:
    from urllib.parse import quote

    name = "é" * 123 + ".bin"  # 250 bytes
    cd = "attachment; filename*=UTF-8''" + quote(name)
    code, out, err = run("fetch", own.url("/own/named?cd=" + quote(cd)), cwd=work)
    assert code == 0, err
    saved = Path(out[0]["path"])
    assert saved.suffix == ".bin" and len(saved.name.encode()) + len(".part.meta") <= 255
    assert file_sha(saved) == out[0]["sha256"] == sha(OTHER)


# -- limits while downloading --------------------------------------------------------------


def test_max_size_stops_an_inflating_ytdlp_download(own: Any, work: Path) -> None:
    proc = start("fetch", "--strategy", "ytdlp", "--no-fallback", "--max-size", "1M",
                 own.url("/own/bomb.mp4"), cwd=work)  # fmt: skip
    biggest = 0
    while proc.poll() is None:
        for p in work.iterdir():
            try:
                biggest = max(biggest, p.stat().st_size)
            except FileNotFoundError:
                pass
        time.sleep(0.01)
    out, err = proc.communicate()
    assert proc.returncode == 1, err
    assert lines(out)[0]["error"]["code"] == "too_large"
    assert biggest < 16 << 20, biggest  # stopped near 1M, far from the 64 MiB it inflates to
    assert [p.name for p in work.iterdir() if p.stat().st_size > 0] == []


def test_a_full_disk_mid_write_is_no_space_and_keeps_the_part(
    own: Any, work: Path, tiny_disk: Path
) -> None:
    code, out, err = run("fetch", "--strategy", "http", "--no-fallback", "-o", str(tiny_disk),
                         own.url("/own/nolength.bin"), cwd=work)  # fmt: skip
    assert code == 1, err
    assert out[0]["error"]["code"] == "no_space"
    assert "internal error" not in err and "Traceback" not in err
    assert (tiny_disk / "nolength.bin.part").stat().st_size > 0
    assert not (tiny_disk / "nolength.bin").exists()


def test_a_disk_filled_by_another_mid_write_is_no_space_and_keeps_the_part(
    own: Any, work: Path, tiny_disk: Path, xdl: Any
) -> None:
    """A body of known length meets a disk that another program filled after xdl
    reserved the space for it."""
    body = media_site.make_bytes(3 << 20, 44)
    part = tiny_disk / "fills.bin.part"

    @own.route("/own/fills.bin")
    def fills(r: Any) -> None:
        r.send_status(200)
        r.send_header("Content-Length", str(len(body)))
        r.end_headers()
        r.wfile.write(body[: 64 << 10])
        r.wfile.flush()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and (not part.exists() or part.stat().st_size == 0):
            time.sleep(0.01)
        (tiny_disk / "filler").write_bytes(bytes(2 << 20))  # another program fills the disk
        r.wfile.write(body[64 << 10 :])

    ran = xdl("fetch", "--strategy", "http", "--no-fallback", "--retries", "0", "--min-free", "0",
              "-o", str(tiny_disk), own.url("/own/fills.bin"))  # fmt: skip
    assert ran.exit_code == 1, ran.stderr
    assert ran.lines[0]["error"]["code"] == "no_space"
    kept = part.read_bytes()
    assert 0 < len(kept) < len(body) and body.startswith(kept)
    assert not (tiny_disk / "fills.bin").exists()


def test_jobs_reserve_free_space_together(own: Any, work: Path, tiny_disk: Path) -> None:
    urls = [own.url(f"/own/sized.bin?size={3 << 20}&rate=1500000&n={n}") for n in (1, 2)]
    code, out, err = run("fetch", "-j", "2", "--min-free", "0", "--strategy", "http", "-o",
                         str(tiny_disk), *urls, cwd=work)  # fmt: skip
    assert code == 1, err
    ok = [x for x in out if x["ok"]]
    refused = [x for x in out if not x["ok"]]
    assert len(ok) == 1 and len(refused) == 1
    assert refused[0]["error"]["code"] == "no_space" and "needs" in refused[0]["error"]["message"]
    assert file_sha(ok[0]["path"]) == ok[0]["sha256"]


def test_min_free_is_kept(own: Any, work: Path, tiny_disk: Path) -> None:
    url = own.url(f"/own/sized.bin?size={1 << 20}")
    code, out, _ = run("fetch", "--min-free", "3.5M", "-o", str(tiny_disk), url, cwd=work)
    assert code == 1 and out[0]["error"]["code"] == "no_space"
    code, out, _ = run("fetch", "--min-free", "1M", "-o", str(tiny_disk), url, cwd=work)
    assert code == 0 and file_sha(out[0]["path"]) == out[0]["sha256"]


# -- per-input fields of the wrong type ----------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [{"sha256": 5}, {"sha256": "abc"}, {"template": 7}, {"audio": "yes"}, {"template": " "}],
)
def test_a_field_of_the_wrong_type_is_bad_input(
    own: Any, work: Path, fields: dict[str, Any]
) -> None:
    lines_in = [
        json.dumps({"url": own.url("/own/plain.bin"), **fields}),
        json.dumps({"url": own.url("/own/b/y1")}),
    ]
    proc = subprocess.run([XDL, "fetch"], input="\n".join(lines_in) + "\n", cwd=work,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    bad, good = lines(proc.stdout)
    assert bad["ok"] is False and bad["error"]["code"] == "bad_input"
    assert good["ok"] is True and file_sha(good["path"]) == sha(SMALL)
    assert not (work / "plain.bin").exists()


# -- subtitles and Markdown are written without following links too ------------------------


def test_to_markdown_refuses_a_link_at_its_output(work: Path) -> None:
    victim = work / "victim.txt"
    victim.write_bytes(PRECIOUS)
    (work / "talk.vtt").write_text("WEBVTT\n\n00:00.000 --> 00:01.000\nHello there.\n")
    (work / "talk.md").symlink_to(victim)
    for extra in ([], ["--overwrite"]):
        code, out, err = run("to-markdown", *extra, "talk.vtt", cwd=work)
        assert code == 1, err
        assert out[0]["error"]["code"] == "bad_input" and "talk.md" in out[0]["error"]["message"]
        assert victim.read_bytes() == PRECIOUS and (work / "talk.md").is_symlink()


def test_transcript_refuses_a_template_folder_that_is_a_link(site: Any, work: Path) -> None:
    out_dir, elsewhere = work / "out", work / "elsewhere"
    out_dir.mkdir()
    elsewhere.mkdir()
    (out_dir / "subs").symlink_to(elsewhere)
    code, out, err = run("transcript", "-o", str(out_dir), "--template",
                         "subs/%(title)s.%(ext)s", site.url("/watch.html"), cwd=work)  # fmt: skip
    assert code == 1, err
    assert out[0]["error"]["code"] == "bad_input"
    assert list(elsewhere.iterdir()) == []
