"""`xdl doctor`: one line per check; exit 3 when fetch cannot work."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from xdl.core.doctor import check_free_space, check_output_dir, check_ytdlp, space_status


def test_doctor_reports_every_check(xdl) -> None:
    r = xdl("doctor", "--json")
    assert r.exit_code == 0, r.stdout
    names = [line["check"] for line in r.lines]
    for name in (
        "yt-dlp",
        "js-runtime",
        "ffmpeg",
        "ffprobe",
        "wget",
        "curl",
        "youtube-dl",
        "output-dir",
        "config",
        "queue",
        "output-space",
        "queue-space",
    ):
        assert name in names
    assert all(line["status"] in ("ok", "warn", "fail") for line in r.lines)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_output_dir_fails_with_3(xdl, tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    r = xdl("doctor", "--json", "-o", str(locked))
    assert r.exit_code == 3


def test_output_dir_that_is_a_file_fails(xdl, tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    assert check_output_dir(f / "sub").status == "fail"
    r = xdl("doctor", "--json", "-o", str(f / "sub"))
    assert r.exit_code == 3
    (bad,) = [line for line in r.lines if line["check"] == "output-dir"]
    assert bad["ok"] is False


def test_old_ytdlp_is_a_warning() -> None:
    from yt_dlp.version import __version__

    released = dt.date(*map(int, __version__.split(".")[:3]))
    assert check_ytdlp(released + dt.timedelta(days=10)).status == "ok"
    old = check_ytdlp(released + dt.timedelta(days=200))
    assert old.status == "warn" and "200 days" in old.message


def test_broken_config_fails_doctor(xdl, xdl_env: Path) -> None:
    cfg = xdl_env / "config" / "config.toml"
    cfg.parent.mkdir(parents=True)
    cfg.write_text("[defaults\n")
    r = xdl("doctor", "--json")
    assert r.exit_code == 3
    assert any(line["check"] == "config" and not line["ok"] for line in r.lines)


GIB = 1024**3


@pytest.mark.parametrize(
    ("free", "total", "status"),
    [
        (500 * GIB, 1000 * GIB, "ok"),
        (2 * GIB, 10 * GIB, "ok"),
        (20 * GIB, 1000 * GIB, "warn"),  # under 5 %
        (GIB - 1, 4 * GIB, "warn"),  # under 1 GiB
        (10 * 1024**2, 100 * GIB, "fail"),
        (0, 0, "fail"),
    ],
)
def test_space_status(free: int, total: int, status: str) -> None:
    assert space_status(free, total) == status


def test_free_space_of_a_directory_not_made_yet(tmp_path: Path) -> None:
    check = check_free_space("output-space", tmp_path / "not" / "yet")
    assert check.status in ("ok", "warn", "fail")
    assert "GiB free of" in check.message and check.path == str(tmp_path / "not" / "yet")


def test_doctor_names_the_output_dir_in_its_space_check(xdl, tmp_path: Path) -> None:
    r = xdl("doctor", "--json", "-o", str(tmp_path / "media"))
    (space,) = [x for x in r.lines if x["check"] == "output-space"]
    assert space["path"] == str(tmp_path / "media") and "free" in space["message"]
