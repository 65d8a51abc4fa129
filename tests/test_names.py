"""Pure helpers behind `xdl fetch`: safe names, sizes, options round trip."""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path

import pytest

from xdl.cli.options import parse_size
from xdl.core.archive import Archive, media_key, url_key
from xdl.core.errors import BadInput
from xdl.core.fetch import FetchOptions, FetchResult
from xdl.core.names import (
    APPENDED_SUFFIXES,
    MAX_NAME_BYTES,
    NAME_BUDGET,
    WORKING_SUFFIXES,
    distinct_name,
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
        ("Überraschung.mp4", "Überraschung.mp4"),  # NFD in, NFC out
        ("a\x85b\x9fc.txt", "a_b_c.txt"),  # C1 controls, like C0
        ("a\x7fb.txt", "a_b.txt"),
        ("invoice\u202efdp.exe", "invoicefdp.exe"),  # right-to-left override
        ("pay\u200bpal\u200d.pdf", "paypal.pdf"),  # zero-width space and joiner
        ("\ufeffbom.txt", "bom.txt"),
        ("\u2066iso\u2069late\u00ad.txt", "isolate.txt"),  # isolates, soft hyphen
        ("\u202e\u200b\ufeff", "download"),  # nothing but format characters
        ("\u200b.bashrc", "bashrc"),  # a hidden dot behind an invisible character
        ("..part", "part"),
        ("nul.txt", "_nul.txt"),
        ("COM1", "_COM1"),
        ("lpt9.log", "_lpt9.log"),
        ("conin$", "_conin$"),
        ("console.txt", "console.txt"),
        ("a\udcffb.txt", "a_b.txt"),  # a lone surrogate cannot be written as UTF-8
    ],
)
def test_sanitize_filename(raw: str, expected: str) -> None:
    assert sanitize_filename(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("legit.bin.part", "legit.bin_part"),
        ("legit.bin.part.meta", "legit.bin.part_meta"),
        ("legit.bin.wget.part", "legit.bin.wget_part"),
        ("legit.bin.curl.part.meta", "legit.bin.curl.part_meta"),
        ("a.part.part", "a.part_part"),
        ("a.PART", "a_PART"),
        ("a.Part.MeTa", "a.Part_MeTa"),
        ("a.part.", "a_part"),
        ("a.part ", "a_part"),
        ("a.part. . .", "a_part"),
        ("a.part\u200b", "a_part"),  # an invisible tail does not hide the suffix
        ("a.part\u00a0", "a_part"),  # nor a no-break space
        ("video.mp4.ytdl", "video.mp4_ytdl"),
        ("video.mp4.temp", "video.mp4_temp"),
        ("video.mp4.part-Frag12", "video.mp4_part-Frag12"),
        ("video.mp4.part-Frag12.part", "video.mp4.part-Frag12_part"),
        ("x.lock", "x_lock"),
        ("x.part.lock", "x.part_lock"),
        ("x.origin", "x_origin"),
        (".part", "part"),
        ("part", "part"),
        ("a.partial", "a.partial"),
        ("a.parts", "a.parts"),
        ("a.part-Frag", "a.part-Frag"),
        ("metadata.json", "metadata.json"),
        ("a.meta.json", "a.meta.json"),
    ],
)
def test_sanitized_names_never_end_in_a_working_suffix(raw: str, expected: str) -> None:
    name = sanitize_filename(raw)
    assert name == expected
    assert sanitize_filename(name) == name  # stable
    lower = name.lower()
    for suffix in WORKING_SUFFIXES:
        if suffix.endswith("-Frag"):
            assert not re.search(re.escape(suffix.lower()) + r"\d+$", lower)
        else:
            assert not lower.endswith(suffix.lower())


def test_a_name_cut_to_the_budget_does_not_end_in_a_working_suffix() -> None:
    # a 20-byte "extension" is not kept, so the cut falls anywhere in the whole name
    raw = "a" * (NAME_BUDGET - 5) + ".part" + "b" * 20
    name = sanitize_filename(raw)
    assert len(name.encode()) <= NAME_BUDGET
    assert not name.lower().endswith(".part")


def test_long_names_keep_their_extension_within_255_bytes() -> None:
    name = sanitize_filename("é" * 300 + ".mp4")
    assert name.endswith(".mp4")
    assert len(name.encode()) <= 255
    name.encode().decode()  # still valid UTF-8
    assert truncate_name("x" * 10 + "." + "y" * 30, 20).startswith("x")


def test_the_budget_leaves_room_for_every_working_suffix() -> None:
    assert NAME_BUDGET == MAX_NAME_BYTES - 32
    assert max(len(s.encode()) for s in APPENDED_SUFFIXES) == len(".curl.part.meta")
    assert NAME_BUDGET + len(".curl.part.meta") <= MAX_NAME_BYTES


