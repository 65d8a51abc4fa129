"""`xdl transcript`: download an item's subtitles, as published or converted."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any

import click

from xdl.cli.config import profile_option
from xdl.cli.options import (
    ModeFlags,
    input_options,
    layout_options,
    network_options,
    read_inputs,
    verbosity_options,
)
from xdl.cli.output import Output
from xdl.cli.progress import progress_option, reporter
from xdl.core.errors import XdlError

if TYPE_CHECKING:
    from xdl.core.inputs import Input
    from xdl.core.markdown import Layout
    from xdl.core.network import NetworkOptions


@click.command(cls=ModeFlags)
@input_options("url")
@profile_option
@click.option(
    "-l",
    "--lang",
    "langs",
    metavar="LANGS",
    help="Languages in order of preference, e.g. en,en-US,es; 'all' for every one "
    "[default: the item's language, else en, else the first track].",
)
@click.option(
    "--source",
    type=click.Choice(["manual", "auto"]),
    help="Only creator-made (manual) or automatic captions [default: creator-made first].",
)
@click.option(
    "-F",
    "--format",
    "fmt",
    type=click.Choice(["vtt", "srt", "txt", "md", "json"]),
    default="vtt",
    show_default=True,
    help="vtt as published; srt, txt, md (Markdown) and json (cleaned cues) converted.",
)
@click.option(
    "-o",
    "--output-dir",
    type=click.Path(file_okay=False),
    metavar="DIR",
    help="Write the files into DIR [default: the current directory].",
)
@click.option(
    "--template",
    default="%(title)s [%(id)s].%(lang)s.%(ext)s",
    show_default=True,
    metavar="TEMPLATE",
    help="File name template, yt-dlp syntax; also %(lang)s and %(subtitle_source)s.",
)
@click.option("--stdout", "to_stdout", is_flag=True, help="Print the transcript (one input).")
@click.option("--overwrite", is_flag=True, help="Replace existing files.")
@layout_options
@click.option(
    "--dedupe/--no-dedupe",
    default=None,
    help="Remove the repeated lines of rolling automatic captions "
    "[default: when the captions look like them, whatever the site calls them].",
)
@network_options
@progress_option
@verbosity_options
def command(
    inputs: tuple[str, ...],
    batch_file: IO[bytes] | None,
    langs: str | None,
    source: str | None,
    fmt: str,
    output_dir: str | None,
    template: str,
    to_stdout: bool,
    overwrite: bool,
    layout: Layout,
    dedupe: bool | None,
    net: NetworkOptions,
    progress: str,
) -> int:
    """Download subtitles of each URL, as published or as clean text.

    Picks one language by -l preference (creator-made before automatic captions) and
    saves it under --template: `vtt` as the site publishes it, or converted by xdl's
    own parser: `srt`, `txt`, `md` (the title as heading, chapters as sections,
    --timestamps linking each paragraph to its moment) or `json` (cleaned cues: start,
    end, speaker, text; from YouTube's json3 and srv3 also words, each word's start).
    YouTube's rolling automatic captions come out without their repeated lines
    (decided by the content, wherever the track comes from); YouTube's automatic
    captions are read from its json3 format when converting. Pipe the lines into
    `xdl to-markdown` to convert the files later.

    Fields: url, path, lang, source (manual or auto), format, encoding (the one the
    published track was read in), title, id, words, duplicates_removed,
    skipped_blocks, skipped ("exists" when the file was already there). No track in
    the asked languages: error code no_subtitles, naming the languages there are.

    Progress events (--progress json, on stderr): a start and a done per input (as
    `xdl fetch`'s: event, url, time, bytes, elapsed_s, ok, path, error; entries when
    several languages were saved).

    \b
    Examples:
      xdl transcript https://example.com/watch.html
      xdl transcript -l en,es -F md --timestamps URL
      xdl transcript -l all -o subs/ URL
      xdl transcript URL | xdl to-markdown
      xdl transcript -F txt --stdout URL | wc -w
    """
    from xdl.core.transcript import TranscriptOptions, get_transcripts

    options = TranscriptOptions(
        langs=[x.strip() for x in langs.split(",") if x.strip()] if langs else None,
        source=source,  # type: ignore[arg-type]
        fmt=fmt,
        layout=layout,
        net=net,
        output_dir=output_dir,
        template=template,
        overwrite=overwrite,
        write=not to_stdout,
        rolling=dedupe,
    )
    items: Any = read_inputs(inputs, batch_file)
    if to_stdout:
        items = list(items)
        if len(items) > 1:
            raise click.UsageError("--stdout takes one URL")
    # With --stdout the transcript is the output: result rows are only counted (for the
    # exit status), failures still go to stderr.
    out = Output(stream=io.StringIO()) if to_stdout else Output()

    bars = reporter(progress)

    def work(item: Input) -> Iterator[Any]:
        if bars is None:
            yield from transcripts(item)
            return
        bars.start(item.value)
        pending: dict[str, Any] | None = None  # one done per input: with its last result
        try:
            for t in transcripts(item):
                if pending is not None:
                    bars.finished(pending, last=False)
                pending = {**(t if isinstance(t, dict) else t.to_dict()), "url": item.value}
                yield t
        except XdlError as e:
            if pending is not None:
                bars.finished(pending, last=False)
            bars.finished({"ok": False, "url": item.value, "error": e.to_dict()})
            raise
        bars.finished(pending or {"ok": True, "url": item.value})

    def transcripts(item: Input) -> Iterator[Any]:
        for t in get_transcripts(item.value, options, fields=item.fields):
            if to_stdout and not isinstance(t, dict):
                _print(t.text)
            yield t

    try:
        out.each(items, work)
    finally:
        if bars:
            bars.close()
    return out.close()


def _print(text: str) -> None:
    from xdl.cli.output import write_out

    write_out(text)
