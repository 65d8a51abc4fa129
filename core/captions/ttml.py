"""TTML1/IMSC and the old DFXP namespace (Netflix, Apple Music's lyrics, broadcast)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from .cues import Captions, Cue, NotCaptions, clean_text, spaced
from .times import FRACTION_DIGITS, MAX_SECONDS, checked
from .xmldoc import attr_of, local_name, xml_root

if TYPE_CHECKING:
    from xml.etree.ElementTree import Element


def parse_ttml(text: str) -> Captions:
    """TTML1/IMSC or the old DFXP namespace; clock, offset, SMPTE frame and tick times."""
    root = xml_root(text)
    if local_name(root.tag) != "tt":
        raise NotCaptions(f"XML, but its root is <{local_name(root.tag)}>, not TTML's <tt>")
    params = {local_name(k): v for k, v in root.attrib.items()}
    clock = _Clock(params)
    title = None
    cues: list[Cue] = []
    for el in root.iter():
        if local_name(el.tag) == "title" and el.text and el.text.strip() and title is None:
            title = " ".join(el.text.split())
    skipped = 0
    body_el = next((el for el in root if local_name(el.tag) == "body"), None)
    if body_el is not None:
        agent = attr_of(body_el, "agent")
        skipped = _walk(body_el, 0.0, None, clock, cues, _agents(root), agent)
    return Captions("ttml", cues, skipped, 0, False, title)


def _agents(root: Element) -> dict[str, str]:
    """The people a TTML document declares (`<ttm:agent xml:id="v1">`, Apple Music's
    lyrics, IMSC): id -> their full name (`<ttm:name type="full">`), else the id."""
    out: dict[str, str] = {}
    for el in root.iter():
        if local_name(el.tag) != "agent" or not (ident := attr_of(el, "id")):
            continue
        names = {
            (attr_of(n, "type") or ""): " ".join((n.text or "").split())
            for n in el
            if local_name(n.tag) == "name"
        }
        names = {k: v for k, v in names.items() if v}
        out[ident] = names.get("full") or next(iter(names.values()), "") or ident
    return out


class _Clock:
    """TTML time expressions under the document's frame and tick rates."""

    def __init__(self, params: dict[str, str]) -> None:
        self.frame_rate = _number(params.get("frameRate"), 30.0)
        multiplier = params.get("frameRateMultiplier")
        if multiplier:
            nums = re.split(r"[\s:/]+", multiplier.strip())
            if len(nums) == 2 and all(x.isdecimal() and len(x) <= 9 for x in nums) and int(nums[1]):
                self.frame_rate *= int(nums[0]) / int(nums[1]) or 1.0
        self.sub_frame_rate = _number(params.get("subFrameRate"), 1.0)
        default_ticks = self.frame_rate * self.sub_frame_rate if "frameRate" in params else 1.0
        self.tick_rate = _number(params.get("tickRate"), default_ticks)
        #: Apple Music's lyrics (`itunes:timing`) time every element from the start of the
        #: song, not from its parent's begin as TTML would.
        self.absolute = "timing" in params

    def seconds(self, value: str | None) -> float | None:
        """A time expression in seconds; None when it is not one (never raises)."""
        if not value:
            return None
        try:
            return checked(self._seconds(value.strip()))
        except (TypeError, ValueError, OverflowError, ZeroDivisionError):
            return None  # also int() of 4,300 digits, and a number no time can be

    def _seconds(self, value: str) -> float:
        m = re.fullmatch(r"(\d+(?:\.\d+)?)(h|ms|m|s|f|t)", value)
        if m:
            number, unit = float(m.group(1)), m.group(2)
            factor = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}.get(unit)
            if factor is not None:
                return number * factor
            rate = self.frame_rate if unit == "f" else self.tick_rate
            return number / rate
        m = re.fullmatch(r"(?:(\d+):)?(\d+(?:\.\d+)?)", value)
        if m:  # as Apple Music's lyrics write them: `19.764`, `3:58.640` (no unit)
            return int(m.group(1) or 0) * 60 + float(m.group(2))
        m = re.fullmatch(r"(\d+):(\d{1,2}):(\d{1,2})(?:\.(\d+)|:(\d+)(?:\.(\d+))?)?", value)
        if not m:
            raise ValueError(f"not a time expression: {value[:40]!r}")
        total = int(m.group(1)) * 3600 + int(m.group(2)) * 60 + int(m.group(3))
        if m.group(4):
            fraction = m.group(4)[:FRACTION_DIGITS]
            return total + int(fraction) / float(10 ** len(fraction))
        if m.group(5):
            frames = int(m.group(5)) + (int(m.group(6)) / self.sub_frame_rate if m.group(6) else 0)
            return total + frames / self.frame_rate
        return float(total)


def _number(value: str | None, default: float) -> float:
    """A rate (frames, ticks per second): a positive, finite number, else `default`."""
    try:
        number = float(value) if value else default
    except ValueError:
        return default
    return number if 0 < number <= MAX_SECONDS else default


def _walk(
    el: Element,
    offset: float,
    end: float | None,
    clock: _Clock,
    out: list[Cue],
    agents: dict[str, str] | None = None,
    agent: str | None = None,
) -> int:
    """Collect <p>s in document order; times are relative to the parent's begin. A
    `ttm:agent` on a <p> or on a <div> around it (several ids: the first) is its speaker,
    by the name the head gives it."""
    skipped = 0
    for child in el:
        name = local_name(child.tag)
        if name not in ("div", "p"):
            continue
        own = (attr_of(child, "agent") or "").split()
        speaker = own[0] if own else agent
        begin = clock.seconds(attr_of(child, "begin"))
        e = clock.seconds(attr_of(child, "end"))
        d = clock.seconds(attr_of(child, "dur"))
        base = 0.0 if clock.absolute or _absolute(begin, offset, end) else offset
        start = offset if begin is None else base + begin
        stop: float | None = end
        if e is not None:
            stop = base + e
        elif d is not None:
            stop = start + d
        if name == "div":
            skipped += _walk(child, start, stop, clock, out, agents, speaker)
            continue
        if attr_of(child, "begin") is not None and begin is None:
            skipped += 1  # an unreadable time expression
            continue
        text = _ttml_text(child)
        lines = clean_text(text) if text else []
        if lines:
            who = (agents or {}).get(speaker, speaker) if speaker else None
            out.append(Cue(start, stop if stop is not None else start, "\n".join(lines), who))
    return skipped


def _absolute(begin: float | None, offset: float, end: float | None) -> bool:
    """Is a begin time written from the start of the document, though TTML times it from
    the parent's begin? When read from the parent it would start after the parent ends,
    and read as it is it falls inside the parent: a writer that times everything
    absolutely (as Apple does)."""
    if begin is None or not offset or end is None:
        return False
    return offset + begin > end + 0.001 and offset - 0.001 <= begin <= end + 0.001


_BR = "\x00br"


def _ttml_text(el: Element) -> str:
    """The text of a <p>: XML whitespace collapsed, <br/> the only line break."""
    parts: list[str] = []

    def walk(node: Element) -> None:
        if node.text:
            parts.append(node.text)
        for child in node:
            name = local_name(child.tag)
            if name == "br":
                parts.append(_BR)
            elif name not in ("metadata", "set", "image", "style"):
                walk(child)
            if child.tail:
                parts.append(child.tail)

    walk(el)
    lines = (spaced(chunk) for chunk in "".join(parts).split(_BR))
    return "\n".join(line for line in lines if line)
