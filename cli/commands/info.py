"""`xdl info`: metadata, one JSON object per item."""

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
    ("title", "TITLE"),
    ("duration", "DURATION"),
    ("extractor", "EXTRACTOR"),
    ("format_count", "FORMATS"),
    ("url", "URL"),
]
FLAT_COLUMNS = [("playlist_index", "#"), ("title", "TITLE"), ("id", "ID"), ("url", "URL")]


@click.command()
@input_options("url")
@click.option(
    "--flat",
    is_flag=True,
    help="For a playlist, one line per entry (url, id, title) without resolving it.",
)
@click.option("--raw", is_flag=True, help="Emit yt-dlp's whole sanitised info dict.")
@network_options
@output_options
@verbosity_options
def command(
    inputs: tuple[str, ...],
    batch_file: IO[bytes] | None,
    flat: bool,
    raw: bool,
    net: NetworkOptions,
    as_json: bool | None,
) -> int:
    """Print metadata for each URL: one JSON object a line.

    Fields: id, title, uploader, duration, upload_date, webpage_url, extractor,
    thumbnail, description, view_count, chapters, subtitles (manual and automatic
    languages), format_count. With --flat a playlist gives one line per entry (url, id,
    title, playlist, playlist_index), ready to pipe into `xdl fetch`.

    A feed (RSS 0.9x-2.0, Atom, with the iTunes and podcast namespaces) gives with --flat
    one line per entry: url (the enclosure, else the entry's link), id (its guid or Atom
    id), title, playlist (the show), playlist_index, playlist_id, feed, upload_date
    (YYYYMMDD), timestamp, description, duration (seconds), episode_number,
    season_number, uploader, thumbnail, webpage_url, enclosure (url, type, length),
    transcripts (podcast:transcript: url, ext, lang), extractor ("feed"). `xdl fetch`
    names and tags the file from these, as `xdl fetch FEED` does.

    \b
    Examples:
      xdl info https://example.com/watch.html
      xdl info --flat https://example.com/feed.xml | xdl fetch --audio
      xdl info URL | jq -r .title
    """
    from xdl.core import info

    if flat and raw:
        raise click.UsageError("--flat and --raw cannot be used together")
    out = Output(table_mode(as_json), None if raw else FLAT_COLUMNS if flat else COLUMNS)
    if flat:
        out.each(read_inputs(inputs, batch_file), lambda i: info.list_entries(i.value, net=net))
    elif raw:
        out.each(read_inputs(inputs, batch_file), lambda i: [info.get_raw_info(i.value, net=net)])
    else:
        out.each(read_inputs(inputs, batch_file), lambda i: [info.get_info(i.value, net=net)])
    return out.close()
