"""Pure helpers behind `xdl fetch`: safe names, sizes, options round trip."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from xdl.cli.options import parse_size
from xdl.core.archive import Archive, media_key, url_key
from xdl.core.errors import BadInput
from xdl.core.fetch import FetchOptions, FetchResult
from xdl.core.names import (
    filename_from_content_disposition,
    filename_from_url,
    inside,
    sanitize_filename,
    truncate_name,
    with_extension,
)
from xdl.core.network import NetworkOptions
from xdl.core.ratelimit import TokenBucket


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("report.pdf", "report.pdf"),
        ("../../evil.sh", "evil.sh"),
        ("..", "download"),
        ("/etc/passwd", "passwd"),
        ("a\\b\\c.txt", "c.txt"),
        (".hidden", "hidden"),
        ("-rf", "rf"),
        ("--", "download"),
        ("a\x00b\x1fc.txt", "a_b_c.txt"),
        ("  spaced   out  .mp3", "spaced out .mp3"),
        ('what?<>:"|*.txt', "what_______.txt"),
        ("", "download"),
        ("CON", "_CON"),
        ("Überraschung.mp4", "Überraschung.mp4"),
    ],
)
def test_sanitize_filename(raw: str, expected: str) -> None:
    assert sanitize_filename(raw) == expected


def test_long_names_keep_their_extension_within_255_bytes() -> None:
    name = sanitize_filename("é" * 300 + ".mp4")
    assert name.endswith(".mp4")
    assert len(name.encode()) <= 255
    name.encode().decode()  # still valid UTF-8
    assert truncate_name("x" * 10 + "." + "y" * 30, 20).startswith("x")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('attachment; filename="Quarterly Report.pdf"', "Quarterly Report.pdf"),
        ("attachment; filename=plain.zip", "plain.zip"),
        ("attachment; filename*=UTF-8''na%C3%AFve%20file.txt", "naïve file.txt"),
        (
            "attachment; filename=\"fallback.txt\"; filename*=UTF-8''r%C3%A9el.txt",
            "réel.txt",
        ),
        ('attachment; filename="../../evil.sh"', "evil.sh"),
        ('attachment; filename="/abs/path/x.bin"', "x.bin"),
        ('attachment; filename=".bashrc"', "bashrc"),
        ("inline", None),
        ("", None),
        (None, None),
    ],
)
def test_filename_from_content_disposition(header: str | None, expected: str | None) -> None:
    assert filename_from_content_disposition(header) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://example.com/files/report.pdf?x=1", "report.pdf"),
        ("https://example.com/a%20b.txt", "a b.txt"),
        ("https://example.com/", "example.com"),
        ("https://example.com/dir/..%2F..%2Fetc%2Fpasswd", "passwd"),
    ],
)
def test_filename_from_url(url: str, expected: str) -> None:
    assert filename_from_url(url) == expected


def test_with_extension_adds_only_a_missing_one() -> None:
    assert with_extension("report", "application/pdf") == "report.pdf"
    assert with_extension("report.txt", "application/pdf") == "report.txt"
    assert with_extension("blob", "application/octet-stream") == "blob"


def test_inside_refuses_escapes(tmp_path: Path) -> None:
    assert inside(tmp_path, "a.txt") == tmp_path.resolve() / "a.txt"
    for bad in ("../a.txt", "/etc/passwd", ".."):
        with pytest.raises(BadInput):
            inside(tmp_path, bad)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("500", 500), ("1K", 1024), ("2M", 2 * 1024**2), ("1.5k", 1536), ("2MiB", 2 * 1024**2)],
)
def test_parse_size(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "2X", "-5"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_size(text)


def test_fetch_options_round_trip_through_json() -> None:
    options = FetchOptions(
        output_dir="out",
        audio=True,
        audio_format="mp3",
        sub_langs=("en", "es"),
        rate_limit=1024,
        net=NetworkOptions(timeout=5, headers={"X-A": "1"}),
    )
    again = FetchOptions.from_dict(json.loads(json.dumps(options.to_dict())))
    assert again == options


def test_fetch_options_from_dict_tolerates_old_and_new_files() -> None:
    loaded = FetchOptions.from_dict(
        {"audio": True, "from_the_future": 1, "sub_langs": "en,de", "timeout": 7}
    )
    assert loaded.audio is True
    assert loaded.sub_langs == ("en", "de")
    assert loaded.net.timeout == 7
    assert FetchOptions.from_dict(None) == FetchOptions()


def test_fetch_result_line_shape() -> None:
    line = FetchResult(url="u", ok=True).to_dict()
    for key in ("url", "ok", "path", "bytes", "sha256", "strategy", "attempts", "title"):
        assert key in line
    for key in ("id", "extractor", "elapsed_s", "resumed_from", "skipped", "error"):
        assert key in line
    assert "playlist" not in line and "dry_run" not in line


def test_archive_appends_once_and_sees_other_writers(tmp_path: Path) -> None:
    path = tmp_path / "archive.txt"
    a, b = Archive(path), Archive(path)
    a.add(media_key("Generic", "clip"))
    a.add(media_key("Generic", "clip"))
    b.add(url_key("https://x/y"))
    assert "url https://x/y" in a
    assert "generic clip" in b
    assert path.read_text().splitlines() == ["generic clip", "url https://x/y"]


def test_archive_survives_concurrent_writers(tmp_path: Path) -> None:
    path = tmp_path / "archive.txt"
    threads = [
        threading.Thread(target=lambda n=n: [Archive(path).add(f"url {n}-{i}") for i in range(20)])
        for n in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = path.read_text().splitlines()
    assert sorted(lines) == sorted(f"url {n}-{i}" for n in range(4) for i in range(20))


def test_token_bucket_holds_the_total_rate_across_threads() -> None:
    bucket = TokenBucket(400_000)
    began = time.monotonic()

    def pull() -> None:
        for _ in range(10):
            bucket.consume(20_000)

    threads = [threading.Thread(target=pull) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # 800 kB at 400 kB/s is 2 s; allow the small burst, never an upper bound.
    assert time.monotonic() - began >= 0.85 * 2.0
