"""`xdl fetch FEED`: a feed's entries fetched one by one, each as its `info --flat` line.

Invariants:
- Each entry is fetched exactly as `xdl info --flat FEED | xdl fetch` fetches it: the
  same input (its enclosure URL) with the same fields (its JSON line), so names, tags
  and archive keys are the same either way.
- An entry already in the archive (by its feed id) is skipped without a request;
  `--break-on-existing` stops reading the feed there (newest first, as feeds are).
- `--playlist-items` and `--max-downloads` count the feed's entries, as yt-dlp counts a
  playlist's; they never reach the entry's own fetch.
- The feed's validators are remembered (`feeds.remember`) only when the poll took the
  whole feed (no --playlist-items, not cut by --max-downloads or --break-on-existing)
  and every entry ended
  downloaded or skipped: a failed or unread entry is tried again on the next poll.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from typing import Any

from .. import errors, feeds
from ..archive import Archive
from .options import FetchOptions
from .result import FetchResult, failed, since

#: run(url, fields) -> the results of one entry, as `fetch_one` gives them.
RunEntry = Callable[[str, Mapping[str, Any]], list[FetchResult]]


def fetch_feed(
    feed: feeds.Feed,
    options: FetchOptions,
    run: RunEntry,
    *,
    archive: Archive | None,
    stopped: Callable[[], bool],
) -> list[FetchResult]:
    """One result (or more) per selected entry of `feed`, in the feed's order."""
    started = time.monotonic()
    chosen = select(feed.entries, options.playlist_items)
    results: list[FetchResult] = []
    downloaded = 0
    whole = not options.playlist_items  # a poll of part of a feed is not remembered
    for entry in chosen:
        fields = entry.to_dict()
        where: dict[str, Any] = {"playlist": entry.playlist, "playlist_index": entry.playlist_index}
        common: dict[str, Any] = {
            "title": entry.title,
            "id": entry.id,
            "extractor": "feed",
            **where,
        }
        if stopped():
            error = errors.Interrupted("interrupted before it started")
            results.append(dataclasses.replace(failed(entry.url, error, (), started), **common))
            continue
        key = feeds.archive_key(fields)
        if archive is not None and key is not None and key in archive:
            path = archive.path_of(key)
            results.append(
                FetchResult(
                    url=entry.url,
                    ok=True,
                    path=str(path) if path else None,
                    bytes=path.stat().st_size if path else None,
                    skipped="archive",
                    elapsed_s=since(started),
                    **common,
                )
            )
            if options.break_on_existing:
                whole = False
                break
            continue
        for result in run(entry.url, fields):
            results.append(dataclasses.replace(result, **where))
            if result.ok and not result.skipped:
                downloaded += 1
        if options.max_downloads and downloaded >= options.max_downloads:
            whole = False
            break
    if not chosen:
        raise errors.NoFormats(f"the feed has no entries: {feed.url}")
    if whole and all(r.ok for r in results) and not options.dry_run:
        feeds.remember(feed, options.archive)
    else:
        feeds.forget(feed.url, options.archive)
    return results


def select(entries: list[feeds.FeedEntry], items: str | None) -> list[feeds.FeedEntry]:
    """The entries `--playlist-items` names (yt-dlp's syntax: `1,3-5,-2`, `::2`)."""
    if not items:
        return list(entries)
    from ..ytdlp import playlist_indices

    wanted = playlist_indices(items, len(entries))
    return [entries[i - 1] for i in wanted if 1 <= i <= len(entries)]
