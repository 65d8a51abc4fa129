"""The `xdl` entry point: the command group, lazy subcommands, and the one place where
errors become exit codes (SPEC §4)."""

from __future__ import annotations

import contextlib
import importlib
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import click

from xdl.core import __version__

if TYPE_CHECKING:
    from xdl.cli.run import Run

#: command name -> (module under xdl.cli.commands defining `command`, its one-line help).
#: The help is repeated here so that `xdl --help` imports no command module (a test
#: checks it matches the command's own docstring).
COMMANDS = {
    "info": ("info", "Print metadata for each URL: one JSON object a line."),
    "formats": ("formats", "List the formats each URL offers: one JSON object a format."),
    "doctor": ("doctor", "Check that xdl can work here: one line per check."),
    "fetch": ("fetch", "Download media or files: one JSON line per item on stdout."),
    "queue": ("queue", "A persistent download queue: add URLs now, download them later, safely."),
    "transcript": ("transcript", "Download subtitles of each URL, as published or as clean text."),
    "to-markdown": (
        "to_markdown",
        "Turn WebVTT, SRT, SBV, TTML/DFXP or YouTube json3/srv3 captions into Markdown.",
    ),
}

CONTEXT_SETTINGS = {
    "help_option_names": ["-h", "--help"],
    "max_content_width": 100,
    # XDL_<COMMAND>_<OPTION>, e.g. XDL_FETCH_OUTPUT_DIR, XDL_QUEUE_ADD_PRIORITY (SPEC §6).
    "auto_envvar_prefix": "XDL",
}