@pytest.mark.parametrize(
    "raw",
    [
        "x" * 246 + ".bin",  # 250 bytes: fit in 255, but not with `.part.meta` after it
        "x" * 255,
        "日" * 83 + ".x",  # 251 bytes of 3-byte characters
        "日" * 84,  # 252
        "😀" * 70 + ".mp4",  # 4-byte characters
        "a" * 300 + ".verylongextension1234",  # an extension over 16 bytes is not kept
        "e\u0301" * 200 + ".txt",  # NFC makes é of these
        "\u0915\u094d" * 100 + ".txt",  # Devanagari: a base and its combining mark
    ],
)
def test_long_names_fit_with_any_working_suffix(tmp_path: Path, raw: str) -> None:
    name = sanitize_filename(raw)
    assert len(name.encode()) <= NAME_BUDGET
    assert name == name.encode().decode()
    for suffix in APPENDED_SUFFIXES:  # what the downloader really creates beside it
        (tmp_path / (name + suffix)).write_bytes(b"")
    (tmp_path / name).write_bytes(b"")


@pytest.mark.parametrize(
    ("raw", "limit", "expected"),
    [
        ("short.txt", 20, "short.txt"),
        ("abcdefghij.txt", 10, "abcdef.txt"),
        ("日日日日.txt", 10, "日日.txt"),  # 3-byte chars are not split
        ("archive-name.tar.gz", 12, "archi.tar.gz"),
        ("a" * 20 + "." + "b" * 20, 10, "a" * 10),  # no extension over 16 bytes
        ("ka\u0301ka\u0301ka\u0301.txt", 9, "ka\u0301k.txt"),  # no mark torn from its base
    ],
)
def test_truncate_name(raw: str, limit: int, expected: str) -> None:
    assert truncate_name(raw, limit) == expected


@pytest.mark.parametrize(
    ("name", "n", "expected"),
    [
        ("report.pdf", 0, "report.pdf"),
        ("report.pdf", 1, "report (1).pdf"),
        ("report.pdf", 2, "report (2).pdf"),
        ("report.pdf", 10, "report (10).pdf"),
        ("README", 1, "README (1)"),
        ("archive.tar.gz", 1, "archive (1).tar.gz"),
        ("archive.TAR.XZ", 3, "archive (3).TAR.XZ"),
        ("backup.tar.zst", 1, "backup (1).tar.zst"),
        ("notes.tar", 1, "notes (1).tar"),
        ("my.photo.jpeg", 1, "my.photo (1).jpeg"),
        ("a.verylongextension1234", 1, "a.verylongextension1234 (1)"),
        ("legit.bin_part", 1, "legit (1).bin_part"),
        ("x" * 219 + ".mp4", 1, "x" * 215 + " (1).mp4"),
        ("日" * 72 + ".mp4", 12, "日" * 71 + " (12).mp4"),  # 220 bytes, 3-byte characters
    ],
)
def test_distinct_name(name: str, n: int, expected: str) -> None:
    got = distinct_name(name, n)
    assert got == expected
    assert len(got.encode()) <= NAME_BUDGET
    assert sanitize_filename(got) == got


def test_distinct_names_differ_from_each_other() -> None:
    long = "x" * 300 + ".mp4"
    names = {distinct_name(sanitize_filename(long), n) for n in range(1, 200)}
    assert len(names) == 199
    with pytest.raises(ValueError):
        distinct_name("a.txt", -1)


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
        # httpie's tests/test_downloads.py
        ("attachment; filename=hello-WORLD_123.txt", "hello-WORLD_123.txt"),
        ('attachment; filename=".hello-WORLD_123.txt"', "hello-WORLD_123.txt"),
        ('attachment; filename="white space.txt"', "white space.txt"),
        ("attachment; filename=/etc/hosts", "hosts"),
        ("attachment; filename=", None),
        # RFC 6266 section 5
        ("Attachment; filename=example.html", "example.html"),
        ('INLINE; FILENAME= "an example.html"', "an example.html"),
        ("attachment; filename*= UTF-8''%e2%82%ac%20rates", "€ rates"),
        ("attachment; filename=\"EURO rates\"; filename*=utf-8''%e2%82%ac%20rates", "€ rates"),
        # RFC 5987 / 2231
        ("attachment; filename*=iso-8859-1'en'%A3%20rates", "£ rates"),
        ('attachment; filename*0="foo."; filename*1="html"', "foo.html"),
        # raw UTF-8 that the HTTP stack read as Latin-1
        ('attachment; filename="f\u00c3\u00bcr.txt"', "für.txt"),
        # spoofing and working suffixes
        ('attachment; filename="invoice\u202efdp.exe"', "invoicefdp.exe"),
        ("attachment; filename*=UTF-8''invoice%E2%80%AEfdp.exe", "invoicefdp.exe"),
        ("attachment; filename*=UTF-8''%E2%80%8B%E2%80%8B", None),
        ("attachment; filename*=UTF-8''a%E2%80%8B.txt", "a.txt"),
        ("attachment; filename=\"ok.txt\"; filename*=UTF-8''%E2%80%AE", "ok.txt"),
        ('attachment; filename="legit.bin.part"', "legit.bin_part"),
        ("attachment; filename*=UTF-8''legit.bin.part.meta", "legit.bin.part_meta"),
        ('attachment; filename="-rf"', "rf"),
        ("attachment; filename*=UTF-8''..%2F..%2F.ssh%2Fauthorized_keys", "authorized_keys"),
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
