"""What an item is and which formats it offers: `xdl info` and `xdl formats`."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

from . import errors
from .feeds import FeedEntry
from .network import NetworkOptions
from .ytdlp import extract, unsmuggle

Platform = Literal["mac", "windows", "linux", "web", "any"]
PLATFORMS: tuple[str, ...] = ("mac", "windows", "linux", "web", "any")


@dataclass(frozen=True)
class MediaInfo:
    url: str
    id: str | None
    title: str | None
    uploader: str | None
    duration: float | None
    upload_date: str | None
    webpage_url: str | None
    extractor: str | None
    thumbnail: str | None
    description: str | None
    view_count: int | None
    chapters: list[dict[str, Any]]
    subtitles: dict[str, list[str]]
    format_count: int
    ok: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PlaylistEntry:
    url: str
    id: str | None
    title: str | None
    playlist: str | None
    playlist_index: int
    ok: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Format:
    url: str
    format_id: str
    ext: str | None
    kind: str
    width: int | None
    height: int | None
    fps: float | None
    vcodec: str | None
    acodec: str | None
    tbr: float | None
    abr: float | None
    filesize: int | None
    filesize_approx: bool
    protocol: str | None
    note: str | None
    ok: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Recommendation:
    url: str
    platform: str
    format_id: str
    selector: str
    reason: str
    ext: str | None
    kind: str
    height: int | None
    vcodec: str | None
    acodec: str | None
    ok: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def get_info(url: str, *, net: NetworkOptions | None = None) -> MediaInfo:
    """Normalised metadata for one item (the first entry of a playlist counts as the item).
    A feed yt-dlp does not read (Atom) is read by `feeds`: its first entry, named as the
    feed names it. (yt-dlp is asked first: a page costs no request more.)"""
    try:
        return describe(url, extract(url, net=net))
    except errors.UnsupportedUrl:
        from . import feeds, ytdlp

        feed = feeds.read(url, net or NetworkOptions())
        if feed is None:
            raise
        if not feed.entries:
            raise errors.UnsupportedUrl(f"playlist has no entries: {url}") from None
        entry = feed.entries[0].to_dict()
        known = feeds.item_fields(entry)
        return describe(url, ytdlp.with_known(extract(entry["url"], net=net), known))


def get_raw_info(url: str, *, net: NetworkOptions | None = None) -> dict[str, Any]:
    """yt-dlp's whole sanitised info dict, with `ok` and the input `url` added."""
    return {
        "ok": True,
        "url": url,
        **{k: v for k, v in extract(url, net=net).items() if k != "url"},
    }


def list_entries(
    url: str, *, net: NetworkOptions | None = None
) -> Iterator[PlaylistEntry | FeedEntry]:
    """A playlist's entries without resolving them; a single item is a playlist of one.
    A feed (RSS, Atom) is read by `feeds`: its entries carry their date, description,
    episode numbers and enclosure, which `fetch` names and tags the files with."""
    from . import feeds

    feed = feeds.read(url, net or NetworkOptions())
    if feed is not None:
        yield from feed.entries
        return
    info = extract(url, net=net, flat=True)
    if info.get("_type") != "playlist":
        yield PlaylistEntry(
            info.get("webpage_url") or url, info.get("id"), info.get("title"), None, 1
        )
        return
    for index, entry in enumerate(info.get("entries") or [], 1):
        entry_url = entry.get("url") or entry.get("webpage_url")
        if not entry_url:
            continue
        entry_url, smuggled = unsmuggle(str(entry_url))  # a clean URL; a feed's guid as id
        yield PlaylistEntry(
            entry_url,
            entry.get("id") or smuggled.get("force_videoid"),
            entry.get("title"),
            info.get("title") or info.get("id"),
            entry.get("playlist_index") or index,
        )


def describe(url: str, info: Mapping[str, Any]) -> MediaInfo:
    item = first_item(info)
    if item is None:
        raise errors.UnsupportedUrl(f"playlist has no entries: {url}")
    info = item
    subs = {
        "manual": sorted(info.get("subtitles") or {}),
        "automatic": sorted(
            k for k in (info.get("automatic_captions") or {}) if not k.endswith("-orig")
        ),
    }
    chapters = [
        {"title": c.get("title"), "start_time": c.get("start_time"), "end_time": c.get("end_time")}
        for c in info.get("chapters") or []
    ]
    return MediaInfo(
        url=url,
        id=info.get("id"),
        title=info.get("title"),
        uploader=info.get("uploader") or info.get("channel"),
        duration=info.get("duration"),
        upload_date=info.get("upload_date"),
        webpage_url=unsmuggle(str(info["webpage_url"]))[0] if info.get("webpage_url") else None,
        extractor=info.get("extractor_key") or info.get("extractor"),
        thumbnail=info.get("thumbnail"),
        description=info.get("description"),
        view_count=info.get("view_count"),
        chapters=chapters,
        subtitles=subs,
        format_count=len(info.get("formats") or ([info] if info.get("url") else [])),
    )


