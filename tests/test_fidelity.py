"""Word-level fidelity over every caption file in the tests: what was said comes out
exactly once.

The reference words are read by a deliberately simple extractor written here, separately
from xdl's parser (no shared code, no shared rules): a cue is a timing line and the lines
under it; tags, entities, headers and speaker labels go. For rolling automatic captions
(listed by name below) the reference is what is new at the bottom of each cue that is
shown for more than a snapshot (and is not
the previous cue shown again). Two numbers per file, both kept at zero:

- words lost: reference words missing from the Markdown (as a multiset);
- phrases duplicated: 5-word phrases the Markdown has more often than the reference.
"""

from __future__ import annotations

import html
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from xdl.core import captions, markdown

HERE = Path(__file__).parent / "captions"
FILES = sorted(
    p for d in ("corpus", "fixtures") for p in (HERE / d).iterdir() if p.name != "ATTRIBUTION.md"
)

#: Rolling automatic captions: each line is typed, then repeated above the next one.
ROLLING = {
    "youtube_auto.vtt",
    "youtube_short_asr.vtt",
    "youtube_live.vtt",
    "music_pauses.vtt",
    "glut23__webvtt-py__youtube_dl.vtt",
    "qkeluna__Downlodr__video.en.vtt",
}
#: Files without a BOM in a legacy code page: the encoding their source names.
ENCODINGS = {
    "SamsungDForum__JuvoPlayer__media_player_subs_windows-1251.srt": "cp1251",
    "SamsungDForum__JuvoPlayer__media_player_subs_windows-1250.srt": "cp1250",
    "SamsungDForum__JuvoPlayer__media_player_subs_windows-1253.srt": "cp1253",
    "SamsungDForum__JuvoPlayer__media_player_subs_windows-1256.srt": "cp1256",
    "SamsungDForum__JuvoPlayer__media_player_subs_gb2312.srt": "gb2312",
    "SamsungDForum__JuvoPlayer__media_player_subs_big5.srt": "big5",
}

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
_CJK = re.compile(r"([\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff])")
_TIMING = re.compile(r"^\s*[\d:.,]+\s*(-->\s*[\d:.,]+.*|,[\d:.]+\s*)$")
_TAG = re.compile(r"<[^>]*>")
_LABEL = re.compile(r"^(?:>>\s*)?(?:[A-Z][\w.'’-]*(?: [\w.'’-]+){0,3}(?: \([^)]*\))?:(?:\s+|$))?")


def tokens(text: str) -> list[str]:
    """Words; a character of a script written without spaces (Han, kana) is a word."""
    return [w for w in _WORD.findall(_CJK.sub(r" \1 ", text))]


def _decode(name: str, data: bytes) -> str:
    boms = ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))
    for bom, enc in boms:
        if data.startswith(bom):
            return data[len(bom) :].decode(enc)
    return data.decode(ENCODINGS.get(name, "utf-8"))


def _clean(line: str) -> str:
    line = _TAG.sub("", line.replace("[br]", " "))
    line = re.sub(r"\{\\[^}]*\}", "", line)
    return html.unescape(line).strip()


def reference_words(name: str, data: bytes) -> list[str]:
    text = _decode(name, data).replace("\r\n", "\n").replace("\r", "\n")
    head = text.lstrip()
    if head.startswith("{"):  # YouTube json3: every seg's text, once
        events = json.loads(text)["events"]
        said = "".join(s.get("utf8", "") for e in events for s in e.get("segs") or [])
        return tokens(" ".join(_LABEL.sub("", _clean(x)) for x in said.split("\n")))
    if head.startswith("<"):  # TTML, srv3: the body's text, tags off
        body = text[max(text.find("<body"), 0) :]  # srv1 has no <body>: all of it
        body = re.sub(r"<br\s*/?>|</p>", "\n", body)
        lines = html.unescape(_TAG.sub("", body)).split("\n")
        if "<body" not in text:  # srv1: <transcript><text> ..., entities escaped twice
            lines = [html.unescape(x) for x in lines]
        return tokens(" ".join(x for x in lines if not re.fullmatch(r"\s*[A-Z]+:\s*", x)))
    cues: list[tuple[float, list[str]]] = []
    current: list[str] | None = None
    for line in text.split("\n"):
        if _TIMING.match(line):
            start, _, end = re.split(r"\s*(-->|,(?=\d+:))\s*", line.strip(), maxsplit=1)
            current = []
            cues.append((_secs(end.split()[0]) - _secs(start), current))
        elif not line:  # a line of spaces is padding inside a cue
            current = None
        elif current is not None:
            current.append(line)
        # outside a cue: headers, NOTE blocks, identifiers - never text
    out: list[str] = []
    if name in ROLLING:
        previous, shown = "", [""]
        for duration, cue in cues:
            cue = [c for c in (_clean(x) for x in cue) if c]
            if not cue:  # a blank cue: the screen was cleared
                previous, shown = "", [""]
            if duration <= 0.05 or not cue or cue == shown:  # a snapshot, a redisplay
                continue
            shown, bottom = cue, cue[-1]
            growing = previous and bottom.startswith(previous + " ")
            new = bottom[len(previous) :] if growing else bottom
            previous = bottom
            out.extend(tokens(new))
        return out
    for _, cue in cues:
        for line in cue:
            out.extend(tokens(_LABEL.sub("", _clean(line))))
    return out


def _secs(stamp: str) -> float:
    parts = [float(p) for p in stamp.replace(",", ".").split(":")]
    value = 0.0
    for p in parts:
        value = value * 60 + p
    return value


def output_words(data: bytes) -> list[str]:
    text, _ = markdown.markdown_of(data, markdown.Layout())  # to-markdown's own path
    text = re.sub(r"\*\*[^*\n]+:\*\*", " ", text)  # speaker names are markup here
    return tokens(text)


def fidelity(name: str, data: bytes) -> tuple[int, int]:
    ref, out = reference_words(name, data), output_words(data)
    lost = sum((Counter(ref) - Counter(out)).values())

    def grams(ws: list[str]) -> Counter[tuple[str, ...]]:
        return Counter(tuple(ws[i : i + 5]) for i in range(len(ws) - 4))

    duplicated = sum((grams(out) - grams(ref)).values())
    return lost, duplicated


#: Files xdl still gets wrong (strict: a fixed one must leave this list).
KNOWN_BAD: set[str] = set()


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(p, marks=pytest.mark.xfail(strict=True)) if p.name in KNOWN_BAD else p
        for p in FILES
    ],
    ids=lambda p: p.name,
)
def test_every_word_once(path: Path) -> None:
    data = path.read_bytes()
    assert reference_words(path.name, data), "the reference found no words: fix the test"
    assert fidelity(path.name, data) == (0, 0)


def test_totals_over_the_corpus() -> None:
    """The closing numbers: words lost, phrases duplicated, files wrong, formats refused."""
    lost = duplicated = wrong = refused = 0
    for path in FILES:
        try:
            a, b = fidelity(path.name, path.read_bytes())
        except captions.NotCaptions:
            refused += 1
            wrong += 1
            continue
        lost, duplicated, wrong = lost + a, duplicated + b, wrong + bool(a or b)
    assert wrong == len(KNOWN_BAD)
    if not KNOWN_BAD:
        assert (lost, duplicated, wrong, refused) == (0, 0, 0, 0)
