"""The blocks of WebVTT and SRT text, read by one lenient reader: a blank line inside a
cue keeps the text in the cue, a sequence number right before a timing line belongs to
the next cue even without a blank line, whitespace-only lines are padding, and every
block that cannot be used is counted. Blocks of the usual shape take a fast path."""

from __future__ import annotations

import operator
import re
from collections.abc import Iterator, Sequence
from typing import NamedTuple

from .cues import Truncated
from .times import ENDS_LF, HM, SS, cue_times, cut_short, partial_timing, read_timing


class BlockReader:
    """The blocks of WebVTT or SRT text fed in pieces cut at blank lines, read into cues
    (start, end, the chunks of lines of their text); what carries from one piece to the
    next (the cue a blank line may continue, an open STYLE block) and what was set aside
    (`skipped` unusable blocks, `headers` of joined HLS segments)."""

    def __init__(self) -> None:
        self.current: list[str] | None = None
        self.depth = 0  # open braces of a STYLE block (its CSS may hold blank lines)
        self.skipped = self.headers = 0
        self.first = True

    def feed(
        self,
        text: str,
        vtt: bool,
        cues: list[tuple[float, float, list[str]]],
        ids: dict[int, str] | None,
        final: bool,
    ) -> None:
        """The cues of `text` appended to `cues`; `ids` collects the cue identifiers that
        are not sequence numbers, by cue index. `final`: the text ends here."""
        blocks = text.split("\n\n")
        last = len(blocks) - 1
        if final:
            while last >= 0 and not blocks[last].strip():
                last -= 1
        else:
            last = -1  # more text follows: no block here is the file's last
        first, self.first = self.first, False
        current = self.current
        hm, ss, ends_lf = HM, SS, ENDS_LF
        append = cues.append
        for number, block in enumerate(blocks):
            if (
                block[12:17] == " --> "
                and block[29:30] in ends_lf
                and not self.depth
                and number != last
            ):
                # The usual cue (`00:00:01.000 --> 00:00:02.000 ...`, then its text), as
                # `_timed` would read it, in a few steps.
                nl = block.find("\n", 29)
                if nl > 0 and block.find("-->", nl + 1) < 0:
                    try:
                        start = hm[block[:6]] + ss[block[6:12]]
                        end = hm[block[17:23]] + ss[block[23:29]]
                    except KeyError:
                        pass
                    else:
                        current = [block[nl + 1 :]]
                        append((start, end, current))
                        continue
            self.current = current
            if self.depth > 0:
                self.depth += block.count("{") - block.count("}")
            elif "-->" not in block:
                self._text(block, vtt, number == last, bool(number) or not first)
            else:
                self._timed(block, cues, ids, number == last, bool(number) or not first)
            current = self.current
        self.current = current

    def _text(self, block: str, vtt: bool, is_last: bool, later: bool) -> None:
        """A block without a timing: blank, a joined segment's header (`later`: not the
        file's first block), NOTE, STYLE or REGION, or text after a blank line inside a
        cue."""
        if not block or block.isspace():
            return
        block = block.lstrip("\n")
        lines = block.split("\n")
        if lines[0].startswith("WEBVTT") and later:
            self.headers += 1  # a joined segment's header
            self.current = None
            return
        word = lines[0].split(None, 1)[0] if vtt else ""
        if word in ("NOTE", "STYLE", "REGION"):
            if word == "STYLE":
                self.depth = block.count("{") - block.count("}")
            return
        if is_last and partial_timing(lines[-1]):
            raise Truncated(f"the file ends inside a cue timing ({lines[-1].strip()!r})")
        if self.current is not None:
            self.current.append(block)  # a blank line inside a cue
        elif not all(line.startswith(("Region:", "X-TIMESTAMP-MAP")) for line in lines):
            self.skipped += 1

    def _timed(
        self,
        block: str,
        cues: list[tuple[float, float, list[str]]],
        ids: dict[int, str] | None,
        is_last: bool,
        later: bool,
    ) -> None:
        """A block with a timing: of the usual shape ([identifier] timing, then the text)
        without splitting its lines, else line by line (`_scan`)."""
        if block[0] == "\n":
            block = block.lstrip("\n")
        arrow = block.find("-->")
        if block.startswith("WEBVTT") and later:
            # A joined segment's header right above its first cue: the cue stays.
            self.headers += 1
            self.current = None
            block = block[block.rfind("\n", 0, arrow) + 1 :]
            arrow = block.find("-->")
        timing = rest = None
        nl = block.find("\n")
        if nl < 0:
            timing, rest = block, ""
        elif arrow < nl:
            if block.find("-->", nl + 1) < 0:
                timing, rest = block[:nl], block[nl + 1 :]
        else:
            head = block[:nl]
            second, _, after = block[nl + 1 :].partition("\n")
            if "-->" in second and "-->" not in after:
                timing, rest = second, after
                if ids is not None and not head.strip().isdigit():
                    ids[len(cues)] = head.strip()
        if timing is None or rest is None:
            self.current, n = _scan(block.split("\n"), self.current, cues, is_last)
            self.skipped += n
            return
        times = cue_times(timing)
        if times is None:
            if is_last and not rest.strip() and partial_timing(timing):
                raise Truncated(f"the file ends inside a cue timing ({timing.strip()!r})")
            self.skipped += 1
            self.current = None
            return
        if is_last and not rest.strip() and cut_short(timing, times):
            raise Truncated(f"the file ends inside a cue timing ({timing.strip()!r})")
        self.current = [rest]
        cues.append((times[0], times[1], self.current))


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
            times = read_timing(line)
            if times is None:
                if last_block and i == n - 1 and partial_timing(line):
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


