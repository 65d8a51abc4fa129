"""Options shared by several commands, once, as decorator stacks (sqlite-utils style)."""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable, Iterator
from typing import IO, Any, TypeVar

import click

from xdl.core.inputs import Input, Kind, iter_inputs

F = TypeVar("F", bound=Callable[..., Any])


def _compose(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    def apply(f: F) -> F:
        for d in reversed(decorators):
            f = d(f)
        return f

    return apply


def _set_verbosity(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    if not value or ctx.resilient_parsing:
        return value
    root = logging.getLogger("xdl")
    if param.name == "verbose":
        root.setLevel(logging.DEBUG)
    elif param.name == "quiet":
        root.setLevel(logging.ERROR)
    elif param.name == "traceback":
        os.environ["XDL_DEBUG"] = "1"
    ctx.meta[f"xdl.{param.name}"] = value
    return value


verbosity_options = _compose(
    click.option(
        "-q",
        "--quiet",
        is_flag=True,
        expose_value=False,
        callback=_set_verbosity,
        help="Only errors on stderr; no progress bars.",
    ),
    click.option(
        "-v",
        "--verbose",
        is_flag=True,
        expose_value=False,
        callback=_set_verbosity,
        help="Debug logs on stderr (yt-dlp's too).",
    ),
    click.option(
        "--traceback",
        is_flag=True,
        expose_value=False,
        callback=_set_verbosity,
        hidden=True,
        help="Show Python tracebacks for internal errors (also XDL_DEBUG=1).",
    ),
)


def input_options(kind: Kind = "url") -> Callable[[F], F]:
    """INPUT... arguments and -a/--batch-file; stdin is read by `read_inputs`."""
    metavar = "[URL]..." if kind == "url" else "[FILE]..."
    what = "URLs" if kind == "url" else "files"
    return _compose(
        click.argument("inputs", nargs=-1, metavar=metavar),
        click.option(
            "-a",
            "--batch-file",
            type=click.File("rb"),
            metavar="FILE",
            help=f"Read {what} from FILE, one a line ('-' for stdin).",
        ),
    )


output_options = click.option(
    "--json/--table",
    "as_json",
    default=None,
    help="Force JSON lines or a table (default: a table only when stdout is a terminal).",
)


def table_mode(as_json: bool | None) -> str | None:
    return None if as_json is None else ("json" if as_json else "table")


def network_options(f: F) -> F:
    """--timeout, --proxy, --user-agent, --header, --cookies, handed over as `net`."""

    @functools.wraps(f)
    def wrapper(
        *args: Any,
        timeout: float | None,
        proxy: str | None,
        user_agent: str | None,
        headers: tuple[str, ...],
        cookies: str | None,
        **kwargs: Any,
    ) -> Any:
        from xdl.core.network import NetworkOptions

        kwargs["net"] = NetworkOptions(timeout, proxy, user_agent, parse_headers(headers), cookies)
        return f(*args, **kwargs)

    return _compose(
        click.option(
            "--timeout",
            type=click.FloatRange(min=0.1),
            metavar="SECONDS",
            help="Give up on a connection or read that stalls this long.",
        ),
        click.option("--proxy", metavar="URL", help="Use this HTTP/HTTPS/SOCKS proxy."),
        click.option("--user-agent", metavar="UA", help="Send this User-Agent."),
        click.option(
            "--header",
            "headers",
            multiple=True,
            metavar="'K: V'",
            help="Send this HTTP header (repeatable).",
        ),
        click.option(
            "--cookies",
            type=click.Path(exists=True, dir_okay=False),
            metavar="FILE",
            help="Netscape-format cookies file.",
        ),
    )(wrapper)  # type: ignore[return-value]


def parse_headers(values: tuple[str, ...]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for value in values:
        name, sep, content = value.partition(":")
        if not sep or not name.strip():
            raise click.BadParameter(f"{value!r} is not 'Name: value'", param_hint="--header")
        headers[name.strip()] = content.strip()
    return headers


def read_inputs(
    inputs: tuple[str, ...], batch_file: IO[bytes] | None, kind: Kind = "url"
) -> Iterator[Input]:
    """SPEC §2: arguments, then -a FILE, then stdin when no arguments and stdin is piped."""
    stdin: IO[bytes] | None = None
    uses_stdin = batch_file is not None and getattr(batch_file, "name", "") in ("<stdin>", "-")
    if not inputs and batch_file is None:
        if sys.stdin is None or sys.stdin.isatty():
            raise click.UsageError(
                f"no input: give {'URLs' if kind == 'url' else 'files'} as arguments, "
                "with -a FILE, or on stdin"
            )
        stdin = sys.stdin.buffer
    elif uses_stdin:
        batch_file = sys.stdin.buffer
    name = getattr(batch_file, "name", "-") if batch_file is not None else "-"
    return iter_inputs(inputs, batch_file, str(name), stdin, kind)
