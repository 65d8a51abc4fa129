"""`xdl formats`: the formats an item offers, or the one to pick for a platform."""

from __future__ import annotations

from typing import IO, TYPE_CHECKING

import click

from xdl.cli.options import (
    input_options,
    network_options,
    output_options,
    read_inputs,
    table_mode,
    verbosity_options,
)
from xdl.cli.output import Output

if TYPE_CHECKING:
    from xdl.core.network import NetworkOptions

COLUMNS = [
    ("format_id", "ID"),
    ("ext", "EXT"),
    ("kind", "KIND"),
    ("height", "HEIGHT"),
    ("vcodec", "VCODEC"),
    ("acodec", "ACODEC"),
    ("tbr", "TBR"),
    ("filesize", "SIZE"),
    ("protocol", "PROTO"),
    ("note", "NOTE"),
    ("url", "URL"),  # last: never cut; rows of several inputs told apart
]
RECOMMEND_COLUMNS = [
    ("selector", "SELECTOR"),
    ("ext", "EXT"),
    ("height", "HEIGHT"),
    ("url", "URL"),
    ("reason", "REASON"),
]


@click.command()
@input_options("url")
@click.option(
    "--recommend", is_flag=True, help="Print one line: the format to use, its -f selector and why."
)
@click.option(
    "--platform",
    type=click.Choice(["mac", "windows", "linux", "web", "any"]),
    default="any",
    show_default=True,
    help="With --recommend: where it must play.",
)
@click.option("--audio", is_flag=True, help="With --recommend: pick an audio format.")
@network_options
@output_options
@verbosity_options
def command(
    inputs: tuple[str, ...],
    batch_file: IO[bytes] | None,
    recommend: bool,
    platform: str,
    audio: bool,
    net: NetworkOptions,
    as_json: bool | None,
) -> int:
    """List the formats each URL offers: one JSON object a format.

    Fields: url, format_id, ext, kind (video, audio, video+audio), width, height, fps,
    vcodec, acodec, tbr, abr, filesize (filesize_approx when estimated), protocol, note.
    With --recommend, one line per URL: format_id, selector (for `xdl fetch -f`), reason.

    \b
    Examples:
      xdl formats https://example.com/watch.html
      xdl formats URL --recommend --platform mac
      xdl fetch -f "$(xdl formats URL --recommend --audio | jq -r .selector)" URL
    """
    from xdl.core import info

    if (audio or platform != "any") and not recommend:
        raise click.UsageError("--platform and --audio go with --recommend")
    out = Output(table_mode(as_json), RECOMMEND_COLUMNS if recommend else COLUMNS)

    def work(item):  # type: ignore[no-untyped-def]
        formats = info.get_formats(item.value, net=net)
        if recommend:
            return [info.recommend(item.value, formats, platform, audio)]
        return formats

    out.each(read_inputs(inputs, batch_file), work)
    return out.close()
