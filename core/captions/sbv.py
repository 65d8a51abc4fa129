"""YouTube Studio's SubViewer (SBV): `h:mm:ss.fff,h:mm:ss.fff` timings, `[br]`."""

from __future__ import annotations

import re
from dataclasses import replace

from .cues import Captions
from .stream import parse_text

SBV_TIMING = re.compile(
    r"^[ \t]*(\d+:\d{1,2}:\d{1,2}\.\d+),(\d+:\d{1,2}:\d{1,2}\.\d+)[ \t]*$", re.M
)


def parse_sbv(text: str, *, rolling: bool | None = None) -> Captions:
    """YouTube Studio's SubViewer (`h:mm:ss.fff,h:mm:ss.fff` timings, `[br]` line breaks),
    read as the SRT it becomes once those are rewritten."""
    text = SBV_TIMING.sub(r"\1 --> \2", text).replace("[br]", "\n")
    return replace(parse_text(text, "srt", rolling=rolling), format="sbv")
