"""What reading captions gives: cues (the model), the errors a caption file can raise,
and the cleaning of a cue's text (markup off, entities decoded, odd spaces folded)."""

from __future__ import annotations

import gc
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple

from .. import errors


class EmptyFile(errors.BadInput):
    code = "empty_file"


class NotCaptions(errors.BadInput):
    """Binary data, an HTML page, or text with no cue timings in it."""

    code = "not_captions"


class Truncated(errors.ParseError):
    code = "truncated"


class UnsafeXml(errors.BadInput):
    """An XML document with entity declarations or external references (an XML bomb)."""

    code = "unsafe_xml"


class Cue(NamedTuple):
    """One cue's cleaned text (lines joined by "\\n"), its times in seconds, its voice.

    A NamedTuple rather than a frozen dataclass: files have 100,000s of cues."""

    start: float
    end: float
    text: str
    speaker: str | None = None
    #: When the format times each word (YouTube's json3 and srv3): the start of each of
    #: the text's words (as `text.split()` cuts them), in seconds.
    words: tuple[float, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        row: dict[str, Any] = {
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "speaker": self.speaker,
            "text": self.text,
        }
        if self.words is not None:
            row["words"] = [
                {"start": round(t, 3), "text": w}
                for t, w in zip(self.words, self.text.split(), strict=True)
            ]
        return row


@dataclass(frozen=True)
class Captions:
    """A parsed caption document: its cues in document order and what was set aside."""

    format: str  # "vtt", "srt" or "ttml"
    cues: list[Cue]
    skipped_blocks: int = 0
    duplicates_removed: int = 0
    rolling: bool = False
    title: str | None = None
    encoding: str = "utf-8"
    #: `WEBVTT` headers inside the file (HLS caption segments joined into one).
    segment_headers: int = 0


@contextmanager
def gc_paused() -> Iterator[None]:
    """Parsing makes 100,000s of small lists and no cycles: the cyclic collector would
    only rescan them again and again (a third of the time on big files)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


Segs = list[tuple[str | None, list[str]]]


_VOICE = re.compile(r"<v(?:\.[^\s>]*)?(?:[ \t]+([^>\n]*?))?[ \t]*>|</v[ \t]*>", re.I)


_TAGS = re.compile(
    r"</?(?:c|i|b|u|s|lang|ruby|rt|rp|font|span|sub|sup)(?:[.\s][^<>]*)?>"
    r"|<(?:\d+:)?\d{1,2}:\d{2}[.,]\d{1,3}>",
    re.I,
)


INLINE_TIMES = re.compile(r"<\d\d+:\d\d:\d\d\.\d\d\d>")


_BR_TAG = re.compile(r"<br\s*/?>", re.I)


_ASS = re.compile(r"\{\\[^{}]*\}")


FOLD = {
    0x00A0: " ",
    0x2007: " ",
    0x202F: " ",
    0x2000: " ",
    0x2001: " ",
    0x2002: " ",
    0x2003: " ",
    0x2009: " ",
    0x200A: " ",
    0x3000: " ",
    0x200B: None,
    0x200C: None,
    0x200D: None,
    0x200E: None,
    0x200F: None,
    0x061C: None,
    0x2060: None,
    0xFEFF: None,
    **{c: None for c in range(0x202A, 0x202F)},
    **{c: None for c in range(0x2066, 0x206A)},
}


#: A line this long (in characters) is single-spaced a stretch at a time: a cue of
#: megabytes on one line never becomes a string per word at once (90 MB for 4 MB).
LONG = 1 << 16


_SPACE = re.compile(r"\s")


def spaced(line: str) -> str:
    """`" ".join(line.split())`: single-spaced and stripped, in memory the size of `line`
    (cut into stretches at spaces, so that no word is cut)."""
    if len(line) < LONG:
        return " ".join(line.split())
    out = []
    start, size = 0, len(line)
    while start < size:
        m = _SPACE.search(line, min(start + LONG, size))
        end = m.start() if m else size
        if piece := " ".join(line[start:end].split()):
            out.append(piece)
        start = end
    return " ".join(out)


def unescape(text: str) -> str:
    """`html.unescape` (its module and table of entities loaded only for text with `&`)."""
    from html import unescape as html_unescape

    return html_unescape(text)


def clean_text(text: str) -> list[str]:
    """Markup off, entities decoded once, odd spaces folded: the cue's non-empty lines."""
    if "{" in text:
        text = _ASS.sub("", text)
    if "<" in text:
        if "<c>" in text:  # YouTube's word timings: the bulk of an automatic caption file
            text = INLINE_TIMES.sub("", text.replace("<c>", "").replace("</c>", ""))
        if "<br" in text or "<BR" in text:
            text = _BR_TAG.sub("\n", text)
        if "<" in text:
            text = _TAGS.sub("", text)
    if "&" in text:
        text = unescape(text)
    if not text.isascii():
        text = text.translate(FOLD)
    return [
        " ".join(line.split()) if len(line) < LONG else spaced(line)
        for line in text.split("\n")
        if line and not line.isspace()
    ]


def voices(text: str) -> Segs:
    """A cue's text as (voice, cleaned lines) segments, several voices kept apart."""
    segments: list[tuple[str | None, list[str]]] = []
    speaker: str | None = None
    pos = 0
    for m in _VOICE.finditer(text):
        if m.start() > pos:
            segments.append((speaker, clean_text(text[pos : m.start()])))
        if m.group(0)[1] == "/":
            speaker = None
        else:
            name = m.group(1)
            speaker = " ".join(unescape(name).split()) or None if name else None
        pos = m.end()
    segments.append((speaker, clean_text(text[pos:])))
    merged: list[tuple[str | None, list[str]]] = []
    for spk, seg in segments:
        if not seg:
            continue
        if merged and merged[-1][0] == spk:
            merged[-1][1].extend(seg)
        else:
            merged.append((spk, list(seg)))
    return merged


def plain_lines(text: str) -> list[str]:
    """Text that is not markup: odd spaces folded, the non-empty lines, single-spaced."""
    if not text.isascii():
        text = text.translate(FOLD)
    return [
        " ".join(line.split()) if len(line) < LONG else spaced(line)
        for line in text.split("\n")
        if line and not line.isspace()
    ]


#: What may follow a line repeated alone in a cue (YouTube pads snapshot cues with " ").
PADDING = frozenset(("", "\n", "\n "))


def clean_cue(joined: str, last: str | None, plain: bool) -> tuple[Segs | None, list[str], bool]:
    """A cue's text cleaned: its voices (or None), its lines, and whether the text had no
    markup (so the next cue's snapshot test can compare strings)."""
    if plain and joined.startswith(last) and joined[len(last) :] in PADDING:  # type: ignore[arg-type]
        # The last line again (YouTube's 10 ms snapshot cues: half the cues of automatic
        # captions): the plain path below would give just that.
        return None, [last], True  # type: ignore[list-item]
    if "<" not in joined and "&" not in joined and "{" not in joined and joined.isascii():
        return (
            None,
            [
                " ".join(x.split()) if len(x) < LONG else spaced(x)
                for x in joined.split("\n")
                if x and not x.isspace()
            ],
            True,
        )
    if "<v" in joined or "<V" in joined:
        segs = voices(joined)
        return segs, [line for _, seg in segs for line in seg], False
    return None, clean_text(joined), False
