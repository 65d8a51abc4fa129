"""Stream manifests (HLS playlists, DASH MPDs): the text that points at media, never the
media itself. A plain-file tier must not save one as the result of a media URL."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

#: Content types that are only ever a playlist or a manifest.
_TYPES = re.compile(
    r"^(application|audio|video)/((x-|vnd\.apple\.)?mpegurl|dash\+xml|vnd\.ms-sstr\+xml|f4m)$"
)
#: URL paths that name one, whatever the server says it is.
_EXTENSIONS = (".m3u8", ".m3u", ".mpd", ".ism", ".f4m")
#: The opening of one: `#EXTM3U` (HLS), `<MPD` (DASH), `<SmoothStreamingMedia`, `<manifest`
#: (HDS), after an optional byte order mark, white space and an XML declaration or comments.
_OPENING = re.compile(
    rb"^(\xef\xbb\xbf)?\s*(#EXTM3U|(<\?xml[^>]*\?>\s*)?(<!--.*?-->\s*)*"
    rb"<(MPD|SmoothStreamingMedia|manifest)[\s>])",
    re.DOTALL,
)
#: Enough of the body to see the opening.
SNIFF_BYTES = 1024
#: Types a manifest is sometimes sent as, and the size past which none is looked at.
_OPEN_TYPES = re.compile(r"^(text/(?!html)|application/xml$)")
_LARGEST = 16 * 1024 * 1024


def by_type(content_type: str | None) -> str | None:
    """What a manifest content type names (`HLS playlist`...), else None."""
    mime = (content_type or "").split(";")[0].strip().lower()
    if not _TYPES.match(mime):
        return None
    if "mpegurl" in mime:
        return "HLS playlist"
    return "DASH manifest" if "dash" in mime else "manifest"


def by_content(data: bytes) -> str | None:
    """What the first bytes of a body show it to be (`HLS playlist`...), else None."""
    match = _OPENING.match(data[:SNIFF_BYTES])
    if match is None:
        return None
    opening = match.group(0)
    if b"#EXTM3U" in opening:
        return "HLS playlist"
    return "DASH manifest" if b"<MPD" in opening else "manifest"


def worth_sniffing(content_type: str | None, length: int | None, url: str) -> bool:
    """Whether a body with this type and length could still be a manifest (servers send
    them as text/plain or XML too; a binary type needs the URL's word): then its first
    bytes decide. Files of other types cost no request for this."""
    if by_url(url):
        return True
    mime = (content_type or "").split(";")[0].strip().lower()
    small = length is None or length <= _LARGEST
    return small and bool(_OPEN_TYPES.match(mime))


def by_url(url: str) -> bool:
    """True when the URL's path ends like a manifest (`.m3u8`, `.mpd`...)."""
    return urlsplit(url).path.lower().endswith(_EXTENSIONS)
