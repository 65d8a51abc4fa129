"""SPEC §1: one import name, lazy imports, a fast --help."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXE = Path(sys.executable).parent / "xdl"


def test_bare_core_and_cli_are_not_importable(tmp_path: Path) -> None:
    for name in ("core", "cli"):
        proc = subprocess.run(
            [sys.executable, "-c", f"import {name}"], cwd=tmp_path, capture_output=True
        )
        assert proc.returncode != 0, f"`import {name}` should fail outside the checkout"
    ok = subprocess.run([sys.executable, "-c", "import xdl.core, xdl.cli"], cwd=tmp_path)
    assert ok.returncode == 0


def _imports_for(*args: str) -> set[str]:
    code = (
        "import sys\n"
        "from xdl.cli.main import cli\n"
        f"cli.main({list(args)!r}, standalone_mode=False)\n"
        "print('\\n'.join(sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, input="")
    return set(proc.stdout.split())


def test_help_imports_neither_ytdlp_nor_requests() -> None:
    mods = _imports_for("--help")
    assert "yt_dlp" not in mods and "requests" not in mods
    assert not any(m.startswith("xdl.cli.commands.") for m in mods)
    assert "xdl.core.fetch" not in mods


def test_registry_help_matches_each_command(xdl) -> None:
    """`xdl --help` lists commands from the registry; it must say what each command says."""
    import click

    from xdl.cli.main import COMMANDS, cli

    ctx = click.Context(cli)
    for name, (_module, short) in COMMANDS.items():
        command = cli.get_command(ctx, name)
        assert command is not None
        assert command.get_short_help_str(limit=200) == short, name
    listed = " ".join(xdl("--help").stdout.split())
    for _module, short in COMMANDS.values():
        assert short in listed


def test_version(xdl) -> None:
    r = xdl("--version")
    from xdl.core import __version__

    assert r.exit_code == 0 and r.stdout.strip() == f"xdl {__version__}"


def test_every_command_help_ends_with_examples(xdl) -> None:
    from xdl.cli.main import COMMANDS

    for name in COMMANDS:
        r = xdl(name, "--help")
        assert r.exit_code == 0, name
        assert "Examples:" in r.stdout, name


def test_unknown_option_is_exit_2(xdl) -> None:
    r = xdl("info", "--no-such-option")
    assert r.exit_code == 2 and "no-such-option" in r.stderr


ROOT = Path(__file__).resolve().parent.parent
SHARE = {
    "share/man/man1/xdl.1",
    "share/man/man1/xdl-fetch.1",
    "share/man/man1/xdl-queue.1",
    "share/bash-completion/completions/xdl.bash",
    "share/zsh/site-functions/_xdl",
    "share/fish/vendor_completions.d/xdl.fish",
}


def _build(kind: str, source: Path, out: Path) -> Path:
    """Build an sdist or a wheel with the setuptools in this venv (offline, no isolation)."""
    code = f"from setuptools import build_meta as b; print(b.build_{kind}({str(out)!r}))"
    proc = subprocess.run(
        [sys.executable, "-W", "error::DeprecationWarning", "-c", code],
        cwd=source,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Deprecat" not in proc.stderr and "license" not in proc.stderr.lower(), proc.stderr
    return out / proc.stdout.strip().splitlines()[-1]


@pytest.mark.slow
def test_sdist_has_tests_and_docs_and_its_wheel_installs_man_pages_and_completions(
    tmp_path: Path,
) -> None:
    """pip/pipx install puts man pages and completions under the prefix; the sdist runs tests."""
    import shutil
    import tarfile

    src = tmp_path / "src"
    shutil.copytree(
        ROOT,
        src,
        ignore=shutil.ignore_patterns(
            ".venv", ".git", "*.egg-info", "build", "dist", "__pycache__", ".*_cache"
        ),
    )
    sdist = _build("sdist", src, tmp_path / "dist")
    with tarfile.open(sdist) as tar:
        tar.extractall(tmp_path / "unpacked", filter="data")
    unpacked = next((tmp_path / "unpacked").iterdir())
    for needed in (
        "LICENSE",
        "man/xdl-fetch.1",
        "completions/_xdl",
        "tests/conftest.py",
        "tests/media_site.py",
        "tools/gen_docs.py",
    ):
        assert (unpacked / needed).is_file(), needed
    assert any((unpacked / "tests" / "media").iterdir())
    collected = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=unpacked,
        capture_output=True,
        text=True,
    )
    assert collected.returncode == 0, collected.stdout[-2000:]

    wheel = _build("wheel", unpacked, tmp_path / "wheels")
    prefix = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(prefix)], check=True)
    pip = [sys.executable, "-m", "pip", "--python", str(prefix / "bin" / "python")]
    subprocess.run([*pip, "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True)
    installed = {str(p.relative_to(prefix)) for p in (prefix / "share").rglob("*") if p.is_file()}
    assert installed >= SHARE
    assert (prefix / "bin" / "xdl").is_file()
    metadata = next(prefix.glob("lib/python*/site-packages/xdl-*.dist-info/METADATA"))
    assert "License-Expression: MIT" in metadata.read_text()