def first_item(info: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The item itself, or a playlist's first entry (None for an empty playlist)."""
    if info.get("_type") != "playlist":
        return info
    return next((e for e in info.get("entries") or [] if e), None)


def get_formats(url: str, *, net: NetworkOptions | None = None) -> list[Format]:
    """The formats one item offers, worst to best as yt-dlp sorts them."""
    info = first_item(extract(url, net=net)) or {}
    raw = info.get("formats") or ([info] if info.get("url") else [])
    formats = [to_format(url, f) for f in raw if f.get("format_id") or f.get("url")]
    if not formats:
        raise errors.NoFormats(f"no formats offered by {url}")
    return formats


def to_format(url: str, f: Mapping[str, Any]) -> Format:
    size = f.get("filesize")
    return Format(
        url=url,
        format_id=str(f.get("format_id") or "0"),
        ext=f.get("ext"),
        kind=kind_of(f),
        width=f.get("width"),
        height=f.get("height"),
        fps=f.get("fps"),
        vcodec=_codec(f.get("vcodec")),
        acodec=_codec(f.get("acodec")),
        tbr=f.get("tbr"),
        abr=f.get("abr"),
        filesize=size or f.get("filesize_approx"),
        filesize_approx=not size and bool(f.get("filesize_approx")),
        protocol=f.get("protocol"),
        note=f.get("format_note") or f.get("resolution"),
    )


def _codec(value: Any) -> str | None:
    return None if value in (None, "", "none") else str(value)


def kind_of(f: Mapping[str, Any]) -> str:
    """`video`, `audio` or `video+audio`; an unknown codec counts as present."""
    has_video = f.get("vcodec") != "none" and (
        f.get("vcodec") is not None or f.get("video_ext") not in (None, "none") or f.get("height")
    )
    has_audio = f.get("acodec") != "none"
    if f.get("vcodec") is None and f.get("audio_ext") not in (None, "none") and not f.get("height"):
        has_video = False
    if has_video and has_audio:
        return "video+audio"
    return "video" if has_video else "audio"


# --- recommending a format for a platform -------------------------------------------

H264 = ("avc1", "avc3", "h264")
HEVC = ("hvc1", "hev1", "h265", "hevc")
AAC = ("mp4a", "aac")
OPUS_VORBIS = ("opus", "vorbis")

REASONS = {
    "mac": "H.264/HEVC with AAC in MP4 plays in QuickTime and Safari",
    "windows": "H.264 with AAC in MP4 plays in the Windows media player",
    "linux": "any codec plays on Linux: the best quality wins",
    "web": "H.264/AAC in MP4 or VP9/Opus in WebM play in every browser",
    "any": "the best quality, whatever the codec",
}
AUDIO_REASONS = {
    "mac": "AAC in M4A plays everywhere on macOS and iOS",
    "windows": "AAC in M4A or MP3 play in the Windows media player",
    "linux": "Opus/Vorbis are the best quality per bit and play on Linux",
    "web": "Opus in WebM or AAC in M4A play in every browser",
    "any": "the best audio quality, whatever the codec",
}


def _starts(codec: str | None, prefixes: tuple[str, ...]) -> bool:
    return bool(codec) and str(codec).lower().startswith(prefixes)


def _fit(f: Format, platform: str, audio: bool) -> int:
    """How well a format suits a platform: 2 known good, 1 likely, 0 not."""
    v, a, ext = f.vcodec, f.acodec, (f.ext or "").lower()
    if audio:
        if platform in ("mac", "windows"):
            return 2 if _starts(a, AAC) or ext in ("m4a", "mp3") else 0
        if platform in ("linux", "web"):
            return 2 if _starts(a, OPUS_VORBIS) else (1 if _starts(a, AAC) or ext == "m4a" else 0)
        return 1
    if platform == "mac":
        good_video = _starts(v, H264 + HEVC) or (v is None and ext in ("mp4", "m4v", "mov"))
        good_audio = a is None or _starts(a, AAC)
        return (2 if v else 1) if ext in ("mp4", "m4v", "mov") and good_video and good_audio else 0
    if platform == "windows":
        good_video = _starts(v, H264) or (v is None and ext == "mp4")
        return (2 if v else 1) if ext == "mp4" and good_video else 0
    if platform == "web":
        if ext == "mp4" and (_starts(v, H264) or v is None):
            return 2 if v else 1
        if ext == "webm" and (_starts(v, ("vp9", "vp09", "vp8", "av01")) or v is None):
            return 2 if v else 1
        return 0
    return 1


def recommend(
    url: str, formats: list[Format], platform: str = "any", audio: bool = False
) -> Recommendation:
    """Pick the format that plays on `platform` at the best quality, and say why."""
    if platform not in PLATFORMS:
        raise errors.BadInput(f"unknown platform {platform!r}: one of {', '.join(PLATFORMS)}")
    pool = [f for f in formats if f.kind != "video" or not audio]
    if audio:
        pool = [f for f in pool if f.kind == "audio"] or [
            f for f in pool if f.kind == "video+audio"
        ]
    if not pool:
        raise errors.NoFormats(f"no {'audio ' if audio else ''}formats offered by {url}")

    def score(f: Format) -> tuple[float, ...]:
        with_audio = f.kind != "video"
        return (_fit(f, platform, audio), f.height or 0, with_audio, f.abr or 0, f.tbr or 0)

    best = max(pool, key=score)
    fit = _fit(best, platform, audio)
    reason = (AUDIO_REASONS if audio else REASONS)[platform]
    if fit == 0:
        reason = f"nothing offered suits {platform}; took the best available"
    elif fit == 1 and platform != "any" and platform != "linux":
        reason += f" (codec not declared; judged by the {best.ext} container)"
    selector = best.format_id
    if best.kind == "video":
        aud = "bestaudio[ext=m4a]/bestaudio" if platform in ("mac", "windows") else "bestaudio"
        selector = f"{best.format_id}+{aud}"
        reason += "; merged with the best matching audio"
    return Recommendation(
        url=url,
        platform=platform,
        format_id=best.format_id,
        selector=selector,
        reason=reason,
        ext=best.ext,
        kind=best.kind,
        height=best.height,
        vcodec=best.vcodec,
        acodec=best.acodec,
    )
