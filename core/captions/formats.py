"""Which format a document is in, told from its content (never from a file name), and
the reading of a whole document by its format."""

from __future__ import annotations

import re
from dataclasses import replace

from .cues import Captions, NotCaptions, gc_paused
from .sbv import SBV_TIMING, parse_sbv
from .stream import parse_text
from .times import TIMING

#: How far into a document its first cue timing is looked for, in characters: a real
#: file has one in its first lines. Text without one this far is not captions (it used
#: to be read up to 64 MiB and searched again at each piece: 75 s for 200 MB of junk).
DETECT_CHARS = 1 << 20


def detect(text: str) -> str:
    """ "vtt", "srt", "sbv", "ttml", "json3" or "srv3" (YouTube's timedtext XML, srv1-3),
    from the content (never from a file name)."""
    head = text[:4096].lstrip()
    if head.startswith("WEBVTT"):
        return "vtt"
    if head.startswith("{") and re.search(r'"(?:events|wireMagic)"', head):
        return "json3"
    if head.startswith("<"):
        low = head.lower()
        if re.search(r"<(?:timedtext|transcript)[\s>]", low):
            return "srv3"
        if "<html" in low or "<!doctype html" in low or ("<body" in low and "<tt" not in low):
            raise NotCaptions("an HTML page, not a caption file")
        if re.search(r"<(?:\w+:)?tt[\s>]", head):
            return "ttml"
        raise NotCaptions("XML, but not TTML/DFXP captions (no <tt> element)")
    m = TIMING.search(text, 0, DETECT_CHARS)
    if m is None and SBV_TIMING.search(text, 0, DETECT_CHARS):
        return "sbv"
    if m is None:
        raise NotCaptions("no cue timings (00:00:01.000 --> 00:00:02.000) found: not captions")
    return "vtt" if _webvtt(text, m) else "srt"


def _webvtt(text: str, m: re.Match[str]) -> bool:
    """Is text whose first cue timing is `m`, and that does not start with WEBVTT, WebVTT
    all the same? It is when a WEBVTT line comes before that timing, when that timing
    is the first line and writes `.` before its milliseconds (SRT writes `,`), or when
    WEBVTT headers come further on: HLS caption segments joined into one file (live
    automatic captions), the first of which lost its header."""
    before = text[: m.start()]
    if re.search(r"^[ \t]*WEBVTT", before, re.M):
        return True
    if "." in m.group(1) and not before.strip():
        return True
    return segment_header(text, m.end()) >= 0


def segment_header(text: str, start: int = 0) -> int:
    """Where the first `WEBVTT` line after `start` (within DETECT_CHARS) starts, else -1."""
    at = start
    while (at := text.find("\nWEBVTT", at, DETECT_CHARS)) >= 0:
        at += 1
        if text[at + 6 : at + 7] in ("", " ", "\t", "\n"):
            return at
    return -1


def detectable(text: str) -> bool:
    """Is there enough of a document's start in `text` for `detect` to tell its format
    as it would from all of it?"""
    if len(text) < 4096:
        return False
    if len(text) >= DETECT_CHARS:  # all `detect` looks at
        return True
    head = text[:4096].lstrip()
    if head.startswith(("WEBVTT", "<")):
        return True
    if head.startswith("{") and re.search(r'"(?:events|wireMagic)"', head):
        return True
    m = TIMING.search(text)
    if m is None:
        return False
    # A file that is WebVTT by its first timing, or by a WEBVTT line before it or after
    # it, is told now; one that looks like SRT only by all that `detect` looks at.
    return _webvtt(text, m)


def parse_decoded(text: str, used: str, *, rolling: bool | None = None) -> Captions:
    """`parse` of a document already decoded (in `used`), line endings LF."""
    kind = detect(text)
    from .ttml import parse_ttml  # loaded for the documents that need them
    from .youtube import parse_json3, parse_srv3

    if kind == "ttml":
        caps = parse_ttml(text)
    elif kind == "json3":
        caps = parse_json3(text)
    elif kind == "srv3":
        caps = parse_srv3(text)
    elif kind == "sbv":
        caps = parse_sbv(text, rolling=rolling)
    else:
        with gc_paused():
            caps = parse_text(text, kind, rolling=rolling)
    return replace(caps, encoding=used)
