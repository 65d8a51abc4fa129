"""Cue timings (`00:00:01.000 --> 00:00:02.000`, and every lenient variant players
read): a time is a finite number of seconds within MAX_SECONDS, else not a time."""

from __future__ import annotations

import re

TIMING = re.compile(
    r"[ \t]*((?:\d+:)?\d+:\d+(?:[.,:]\d+)?)[ \t]*-->[ \t]*((?:\d+:)?\d+:\d+(?:[.,:]\d+)?)"
)


#: The latest time a cue may have, in seconds (31,700 years): past it a number is not a
#: time, and times stay finite through every sum and `* 1000` made of them.
MAX_SECONDS = 1e12


#: Digits read of a time's fraction (nanoseconds); the rest changes nothing, and
#: `int()` of 4,300 digits or more raises.
FRACTION_DIGITS = 9


def checked(seconds: float) -> float:
    """`seconds` when it can be a cue's time, else ValueError (the block is unreadable)."""
    if not -MAX_SECONDS <= seconds <= MAX_SECONDS:  # also NaN
        raise ValueError(f"not a time: {seconds}")
    return seconds


def _seconds(stamp: str) -> float | None:
    """`h:m:s.frac`, `m:s.frac`, `h:m:s`, `,` or `.` before the fraction, any digits:
    `,08` is 80 ms (a decimal fraction), as players read it. None when it is not a
    time (a number of any length never raises)."""
    main, sep, frac = stamp.replace(",", ".").partition(".")
    parts = main.split(":")
    if len(parts) == 4 and not sep:  # 00:02:33:44, frames-like; read as hundredths
        parts, frac, sep = parts[:3], parts[3], "."
    if not 2 <= len(parts) <= 3 or not all(p.isdecimal() and len(p) <= 12 for p in parts):
        return None
    if sep and not frac.isdecimal():
        return None
    frac = frac[:FRACTION_DIGITS]
    value = 0
    for p in parts:
        value = value * 60 + int(p)
    if value > MAX_SECONDS:
        return None
    return value + (int(frac) / 10 ** len(frac) if frac else 0.0)


class _HoursMinutes(dict[str, int]):
    """`HH:MM:` -> seconds, parsed once (a 2-hour file has 120 of them)."""

    def __missing__(self, key: str) -> int:
        if len(key) not in (6, 7) or key[-4] != ":" or key[-1] != ":" or not key.isascii():
            raise KeyError(key)  # `HH:MM:`, or `HHH:MM:` past 99 hours
        if not (key[:-4] + key[-3:-1]).isdigit():
            raise KeyError(key)
        try:
            value = self[key] = int(key[:-4]) * 3600 + int(key[-3:-1]) * 60
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


HM = _HoursMinutes()


SS = _Seconds()


ENDS = frozenset(("", " ", "\t"))


ENDS_LF = frozenset((" ", "\t", "\n"))


def read_timing(line: str) -> tuple[float, float] | None:
    if line[12:17] == " --> " and line[29:30] in ENDS:
        try:  # the usual shape, 00:00:01.000 --> 00:00:02.000 (settings), without a regex
            return HM[line[:6]] + SS[line[6:12]], HM[line[17:23]] + SS[line[23:29]]
        except KeyError:
            pass
    m = TIMING.match(line)
    if m is None:
        return None
    start, end = _seconds(m.group(1)), _seconds(m.group(2))
    if start is None or end is None:
        return None
    return start, end


def cue_times(timing: str) -> tuple[float, float] | None:
    """`read_timing` of a cue's timing line, its usual shapes (two- and three-digit
    hours: long live streams) read without a regex: this runs once per cue."""
    if timing[12:17] == " --> " and timing[29:30] in ENDS:
        try:
            return HM[timing[:6]] + SS[timing[6:12]], HM[timing[17:23]] + SS[timing[23:29]]
        except KeyError:
            pass
    elif timing[13:18] == " --> " and timing[31:32] in ENDS:
        try:
            return HM[timing[:7]] + SS[timing[7:13]], HM[timing[18:25]] + SS[timing[25:31]]
        except KeyError:
            pass
    return read_timing(timing)


_PARTIAL_TIMING = re.compile(r"^[ \t]*[\d:.,]+[ \t]*(?:-{1,2}>?[ \t]*[\d:.,]*)?[ \t]*$")


def partial_timing(line: str) -> bool:
    return ":" in line and _PARTIAL_TIMING.match(line) is not None


def cut_short(line: str, times: tuple[float, float]) -> bool:
    """A last timing line with no text whose end time is shorter than its start time
    (`00:00:03.000 --> 00:0`): the download stopped there."""
    if times[1] < times[0]:
        return True
    start, _, end = line.partition("-->")
    return len(end.split()[0] if end.split() else "") < len(start.strip())
