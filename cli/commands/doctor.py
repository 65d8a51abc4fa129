"""`xdl doctor`: check the environment."""

from __future__ import annotations

from pathlib import Path

import click

from xdl.cli.options import output_options, table_mode, verbosity_options
from xdl.cli.output import Output

COLUMNS = [("check", "CHECK"), ("status", "STATUS"), ("version", "VERSION"), ("message", "MESSAGE")]


@click.command()
@click.option(
    "-o",
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Check that this directory is writable (default: the current one).",
)
@output_options
@verbosity_options
def command(output_dir: Path | None, as_json: bool | None) -> int:
    """Check that xdl can work here: one line per check.

    Checks yt-dlp (and its age: sites change, so warn past 90 days), a JavaScript
    runtime for YouTube, ffmpeg/ffprobe, wget and curl (fallback tiers), youtube-dl,
    the output directory, the free space where downloads and the queue are written, the
    config file and the queue file. Fields: check, status
    (ok, warn, fail), message, version, path. Exit 0 when `xdl fetch` can work, 3 when
    it cannot.

    \b
    Examples:
      xdl doctor
      xdl doctor --json | jq -r 'select(.status != "ok") | .message'
    """
    from xdl.core.doctor import run_checks

    root = click.get_current_context().find_root()
    from_cli = root.get_parameter_source("config") is click.core.ParameterSource.COMMANDLINE
    config_file = root.params.get("config") if from_cli else None
    cfg = root.meta.get("xdl.config")
    out = Output(table_mode(as_json), COLUMNS, key="check")
    for check in run_checks(
        output_dir,
        config_file=config_file,
        no_config=root.params["no_config"],
        config_warnings=cfg.warnings if cfg is not None else (),
    ):
        out.emit(check)
    out.close()
    return 3 if out.failures else 0
