"""Options shared by several commands, once, as decorator stacks (sqlite-utils style)."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable, Iterator
from typing import IO, TYPE_CHECKING, Any, TypeVar

import click
from click.shell_completion import CompletionItem

from xdl.core.inputs import Input, Kind, iter_inputs

if TYPE_CHECKING:
    from xdl.core.markdown import Timestamps

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("xdl")


def compose(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    """Several decorators as one (an option group), applied in the order written."""

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
        from xdl.cli.run import Run

        run = ctx.find_object(Run)
        if run is not None:
            run.tracebacks = True
    ctx.meta[f"xdl.{param.name}"] = value
    return value


verbosity_options = compose(
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


exec_options = compose(
    click.option(
        "--exec",
        "exec_cmd",
        metavar="CMD",
        help="After each item is saved, run CMD through the shell: {} is the shell-quoted "
        "path, the item's JSON line is on its stdin. A failing CMD is noted in the line "
        "(exec_failed), never fails the download.",
    ),
    click.option(
        "--exec-failed",
        metavar="CMD",
        help="Like --exec, for each item that failed.",
    ),
)


def with_hook(row: dict[str, Any], on_ok: str | None, on_fail: str | None) -> dict[str, Any]:
    """Run --exec / --exec-failed for one line; a failing hook is noted in the line."""
    from xdl.core.hooks import run_hook
    from xdl.core.inputs import shown

    command = on_fail if row.get("ok") is False else on_ok
    if not command or row.get("dry_run"):
        return row
    trouble = run_hook(command, row)
    if trouble is not None:
        where = shown(row.get("url") or "")
        log.warning("%s: --exec %s exited %s", where, command, trouble["exit"])
        row = {**row, "exec_failed": trouble}
    return row


class FileArgument(click.Path):
    """A FILE argument: completes as a file name on TAB (click.Path) but is not looked at
    here: the reader judges each one alone (SPEC §2), so a name no file can have (a NUL
    byte, an unencodable character) is one failed line, not a crash of the command."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        return value


