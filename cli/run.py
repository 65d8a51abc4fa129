"""What one command line asked of the error handling (`--traceback`, XDL_DEBUG): kept
apart from `cli.output` so that `xdl --help` imports nothing a command's lines need."""

from __future__ import annotations

import os


class Run:
    """Click's root context holds it (`obj`, put there by the top group), so no option
    writes into the process's environment, which hooks and child processes inherit."""

    def __init__(self) -> None:
        self.tracebacks = bool(os.environ.get("XDL_DEBUG"))


def tracebacks_wanted(run: Run | None = None) -> bool:
    """--traceback on this command line, or XDL_DEBUG=1: a bug raises, with its traceback."""
    if run is None:
        import click

        ctx = click.get_current_context(silent=True)
        run = ctx.find_object(Run) if ctx is not None else None
    return run.tracebacks if run is not None else bool(os.environ.get("XDL_DEBUG"))
