"""`xdl to-markdown`: WebVTT, SRT or TTML captions into clean, faithful Markdown."""

from __future__ import annotations

import dataclasses
import io
import logging
import sys
from typing import IO, TYPE_CHECKING, Any

import click

from xdl.cli.options import (
    ModeFlags,
    input_options,
    layout_options,
    read_inputs,
    verbosity_options,
)
from xdl.cli.output import Output
from xdl.core.inputs import shown

if TYPE_CHECKING:
    from xdl.core.inputs import Input
    from xdl.core.markdown import Layout

log = logging.getLogger("xdl")


@click.command("to-markdown", cls=ModeFlags)
@input_options("path")
@click.option(
    "-o",
    "--output",
    metavar="FILE",
    help="Write the Markdown to FILE (one input only; '-' is stdout).",
)
@click.option(
    "--output-dir",
    type=click.Path(file_okay=False),
    metavar="DIR",
    help="Write NAME.md into DIR instead of next to each input.",
)
@click.option("--stdout", "to_stdout", is_flag=True, help="Print the Markdown, not JSON lines.")
@click.option("--overwrite", is_flag=True, help="Replace an existing .md file.")
@click.option("--title", metavar="TEXT", help="A `# TEXT` heading at the top.")
@click.option(
    "--info",
    "info_file",
    metavar="FILE",
    help="The item's NAME.info.json (fetch --write-info-json): its title as heading, its "
    "chapters as sections, and with --timestamps each time a link to its page "
    "[default: the one an `xdl fetch` line lists].",
)
@layout_options
@click.option(
    "--dedupe/--no-dedupe",
    default=None,
    help="Remove the repeated lines of rolling automatic captions "
    "[default: when the file looks like them].",
)
@click.option(
    "--encoding",
    metavar="NAME",
    callback=lambda ctx, param, value: _known_encoding(value),
    help="Read the files in this encoding (cp1251, latin-1, ...) "
    "[default: a BOM, else UTF-8, else detected].",
)
@verbosity_options
def command(
    inputs: tuple[str, ...],
    batch_file: IO[bytes] | None,
    output: str | None,
    output_dir: str | None,
    to_stdout: bool,
    overwrite: bool,
    title: str | None,
    info_file: str | None,
    layout: Layout,
    dedupe: bool | None,
    encoding: str | None,
) -> int:
    """Turn WebVTT, SRT, SBV, TTML/DFXP or YouTube json3/srv3 captions into Markdown.

    The format is read from the content, not the name. A caption file may be at most
    1 GiB, read a piece at a time (larger, or endless, is `too_large`; binary data such
    as /dev/zero, or text without a cue timing in its first MiB, is `not_captions`); a
    TTML, json3, srv3 or SBV document, read whole, 64 MiB. A cue whose time is no time
    (NaN, 5,000 digits) is one of skipped_blocks. Tags, entities and YouTube's rolling
    repeats go; every word stays: sentences run across cues, paragraphs break at
    speakers, pauses and sentence ends. FILE.vtt becomes FILE.md next to it (an
    existing .md is left alone, `skipped: "exists"`, unless --overwrite). `-` reads a
    caption document from stdin and prints Markdown; JSON lines with `path` (from
    `xdl transcript`) are read too, and `xdl fetch` lines: the subtitle files their
    `files` list (`no_subtitles` when there are none).

    Fields: path, output, format (vtt, srt, sbv, ttml, json3, srv1, srv2, srv3),
    encoding (the one the file was read in), words (in Chinese or Japanese, characters: also for
    --min-words and --max-words), paragraphs, avg_words_per_paragraph,
    compression_ratio (input bytes / Markdown bytes), speakers,
    duplicates_removed (rolling-caption lines dropped), skipped_blocks (blocks that
    could not be read: never silently zero), segment_headers (WEBVTT headers of
    HLS segments joined into one file: set aside, not text), skipped.

    \b
    Examples:
      xdl to-markdown talk.en.vtt
      xdl transcript URL | xdl to-markdown --timestamps
      xdl fetch --subs URL | xdl to-markdown
      xdl fetch --subs --write-info-json URL | xdl to-markdown --timestamps
      xdl to-markdown --info talk.info.json --timestamps talk.en.vtt
      curl -s URL/captions.vtt | xdl to-markdown - > talk.md
      xdl to-markdown --stdout --no-speakers --sound-labels drop *.srt
    """
    from xdl.core import errors
    from xdl.core.inputs import iter_inputs
    from xdl.core.markdown import (
        MarkdownOptions,
        convert_file,
        page_of,
        read_capped,
        read_info,
        with_info,
    )

    if output and output_dir:
        raise click.UsageError("-o/--output and --output-dir cannot be used together")
    if output == "-":
        output, to_stdout = None, True
    if output and to_stdout:
        raise click.UsageError("-o FILE and --stdout cannot be used together")
    layout = dataclasses.replace(layout, title=title)
    if info_file is not None:  # read once, for every input; a bad one is a usage error
        try:
            layout = with_info(layout, read_info(info_file))
        except errors.XdlError as e:
            raise click.BadParameter(e.message, param_hint="--info") from None
    options = MarkdownOptions(
        layout=layout,
        output_dir=output_dir,
        overwrite=overwrite,
        rolling=dedupe,
        encoding=encoding,
    )

    stdin_document: IO[bytes] | None = None
    if not inputs and batch_file is None and sys.stdin is not None and not sys.stdin.isatty():
        piped = read_capped(sys.stdin.buffer, 4095)  # enough to tell a document from a list
        rest = io.BufferedReader(_Prefixed(piped, sys.stdin.buffer))
        if _looks_like_captions(piped):  # converted as it is read: never all in memory
            stdin_document, items = rest, iter([_stdin_item()])
        else:  # a list of files: read on, past what was looked at
            items = iter_inputs((), None, "-", rest, "path")
    else:
        items = read_inputs(inputs, batch_file, "path")
    if "-" in inputs:
        stdin_document = sys.stdin.buffer
    if output:
        items = iter(_only_one(items))

    out = Output(key="path")
    printed = 0

    def work(item: Input) -> list[Any]:
        nonlocal printed
        if item.fields.get("ok") is False:
            raise errors.BadInput("the command before this one failed on it")
        data: IO[bytes] | bytes | None = None
        if item.value == "-":
            data = stdin_document or b""
        target = output or ("-" if to_stdout or (item.value == "-" and not output) else None)
        results = []
        used = options
        if info_file is None and (listed := _info_file(item)) is not None:
            listed_layout = with_info(layout, read_info(listed), item.fields.get("url"))
            used = dataclasses.replace(options, layout=listed_layout)
        elif not layout.link and (page := page_of(item.fields.get("url"))):
            used = dataclasses.replace(options, layout=dataclasses.replace(layout, link=page))
        if used.layout.timestamps == "link" and not used.layout.link:
            log.warning(
                "%s: no page is known to link its times to (--info NAME.info.json, or a"
                " fetch or transcript line): they are plain",
                shown(item.value),
            )
        for path in _caption_files(item):
            result, text = convert_file(path, used, data=data, output=target)
            if target == "-":
                _print_markdown(text, printed)
                printed += 1
            else:
                results.append(result)
        return results

    out.each(items, work)
    return out.close()


