"""Feeds read as playlists: RSS 0.9x/1.0/2.0 and Atom 0.3/1.0 (with the iTunes and
podcast namespaces), through feedparser, one `FeedEntry` per item.

Invariants:
- A feed is told by its content type and first bytes (`looks_like_feed`), before
  yt-dlp sees the URL: `info --flat`, `fetch`, `queue run` and `transcript` read one
  the same way, here (`info` asks yt-dlp first, and reads a feed it cannot: Atom).
  feedparser is only ever given bytes, never a URL to open.
- An entry's `id` is the feed's own (RSS guid, Atom id); the enclosure URL, which may
  carry a tracking token that changes on every poll, is never its identity. Only an
  entry with no guid, no id and no link falls back to its enclosure URL without query.
- The JSON line of an entry (`FeedEntry.to_dict`) carries everything needed to name and
  tag its file, so `info --flat FEED | xdl fetch` equals `xdl fetch FEED`:
  `item_fields(line)` turns such a line back into the fields forced on the item.
- The archive keys an entry as `feed <playlist_id> <id>` (`archive_key`): per feed, so
  two feeds numbering their guids 1, 2, 3 do not shadow each other.
- With an archive, a feed's validators (ETag, Last-Modified) are remembered in the cache
  directory, per archive and feed URL, only once every entry of a poll was downloaded or
  skipped: the next poll asks with If-None-Match / If-Modified-Since, and a 304 is the
  whole answer (`skipped: "unchanged"`). A poll with a failure remembers nothing, so the
  failed entries are tried again; an archive smaller than it was then (emptied to fetch
  everything again) makes the next poll a full one.
"""

from __future__ import annotations

import calendar
import hashlib
import html
import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

from . import errors

if TYPE_CHECKING:
    from .network import NetworkOptions

#: Content types that are a feed whatever their bytes say.
FEED_TYPES = (
    "application/rss+xml",
    "application/atom+xml",
    "application/rdf+xml",
    "application/feed+xml",
)
#: Content types a feed is often served as: told apart from other XML by its first bytes.
MAYBE_TYPES = ("application/xml", "text/xml", "text/plain", "application/octet-stream", "")
SNIFF_BYTES = 4096
MAX_FEED_BYTES = 32 * 1024 * 1024

_ROOT = re.compile(rb"<(?:[\w-]+:)?(rss|feed|RDF)[\s>]")


def looks_like_feed(content_type: str | None, first: bytes) -> bool:
    """A feed by its type, or by the first element of an XML body served loosely."""
    mime = (content_type or "").split(";")[0].strip().lower()
    if mime in FEED_TYPES:
        return True
    if mime not in MAYBE_TYPES:
        return False
    head = first[:SNIFF_BYTES].lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head.startswith(b"<"):
        return False
    # the root element, after the XML declaration, comments and a doctype
    body = re.sub(rb"<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^>]*>", b"", head, flags=re.S).lstrip()
    match = _ROOT.match(body)
    return match is not None and (match.group(1) != b"RDF" or b"purl.org/rss" in head)


_MEDIA_NAME = re.compile(
    r"\.(mp3|m4a|m4b|aac|ogg|oga|opus|flac|wav|mp4|m4v|mov|webm|mkv|avi|ts|m3u8|mpd)$", re.I
)


def named_as_media(url: str) -> bool:
    """A URL whose path names a media file or stream manifest: never taken for a feed
    (so `fetch --audio` of an MP3 costs no request to find out)."""
    return bool(_MEDIA_NAME.search(urlsplit(url).path))


@dataclass(frozen=True)
class Enclosure:
    url: str
    type: str | None
    length: int | None


@dataclass(frozen=True)
class FeedEntry:
    """One item of a feed, as `info --flat` prints it (and `fetch` reads it back)."""

    url: str
    id: str
    title: str | None
    playlist: str | None
    playlist_index: int
    playlist_id: str
    feed: str
    upload_date: str | None = None
    timestamp: int | None = None
    description: str | None = None
    duration: float | None = None
    episode_number: int | None = None
    season_number: int | None = None
    uploader: str | None = None
    thumbnail: str | None = None
    webpage_url: str | None = None
    enclosure: Enclosure | None = None
    #: podcast:transcript tracks, as `transcript` reads them: {url, ext, lang}
    transcripts: tuple[dict[str, str], ...] = ()
    extractor: str = "feed"
    ok: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Feed:
    url: str
    title: str | None
    id: str
    entries: list[FeedEntry] = field(default_factory=list)
    etag: str | None = None
    last_modified: str | None = None


