"""What WebVTT has that SRT has not: the header, and YouTube's word timings."""

from __future__ import annotations

import re
from typing import NamedTuple

from .blocks import UsualCues, usual_cues

#: The longest WebVTT header kept in memory, in characters (real ones: the WEBVTT line
#: and a few `Kind:`, `Language:`, `X-TIMESTAMP-MAP` lines). A longer one is skipped a
#: piece at a time up to the next blank line: what it says is never used.
MAX_HEADER_CHARS = 1 << 20


def vtt_body(text: str, eof: bool = True) -> int:
    """Where the cues of WebVTT `text` start: after the WEBVTT line and the header lines
    under it, which end at a blank line or before a line holding `-->` (a cue timing, as
    the WebVTT parser reads it: a header need not end with a blank line); at 0 when no
    WEBVTT line comes before the first timing (HLS segments joined into one file, the
    first of which lost its header: the WEBVTT lines further on are the other
    segments'). -1 when `text` does not tell yet (not `eof`: more of it follows)."""
    arrow = text.find("-->")
    at = text.find("WEBVTT", 0, arrow if arrow >= 0 else len(text))
    if at < 0:
        return 0 if arrow >= 0 or eof else -1
    nl = text.find("\n", at)
    if nl < 0:  # all of it is the WEBVTT line
        return len(text) if eof else -1
    blank = text.find("\n\n", nl)
    arrow = text.find("-->", nl, blank if blank >= 0 else len(text))
    if arrow >= 0:
        return text.rfind("\n", 0, arrow) + 1
    if blank >= 0:
        return blank + 2
    return len(text) if eof else -1


#: A WEBVTT line right under a line of text: HLS segments joined without a blank line
#: between them (the segment before ends with a single line feed).
_JOINED_HEADER = re.compile(r"(?<=[^\n])\n(?=WEBVTT(?:[ \t][^\n]*)?$)", re.M)


def split_segments(text: str) -> str:
    """`text` with a blank line before every WEBVTT line that lacks one: a segment's
    header is then a block of its own (see `blocks.BlockReader`), never cue text."""
    if "\nWEBVTT" not in text:
        return text
    return _JOINED_HEADER.sub("\n\n", text)


#: `<c>`, `</c>` and `<00:00:01.234>`, and where they follow each other as YouTube writes
#: them (`</c><00:00:01.234><c>`), all of them in one match: the same text a fifth sooner.
WORD_TIMINGS = re.compile(
    r"<(?:/c>(?:<\d\d+:\d\d:\d\d\.\d\d\d>(?:<c>)?)?|c>|\d\d+:\d\d:\d\d\.\d\d\d>(?:<c>)?)"
)


class Prepared(NamedTuple):
    """A piece of WebVTT as `prepare` leaves it: whether it held `<c>`; its cues when
    every block is one of the usual shape, else its text without word timings."""

    has_c: bool
    text: str | None
    cues: UsualCues | None


def prepare(text: str) -> Prepared:
    """The part of `CueStream.feed` that needs nothing from the pieces before (run in
    `caption_worker` for a stream that has decided that word timings are in it)."""
    has_c = "<c>" in text
    text = WORD_TIMINGS.sub("", split_segments(text))
    cues = usual_cues(text)
    return Prepared(has_c, None if cues else text, cues)
