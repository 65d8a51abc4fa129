"""Caption files (WebVTT, SRT, TTML/DFXP) into clean cues: leniently, losing nothing.

webvtt-py and pysrt silently drop blocks they cannot parse (a timing without
milliseconds, a missing blank line, a blank line inside a cue), keep one voice per cue,
leave entities encoded, delete any text between `<` and `>` and read `,08` as 8 ms.
So the WebVTT/SRT reader here is our own: one linear pass over the lines, a regex only
on timing lines, and every block it cannot use is counted in `skipped_blocks`.
TTML goes through the standard XML parser hardened by defusedxml (no entity expansion).
"""

from __future__ import annotations

import codecs
import gc
import html
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, NamedTuple
from xml.etree.ElementTree import Element

from . import errors

# --- errors -----------------------------------------------------------------------------


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


# --- results ----------------------------------------------------------------------------


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


# --- bytes to text ----------------------------------------------------------------------

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def decode(data: bytes, encoding: str | None = None) -> tuple[str, str]:
    """Text and the encoding used: `encoding` when given, else a BOM, then UTF-8, then
    UTF-16 without BOM, then what charset-normalizer finds (cp1251, cp1250, ...), CP1252
    when it finds nothing. Line endings (CR, LF, CRLF, mixed) become LF."""
    forced = bool(encoding)
    if encoding:
        try:
            encoding = codecs.lookup(encoding).name
        except LookupError:
            raise errors.BadInput(f"unknown encoding: {encoding}") from None
    else:
        encoding = ""
    for bom, name in _BOMS:
        if data.startswith(bom):
            data = data[len(bom) :]
            encoding = encoding or name
            break
    if not data.strip(b" \t\r\n\x00"):
        raise EmptyFile("empty file: no captions in it")
    if forced or encoding:
        text = data.decode(encoding, "replace")
    else:
        try:
            text, encoding = data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            head = data[:4096]
            if head.count(0) > len(head) // 4 and (head[1::2].count(0) > len(head) // 3):
                text, encoding = data.decode("utf-16-le", "replace"), "utf-16-le"
            elif head.count(0) > len(head) // 4 and (head[0::2].count(0) > len(head) // 3):
                text, encoding = data.decode("utf-16-be", "replace"), "utf-16-be"
            else:
                encoding = detect_encoding(data)
                text = data.decode(encoding, "replace")
    _refuse_binary(text)
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.lstrip("\ufeff"), encoding


#: How much of a file the encoding detector reads: enough text for any language.
_DETECT_BYTES = 256 * 1024


def detect_encoding(data: bytes) -> str:
    """The legacy code page of bytes that are not UTF-8 (charset-normalizer, which comes
    with requests), CP1252 when nothing fits better."""
    from charset_normalizer import from_bytes

    sample = data[:_DETECT_BYTES]
    cut = sample.rfind(b"\n")
    found = from_bytes(sample[: cut if cut > 0 else None])
    best = found.best()
    if best is None or best.encoding in ("ascii", "utf_8"):
        return "cp1252"
    # Subtitle files come from Windows far more often than from old Macs or DOS: of the
    # candidates that read as cleanly, a Windows code page wins (cp1251, not mac_cyrillic),
    # and among those the one whose letters fit a language best (Greek text reads as
    # cleanly in cp1251 as in cp1253: only the language tells them apart).
    windows = [m for m in found if m.encoding.startswith("cp125") and m.chaos <= best.chaos + 0.02]
    if windows:
        pick = max(windows, key=lambda m: (m.coherence, -m.chaos))
        return codecs.lookup(pick.encoding).name
    return codecs.lookup(best.encoding).name


_CONTROL = frozenset(chr(c) for c in range(32) if chr(c) not in "\t\n\r\f") | {"\x7f"}