def parse(body: bytes, url: str, *, etag: str | None = None, modified: str | None = None) -> Feed:
    """The feed in `body` (fetched from `url`); `unsupported_url` when it is none."""
    import feedparser

    # no base URL given: feedparser would resolve a guid ("ep1") against it as a link
    parsed = feedparser.parse(body)
    if not parsed.get("version") and not parsed.entries:
        raise errors.UnsupportedUrl(f"not a feed (RSS or Atom): {url}")
    info = parsed.feed
    title = _text(info.get("title"))
    feed_id = _text(info.get("podcast_guid")) or _text(info.get("id")) or url
    author = _text(info.get("author")) or _text(info.get("itunes_author"))
    cover = _image(info)
    entries = []
    for index, item in enumerate(parsed.entries, 1):
        entry = _entry(item, url, index, title, feed_id, author, cover)
        if entry is not None:
            entries.append(entry)
    return Feed(url, title, feed_id, entries, etag, modified)


def _entry(
    item: Mapping[str, Any],
    feed_url: str,
    index: int,
    show: str | None,
    feed_id: str,
    author: str | None,
    cover: str | None,
) -> FeedEntry | None:
    enclosure = _enclosure(item, feed_url)
    link = _page(item, feed_url)
    url = enclosure.url if enclosure else link
    if not url:
        return None
    entry_id = _text(item.get("id")) or link or _without_query(url)
    when = item.get("published_parsed") or item.get("updated_parsed")
    timestamp = int(calendar.timegm(when)) if when else None
    upload_date = f"{when[0]:04d}{when[1]:02d}{when[2]:02d}" if when else None
    return FeedEntry(
        url=url,
        id=entry_id,
        title=_text(item.get("title")),
        playlist=show,
        playlist_index=index,
        playlist_id=feed_id,
        feed=feed_url,
        upload_date=upload_date,
        timestamp=timestamp,
        description=_plain(item.get("summary") or _content(item)),
        duration=parse_duration(item.get("itunes_duration")),
        episode_number=_int(item.get("itunes_episode") or item.get("podcast_episode")),
        season_number=_int(item.get("itunes_season") or item.get("podcast_season")),
        uploader=_text(item.get("author")) or author or show,
        thumbnail=_image(item) or cover,
        webpage_url=link,
        enclosure=enclosure,
        transcripts=_transcripts(item, feed_url),
    )


def _enclosure(item: Mapping[str, Any], base: str) -> Enclosure | None:
    found = [
        link
        for link in item.get("links") or []
        if link.get("rel") == "enclosure" and link.get("href")
    ]
    media = [e for e in found if str(e.get("type") or "").startswith(("audio/", "video/"))]
    chosen = (media or found or [None])[0]
    if chosen is None:
        return None
    return Enclosure(
        urljoin(base, str(chosen["href"]).strip()),
        _text(chosen.get("type")),
        _int(chosen.get("length")),
    )


def _page(item: Mapping[str, Any], base: str) -> str | None:
    """The entry's web page (RSS <link>, Atom rel=alternate): never its guid."""
    for link in item.get("links") or []:
        if link.get("rel", "alternate") == "alternate" and link.get("href"):
            href = urljoin(base, str(link["href"]).strip())
            if href.startswith(("http://", "https://")):
                return href
    return None


#: podcast:transcript types whose content `transcript` and `to-markdown` can read.
_TRANSCRIPT_TYPES = {
    "text/vtt": "vtt",
    "application/x-subrip": "srt",
    "application/srt": "srt",
    "text/srt": "srt",
}


def _transcripts(item: Mapping[str, Any], base: str) -> tuple[dict[str, str], ...]:
    """The entry's podcast:transcript in a caption format (feedparser keeps one)."""
    track = item.get("podcast_transcript")
    if not isinstance(track, Mapping) or not track.get("url"):
        return ()
    ext = _TRANSCRIPT_TYPES.get(str(track.get("type") or "").split(";")[0].strip().lower())
    if ext is None:
        return ()
    url = urljoin(base, str(track["url"]).strip())
    return ({"url": url, "ext": ext, "lang": _text(track.get("language")) or "und"},)


def _content(item: Mapping[str, Any]) -> str | None:
    content = item.get("content") or []
    return str(content[0].get("value") or "") if content else None


def _image(node: Mapping[str, Any]) -> str | None:
    image = node.get("image")
    if isinstance(image, Mapping) and image.get("href"):
        return str(image["href"])
    thumbs = node.get("media_thumbnail") or []
    if thumbs and isinstance(thumbs[0], Mapping) and thumbs[0].get("url"):
        return str(thumbs[0]["url"])
    return None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = " ".join(str(value).split())
    return text or None


def _plain(value: Any) -> str | None:
    """A description as text: tags dropped, entities decoded, paragraphs kept apart."""
    if not value:
        return None
    text = re.sub(r"<\s*(br|/p|/div|/li)\b[^>]*>", "\n", str(value), flags=re.I)
    text = html.unescape(re.sub(r"<[^>]+>", "", text))
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return "\n".join(line for line in lines if line) or None


