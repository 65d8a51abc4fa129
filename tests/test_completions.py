"""Shell completions: the committed scripts work in a real bash, with dynamic values."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.shell_completion import ShellComplete

from xdl.cli.config import profile_option
from xdl.cli.main import COMMANDS, cli

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

needs_bash = pytest.mark.skipif(shutil.which("bash") is None, reason="bash not installed")


def bash_complete(*words: str, env: dict[str, str] | None = None) -> list[str]:
    """Sources completions/xdl.bash in a real bash and asks for the completions of `words`
    (the last one is what is being typed), as bash would on TAB."""
    script = (
        f"source {ROOT / 'completions' / 'xdl.bash'}\n"
        'COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 ))\n'
        "_xdl_completion xdl 2>/dev/null\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    r = subprocess.run(
        ["bash", "-c", script, "bash", *words],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {}), "PATH": f"{BIN}:{os.environ['PATH']}"},
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    return [line for line in r.stdout.splitlines() if line]


@needs_bash
def test_bash_completes_command_names() -> None:
    assert bash_complete("xdl", "i") == ["info"]
    assert set(bash_complete("xdl", "")) >= set(COMMANDS)


@needs_bash
def test_bash_completes_options() -> None:
    assert bash_complete("xdl", "info", "--fl") == ["--flat"]
    assert "--no-config" in bash_complete("xdl", "--no")


@needs_bash
@pytest.mark.skipif("queue" not in COMMANDS, reason="xdl queue not there yet")
def test_bash_completes_the_queue_group() -> None:
    assert bash_complete("xdl", "q") == ["queue"]
    subcommands = bash_complete("xdl", "queue", "")
    for name in ("add", "run", "status", "retry", "cancel", "remove", "clear"):
        assert name in subcommands


@needs_bash
@pytest.mark.skipif("fetch" not in COMMANDS, reason="xdl fetch not there yet")
def test_bash_completes_profile_names_from_the_config(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[profiles.lectures]\nsleep = 1\n[profiles.podcast-hq]\naudio = true\n")
    env = {"XDL_CONFIG": str(config)}
    assert bash_complete("xdl", "fetch", "--profile", "", env=env) == [
        "archive",
        "lectures",
        "music",
        "podcast",
        "podcast-hq",
        "social",
        "stream",
    ]
    assert bash_complete("xdl", "fetch", "--profile", "po", env=env) == ["podcast", "podcast-hq"]
    other = tmp_path / "other.toml"
    other.write_text("[profiles.talks]\nsleep = 1\n")
    words = ("xdl", "--config", str(other), "fetch", "--profile", "t")
    assert bash_complete(*words, env=env) == ["talks"]


def test_profile_completion_in_process(monkeypatch: pytest.MonkeyPatch, xdl_env: Path) -> None:
    @click.command("probe")
    @profile_option
    def probe() -> None: ...

    monkeypatch.setitem(cli.commands, "probe", probe)
    (xdl_env / "config").mkdir(parents=True)
    (xdl_env / "config" / "config.toml").write_text("[profiles.mine]\nsleep = 1\n")
    complete = ShellComplete(cli, {}, "xdl", "_XDL_COMPLETE")
    names = [c.value for c in complete.get_completions(["probe", "--profile"], "")]
    assert names == ["archive", "mine", "music", "podcast", "social", "stream"]
    # a broken config file does not break completion
    (xdl_env / "config" / "config.toml").write_text("[profiles\n")
    names = [c.value for c in complete.get_completions(["probe", "--profile"], "m")]
    assert names == ["music"]


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh not installed")
def test_zsh_script_parses() -> None:
    subprocess.run(["zsh", "-n", str(ROOT / "completions" / "_xdl")], check=True)


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish not installed")
def test_fish_script_parses() -> None:
    subprocess.run(["fish", "-n", str(ROOT / "completions" / "xdl.fish")], check=True)


def test_scripts_call_back_into_xdl() -> None:
    """The scripts are thin: values come from `xdl` itself, so they stay right."""
    assert "_XDL_COMPLETE=bash_complete" in (ROOT / "completions" / "xdl.bash").read_text()
    assert "_XDL_COMPLETE=zsh_complete" in (ROOT / "completions" / "_xdl").read_text()
    assert "_XDL_COMPLETE=fish_complete" in (ROOT / "completions" / "xdl.fish").read_text()


@needs_bash
@pytest.mark.skipif("queue" not in COMMANDS, reason="xdl queue not there yet")
def test_bash_completes_task_ids(xdl, site) -> None:
    """`xdl queue cancel <TAB>` offers the IDs of tasks it can cancel."""
    r = xdl("queue", "add", site.url("/watch.html"), site.url("/audio.html"))
    assert r.exit_code == 0, r.stderr
    ids = [str(line["id"]) for line in r.lines]
    assert sorted(bash_complete("xdl", "queue", "cancel", "")) == sorted(ids)
    assert bash_complete("xdl", "queue", "remove", ids[1]) == [ids[1]]
    assert bash_complete("xdl", "queue", "retry", "") == []  # nothing failed or cancelled


def test_to_markdown_completes_file_names_and_fetch_does_not() -> None:
    """`xdl to-markdown Auto<TAB>`: bash is told to complete file names (`compopt -o
    default`); for URLs it is told nothing."""
    complete = ShellComplete(cli, {}, "xdl", "_XDL_COMPLETE")
    (item,) = complete.get_completions(["to-markdown"], "Auto")
    assert (item.type, item.value) == ("file", "Auto")
    assert [c.type for c in complete.get_completions(["to-markdown", "a.vtt"], "")] == ["file"]
    assert complete.get_completions(["fetch"], "Auto") == []
    assert complete.get_completions(["info"], "http") == []
