"""YouTube's own caption formats: json3 and the timedtext XML (srv1, srv2, srv3), whose
words each come once, with their own times."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from .. import errors
from .cues import FOLD, Captions, Cue, NotCaptions, Truncated, plain_lines, unescape
from .speakers import label_speakers
from .times import checked
from .xmldoc import local_name, xml_root

if TYPE_CHECKING:
    from xml.etree.ElementTree import Element


def parse_json3(text: str) -> Captions:
    """YouTube's json3: one event per line of text (automatic captions: its words as
    segments with `tOffsetMs`), `aAppend` events only add a line break. Each word is in
    one event only, so nothing is removed."""
    import json

    try:
        doc = json.loads(text)
    except RecursionError:
        raise errors.ParseError("the JSON nests deeper than any captions do") from None
    except ValueError as e:  # also int() of 4,300 digits and more
        if "Expecting" in str(e) and e.args and "char" in str(e) and text.rstrip()[-1:] != "}":
            raise Truncated(f"the JSON ends early ({e}): truncated?") from None
        raise errors.ParseError(f"not valid JSON: {_short(str(e))}") from None
    events = doc.get("events") if isinstance(doc, dict) else None
    if not isinstance(events, list):
        raise NotCaptions("JSON, but not YouTube json3 captions (no events)")
    cues: list[Cue] = []
    skipped = 0
    for event in events:
        if not isinstance(event, dict) or event.get("aAppend"):
            continue
        segs = event.get("segs")
        if not isinstance(segs, list):
            continue
        try:
            start = checked(_ms(event.get("tStartMs")))
            end = checked(start + _ms(event.get("dDurationMs")))
            timed = [(checked(start + _ms(seg.get("tOffsetMs"))), _utf8(seg)) for seg in segs]
        except (TypeError, ValueError, AttributeError, OverflowError):
            skipped += 1  # a time or a text that is something else: the event is unreadable
            continue
        cue = _timed_cue(start, end, timed)
        if cue is not None:
            cues.append(cue)
    return Captions("json3", label_speakers(cues), skipped)


def _ms(value: Any) -> float:
    """A json3 time in milliseconds (a number, or a string of one) as seconds."""
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return float(value or 0) / 1000
    if value is None:
        return 0.0
    raise TypeError(f"not a time: {type(value).__name__}")


def _utf8(seg: Any) -> str:
    """A json3 segment's text: a string (a number is written as one; anything else is
    not text)."""
    text = seg.get("utf8")
    if text is None or isinstance(text, str):
        return text or ""
    if isinstance(text, int | float) and not isinstance(text, bool):
        return str(text)
    raise TypeError(f"not text: {type(text).__name__}")


def _short(message: str, limit: int = 200) -> str:
    """A library's message, cut: it may quote what it could not read."""
    return message if len(message) <= limit else message[: limit - 1] + "\u2026"


def _timed_cue(start: float, end: float, timed: list[tuple[float, str]]) -> Cue | None:
    """A cue from pieces of text each with its start time (YouTube's word segments):
    each word of the cue's text timed by the piece it begins in."""
    times: list[float] = []
    ends: list[int] = []
    parts: list[str] = []
    size = 0
    for t, piece in timed:
        if not piece.isascii():
            piece = piece.translate(FOLD)
        size += len(piece)
        times.append(t)
        ends.append(size)
        parts.append(piece)
    said = "".join(parts)
    lines = plain_lines(said)
    if not lines:
        return None
    words: list[float] = []
    at = 0
    for word in _NONSPACE.finditer(said):
        while ends[at] <= word.start():
            at += 1
        words.append(times[at])
    timed_words = tuple(words) if any(t != start for t in words) else None
    return Cue(start, end, "\n".join(lines), None, timed_words)


_NONSPACE = re.compile(r"\S+")


def parse_srv3(text: str) -> Captions:
    """YouTube's timedtext XML: srv3 (`<p t= d=>` in ms, words in `<s>`), srv2
    (`<text t= d=>`) and srv1 (`<text start= dur=>` in seconds, entities escaped twice)."""
    root = xml_root(text)
    cues: list[Cue] = []
    skipped = 0
    version = "srv3"
    for el in root.iter():
        name = local_name(el.tag)
        if name not in ("p", "text") or el.get("a") == "1":
            continue
        if name == "text":
            version = "srv1" if el.get("start") is not None else "srv2"
        try:
            if el.get("start") is not None:
                start = checked(float(el.get("start") or 0))
                end = checked(start + float(el.get("dur") or 0))
            else:
                start = checked(float(el.get("t") or 0) / 1000)
                end = checked(start + float(el.get("d") or 0) / 1000)
        except ValueError:  # also NaN, inf, 1e400: not a time
            skipped += 1
            continue
        if name == "p":  # srv3: words in <s t="offset ms">
            cue = _timed_cue(start, end, _srv3_pieces(el, start))
            if cue is not None:
                cues.append(cue)
            continue
        lines = plain_lines(unescape("".join(el.itertext())))
        if lines:
            cues.append(Cue(start, end, "\n".join(lines)))
    return Captions(version, label_speakers(cues), skipped)


def _srv3_pieces(p: Element, start: float) -> list[tuple[float, str]]:
    """The text of an srv3 <p> as pieces with their start times (an <s> without `t`, or
    with one that cannot be read, starts when the piece before it did)."""
    pieces = [(start, p.text or "")]
    for child in p:
        at = pieces[-1][0]
        try:
            at = checked(start + float(child.get("t") or "x") / 1000)
        except ValueError:
            pass
        pieces.append((at, "".join(child.itertext())))
        if child.tail:
            pieces.append((at, child.tail))
    return pieces