def printable(text: str) -> str:
    """`text` without control characters (NUL, escapes) or lone surrogates, stripped: a
    JSON line's string as it may go into a file name, a tag, the archive, a line."""
    kept = "".join(c if c.isprintable() or c in "\n\t" else " " for c in text)
    return kept.encode("utf-8", "replace").decode("utf-8").strip()


def _int(value: Any) -> int | None:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number if 0 <= number < 2**53 else None


def _without_query(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def parse_duration(value: Any) -> float | None:
    """itunes:duration in seconds: `3723`, `3723.5`, `62:03` or `1:02:03`."""
    if value is None:
        return None
    text = str(value).strip()
    if not re.fullmatch(r"\d+(\.\d+)?|\d+(:\d{1,2}){1,2}(\.\d+)?", text):
        return None
    seconds = 0.0
    for part in text.split(":"):
        seconds = seconds * 60 + float(part)
    return seconds


# --- reading a URL ------------------------------------------------------------------


def read(url: str, net: NetworkOptions, *, archive: str | None = None) -> Feed | None:
    """The feed at `url`, or None when `url` is not a feed (a page, a media file).

    With `archive`, the poll is conditional on what the last complete poll saw; an
    unchanged feed raises `Unchanged`. Pages claimed by a specific yt-dlp extractor are
    never requested here."""
    from . import http
    from .extractors import extractor_for

    if extractor_for(url) is not None:
        return None
    resp = http.get(url, net, conditional_headers(url, archive))
    with resp:
        return from_response(resp, url)


class Unchanged(Exception):
    """The feed answered 304 Not Modified to a conditional poll."""


def from_response(resp: Any, url: str) -> Feed | None:
    """The feed an open streaming response (of `core.http`) carries, or None (left
    unread past its first bytes) when it is not a feed."""
    if resp.status_code == 304:
        raise Unchanged(url)
    content_type = resp.headers.get("Content-Type")
    first = b""
    mime = (content_type or "").split(";")[0].strip().lower()
    if mime not in FEED_TYPES:
        if mime not in MAYBE_TYPES:
            return None
        first = bytes(resp.raw.read(SNIFF_BYTES, decode_content=True) or b"")
        if not looks_like_feed(content_type, first):
            return None
    body = first + read_body(resp.raw, url, len(first))
    return parse(
        body,
        url,
        etag=resp.headers.get("ETag"),
        modified=resp.headers.get("Last-Modified"),
    )


def read_body(raw: Any, url: str, already: int = 0) -> bytes:
    """The rest of a feed's body from a urllib3 response (or one replaying its first
    bytes); `too_large` past MAX_FEED_BYTES."""
    from . import http

    pieces: list[bytes] = []
    size = already
    try:
        while piece := raw.read(256 * 1024, decode_content=True):
            size += len(piece)
            if size > MAX_FEED_BYTES:
                raise errors.TooLarge(f"feed larger than {MAX_FEED_BYTES // 2**20} MiB: {url}")
            pieces.append(bytes(piece))
    except errors.XdlError:
        raise
    except Exception as e:  # a broken transfer
        raise http.translate(e, url) from e
    return b"".join(pieces)


# --- conditional polls ----------------------------------------------------------------


def _state_file(url: str, archive: str) -> Any:
    from .paths import cache_dir

    scope = os.path.abspath(os.path.expanduser(archive))
    name = hashlib.sha256(f"{scope}\n{url}".encode()).hexdigest()[:32]
    return cache_dir() / "feeds" / f"{name}.json"


def conditional_headers(url: str, archive: str | None) -> dict[str, str]:
    """If-None-Match / If-Modified-Since for `url`, as the last complete poll into
    `archive` saw it (nothing without an archive, or when unknown)."""
    if not archive:
        return {}
    try:
        state = json.loads(_state_file(url, archive).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(state, dict) or state.get("url") != url:
        return {}
    # an archive only grows: a smaller one (emptied, deleted to fetch everything again)
    # no longer holds what that poll saw downloaded
    known = state.get("archive_size")
    if not isinstance(known, int) or _size(archive) < known:
        return {}
    headers = {}
    if isinstance(state.get("etag"), str):
        headers["If-None-Match"] = state["etag"]
    if isinstance(state.get("last_modified"), str):
        headers["If-Modified-Since"] = state["last_modified"]
    return headers


def remember(feed: Feed, archive: str | None) -> None:
    """Keep `feed`'s validators for the next poll into `archive` (best effort: a cache
    that cannot be written costs a full poll next time, nothing else)."""
    if not archive or not (feed.etag or feed.last_modified):
        return
    path = _state_file(feed.url, archive)
    state = {
        "url": feed.url,
        "etag": feed.etag,
        "last_modified": feed.last_modified,
        "archive_size": _size(archive),
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(state), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass


def _size(path: str) -> int:
    try:
        return os.path.getsize(os.path.expanduser(path))
    except OSError:
        return -1


def forget(url: str, archive: str | None) -> None:
    """Drop what the last poll saw (a poll that failed somewhere)."""
    if archive:
        try:
            _state_file(url, archive).unlink(missing_ok=True)
        except OSError:
            pass


# --- an entry's JSON line, read back ---------------------------------------------------


def is_entry(fields: Mapping[str, Any]) -> bool:
    """Whether a JSON input line is a feed entry (`info --flat FEED`'s)."""
    return (
        fields.get("extractor") == "feed"
        and isinstance(fields.get("id"), str)
        and bool(fields["id"].strip())
    )


def archive_key(fields: Mapping[str, Any]) -> str | None:
    """The archive's key for a feed entry's line: by its feed and feed id."""
    if not is_entry(fields):
        return None
    scope = fields.get("playlist_id")
    if not isinstance(scope, str) or not scope.strip():
        scope = fields.get("feed") if isinstance(fields.get("feed"), str) else "-"
    words = (" ".join(printable(str(part)).split()) for part in (scope, fields["id"]))
    return "feed " + " ".join(words)


def entry_line(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a feed entry's line that `queue add` keeps with its task (scalars of
    the right type only), so `queue run` names and tags it as `fetch` would."""
    if not is_entry(fields):
        return {}
    keep = (*_STRINGS, *_NUMBERS, "extractor", "feed", "playlist_id", "webpage_url")
    line = {
        k: fields[k]
        for k in keep
        if isinstance(fields.get(k), (str, int, float)) and not isinstance(fields[k], bool)
    }
    if tracks := subtitles_of(fields):
        line["transcripts"] = [
            {"url": t["url"], "ext": t["ext"], "lang": lang}
            for lang, ts in tracks.items()
            for t in ts
        ]
    return line


def subtitles_of(fields: Mapping[str, Any]) -> dict[str, list[dict[str, str]]]:
    """A feed entry line's podcast transcripts as yt-dlp's `subtitles` ({lang: [{url,
    ext}]}): only http(s) URLs in a format xdl reads."""
    found: dict[str, list[dict[str, str]]] = {}
    listed = fields.get("transcripts") if is_entry(fields) else None
    for track in listed if isinstance(listed, (list, tuple)) else ():
        if not isinstance(track, Mapping):
            continue
        url, ext, lang = track.get("url"), track.get("ext"), track.get("lang")
        if not (isinstance(url, str) and url.startswith(("http://", "https://"))):
            continue
        if ext not in set(_TRANSCRIPT_TYPES.values()):
            continue
        found.setdefault(lang if isinstance(lang, str) and lang else "und", []).append(
            {"url": url, "ext": str(ext)}
        )
    return found


#: Past these a number is nonsense (a date past the year 9999, a week-long episode x 1000).
_NUMBER_LIMITS = {
    "timestamp": 253402300800,
    "duration": 10**9,
    "episode_number": 2**31,
    "season_number": 2**31,
}
_STRINGS = ("id", "title", "upload_date", "description", "uploader", "thumbnail", "playlist")
_NUMBERS = ("timestamp", "duration", "episode_number", "season_number")


def item_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The fields a feed entry's line forces on the downloaded item, so it is named and
    tagged as the feed says (ID3: title, artist, album/show, date, track, comment):
    only values of the right type, never a nested structure from the line."""
    if not is_entry(fields):
        return {}
    out: dict[str, Any] = {}
    for name in _STRINGS:
        value = fields.get(name)
        if isinstance(value, str) and (text := printable(value)):
            out[name] = text
    for name in _NUMBERS:
        value = fields.get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if math.isfinite(value) and 0 <= value < _NUMBER_LIMITS[name]:
            out[name] = value
    if not re.fullmatch(r"\d{8}", out.get("upload_date", "")):
        out.pop("upload_date", None)
    if "playlist" in out:
        out["playlist_title"] = out["series"] = out["album"] = out["playlist"]
    if "episode_number" in out:
        out["track_number"] = out["episode_number"]
    if "description" in out:
        out["meta_comment"] = out["description"]
    # where the file came from (its recorded origin, the `purl` tag): the entry's page,
    # else the feed and the entry's id; never the enclosure URL, whose token changes
    link = fields.get("webpage_url")
    feed = fields.get("feed")
    if isinstance(link, str) and link.startswith(("http://", "https://")):
        out["webpage_url"] = link
    elif isinstance(feed, str) and feed.startswith(("http://", "https://")):
        out["webpage_url"] = f"{feed.split('#')[0]}#{quote(out['id'], safe='')}"
    return out
