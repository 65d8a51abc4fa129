"""YouTube's rolling captions: each line is shown again atop the next cue (and in a
10 ms snapshot cue), and live captions type a line over several cues. What repeats the
end of the cue before is removed; nothing else ever is."""

from __future__ import annotations

from collections.abc import Callable

from .cues import Cue, Segs


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


def repeats_last(last: str, lines: list[str]) -> bool:
    """Does a cue repeat (or continue typing) the last line of the one before?"""
    return any(
        x == last or (x.startswith(last) and x[len(last) : len(last) + 1] == " ") for x in lines[:3]
    )


def repeated(prev: list[str], flat: list[str]) -> tuple[int, str | None]:
    """Rolling captions: how many of the cue's opening lines repeat the end of the cue
    before it (the only lines ever removed), and the new words of a line still being
    typed (None when no line grew)."""
    if not (flat[0] in prev or prev[-1] in flat[0]):
        return 0, None
    # The usual cases (one new line under the last one; a snapshot of it) without a
    # call; anything longer goes through _overlap.
    if prev[-1] == flat[0] and (len(flat) == 1 or len(prev) == 1):
        return 1, None
    return _overlap(prev, flat)


def add_cue(
    append: Callable[[Cue], None],
    start: float,
    end: float,
    segs: Segs | None,
    flat: list[str],
    k: int,
    grown: str | None,
    speaker: str | None,
) -> None:
    """The cue without its first `k` lines (`grown`: the new words of the last of them)."""
    if segs is not None:
        for voice, seg in _drop_lines(segs, k) if k else segs:
            append(Cue(start, end, "\n".join(seg), voice))
        return
    if grown is not None:  # a line still being typed: only its new words
        k -= 1
        flat = [*flat[:k], grown, *flat[k + 1 :]] if grown else flat[:k] + flat[k + 1 :]
    if k < len(flat):
        append(Cue(start, end, "\n".join(flat[k:] if k else flat), speaker))


def _drop_lines(segs: Segs, k: int) -> Segs:
    out: Segs = []
    for speaker, lines in segs:
        if k >= len(lines):
            k -= len(lines)
            continue
        out.append((speaker, lines[k:]))
        k = 0
    return out