class LazyGroup(click.Group):
    """Imports a subcommand's module only when that subcommand is used."""

    def __init__(
        self, *args: Any, lazy: dict[str, tuple[str, str]], package: str, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy
        self.package = package

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        if cmd_name not in self.lazy:
            return None
        module = self.lazy[cmd_name][0]
        command: click.Command = importlib.import_module(f"{self.package}.{module}").command
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list of `--help`, from the registry: no command module imported."""
        rows = [(name, self.lazy[name][1]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


class XdlGroup(LazyGroup):
    """The top group: runs the command and maps every outcome to SPEC §4's exit status,
    the same way for the console script and for click's CliRunner in tests."""

    def main(  # type: ignore[override]
        self,
        args: list[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> int:
        from xdl.cli.run import Run

        run = Run()
        extra.setdefault("obj", run)
        name = prog_name or "xdl"
        given = sys.argv[1:] if args is None else list(args)

        def invoke() -> Any:
            # click's own `main` wrapped the same: but on a Ctrl-C it first writes a
            # line to stderr, which waited for good on a pipe nobody reads
            self._main_shell_completion(extra, name, complete_var)
            with self.make_context(name, given, **extra) as ctx:
                return self.invoke(ctx)

        code = _exit_status(invoke, run)
        if standalone_mode:
            sys.exit(code)
        return code


@click.group(
    cls=XdlGroup,
    lazy=COMMANDS,
    package="xdl.cli.commands",
    context_settings=CONTEXT_SETTINGS,
)
@click.version_option(__version__, "--version", prog_name="xdl", message="%(prog)s %(version)s")
@click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Read defaults and profiles from this TOML file "
    "(default: $XDG_CONFIG_HOME/xdl/config.toml).",
)
@click.option("--no-config", is_flag=True, help="Ignore the config file.")
@click.pass_context
def cli(ctx: click.Context, config: Path | None, no_config: bool) -> None:
    """Download media, metadata and transcripts for shell pipelines.

    Every command reads URLs (or files) from arguments, -a FILE or stdin, and writes one
    JSON object a line on stdout, so commands pipe into each other and into jq. Progress,
    warnings and errors go to stderr.

    Any option can also come from XDL_<COMMAND>_<OPTION> (XDL_FETCH_OUTPUT_DIR=...) or the
    config file, $XDG_CONFIG_HOME/xdl/config.toml, with [defaults] and [profiles.NAME]
    tables (`man xdl`).

    \b
    Exit status: 0 all inputs ok or skipped, 1 some input failed, 2 usage error,
    3 could not work at all, 130/143 interrupted.

    \b
    Examples:
      xdl info https://example.com/watch.html
      cat urls.txt | xdl fetch --audio -j 4
      xdl transcript URL | xdl to-markdown
    """
    from xdl.cli.config import setup

    _setup_logging()  # here, not in main(): `xdl --help` and `--version` never import logging
    setup(ctx, config, no_config)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like SIGINT so the same clean-up runs; exits 143."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise Terminated()


def _setup_logging() -> None:
    """Warnings and errors as `xdl: ...` lines on whatever sys.stderr is now (CliRunner
    swaps it); -v / -q change the level."""
    import logging

    from xdl.cli.output import write_err

    class Stderr(logging.StreamHandler):  # type: ignore[type-arg]
        def emit(self, record: logging.LogRecord) -> None:
            try:  # never for good to a reader that does not read (`write_err`)
                write_err(self.format(record) + self.terminator)
            except Exception:
                self.handleError(record)

    root = logging.getLogger("xdl")
    if not root.handlers:
        handler = Stderr()
        handler.setFormatter(logging.Formatter("xdl: %(message)s"))
        root.addHandler(handler)
        root.propagate = False
    root.setLevel(logging.WARNING)


def main() -> None:
    """The console script: SIGTERM is handled like SIGINT, then exits 143."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    code = cli.main(prog_name="xdl", standalone_mode=False)
    # The status says the first signal: one more while the interpreter shuts down (it
    # puts the default handlers back, but an ignored one stays ignored) would end it by
    # that one instead. The work is done: what is left is to exit.
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, signal.SIG_IGN)
    sys.exit(code)


def _exit_status(invoke: Callable[[], Any], run: Run | None = None) -> int:
    try:
        code = invoke()
        return code if isinstance(code, int) else 0
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.ClickException as e:
        if isinstance(e, click.BadParameter):
            _blame_the_variable(e)
        with contextlib.suppress(OSError, AttributeError):  # stderr full, or closed
            e.show()
        return e.exit_code  # 2 for usage errors
    except (KeyboardInterrupt, click.exceptions.Abort) as e:
        # (click.Abort: a Ctrl-C in a prompt of click's own)
        from xdl.core.stopping import BLOCKED, first_signal

        # after a ^C echoed at a terminal, a line of its own (as click did)
        lead = "\n" if sys.stderr is not None and sys.stderr.isatty() else ""
        first = first_signal()  # a second signal may have raised this one
        if first is not None:
            terminated = first == signal.SIGTERM
        else:
            terminated = isinstance(e, Terminated) or isinstance(e.__cause__, Terminated)
        if terminated:
            _stderr("terminated", BLOCKED)  # (no ^C was echoed)
            return 143
        _stderr("interrupted", BLOCKED, lead)
        return 130
    except Exception as e:  # the one place that turns any error into an exit code
        from xdl.cli.output import ReaderGone, silence_stdout
        from xdl.core.errors import XdlError

        if isinstance(e, (ReaderGone, BrokenPipeError)):
            # `xdl ... | head -1`: the reader has gone; end quietly.
            silence_stdout()
            return 0
        if isinstance(e, XdlError):
            _stderr(f"error: {e.message}")
            return e.exit_code if e.exit_code != 1 else 3
        if isinstance(e, OSError) and _echo_failed(e):
            silence_stdout()
            _stderr(f"error: cannot write the output: {e.strerror or e}")
            return 3
        from xdl.cli.run import tracebacks_wanted

        if tracebacks_wanted(run):
            raise
        _stderr(f"internal error: {type(e).__name__}: {e} (XDL_DEBUG=1 shows the traceback)")
        return 3


def _blame_the_variable(e: click.BadParameter) -> None:
    """A bad value that came from XDL_FETCH_JOBS names the variable, not `--jobs`."""
    ctx, param = e.ctx, e.param
    if ctx is None or param is None or param.name is None:
        return
    if ctx.get_parameter_source(param.name) is not click.core.ParameterSource.ENVIRONMENT:
        return
    var = param.envvar if isinstance(param.envvar, str) else None
    if var is None and ctx.auto_envvar_prefix:
        var = f"{ctx.auto_envvar_prefix}_{param.name.upper()}"
    flags = " / ".join(f"'{o}'" for o in getattr(param, "opts", ()))
    e.param_hint = f"the environment variable {var} (for {flags})"


def _echo_failed(e: OSError) -> bool:
    """Whether `e` came from click's echo writing help or a version (`--help >
    /dev/full`): its innermost frame is `click.utils.echo`."""
    tb = e.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return False
    frame = tb.tb_frame
    return frame.f_code.co_name == "echo" and frame.f_globals.get("__name__") == "click.utils"


def _stderr(message: str, patience: float | None = None, lead: str = "") -> None:
    """The command's last word, waiting for a slow reader as any program does; after a
    signal, not past `patience` seconds for one that does not read."""
    from xdl.cli.output import write_err

    write_err(f"{lead}xdl: {message}\n", patience=patience)


if __name__ == "__main__":
    main()