class UsualCues(NamedTuple):
    """The cues of a piece (see `usual_cues`): their starts, ends and texts."""

    starts: list[float]
    ends: list[float]
    texts: Sequence[str]


def usual_cues(text: str) -> UsualCues | None:
    """The cues of a piece made only of cues of the usual shape (timing line, then text
    without `-->`; automatic captions are), each with its text, read by one regex call as
    `BlockReader.feed` reads them block by block; None when any block differs."""
    if (text[12:17] != " --> " and text[13:18] != " --> ") or "\n\n\n" in text:
        return None
    text = "\n\n" + text
    blocks = text.count("\n\n")
    if text.count("-->") != blocks:
        return None
    starts: list[float] = []
    ends: list[float] = []
    texts: list[str] = []
    hm, ss, add = HM.__getitem__, SS.__getitem__, operator.add
    find = _USUAL_CUE.findall
    pos, size = 0, len(text)
    while pos < size:
        # A batch at a time, the times looked up while its strings are still in the
        # processor's cache: twice as fast as all of the piece at once.
        cut = text.find("\n\n", pos + _USUAL_BATCH)
        if cut < 0:
            cut = size
        found = find(text, pos, cut)
        if not found:
            return None
        hours, _, seconds, end_hours, end_seconds, said = zip(*found)
        try:
            starts += map(add, map(hm, hours), map(ss, seconds))
            ends += map(add, map(hm, end_hours), map(ss, end_seconds))
        except KeyError:  # not a time after all
            return None
        texts += said
        pos = cut
    # Each match starts at a blank line and holds no other: with as many matches as
    # blocks, and one `-->` in each, they are the blocks.
    return UsualCues(starts, ends, texts) if len(texts) == blocks else None


#: How much of a piece `usual_cues` reads at a time, in characters.
_USUAL_BATCH = 128 * 1024


#: A block of the usual shape (see `BlockReader.feed`), after its blank line: both
#: times with two-digit hours, or both with three (past 99 hours: long live streams).
#: Any character stands for a digit: `HM` and `SS` refuse what is not a time.
_USUAL_CUE = re.compile(
    r"\n\n(..(?P<h>.)?:..:)(......) --> ((?(h)...|..):..:)(......)"
    r"(?:[ \t][^\n]*)?\n([^\n]*(?:\n[^\n]+)*+)(?=\n\n|\Z)"
)


def joined_lines(
    raw: list[tuple[float, float, list[str]]],
) -> Iterator[tuple[float, float, str]]:
    return ((s, e, lines[0] if len(lines) == 1 else "\n".join(lines)) for s, e, lines in raw)
