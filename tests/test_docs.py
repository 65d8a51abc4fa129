"""Man pages: generated from the click tree, committed, lint-clean, and never stale."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

from xdl.cli.main import COMMANDS, cli

ROOT = Path(__file__).resolve().parent.parent
GEN = ROOT / "tools" / "gen_docs.py"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("docs")
    subprocess.run([sys.executable, str(GEN), "--out", str(out)], check=True, capture_output=True)
    return out


def test_committed_pages_and_completions_are_up_to_date(generated: Path) -> None:
    """Fails when an option or a help text changed without `make docs`."""
    stale = []
    for folder in ("man", "completions"):
        fresh = {p.name: p.read_text() for p in (generated / folder).iterdir()}
        committed = {p.name: p.read_text() for p in (ROOT / folder).iterdir()}
        stale += [
            f"{folder}/{n}"
            for n in sorted(fresh.keys() | committed.keys())
            if fresh.get(n) != committed.get(n)
        ]
    assert not stale, f"run `make docs`: {stale} differ from what tools/gen_docs.py makes"


def test_check_mode_reports_drift(tmp_path: Path, generated: Path) -> None:
    shutil.copytree(generated / "man", tmp_path / "man")
    shutil.copytree(generated / "completions", tmp_path / "completions")
    check = [sys.executable, str(GEN), "--out", str(tmp_path), "--check"]
    assert subprocess.run(check, capture_output=True).returncode == 0
    page = tmp_path / "man" / "xdl-info.1"
    page.write_text(page.read_text().replace("--flat", "--flat-out"))
    (tmp_path / "man" / "xdl-gone.1").write_text(".TH X 1\n")
    r = subprocess.run(check, capture_output=True, text=True)
    assert r.returncode == 1
    assert "man/xdl-info.1" in r.stderr
    assert "man/xdl-gone.1: not generated any more" in r.stderr


def test_one_page_per_command(generated: Path) -> None:
    names = sorted(p.name for p in (generated / "man").glob("*.1"))
    assert names == sorted(["xdl.1", *(f"xdl-{c}.1" for c in COMMANDS)])


SECTIONS = [
    "NAME",
    "SYNOPSIS",
    "DESCRIPTION",
    "OPTIONS",
    "JSON FIELDS",
    "EXIT STATUS",
    "ENVIRONMENT",
    "FILES",
    "EXAMPLES",
    "SEE ALSO",
]


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_each_page_has_the_sections_a_reader_expects(generated: Path, command: str) -> None:
    text = (generated / "man" / f"xdl-{command}.1").read_text()
    found = [line[4:].strip('"') for line in text.splitlines() if line.startswith(".SH ")]
    group = isinstance(cli.get_command(click.Context(cli), command), click.Group)
    expected = [s for s in SECTIONS if not (group and s == "JSON FIELDS")]
    if group:
        expected.insert(expected.index("EXIT STATUS"), "COMMANDS")
        assert "JSON fields:" in text
    assert [s for s in found if s in expected] == expected, found
    assert f".TH XDL-{command.upper()} 1 " in text


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_documents_fields_and_examples(command: str) -> None:
    """The help text is the manual's source (STYLE.md): Fields: and an Examples: block."""
    ctx = click.Context(cli)
    top = cli.get_command(ctx, command)
    assert top is not None
    commands = [top]
    if isinstance(top, click.Group):
        commands = [top.get_command(ctx, n) for n in top.list_commands(ctx)]
    for cmd in commands:
        assert cmd is not None and cmd.help
        assert "Fields:" in cmd.help or "With --summary:" in cmd.help, cmd.name
        assert "\b\n" in cmd.help and "Examples:" in cmd.help, cmd.name


def test_page_content_comes_from_the_command(generated: Path) -> None:
    info = (generated / "man" / "xdl-info.1").read_text()
    assert "\\fB\\-\\-flat\\fR" in info
    assert "Environment: XDL_INFO_FLAT." in info  # the variable click really reads
    assert "format_count" in info.split(".SH JSON FIELDS")[1].split(".SH")[0]
    assert "xdl info URL | jq -r .title" in info.split(".SH EXAMPLES")[1]
    main = (generated / "man" / "xdl.1").read_text()
    assert "[profiles.podcast]" in main
    assert "$HOME/.local/share/xdl/podcast-archive.txt" in main  # nobody's real home
    assert str(Path.home()) + "/" not in main or str(Path.home()) == "/"


@pytest.mark.skipif(shutil.which("mandoc") is None, reason="mandoc not installed")
def test_pages_pass_mandoc_lint(generated: Path) -> None:
    for page in sorted((generated / "man").glob("*.1")):
        r = subprocess.run(
            ["mandoc", "-T", "lint", "-W", "warning", str(page)], capture_output=True, text=True
        )
        assert r.returncode == 0 and not (r.stdout + r.stderr).strip(), r.stdout + r.stderr


@pytest.mark.skipif(shutil.which("groff") is None, reason="groff not installed")
def test_pages_pass_groff_warnings(generated: Path) -> None:
    for page in sorted((generated / "man").glob("*.1")):
        r = subprocess.run(
            ["groff", "-ww", "-z", "-man", str(page)], capture_output=True, text=True
        )
        assert r.returncode == 0 and not r.stderr.strip(), f"{page.name}: {r.stderr}"


@pytest.mark.skipif(shutil.which("man") is None, reason="man not installed")
@pytest.mark.parametrize("width", ["64", "80", "132"])
def test_man_renders_without_warnings(generated: Path, width: str) -> None:
    env = {**os.environ, "MANWIDTH": width, "MAN_KEEP_FORMATTING": "0", "PAGER": "cat"}
    for page in sorted((generated / "man").glob("*.1")):
        r = subprocess.run(["man", "-l", str(page)], capture_output=True, text=True, env=env)
        assert r.returncode == 0, r.stderr
        assert not r.stderr.strip(), f"{page.name} at {width} columns: {r.stderr}"
        assert "EXIT STATUS" in re.sub(".\x08", "", r.stdout)  # without overstriking


@pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")
def test_install_extras_puts_files_where_man_and_shells_look(tmp_path: Path) -> None:
    r = subprocess.run(
        ["make", "-s", "-C", str(ROOT), "install-extras", f"PREFIX={tmp_path}"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    share = tmp_path / "share"
    assert (share / "man/man1/xdl.1").read_text() == (ROOT / "man/xdl.1").read_text()
    for command in COMMANDS:
        assert (share / f"man/man1/xdl-{command}.1").is_file()
    assert (share / "bash-completion/completions/xdl").is_file()
    assert (share / "zsh/site-functions/_xdl").is_file()
    assert (share / "fish/vendor_completions.d/xdl.fish").is_file()
