"""What one command's downloads share lives in its `Context`, not in the process: two
commands in one process (a program that imports xdl, these tests) share nothing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import strict_site
from strict_site import StrictSite

from xdl.core.context import Context
from xdl.core.fetch import FetchOptions, fetch_many, fetch_one, rate_limiter
from xdl.core.inputs import iter_inputs


@pytest.fixture
def strict() -> Iterator[StrictSite]:
    # /f/1.bin is refused once with a pause far longer than any test waits
    site = strict_site.start(refuse_first=1, refuse_prefix="/f/1.", retry_after=600)
    yield site
    site.stop()


def test_a_sites_pause_holds_for_its_command_only(strict: StrictSite, tmp_path: Path) -> None:
    options = FetchOptions(output_dir=str(tmp_path), strategy="http")
    first = Context()
    [refused] = fetch_one(strict.url("/f/1.bin"), options, ctx=first, max_wait=0)
    assert refused.error and refused.error["code"] == "rate_limited"

    # the same command: the host is paused for all its downloads, no request goes out
    [held] = fetch_one(strict.url("/f/2.bin"), options, ctx=first, max_wait=0)
    assert held.error and held.error["code"] == "rate_limited"
    assert [h.path for h in strict.hits()] == ["/f/1.bin"]

    # another command in the same process knows nothing of that pause
    [other] = fetch_one(strict.url("/f/2.bin"), options, ctx=Context(), max_wait=0)
    assert other.ok, other.error
    assert Path(other.path or "").read_bytes() == strict_site.file_bytes(2)


def test_one_thing_per_key_even_when_threads_ask_at_once() -> None:
    ctx, made, start = Context(), [], threading.Barrier(8)

    def ask() -> None:
        start.wait()
        ctx.once("k", lambda: made.append(1) or object())

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert made == [1]
    assert rate_limiter(ctx, 1000) is rate_limiter(ctx, 1000)
    assert rate_limiter(ctx, 1000) is not rate_limiter(Context(), 1000)


def test_what_could_not_be_made_is_made_again_at_the_next_ask() -> None:
    ctx, calls = Context(), []

    def make() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise OSError("not yet")
        return "made"

    with pytest.raises(OSError):
        ctx.once("k", make)
    assert ctx.once("k", make) == "made"
    assert ctx.once("k", make) == "made"
    assert len(calls) == 2


def test_a_sites_cookies_go_on_within_a_command_only(site: Any, tmp_path: Path) -> None:
    """A Set-Cookie is sent again by the same command's later requests, whatever worker
    thread makes them, and never by another command's (a stranger's attack found them
    kept per thread: another command on the thread sent them, one on another did not)."""

    @site.route("/ctx/set")
    def set_cookie(r: Any) -> None:
        r.send_bytes(b"ok", headers={"Set-Cookie": "sid=SECRET; Path=/"})

    @site.route("/ctx/show")
    def show(r: Any) -> None:
        r.send_bytes((r.headers.get("Cookie") or "none").encode(), "text/plain")

    def command(paths: list[str], ctx: Context) -> list[str]:
        urls = [site.url(p) for p in paths]
        options = FetchOptions(output_dir=str(tmp_path), strategy="http", overwrite=True)
        got = []
        for r in fetch_many(iter_inputs(urls), options, jobs=2, ctx=ctx):
            assert r.ok, r.error
            got.append(Path(r.path or "").read_text())
        return got

    first = command(["/ctx/set?n=1"], Context())
    assert first == ["ok"]
    shown = command([f"/ctx/show?n={n}" for n in range(4)], Context())
    assert shown == ["none"] * 4  # another command: none of the first one's
    [one] = fetch_one(site.url("/ctx/show?n=9"), FetchOptions(output_dir=str(tmp_path)))
    assert Path(one.path or "").read_text() == "none"
    ctx = Context()
    command(["/ctx/set?n=2"], ctx)
    assert command([f"/ctx/show?n={n}" for n in range(4)], ctx) == ["sid=SECRET"] * 4


def test_a_cookies_file_is_read_never_written(site: Any, tmp_path: Path) -> None:
    """yt-dlp writes its cookie jar back into a `--cookies` file when it closes (with
    the cookies sites set): the user's file, changed, and one command's cookies carried
    into the next. xdl only reads it."""
    from xdl.core.network import NetworkOptions

    clip = (Path(__file__).parent / "media" / "clip-180p.mp4").read_bytes()

    @site.route("/ctx/clip.mp4")
    def cookie_clip(r: Any) -> None:
        r.send_bytes(clip, "video/mp4", headers={"Set-Cookie": "sid=FROM-THE-SITE; Path=/"})

    jar = tmp_path / "cookies.txt"
    jar.write_text("# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/\tFALSE\t0\tmine\tkept\n")
    before = jar.read_bytes()
    options = FetchOptions(
        output_dir=str(tmp_path / "out"), strategy="ytdlp", net=NetworkOptions(cookies=str(jar))
    )
    [result] = fetch_one(site.url("/ctx/clip.mp4"), options)
    assert result.ok, result.error
    assert jar.read_bytes() == before
