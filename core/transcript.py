"""`xdl transcript`: an item's subtitles, picked by language and source, saved as
published (vtt) or converted by our own code (srt, txt, md, json)."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from . import errors
from .captions import Captions, parse
from .files import write_new
from .markdown import (
    Layout,
    count_words,
    markdown_of,
    render_json,
    render_srt,
    render_text,
    with_info,
)
from .names import inside, sanitize_filename
from .network import NetworkOptions

log = logging.getLogger("xdl")

Format = Literal["vtt", "srt", "txt", "md", "json"]
FORMATS: tuple[str, ...] = ("vtt", "srt", "txt", "md", "json")
Source = Literal["manual", "auto"]
DEFAULT_TEMPLATE = "%(title)s [%(id)s].%(lang)s.%(ext)s"

#: Track formats we can read, best first.
READABLE = ("vtt", "srt", "ttml", "dfxp", "xml", "ttml2", "json3", "srv3", "srv2", "srv1", "sbv")
#: For automatic captions, YouTube's own formats first: each word once, with its time, so
#: nothing has to be guessed about rolling repeats.
NATIVE = ("json3", "srv3")


@dataclass(frozen=True)
class Track:
    """One language of subtitles as the site offers it, in one or more formats."""

    lang: str
    source: Source
    formats: Sequence[Mapping[str, Any]]
    name: str | None = None


@dataclass(frozen=True)
class Transcript:
    """The result line of one track; `text` is the transcript itself (not in the line)."""

    url: str
    path: str | None
    lang: str
    source: str
    format: str
    #: The encoding the published track was read in (as `to-markdown` says it).
    encoding: str
    title: str | None
    id: str | None
    words: int
    duplicates_removed: int = 0
    skipped_blocks: int = 0
    skipped: str | None = None
    ok: bool = True
    text: str = field(default="", repr=False)

    def to_dict(self) -> dict[str, Any]:
        row = asdict(self)
        del row["text"]
        if row["skipped"] is None:
            del row["skipped"]
        return row


@dataclass(frozen=True)
class TranscriptOptions:
    """What `xdl transcript` does with every input: which tracks (`langs`, `source`), in
    which format, laid out how, written where (unless `write` is off); `rolling` forces
    the removal of rolling repeats on or off (None: decided by the content)."""

    langs: Sequence[str] | None = None
    source: Source | None = None
    fmt: str = "vtt"
    layout: Layout = field(default_factory=Layout)
    net: NetworkOptions | None = None
    output_dir: str | None = None
    template: str = DEFAULT_TEMPLATE
    overwrite: bool = False
    write: bool = True
    rolling: bool | None = None


def tracks(info: Mapping[str, Any]) -> list[Track]:
    """Every subtitle track of an item: creator-made first, then automatic."""
    out: list[Track] = []
    for source, key in (("manual", "subtitles"), ("auto", "automatic_captions")):
        for lang, formats in (info.get(key) or {}).items():
            if lang == "live_chat" or not formats:
                continue
            name = next((f.get("name") for f in formats if f.get("name")), None)
            out.append(Track(lang, source, list(formats), name))  # type: ignore[arg-type]
    return out


def pick(
    available: Sequence[Track], langs: Sequence[str] | None, source: Source | None = None
) -> list[Track]:
    """The tracks to fetch: the first language of `langs` that exists (exact code first,
    then a regional variant: `en` finds `en-US`), creator-made before automatic unless
    `source` says which. `all` takes every language (automatic ones only when there is
    no creator-made track, or with source="auto"; never YouTube's machine translations)."""
    pool = [t for t in available if source is None or t.source == source]
    if not pool:
        raise errors.NoSubtitles(_none_message(available, langs, source))
    wanted = [lang.strip() for lang in (langs or []) if lang.strip()]
    if any(lang.lower() == "all" for lang in wanted):
        manual = [t for t in pool if t.source == "manual"]
        if manual:
            return manual
        originals = [t for t in pool if t.lang.endswith("-orig")]
        return originals or pool
    if not wanted:
        return [pool[0]]
    for lang in wanted:
        low = lang.lower()
        for src in ("manual", "auto"):  # within a language, creator-made first
            mine = [t for t in pool if t.source == src]
            exact = [t for t in mine if t.lang.lower() == low]
            regional = [t for t in mine if t.lang.lower().startswith(low + "-")]
            if exact or regional:
                return [(exact or regional)[0]]
    raise errors.NoSubtitles(_none_message(available, wanted, source))


def _none_message(
    available: Sequence[Track], langs: Sequence[str] | None, source: str | None
) -> str:
    def listing(src: str) -> str:
        names = sorted({t.lang for t in available if t.source == src})
        if len(names) > 12:
            names = [*names[:12], f"... ({len(names)} in all)"]
        return ", ".join(names)

    asked = f" in {','.join(langs)}" if langs else ""
    kind = {"manual": " creator-made", "auto": " automatic"}.get(source or "", "")
    if not available:
        return "no subtitles: the item has none"
    have = [
        f"{label}: {listing(src)}"
        for src, label in (("manual", "creator-made"), ("auto", "automatic"))
        if listing(src)
    ]
    return f"no{kind} subtitles{asked}; available {'; '.join(have)}"


def choose_format(track: Track, want: str) -> Mapping[str, Any]:
    """The published format to download: the one asked for when offered, else (for
    automatic captions) YouTube's json3 or srv3, else the best one our parser reads."""
    by_ext = {str(f.get("ext") or "").lower(): f for f in track.formats if f.get("url")}
    if want in by_ext:
        return by_ext[want]
    for ext in (*NATIVE, *READABLE) if track.source == "auto" else READABLE:
        if ext in by_ext:
            return by_ext[ext]
    offered = ", ".join(sorted(by_ext)) or "none"
    raise errors.NoSubtitles(
        f"{track.lang}: no subtitle format xdl can read (offered: {offered})", lang=track.lang
    )


def convert(
    data: bytes, fmt: str, layout: Layout, rolling: bool | None = None
) -> tuple[str, Captions, int]:
    """The transcript in `fmt` from published caption bytes, and its word count."""
    if fmt == "md":  # as `to-markdown` makes it, a piece at a time
        text, done = markdown_of(data, layout, rolling)
        return text, done.caps, done.words
    caps = parse(data, rolling=rolling)
    words = sum(count_words(c.text) for c in caps.cues)
    if fmt == "txt":
        return render_text(caps, layout), caps, words
    if fmt == "srt":
        return render_srt(caps), caps, words
    if fmt == "json":
        return render_json(caps), caps, words
    return render_vtt(caps), caps, words


def render_vtt(caps: Captions) -> str:
    """Cleaned cues as WebVTT (only when the site publishes no WebVTT of its own)."""

    def stamp(t: float) -> str:
        ms = round(t * 1000)
        return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"

    out = ["WEBVTT\n"]
    for cue in caps.cues:
        text = cue.text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        if cue.speaker:
            text = f"<v {cue.speaker}>{text}"
        out.append(f"{stamp(cue.start)} --> {stamp(cue.end)}\n{text}\n")
    return "\n".join(out)


def get_transcripts(
    url: str, options: TranscriptOptions, fields: Mapping[str, Any] | None = None
) -> Iterator[Transcript | dict[str, Any]]:
    """Fetch the chosen tracks of `url` (each item of a playlist) and convert them;
    write each under `output_dir` unless `write` is off (then `text` carries it). In a
    playlist, an entry that fails is a failed row of its own (a dict). Rolling repeats
    are removed when the content has them (not by the site's label), or as `rolling`
    says. A feed is read by `feeds`, as `info --flat` reads it; `fields` (the JSON
    input line) may be one of its entries: named by the feed, with its podcast:transcript."""
    from . import feeds

    net = options.net
    feed = None if feeds.is_entry(fields or {}) else feeds.read(url, net or NetworkOptions())
    if feed is not None:
        if not feed.entries:
            raise errors.NoSubtitles(f"the feed has no entries: {url}")
        items: list[Any] = [entry.to_dict() for entry in feed.entries]
    else:
        info = entry_info(url, fields or {}, net)
        items = (
            [e for e in info.get("entries") or [] if e]
            if info.get("_type") == "playlist"
            else [info]
        )
    for item in items:
        if feed is not None:
            try:
                item = entry_info(item["url"], item, net)
            except errors.XdlError as e:
                if e.exit_code != 1:
                    raise
                log.error("%s: %s", item["url"], e.message)
                yield {"ok": False, "url": url, "entry": item["url"], "title": item["title"],
                       "error": e.to_dict()}  # fmt: skip
                continue
        rows = _item_transcripts(url, item, options)
        if len(items) == 1 and feed is None:
            yield from rows
            continue
        try:  # one entry of a playlist without captions must not hide the others
            yield from rows
        except errors.XdlError as e:
            if e.exit_code != 1:
                raise
            where = str(item.get("webpage_url") or item.get("url") or url)
            where = where.split("#__youtubedl_smuggle", 1)[0]
            log.error("%s: %s", where, e.message)
            yield {
                "ok": False,
                "url": url,
                "entry": where,
                "title": item.get("title"),
                "error": e.to_dict(),
            }


def entry_info(url: str, fields: Mapping[str, Any], net: NetworkOptions | None) -> dict[str, Any]:
    """What yt-dlp says of `url`; for a feed entry's line, with the feed's title, guid and
    date, and its podcast:transcript (no request for the media then)."""
    from . import feeds, ytdlp

    known = feeds.item_fields(fields)
    podcast = feeds.subtitles_of(fields)
    if podcast:
        return {**known, "webpage_url": url, "subtitles": podcast}
    return ytdlp.with_known(ytdlp.extract(url, net=net), known)


def _item_transcripts(
    url: str, info: Mapping[str, Any], options: TranscriptOptions
) -> Iterator[Transcript]:
    from . import ytdlp

    langs, fmt, layout, rolling = options.langs, options.fmt, options.layout, options.rolling
    folder = options.output_dir or "."
    if not langs:
        langs = [lang for lang in (info.get("language"), "en") if lang]
        if not any(t.lang.split("-")[0] in langs for t in tracks(info)):
            langs = None
    title, item_id = info.get("title"), info.get("id")
    if fmt == "md":
        layout = with_info(layout, info, url)
    for track in pick(tracks(info), langs, options.source):
        entry = choose_format(track, fmt)
        data = ytdlp.fetch_text(
            str(entry["url"]), net=options.net, headers=entry.get("http_headers")
        )
        published = str(entry.get("ext") or "vtt").lower()
        if fmt == "vtt" and published == "vtt":
            caps = parse(data, rolling=rolling)  # checks it is captions, counts its words
            text = data.decode("utf-8", "replace")
            words = sum(count_words(c.text) for c in caps.cues)
        else:
            text, caps, words = convert(data, fmt, layout, rolling)
        row = Transcript(
            url=url,
            path=None,
            lang=track.lang,
            source=track.source,
            format=fmt,
            encoding=caps.encoding,
            title=title,
            id=item_id,
            words=words,
            duplicates_removed=caps.duplicates_removed,
            skipped_blocks=caps.skipped_blocks,
            text=text,
        )
        if not options.write:
            yield row
            continue
        fields = {**info, "lang": track.lang, "ext": fmt, "subtitle_source": track.source}
        dest = template_path(folder, ytdlp.render_template(options.template, fields), fmt)
        body = data if fmt == "vtt" and published == "vtt" else text
        written = write_new(dest, body, options.overwrite, Path(folder))
        yield replace(row, path=str(dest), skipped=None if written else "exists")


def template_path(output_dir: str, rendered: str, fmt: str) -> Path:
    """Where a rendered template lands: its folders kept (as `xdl fetch` keeps them), each
    part sanitised, `..` dropped, and never outside `output_dir`."""
    parts = [
        sanitize_filename(p, default="") for p in rendered.split("/") if p not in ("", ".", "..")
    ]
    relative = "/".join(p for p in parts if p) or f"transcript.{fmt}"
    inside(output_dir, relative)  # raises when a link or name would lead out
    return Path(output_dir) / relative
