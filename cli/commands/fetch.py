"""`xdl fetch`: download media or files, one JSON result line per item."""

from __future__ import annotations

import logging
import threading
from typing import IO, TYPE_CHECKING

import click

from xdl.cli.config import profile_option, shared
from xdl.cli.options import (
    download_options,
    exec_options,
    input_options,
    read_inputs,
    verbosity_options,
    with_hook,
)
from xdl.cli.output import Output
from xdl.cli.progress import progress_option, reporter
from xdl.core.inputs import shown

if TYPE_CHECKING:
    from xdl.core.fetch import FetchOptions

log = logging.getLogger("xdl")


@click.command()
@input_options("url")
@profile_option
@download_options
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    metavar="N",
    help="Download N inputs at once; results print as each finishes.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Resolve and print what would be downloaded; download nothing.",
)
@progress_option
@click.option(
    "-O",
    "--print",
    "prints",
    multiple=True,
    metavar="TEMPLATE",
    help="Print this yt-dlp template of each item's fields (or a field name) instead of "
    "its JSON line; repeatable. E.g. -O path, -O '%(title)s: %(bytes)d'.",
)
@exec_options
@verbosity_options
def command(
    inputs: tuple[str, ...],
    batch_file: IO[bytes] | None,
    options: FetchOptions,
    jobs: int,
    dry_run: bool,
    progress: str,
    prints: tuple[str, ...],
    exec_cmd: str | None,
    exec_failed: str | None,
) -> int:
    """Download media or files: one JSON line per item on stdout.

    Picks the downloader per URL: pages and media go to yt-dlp, other files (PDF, ZIP,
    binaries) straight to HTTP under their real name; when one fails the next is tried
    (yt-dlp, youtube-dl, HTTP, wget, curl). Downloads go to NAME.part and are renamed
    only when complete; an interrupted download resumes on the next run. Existing files
    are skipped unless --overwrite. JSON input lines may carry their own `sha256`,
    `template` and `audio`.

    Fields: url, ok, path, bytes, sha256, strategy, attempts (strategy, ok, error,
    elapsed_s), title, id, extractor, elapsed_s, resumed_from (bytes, when resumed),
    skipped ("exists" or "archive"; an archive skip has the path while the file is
    there; "unchanged": a feed that answered 304), error (code, message), files (every
    file on disk for the item: path, kind = media, audio, subtitles with lang,
    info_json, description, thumbnail); for a playlist, one line per entry with playlist
    and playlist_index; for a live stream, live ("ended": the stream or --live-duration
    ended it; "interrupted": Ctrl-C, SIGTERM); with --dry-run, dry_run: true; placed
    from --cache, cached: true.

    A feed (RSS, Atom) gives one line per entry, fetched as `xdl info --flat FEED` lists
    it (the same names, tags and archive keys either way). With --archive an entry is
    known by its guid, whatever its URL's tracking token, and a feed that got everything
    last time is asked with If-None-Match / If-Modified-Since: unchanged, it is one 304
    and one line, skipped: "unchanged".

    A live stream is recorded from now (from its start with --live-from-start, where the
    site offers that) until it ends, --live-duration passes, or Ctrl-C, which keeps the
    recording so far. A playlist or manifest (.m3u8, .mpd) is never saved as the media.

    Progress events (--progress json, one JSON object a line on stderr): event (start,
    progress, done), url, time (Unix seconds), bytes (received so far, never going
    back), total (null when unknown), speed (bytes/s), eta (seconds), elapsed_s;
    progress adds file; done adds ok, path, size (the result's bytes), error (code) and,
    for a playlist (one item, done after its last entry), entries.

    \b
    Examples:
      xdl fetch https://example.com/watch.html
      xdl fetch -x --audio-format mp3 URL
      cat urls.txt | xdl fetch -j 4 -r 2M --archive done.txt
      xdl info --flat https://example.com/feed.xml | xdl fetch --audio
      xdl fetch --profile podcast --break-on-existing https://example.com/feed.xml
      xdl fetch --sha256 HEX -o downloads https://example.com/file.zip
      xdl fetch -o 'videos/%(uploader)s/%(title)s.%(ext)s' -O path URL
      xdl fetch --profile stream --live-duration 3600 https://example.com/live.m3u8
    """
    from xdl.core.fetch import fetch_many
    from xdl.core.stopping import take_signals

    if dry_run:
        options = options.replace(dry_run=True)
    items = read_inputs(inputs, batch_file)
    total = None
    if progress == "bars" and (inputs or _a_file(batch_file)):
        items = list(items)  # a known number of inputs: the overall bar has a total
        total = len(items)
    ctx = shared()
    bars = reporter(progress, total, ctx.budget)
    out = Output(None, None, prints=prints)
    stop = threading.Event()
    take_signals()  # Ctrl-C stops the batch; every line still comes, then exit 130
    results = iter(
        fetch_many(
            items,
            options,
            jobs=jobs,
            stop=stop,
            progress=bars.update if bars else None,
            ctx=ctx,
        )
    )
    interrupt: KeyboardInterrupt | None = None
    try:
        while True:
            try:
                result = next(results)
                if bars:
                    bars.finished(
                        result.to_dict(), source=result.source, last=result.last_of_source
                    )
                row = with_hook(result.to_dict(), exec_cmd, exec_failed)
                if bars:
                    with bars.above():
                        out.emit(row)
                else:
                    out.emit(row)
                if not result.ok and result.error:  # after its line: the line counts
                    log.error("%s: %s", shown(result.url), result.error.get("message"))
            except StopIteration:
                break
            except KeyboardInterrupt as e:  # the engine stops the workers, we keep reading
                stop.set()
                interrupt = interrupt or e
    finally:
        if bars:
            bars.close()
    code = out.close()
    if interrupt is not None:
        raise interrupt
    return code


def _a_file(batch_file: IO[bytes] | None) -> bool:
    """-a FILE names a file (not stdin): its inputs can be counted up front."""
    return batch_file is not None and getattr(batch_file, "name", "-") not in ("-", "<stdin>")