def _refuse_binary(text: str) -> None:
    head = text[:8192]
    if "\x00" in head or sum(c in _CONTROL for c in head) > max(2, len(head) // 100):
        raise NotCaptions("binary data, not a caption file")
    if head.count("\ufffd") > max(8, len(head) // 20):
        raise NotCaptions("binary data, not a caption file (not decodable as text)")


# --- detecting the format ---------------------------------------------------------------

_TIMING = re.compile(
    r"[ \t]*((?:\d+:)?\d+:\d+(?:[.,:]\d+)?)[ \t]*-->[ \t]*((?:\d+:)?\d+:\d+(?:[.,:]\d+)?)"
)


_SBV_TIMING = re.compile(
    r"^[ \t]*(\d+:\d{1,2}:\d{1,2}\.\d+),(\d+:\d{1,2}:\d{1,2}\.\d+)[ \t]*$", re.M
)


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
    m = _TIMING.search(text)
    if m is None and _SBV_TIMING.search(text):
        return "sbv"
    if m is None:
        raise NotCaptions("no cue timings (00:00:01.000 --> 00:00:02.000) found: not captions")
    if re.search(r"^[ \t]*WEBVTT", text[: m.start()], re.M):
        return "vtt"
    return "srt"


def parse(data: bytes, *, rolling: bool | None = None, encoding: str | None = None) -> Captions:
    """Parse a caption document of any supported format.

    `rolling`: True to remove YouTube-style rolling repeats, False to keep every line,
    None to decide from the file (inline word timings, or most cues repeating their
    predecessor's last line). Creator-made captions never match and keep everything.
    `encoding` overrides the detected one."""
    text, used = decode(data, encoding)
    kind = detect(text)
    if kind == "ttml":
        caps = parse_ttml(text)
    elif kind == "json3":
        caps = parse_json3(text)
    elif kind == "srv3":
        caps = parse_srv3(text)
    elif kind == "sbv":  # YouTube Studio's SubViewer: `h:mm:ss.fff,h:mm:ss.fff`, [br]
        text = _SBV_TIMING.sub(r"\1 --> \2", text).replace("[br]", "\n")
        caps = replace(parse_text(text, "srt", rolling=rolling), format="sbv")
    else:
        with gc_paused():
            caps = parse_text(text, kind, rolling=rolling)
    return replace(caps, encoding=used)


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


_Segs = list[tuple[str | None, list[str]]]

# --- WebVTT and SRT ---------------------------------------------------------------------


def _seconds(stamp: str) -> float | None:
    """`h:m:s.frac`, `m:s.frac`, `h:m:s`, `,` or `.` before the fraction, any digits:
    `,08` is 80 ms (a decimal fraction), as players read it."""
    main, sep, frac = stamp.replace(",", ".").partition(".")
    parts = main.split(":")
    if len(parts) == 4 and not sep:  # 00:02:33:44, frames-like; read as hundredths
        parts, frac, sep = parts[:3], parts[3], "."
    if not 2 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
        return None
    if sep and not frac.isdigit():
        return None
    value = 0
    for p in parts:
        value = value * 60 + int(p)
    return value + (int(frac) / 10 ** len(frac) if frac else 0.0)


class _HoursMinutes(dict[str, int]):
    """`HH:MM:` -> seconds, parsed once (a 2-hour file has 120 of them)."""

    def __missing__(self, key: str) -> int:
        if len(key) != 6 or key[2] != ":" or key[5] != ":" or not key.isascii():
            raise KeyError(key)
        if not (key[:2] + key[3:5]).isdigit():
            raise KeyError(key)
        try:
            value = self[key] = int(key[:2]) * 3600 + int(key[3:5]) * 60
        except ValueError:
            raise KeyError(key) from None
        return value


class _Seconds(dict[str, float]):
    """`SS.mmm` -> seconds, parsed once: there are only 60,000 of them, so a long file
    looks most of its timestamps up instead of parsing them."""

    def __missing__(self, key: str) -> float:
        if len(key) != 6 or key[2] not in ".," or not key.isascii():
            raise KeyError(key)
        if not (key[:2] + key[3:]).isdigit():
            raise KeyError(key)
        try:
            value = self[key] = int(key[:2]) + int(key[3:]) / 1000
        except ValueError:
            raise KeyError(key) from None
        return value


_HM = _HoursMinutes()
_SS = _Seconds()
_ENDS = frozenset(("", " ", "\t"))


def _timing(line: str) -> tuple[float, float] | None:
    if line[12:17] == " --> " and line[29:30] in _ENDS:
        try:  # the usual shape, 00:00:01.000 --> 00:00:02.000 (settings), without a regex
            return _HM[line[:6]] + _SS[line[6:12]], _HM[line[17:23]] + _SS[line[23:29]]
        except KeyError:
            pass
    m = _TIMING.match(line)
    if m is None:
        return None
    start, end = _seconds(m.group(1)), _seconds(m.group(2))
    if start is None or end is None:
        return None
    return start, end


_PARTIAL_TIMING = re.compile(r"^[ \t]*[\d:.,]+[ \t]*(?:-{1,2}>?[ \t]*[\d:.,]*)?[ \t]*$")


def parse_text(text: str, kind: str = "vtt", *, rolling: bool | None = None) -> Captions:
    """WebVTT or SRT text (LF line endings) into cues."""
    inline = "<c>" in text
    if inline:  # YouTube's word timings, the bulk of the file: off in one pass, not per cue
        text = _WORD_TIMINGS.sub("", text)
    ids: dict[int, str] = {}
    raw, skipped, headers = _blocks(text, kind == "vtt", ids)
    del text  # big files: memory back as soon as possible (fewer page faults)
    candidates = repeats = 0
    last: str | None = None
    cleaned: list[tuple[float, float, _Segs | None, list[str], str | None]] = []
    for number, (start, end, lines) in enumerate(raw):
        joined = lines[0] if len(lines) == 1 else "\n".join(lines)
        segs: _Segs | None = None
        if "<" not in joined and "&" not in joined and "{" not in joined and joined.isascii():
            flat = [" ".join(x.split()) for x in joined.split("\n") if x and not x.isspace()]
        elif "<v" in joined or "<V" in joined:
            segs = _voices(joined)
            flat = [line for _, seg in segs for line in seg]
        else:
            flat = clean_text(joined)
        if flat:
            if last is not None:
                candidates += 1
                repeats += flat[0] == last or _repeats(last, flat)
            last = flat[-1]
            cleaned.append((start, end, segs, flat, ids.get(number)))
        elif cleaned and cleaned[-1][3]:
            cleaned.append((start, end, None, [], None))  # a blank cue: a pause
    del raw
    if rolling is None:
        # Word timings (<00:00:01.000><c>) and a repeat: YouTube's automatic captions,
        # however short. Without them (converted to SRT on the way), only a file that
        # repeats nearly every cue's top line: creator-made captions never look like that.
        share, minimum = (0.2, 1) if inline else (0.6, 20)
        rolling = candidates >= minimum and repeats >= share * candidates
    named = _name_identifiers([c[4] for c in cleaned if c[3]])
    out: list[Cue] = []
    removed = 0
    prev: list[str] = []
    prev_end = 0.0
    for start, end, segs, flat, ident in cleaned:
        if not flat:
            prev = []  # after a pause, a line said again is said again
            continue
        k = 0
        grown: str | None = None
        if rolling:
            if prev and start > prev_end + 1.0:
                prev = []
            if prev and (flat[0] in prev or prev[-1] in flat[0]):
                # The usual cases (one new line under the last one; a snapshot of it)
                # without a call; anything longer goes through _overlap.
                k = 1 if prev[-1] == flat[0] and (len(flat) == 1 or len(prev) == 1) else 0
                if not k:
                    k, grown = _overlap(prev, flat)
                removed += k
            prev, prev_end = flat, end
        if segs is None:
            if grown is not None:  # a line still being typed: only its new words
                k -= 1
                flat = [*flat[:k], grown, *flat[k + 1 :]] if grown else flat[:k] + flat[k + 1 :]
            if k < len(flat):
                speaker = ident if named else None
                out.append(Cue(start, end, "\n".join(flat[k:] if k else flat), speaker))
            continue
        for speaker, seg in _drop_lines(segs, k) if k else segs:
            out.append(Cue(start, end, "\n".join(seg), speaker))
    return Captions(kind, _label_speakers(out), skipped, removed, rolling, segment_headers=headers)


def _blocks(
    text: str, vtt: bool, ids: dict[int, str] | None = None
) -> tuple[list[tuple[float, float, list[str]]], int, int]:
    """The cues' raw text (as chunks of lines) with their times, and how many blocks
    were unusable, and how many segment headers (`WEBVTT` and the lines under it, where
    HLS caption segments were joined into one file) were set aside. `ids` collects the
    cue identifiers that are not sequence numbers, by cue index.

    Lenient where players are: a blank line inside a cue keeps the text in the cue, a
    sequence number right before a timing line belongs to the next cue even without a
    blank line, whitespace-only lines are padding, not breaks. Blocks of the usual shape
    (optional identifier, timing, text) take a fast path; the rest go line by line."""
    if vtt:  # the header: the WEBVTT line and the lines right under it
        end = text.find("\n\n", text.find("WEBVTT"))
        text = "" if end < 0 else text[end + 2 :]
    blocks = text.split("\n\n")
    last = len(blocks) - 1
    while last >= 0 and not blocks[last].strip():
        last -= 1
    cues: list[tuple[float, float, list[str]]] = []
    skipped = headers = 0
    current: list[str] | None = None
    depth = 0  # open braces of a STYLE block (its CSS may hold blank lines)
    for number, block in enumerate(blocks):
        if depth > 0:
            depth += block.count("{") - block.count("}")
            continue
        if "-->" not in block:
            if not block or block.isspace():
                continue
            block = block.lstrip("\n")
            lines = block.split("\n")
            if lines[0].startswith("WEBVTT") and number:  # a joined segment's header
                headers += 1
                current = None
                continue
            word = lines[0].split(None, 1)[0] if vtt else ""
            if word in ("NOTE", "STYLE", "REGION"):
                if word == "STYLE":
                    depth = block.count("{") - block.count("}")
                continue
            if number == last and _partial_timing(lines[-1]):
                raise Truncated(f"the file ends inside a cue timing ({lines[-1].strip()!r})")
            if current is not None:
                current.append(block)  # a blank line inside a cue
            elif not all(line.startswith(("Region:", "X-TIMESTAMP-MAP")) for line in lines):
                skipped += 1
            continue
        if block[0] == "\n":
            block = block.lstrip("\n")
        # The usual shape, without splitting lines: [identifier] timing, then the text.
        timing = rest = None
        first, _, after = block.partition("\n")
        if "-->" in first:
            if "-->" not in after:
                timing, rest = first, after
        else:
            second, _, after = after.partition("\n")
            if "-->" in second and "-->" not in after:
                timing, rest = second, after
                if ids is not None and not first.strip().isdigit():
                    ids[len(cues)] = first.strip()
        if timing is None or rest is None:
            current, n = _scan(block.split("\n"), current, cues, number == last)
            skipped += n
            continue
        times = None
        if timing[12:17] == " --> " and timing[29:30] in _ENDS:
            try:  # _timing's fast path, inlined: this runs once per cue
                times = (
                    _HM[timing[:6]] + _SS[timing[6:12]],
                    _HM[timing[17:23]] + _SS[timing[23:29]],
                )
            except KeyError:
                pass
        if times is None:
            times = _timing(timing)
        if times is None:
            if number == last and not rest.strip() and _partial_timing(timing):
                raise Truncated(f"the file ends inside a cue timing ({timing.strip()!r})")
            skipped += 1
            current = None
            continue
        if number == last and not rest.strip() and _cut_short(timing, times):
            raise Truncated(f"the file ends inside a cue timing ({timing.strip()!r})")
        current = [rest]
        cues.append((times[0], times[1], current))
    return cues, skipped, headers


def _cut_short(line: str, times: tuple[float, float]) -> bool:
    """A last timing line with no text whose end time is shorter than its start time
    (`00:00:03.000 --> 00:0`): the download stopped there."""
    if times[1] < times[0]:
        return True
    start, _, end = line.partition("-->")
    return len(end.split()[0] if end.split() else "") < len(start.strip())


def _partial_timing(line: str) -> bool:
    return ":" in line and _PARTIAL_TIMING.match(line) is not None


def _scan(
    lines: list[str],
    current: list[str] | None,
    cues: list[tuple[float, float, list[str]]],
    last_block: bool,
) -> tuple[list[str] | None, int]:
    """One unusual block, line by line: several cues without blank lines between them,
    stray text before a timing, a timing that cannot be read."""
    skipped = 0
    skipping = orphan = False
    n = len(lines)
    for i, line in enumerate(lines):
        if "-->" in line:
            times = _timing(line)
            if times is None:
                if last_block and i == n - 1 and _partial_timing(line):
                    raise Truncated(f"the file ends inside a cue timing ({line.strip()!r})")
                skipped += 1
                current, skipping = None, True
                continue
            current, skipping, orphan = [], False, False
            cues.append((times[0], times[1], current))
            continue
        if skipping:
            continue
        if i + 1 < n and "-->" in lines[i + 1] and (i == 0 or current is None or line.isdigit()):
            continue  # a cue identifier (an SRT sequence number)
        if current is None:
            if line.strip() and not orphan:
                skipped += 1
                orphan = True
            continue
        current.append(line)
    return current, skipped


# --- cleaning cue text ------------------------------------------------------------------

_VOICE = re.compile(r"<v(?:\.[^\s>]*)?(?:[ \t]+([^>\n]*?))?[ \t]*>|</v[ \t]*>", re.I)
_TAGS = re.compile(
    r"</?(?:c|i|b|u|s|lang|ruby|rt|rp|font|span|sub|sup)(?:[.\s][^<>]*)?>"
    r"|<(?:\d+:)?\d{1,2}:\d{2}[.,]\d{1,3}>",
    re.I,
)
_WORD_TIMINGS = re.compile(r"</?c>|<\d\d:\d\d:\d\d\.\d\d\d>")
_INLINE = re.compile(r"<\d\d:\d\d:\d\d\.\d\d\d>")
_BR_TAG = re.compile(r"<br\s*/?>", re.I)
_ASS = re.compile(r"\{\\[^{}]*\}")
_FOLD = {
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


def clean_text(text: str) -> list[str]:
    """Markup off, entities decoded once, odd spaces folded: the cue's non-empty lines."""
    if "{" in text:
        text = _ASS.sub("", text)
    if "<" in text:
        if "<c>" in text:  # YouTube's word timings: the bulk of an automatic caption file
            text = _INLINE.sub("", text.replace("<c>", "").replace("</c>", ""))
        if "<br" in text or "<BR" in text:
            text = _BR_TAG.sub("\n", text)
        if "<" in text:
            text = _TAGS.sub("", text)
    if "&" in text:
        text = html.unescape(text)
    if not text.isascii():
        text = text.translate(_FOLD)
    return [" ".join(line.split()) for line in text.split("\n") if line and not line.isspace()]


def _voices(text: str) -> _Segs:
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
            speaker = " ".join(html.unescape(name).split()) or None if name else None
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


# --- YouTube rolling captions -----------------------------------------------------------


def _overlap(prev: list[str], lines: list[str]) -> tuple[int, str | None]:
    """The longest k with lines[:k] == prev[-k:], where the last of those lines may
    also have grown (live captions type a line over several cues): then also the words
    it gained (None when it did not grow)."""
    last = prev[-1]
    for k in range(min(len(prev), len(lines)), 0, -1):
        line = lines[k - 1]
        if lines[: k - 1] != prev[-k:-1]:
            continue
        if line == last:
            return k, None
        if line.startswith(last) and line[len(last) : len(last) + 1] == " ":
            return k, line[len(last) + 1 :]
    return 0, None


def _repeats(last: str, lines: list[str]) -> bool:
    """Does a cue repeat (or continue typing) the last line of the one before?"""
    return any(
        x == last or (x.startswith(last) and x[len(last) : len(last) + 1] == " ") for x in lines[:3]
    )


#: Words that end in a colon at the start of a line without naming anyone.
_NOT_NAMES_TEXT = (
    "note warning tip example thus so now well yes no ok okay update edit ps q a question "
    "answer step caution important remember"
)
_NOT_NAMES = frozenset(_NOT_NAMES_TEXT.split())
_NAME = r"[^\W\d_][\w.'’-]*(?: [^\W\d_][\w.'’-]*){0,3}(?: \([^()\n]{1,40}\))?"
_SPEAKER_LABEL = re.compile(rf"(?:>>[ \t]*)?({_NAME}):[ \t]+(?=\S)")


def _name_identifiers(ids: list[str | None]) -> bool:
    """Are the cue identifiers speakers' names? Names come back (the same few people
    speak again and again), identifiers of other kinds do not."""
    names = [i for i in ids if i and re.fullmatch(_NAME, i) and i.split()[0][0].isupper()]
    return len(names) >= 2 and len(names) >= len(ids) / 2 and len(set(names)) < len(names)


def _label_speakers(cues: list[Cue]) -> list[Cue]:
    """`Name: text` at the start of a cue (Zoom, Meet, `>> NAME:`) is a speaker when the
    file uses labels that way: on half the cues or more, or an upper-case NAME that comes
    back.
    `Note: ...` and times (`10:30`) are never names."""
    found: dict[str, int] = {}
    labelled = 0
    for cue in cues:
        if cue.speaker is None and ":" in cue.text:
            m = _SPEAKER_LABEL.match(cue.text)
            if m and _is_name(m.group(1)):
                labelled += 1
                found[m.group(1)] = found.get(m.group(1), 0) + 1
    if not found:
        return cues
    everyone = labelled >= 2 and labelled >= len(cues) / 2
    names = {n for n, count in found.items() if everyone or (count >= 2 and n.isupper())}
    if not names:
        return cues
    out: list[Cue] = []
    speaker: str | None = None
    for cue in cues:
        if cue.speaker is not None:
            out.append(cue)
            continue
        m = _SPEAKER_LABEL.match(cue.text) if ":" in cue.text else None
        if m and m.group(1) in names:
            speaker = m.group(1)
            label, text = cue.text[: m.end()], cue.text[m.end() :]
            words = cue.words[len(label.split()) :] if cue.words is not None else None
            out.append(cue._replace(text=text, speaker=speaker, words=words))
        elif cue.text.startswith(">>"):
            speaker = None
            out.append(cue)
        else:
            out.append(cue._replace(speaker=speaker))
    return out


def _is_name(name: str) -> bool:
    return name[0].isupper() and name.split()[0].lower() not in _NOT_NAMES


def _drop_lines(segs: _Segs, k: int) -> _Segs:
    out: _Segs = []
    for speaker, lines in segs:
        if k >= len(lines):
            k -= len(lines)
            continue
        out.append((speaker, lines[k:]))
        k = 0
    return out


# --- YouTube's own formats: json3 and srv1-3 -------------------------------------------


def parse_json3(text: str) -> Captions:
    """YouTube's json3: one event per line of text (automatic captions: its words as
    segments with `tOffsetMs`), `aAppend` events only add a line break. Each word is in
    one event only, so nothing is removed."""
    import json

    try:
        doc = json.loads(text)
    except ValueError as e:
        if "Expecting" in str(e) and e.args and "char" in str(e) and text.rstrip()[-1:] != "}":
            raise Truncated(f"the JSON ends early ({e}): truncated?") from None
        raise errors.ParseError(f"not valid JSON: {e}") from None
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
            start = float(event.get("tStartMs") or 0) / 1000
            end = start + float(event.get("dDurationMs") or 0) / 1000
            timed = [
                (start + float(seg.get("tOffsetMs") or 0) / 1000, str(seg.get("utf8") or ""))
                for seg in segs
            ]
        except (TypeError, ValueError, AttributeError):
            skipped += 1
            continue
        cue = _timed_cue(start, end, timed)
        if cue is not None:
            cues.append(cue)
    return Captions("json3", _label_speakers(cues), skipped)


def _timed_cue(start: float, end: float, timed: list[tuple[float, str]]) -> Cue | None:
    """A cue from pieces of text each with its start time (YouTube's word segments):
    each word of the cue's text timed by the piece it begins in."""
    times: list[float] = []
    ends: list[int] = []
    parts: list[str] = []
    size = 0
    for t, piece in timed:
        if not piece.isascii():
            piece = piece.translate(_FOLD)
        size += len(piece)
        times.append(t)
        ends.append(size)
        parts.append(piece)
    said = "".join(parts)
    lines = _plain_lines(said)
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
    root = _xml_root(text)
    cues: list[Cue] = []
    skipped = 0
    version = "srv3"
    for el in root.iter():
        name = _local(el.tag)
        if name not in ("p", "text") or el.get("a") == "1":
            continue
        if name == "text":
            version = "srv1" if el.get("start") is not None else "srv2"
        try:
            if el.get("start") is not None:
                start = float(el.get("start") or 0)
                end = start + float(el.get("dur") or 0)
            else:
                start = float(el.get("t") or 0) / 1000
                end = start + float(el.get("d") or 0) / 1000
        except ValueError:
            skipped += 1
            continue
        if name == "p":  # srv3: words in <s t="offset ms">
            cue = _timed_cue(start, end, _srv3_pieces(el, start))
            if cue is not None:
                cues.append(cue)
            continue
        lines = _plain_lines(html.unescape("".join(el.itertext())))
        if lines:
            cues.append(Cue(start, end, "\n".join(lines)))
    return Captions(version, _label_speakers(cues), skipped)


def _srv3_pieces(p: Element, start: float) -> list[tuple[float, str]]:
    """The text of an srv3 <p> as pieces with their start times (an <s> without `t`, or
    with one that cannot be read, starts when the piece before it did)."""
    pieces = [(start, p.text or "")]
    for child in p:
        at = pieces[-1][0]
        try:
            at = start + float(child.get("t") or "x") / 1000
        except ValueError:
            pass
        pieces.append((at, "".join(child.itertext())))
        if child.tail:
            pieces.append((at, child.tail))
    return pieces


def _plain_lines(text: str) -> list[str]:
    """Text that is not markup: odd spaces folded, the non-empty lines, single-spaced."""
    if not text.isascii():
        text = text.translate(_FOLD)
    return [" ".join(line.split()) for line in text.split("\n") if line and not line.isspace()]


# --- TTML / DFXP ------------------------------------------------------------------------

#: How deeply a TTML document may nest elements. Real ones nest tt/body/div/p/span/span:
#: a handful. The walk below recurses, so a deeper file is refused before it starts.
MAX_XML_DEPTH = 200


def parse_ttml(text: str) -> Captions:
    """TTML1/IMSC or the old DFXP namespace; clock, offset, SMPTE frame and tick times."""
    root = _xml_root(text)
    if _local(root.tag) != "tt":
        raise NotCaptions(f"XML, but its root is <{_local(root.tag)}>, not TTML's <tt>")
    params = {_local(k): v for k, v in root.attrib.items()}
    clock = _Clock(params)
    title = None
    cues: list[Cue] = []
    for el in root.iter():
        if _local(el.tag) == "title" and el.text and el.text.strip() and title is None:
            title = " ".join(el.text.split())
    skipped = 0
    body_el = next((el for el in root if _local(el.tag) == "body"), None)
    if body_el is not None:
        agent = _attr(body_el, "agent")
        skipped = _walk(body_el, 0.0, None, clock, cues, _agents(root), agent)
    return Captions("ttml", cues, skipped, 0, False, title)


def _agents(root: Element) -> dict[str, str]:
    """The people a TTML document declares (`<ttm:agent xml:id="v1">`, Apple Music's
    lyrics, IMSC): id -> their full name (`<ttm:name type="full">`), else the id."""
    out: dict[str, str] = {}
    for el in root.iter():
        if _local(el.tag) != "agent" or not (ident := _attr(el, "id")):
            continue
        names = {
            (_attr(n, "type") or ""): " ".join((n.text or "").split())
            for n in el
            if _local(n.tag) == "name"
        }
        names = {k: v for k, v in names.items() if v}
        out[ident] = names.get("full") or next(iter(names.values()), "") or ident
    return out


def _xml_root(text: str) -> Element:
    """The document element, parsed safely (no entities, no external references, not
    too deep)."""
    from xml.etree.ElementTree import ParseError as XmlParseError

    import defusedxml.ElementTree as SafeET
    from defusedxml import DefusedXmlException

    body = re.sub(r"^\s*<\?xml[^>]*\?>", "", text, count=1)
    try:
        root = SafeET.fromstring(body)
    except DefusedXmlException as e:
        raise UnsafeXml(
            f"refused: the XML declares entities or external references ({e})"
        ) from None
    except XmlParseError as e:
        message = str(e)
        if message.startswith(("no element found", "unclosed token")):
            raise Truncated(f"the XML ends early ({message}): truncated?") from None
        raise errors.ParseError(f"not well-formed XML: {message}") from None
    if _deeper_than(root, MAX_XML_DEPTH):
        raise errors.ParseError(f"the XML nests elements more than {MAX_XML_DEPTH} levels deep")
    return root  # type: ignore[no-any-return]


def _deeper_than(root: Element, limit: int) -> bool:
    """Does the tree nest more than `limit` elements? (No recursion: that is what it guards.)"""
    stack = [(root, 1)]
    while stack:
        el, depth = stack.pop()
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in el)
    return False


def _local(tag: Any) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _attr(el: Element, name: str) -> str | None:
    for k, v in el.attrib.items():
        if _local(k) == name:
            return v
    return None


class _Clock:
    """TTML time expressions under the document's frame and tick rates."""

    def __init__(self, params: dict[str, str]) -> None:
        self.frame_rate = _number(params.get("frameRate"), 30.0)
        multiplier = params.get("frameRateMultiplier")
        if multiplier:
            nums = re.split(r"[\s:/]+", multiplier.strip())
            if len(nums) == 2 and all(x.isdigit() for x in nums) and int(nums[1]):
                self.frame_rate *= int(nums[0]) / int(nums[1])
        self.sub_frame_rate = _number(params.get("subFrameRate"), 1.0)
        default_ticks = self.frame_rate * self.sub_frame_rate if "frameRate" in params else 1.0
        self.tick_rate = _number(params.get("tickRate"), default_ticks)
        #: Apple Music's lyrics (`itunes:timing`) time every element from the start of the
        #: song, not from its parent's begin as TTML would.
        self.absolute = "timing" in params

    def seconds(self, value: str | None) -> float | None:
        if not value:
            return None
        value = value.strip()
        m = re.fullmatch(r"(\d+(?:\.\d+)?)(h|ms|m|s|f|t)", value)
        if m:
            number, unit = float(m.group(1)), m.group(2)
            factor = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}.get(unit)
            if factor is not None:
                return number * factor
            rate = self.frame_rate if unit == "f" else self.tick_rate
            return number / rate if rate else None
        m = re.fullmatch(r"(?:(\d+):)?(\d+(?:\.\d+)?)", value)
        if m:  # as Apple Music's lyrics write them: `19.764`, `3:58.640` (no unit)
            return int(m.group(1) or 0) * 60 + float(m.group(2))
        m = re.fullmatch(r"(\d+):(\d{1,2}):(\d{1,2})(?:\.(\d+)|:(\d+)(?:\.(\d+))?)?", value)
        if not m:
            return None
        total = int(m.group(1)) * 3600 + int(m.group(2)) * 60 + int(m.group(3))
        if m.group(4):
            return total + int(m.group(4)) / float(10 ** len(m.group(4)))
        if m.group(5):
            frames = int(m.group(5)) + (int(m.group(6)) / self.sub_frame_rate if m.group(6) else 0)
            return total + frames / self.frame_rate
        return float(total)


def _number(value: str | None, default: float) -> float:
    try:
        return float(value) if value else default
    except ValueError:
        return default


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
        name = _local(child.tag)
        if name not in ("div", "p"):
            continue
        own = (_attr(child, "agent") or "").split()
        speaker = own[0] if own else agent
        begin = clock.seconds(_attr(child, "begin"))
        e = clock.seconds(_attr(child, "end"))
        d = clock.seconds(_attr(child, "dur"))
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
        if _attr(child, "begin") is not None and begin is None:
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
            name = _local(child.tag)
            if name == "br":
                parts.append(_BR)
            elif name not in ("metadata", "set", "image", "style"):
                walk(child)
            if child.tail:
                parts.append(child.tail)

    walk(el)
    lines = (" ".join(chunk.split()) for chunk in "".join(parts).split(_BR))
    return "\n".join(line for line in lines if line)
