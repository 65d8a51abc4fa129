"""SPEC §1: one import name, lazy imports, a fast --help."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