def input_options(kind: Kind = "url") -> Callable[[F], F]:
    """INPUT... arguments and -a/--batch-file; stdin is read by `read_inputs`."""
    metavar = "[URL]..." if kind == "url" else "[FILE]..."
    what = "URLs" if kind == "url" else "files"
    return compose(
        # Files complete as file names on TAB (click.Path); URLs complete to nothing.
        click.argument(
            "inputs", nargs=-1, metavar=metavar, type=FileArgument() if kind != "url" else None
        ),
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

    return compose(
        click.option(
            "--timeout",
            type=Seconds(min=0.1),
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


class ModeFlags(click.Command):
    """A command whose options may be given alone or with a mode (`--timestamps`,
    `--timestamps=link`, `--timestamps link`): the next word is the option's mode only
    when it is one of its modes. `--timestamps talk.vtt` is the option alone and a file,
    as before it had modes (click alone would take `talk.vtt` as the mode)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, alone_when_no_mode(self.params, args))


def alone_when_no_mode(params: list[click.Parameter], args: list[str]) -> list[str]:
    """`args` with `--opt WORD` written `--opt=DEFAULT WORD` for each option whose value
    may be left out (`flag_value`) when WORD is not one of its choices (`-`, stdin, is a
    word too). The values of other options are passed over as they are."""
    modes: dict[str, tuple[str, set[str]]] = {}
    valued: set[str] = set()
    for p in params:
        if not isinstance(p, click.Option):
            continue
        if isinstance(p.type, click.Choice) and getattr(p, "_flag_needs_value", False):
            modes.update({name: (str(p.flag_value), set(p.type.choices)) for name in p.opts})
        elif not p.is_flag and not p.count and p.nargs == 1:
            valued.update(p.opts)
    out = list(args)
    i = 0
    while i < len(args) - 1:
        word, after = args[i], args[i + 1]
        if word == "--":
            break
        if word in valued or _cluster_ends_with_value(word, valued):
            i += 2  # its value, whatever it is
            continue
        if word in modes and after not in modes[word][1] and (after == "-" or after[:1] != "-"):
            out[i] = f"{word}={modes[word][0]}"
        i += 1
    return out


def _cluster_ends_with_value(word: str, valued: set[str]) -> bool:
    """`-qo`: short flags whose last takes the next word as its value."""
    if not word.startswith("-") or word.startswith("--") or len(word) < 3:
        return False
    for at, letter in enumerate(word[1:], 1):
        if f"-{letter}" in valued:
            return at == len(word) - 1  # else the rest of the word is its value
    return False


class Timestamps(click.Choice):
    """--timestamps' modes; `true`/`false` (a config file's, an environment variable's)
    are the option alone (auto) and no times."""

    def __init__(self) -> None:
        super().__init__(["auto", "plain", "link"])

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, bool):
            return "auto" if value else None
        if isinstance(value, str) and value.lower() in ("true", "yes", "on", "1"):
            return "auto"
        if isinstance(value, str) and value.lower() in ("false", "no", "off", "0"):
            return None
        return super().convert(value, param, ctx)

    def shell_complete(
        self, ctx: click.Context, param: click.Parameter, incomplete: str
    ) -> list[CompletionItem]:
        """Its modes, and the files that may follow the option alone (first: bash's
        script empties its list at a `file` item; with the modes after it, bash offers
        them, and files once the word typed starts no mode; zsh and fish offer both)."""
        files = CompletionItem(incomplete, type="file")
        return [files, *super().shell_complete(ctx, param, incomplete)]


def layout_options(f: F) -> F:
    """The paragraph options of `to-markdown` and `transcript -F md|txt`, handed over as
    `layout` (a --max-words below --min-words is --min-words)."""

    @functools.wraps(f)
    def wrapper(
        *args: Any,
        min_words: int,
        max_words: int,
        gap: float,
        speakers: bool,
        timestamps: Timestamps | None,
        sound_labels: str,
        **kwargs: Any,
    ) -> Any:
        from xdl.core.markdown import Layout

        kwargs["layout"] = Layout(
            min_words=min_words,
            max_words=max(max_words, min_words),
            gap=gap,
            speakers=speakers,
            timestamps=timestamps or "none",
            sound_labels="drop" if sound_labels == "drop" else "keep",
        )
        return f(*args, **kwargs)

    return compose(
        click.option(
            "--min-words",
            type=click.IntRange(min=1),
            default=50,
            show_default=True,
            metavar="N",
            help="A paragraph ends at a sentence end once it has N words.",
        ),
        click.option(
            "--max-words",
            type=click.IntRange(min=1),
            default=250,
            show_default=True,
            metavar="N",
            help="A paragraph never runs past N words (unpunctuated automatic captions).",
        ),
        click.option(
            "--gap",
            type=click.FloatRange(min=0),
            default=1.5,
            show_default=True,
            metavar="SECONDS",
            help="A pause this long after a sentence starts a new paragraph.",
        ),
        click.option(
            "--speakers/--no-speakers",
            default=True,
            show_default=True,
            help="**Name:** at each change of speaker (<v Name>, NAME: lines, >>).",
        ),
        click.option(
            "--timestamps",
            type=Timestamps(),
            is_flag=False,
            flag_value="auto",
            help="Start each paragraph with its time, linked to the page at that moment"
            " when the page is known (=auto, alone); =plain never links, =link warns"
            " when it cannot.",
        ),
        click.option(
            "--sound-labels",
            type=click.Choice(["keep", "drop"]),
            default="keep",
            show_default=True,
            help="Keep or drop [Music], (laughs) and the like.",
        ),
    )(wrapper)  # type: ignore[return-value]


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


# --- download options: shared by `xdl fetch` and `xdl queue add` ----------------------

_SIZE_UNITS = {"": 1, "B": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def parse_size(text: str) -> int:
    """'2M' -> 2097152, '1.5K' -> 1536, '500' -> 500 (binary units; a trailing B/iB is ok)."""
    value = text.strip().upper().removesuffix("IB").removesuffix("B")
    number, unit = value, ""
    if value and value[-1] in _SIZE_UNITS:
        number, unit = value[:-1], value[-1]
    try:
        size = float(number) * _SIZE_UNITS[unit]
    except ValueError:
        raise ValueError(f"{text!r} is not a size like 500K, 2M or 1.5G") from None
    if size < 0 or size != size:
        raise ValueError(f"{text!r} is not a size like 500K, 2M or 1.5G")
    return int(size)


class Seconds(click.FloatRange):
    """A number of seconds: finite (`nan` and `inf` are no duration; click's range lets
    NaN through, as every comparison with it is false), at most `max` (a day by default:
    a longer wait is a typo, and a time past the clock's range crashes)."""

    name = "seconds"

    def __init__(self, min: float = 0, max: float = 86400.0, **kwargs: Any) -> None:
        super().__init__(min=min, max=max, **kwargs)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super(click.FloatRange, self).convert(value, param, ctx)
        if number != number or number in (float("inf"), float("-inf")):
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        return super().convert(number, param, ctx)


class SizeType(click.ParamType):
    name = "SIZE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_size(str(value))
        except ValueError as e:
            self.fail(str(e), param, ctx)


SIZE = SizeType()

#: The names download_options' options hand over; everything else passes through.
_DOWNLOAD_PARAMS = [
    "output_dir",
    "template",
    "audio",
    "audio_format",
    "audio_quality",
    "keep_video",
    "quality",
    "format",
    "container",
    "subs",
    "auto_subs",
    "sub_langs",
    "write_info_json",
    "write_description",
    "embed_metadata",
    "embed_thumbnail",
    "embed_subs",
    "embed_chapters",
    "normalize",
    "playlist_items",
    "no_playlist",
    "max_downloads",
    "live_from_start",
    "live_duration",
    "strategy",
    "fallback",
    "connections",
    "rate_limit",
    "sleep",
    "per_host",
    "retries",
    "archive",
    "break_on_existing",
    "overwrite",
    "min_size",
    "max_size",
    "min_free",
    "sha256",
    "cache",
    "cache_size",
]


def split_output_template(output_dir: str, template: str) -> tuple[str, str]:
    """`-o 'DIR/%(title)s.%(ext)s'` as yt-dlp users mean it: the folders before the first
    `%(` stay the output directory, the rest is the template. Never a directory named
    `%(title)s.%(ext)s`. With -t given on the command line as well, a usage error."""
    if "%(" not in output_dir:
        return output_dir, template
    ctx = click.get_current_context(silent=True)
    source = ctx.get_parameter_source("template") if ctx else None
    if source in (click.core.ParameterSource.COMMANDLINE, click.core.ParameterSource.ENVIRONMENT):
        raise click.BadParameter(
            f"{output_dir!r} is a file name template and -t/--template is given too: "
            "put the folder in -o and the template in --template",
            param_hint="-o/--output-dir",
        )
    parts = output_dir.split("/")
    first = next(i for i, part in enumerate(parts) if "%(" in part)
    folder = "/".join(parts[:first]) or ("/" if output_dir.startswith("/") else ".")
    rest = "/".join(parts[first:])
    if not rest.strip() or rest.endswith("/"):
        raise click.BadParameter(
            f"{output_dir!r} has no file name template after its folder; see --template",
            param_hint="-o/--output-dir",
        )
    return folder, rest


def download_options(f: F) -> F:
    """Every option of a download task, handed over as `options: FetchOptions`.

    Run options (-j, --dry-run, progress) are not here: they belong to the command.
    """
    from xdl.core.fetch import AUDIO_FORMATS, CONTAINERS, DEFAULT_TEMPLATE, QUALITIES, STRATEGIES

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from xdl.core import errors
        from xdl.core.fetch import FetchOptions, check_sha256, split_langs

        values = {name: kwargs.pop(name) for name in _DOWNLOAD_PARAMS}
        values["sub_langs"] = split_langs(values["sub_langs"])
        if values["sha256"] is not None:
            try:
                values["sha256"] = check_sha256(values["sha256"])
            except errors.BadInput as e:
                raise click.BadParameter(e.message, param_hint="--sha256") from None
        values["output_dir"], values["template"] = split_output_template(
            values["output_dir"] or ".", values["template"] or DEFAULT_TEMPLATE
        )
        values["cache"] = values["cache"] or None  # XDL_CACHE= turns a configured cache off
        net = kwargs.pop("net")
        kwargs["options"] = FetchOptions(**values, net=net)
        return f(*args, **kwargs)

    return compose(
        click.option(
            "-o",
            "--output-dir",
            type=click.Path(file_okay=False),
            default=".",
            show_default=True,
            help="Save downloads in this directory (created if needed). Given a yt-dlp "
            "template (DIR/%(title)s.%(ext)s), the part from the first %( on is --template.",
        ),
        click.option(
            "-t",
            "--template",
            default=DEFAULT_TEMPLATE,
            show_default=True,
            help="File name template, yt-dlp syntax (plain files keep their real name).",
        ),
        click.option("-x", "--audio", is_flag=True, help="Extract the audio (needs ffmpeg)."),
        click.option(
            "--audio-format",
            type=click.Choice(AUDIO_FORMATS),
            default="best",
            show_default=True,
            help="Audio format for --audio.",
        ),
        click.option(
            "--audio-quality",
            metavar="Q",
            help="For --audio: 0 (best) to 10 (worst) VBR, or a bitrate such as 192K.",
        ),
        click.option("--keep-video", is_flag=True, help="With --audio, keep the video too."),
        click.option(
            "-Q",
            "--quality",
            type=click.Choice(QUALITIES),
            help="Best format up to this height (or best/worst).",
        ),
        click.option(
            "-f",
            "--format",
            metavar="SELECTOR",
            help="A raw yt-dlp format selector (e.g. from `xdl formats --recommend`).",
        ),
        click.option(
            "--container",
            type=click.Choice(CONTAINERS),
            help="Merge or remux into this container.",
        ),
        click.option("--subs/--no-subs", default=False, help="Also download subtitles."),
        click.option(
            "--auto-subs",
            is_flag=True,
            help="Also download automatic captions (for languages without real subtitles).",
        ),
        click.option(
            "--sub-langs",
            multiple=True,
            metavar="LANGS",
            help="Subtitle languages, comma-separated (default: all).",
        ),
        click.option("--write-info-json", is_flag=True, help="Write NAME.info.json beside it."),
        click.option("--write-description", is_flag=True, help="Write NAME.description beside it."),
        click.option("--embed-metadata", is_flag=True, help="Embed title, artist... tags."),
        click.option("--embed-thumbnail", is_flag=True, help="Embed the thumbnail as cover art."),
        click.option("--embed-subs", is_flag=True, help="Embed subtitles in the video."),
        click.option("--embed-chapters", is_flag=True, help="Embed chapter markers."),
        click.option(
            "--normalize",
            is_flag=True,
            help="Loudness-normalise extracted audio (ffmpeg loudnorm).",
        ),
        click.option(
            "--playlist-items", metavar="SPEC", help="Playlist entries to get, e.g. 1-3,7."
        ),
        click.option(
            "--no-playlist",
            is_flag=True,
            help="A URL to an item in a playlist gets that item only, not the playlist.",
        ),
        click.option(
            "--max-downloads",
            type=click.IntRange(min=1),
            metavar="N",
            help="Stop a playlist after N downloads.",
        ),
        click.option(
            "--live-from-start",
            is_flag=True,
            help="A live stream from its beginning, not from now (yt-dlp).",
        ),
        click.option(
            "--live-duration",
            type=click.FloatRange(min=0, min_open=True),
            metavar="SECONDS",
            help="Stop recording a live stream after this much of it.",
        ),
        click.option(
            "--strategy",
            type=click.Choice(STRATEGIES),
            default="auto",
            show_default=True,
            help="Which downloader to try first (auto: decided per URL).",
        ),
        click.option(
            "--fallback/--no-fallback",
            default=True,
            help="When a downloader fails, try the next one (default: yes).",
        ),
        click.option(
            "-N",
            "--connections",
            type=click.IntRange(1, 16),
            default=1,
            show_default=True,
            metavar="N",
            help="Connections per file: a plain file over N ranged requests (as aria2c -x N),"
            " a stream's fragments N at a time (yt-dlp's -N).",
        ),
        click.option(
            "-r",
            "--rate-limit",
            "--limit-rate",
            "rate_limit",
            type=SIZE,
            metavar="RATE",
            help="Total bandwidth cap across all jobs, bytes/s (e.g. 500K, 2M).",
        ),
        click.option(
            "--sleep",
            type=Seconds(min=0),
            default=0.0,
            metavar="SECONDS",
            help="At least this long between two requests to one host (every job's).",
        ),
        click.option(
            "--per-host",
            type=click.IntRange(min=1),
            metavar="N",
            help="At most N downloads from one host at once (across -j jobs; in the queue,"
            " across every runner).",
        ),
        click.option(
            "--retries",
            type=click.IntRange(min=0),
            default=3,
            show_default=True,
            metavar="N",
            help="Retries per downloader (with backoff) before falling back.",
        ),
        click.option(
            "--archive",
            "--download-archive",
            "archive",
            type=click.Path(dir_okay=False),
            metavar="FILE",
            help="Record downloads in FILE; skip what it already lists.",
        ),
        click.option(
            "--break-on-existing",
            is_flag=True,
            help="Stop reading a feed or playlist at its first entry in the --archive.",
        ),
        click.option("--overwrite", is_flag=True, help="Download again even if the file exists."),
        click.option("--min-size", type=SIZE, metavar="SIZE", help="Skip files smaller than this."),
        click.option(
            "--max-size",
            type=SIZE,
            metavar="SIZE",
            help="Refuse files larger than this; a download is stopped once it passes it.",
        ),
        click.option(
            "--min-free",
            type=SIZE,
            metavar="SIZE",
            help="Keep this much disk free beyond what downloads need (default 16M).",
        ),
        click.option(
            "--sha256", metavar="HEX", help="Expected SHA-256; a mismatch removes the file."
        ),
        click.option(
            "--cache",
            type=click.Path(file_okay=False),
            envvar="XDL_CACHE",
            metavar="DIR",
            help="Keep downloads in DIR; next time, a file the server says is unchanged (304)"
            " is hard-linked from there, read-only [env XDL_CACHE].",
        ),
        click.option(
            "--cache-size",
            type=SIZE,
            metavar="SIZE",
            help="Bound --cache to SIZE (least recently used out first).",
        ),
        network_options,
    )(wrapper)  # type: ignore[return-value]