def _caption_files(item: Input) -> list[str]:
    """The caption files an input names: a `xdl fetch` line lists them in `files` (kind
    `subtitles`; its `path` is the media), any other input is one file itself."""
    from xdl.core import errors

    files = item.fields.get("files")
    if not isinstance(files, list):
        return [item.value]
    found = [
        f["path"]
        for f in files
        if isinstance(f, dict) and f.get("kind") == "subtitles" and isinstance(f.get("path"), str)
    ]
    if not found:
        raise errors.NoSubtitles(
            "the line lists no subtitle files (fetch with --subs or --auto-subs)"
        )
    return found


def _info_file(item: Input) -> str | None:
    """The info.json a `xdl fetch` line lists (`--write-info-json`), if any."""
    files = item.fields.get("files")
    for f in files if isinstance(files, list) else []:
        if isinstance(f, dict) and f.get("kind") == "info_json" and isinstance(f.get("path"), str):
            return str(f["path"])
    return None


class _Prefixed(io.RawIOBase):
    """`head`, then the rest of `stream`: stdin after its first bytes were looked at."""

    def __init__(self, head: bytes, stream: IO[bytes]) -> None:
        self.head = memoryview(head)
        self.stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.head:
            n = min(len(buffer), len(self.head))
            buffer[:n] = self.head[:n]
            self.head = self.head[n:]
            return n
        read1 = getattr(self.stream, "read1", self.stream.read)
        data = read1(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _stdin_item() -> Input:
    from xdl.core.inputs import Input

    return Input("-", origin="stdin")


def _looks_like_captions(data: bytes) -> bool:
    """Is piped stdin a caption document rather than a list of files?"""
    head = data[:4096].lstrip(b"\xef\xbb\xbf\xff\xfe\x00 \t\r\n")
    return head.startswith((b"WEBVTT", b"<", b"W\x00")) or b"-->" in head


def _known_encoding(value: str | None) -> str | None:
    from xdl.core.captions import text_encoding
    from xdl.core.errors import BadInput

    if value:
        try:
            text_encoding(value)
        except BadInput as e:
            raise click.BadParameter(e.message) from None
    return value


def _only_one(items: Any) -> list[Input]:
    listed = list(items)
    if len(listed) > 1:
        raise click.UsageError("-o FILE takes one input; use --output-dir for several")
    return listed


def _print_markdown(text: str, printed: int) -> None:
    from xdl.cli.output import write_out

    write_out(("\n" if printed else "") + text)
