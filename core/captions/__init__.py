"""Caption files (WebVTT, SRT, SBV, TTML/DFXP, YouTube's json3 and srv1-3) into clean
cues: leniently, losing nothing.

webvtt-py and pysrt silently drop blocks they cannot parse (a timing without
milliseconds, a missing blank line, a blank line inside a cue), keep one voice per cue,
leave entities encoded, delete any text between `<` and `>` and read `,08` as 8 ms.
So the WebVTT/SRT reader here is our own: one linear pass over the lines, a regex only
on timing lines, and every block it cannot use is counted in `skipped_blocks`.
TTML goes through the standard XML parser hardened by defusedxml (no entity expansion).

Whatever the bytes, reading them gives cues or one of xdl's errors (`errors.XdlError`,
a stable code), never another exception: a time that is not a finite number within
MAX_SECONDS (5,000 digits, 1e400, NaN) makes its block unreadable (`skipped_blocks`),
JSON nested past the parser's depth is `parse_error`. Memory follows the piece being
read, not the file, for WebVTT and SRT: a WebVTT header longer than MAX_HEADER_CHARS
is read past, never kept.

One module per job: `decode` (bytes to text), `formats` (which format, and the readers
of whole documents), `reader` (a stream read a piece at a time), `blocks` (the WebVTT
and SRT blocks), `vtt` (WebVTT's header and word timings), `stream` (cues cleaned,
de-duplicated and labelled as they come), `cues` (the model and the cleaning),
`rolling` (YouTube's rolling repeats), `speakers` (`NAME:` labels), `sbv`, `ttml`,
`youtube` (json3, srv1-3), `worker` (the second process). This module is what the rest
of xdl uses; its constants are copies (to change one, change it where it is defined).
"""

from __future__ import annotations

from .cues import (
    Captions,
    Cue,
    EmptyFile,
    NotCaptions,
    Truncated,
    UnsafeXml,
    clean_text,
    gc_paused,
)
from .cues import spaced as _spaced
from .decode import Decoder, decode, detect_encoding, text_encoding
from .formats import DETECT_CHARS, detect, parse_decoded
from .reader import (
    CHUNK_CHARS,
    MAX_BLOCK_CHARS,
    MAX_DOCUMENT_BYTES,
    MAX_LINE_CHARS,
    PARALLEL_BYTES,
    CueReader,
    TooLong,
    parse,
)
from .stream import CueStream, Decisions, parse_text
from .times import MAX_SECONDS
from .vtt import MAX_HEADER_CHARS, Prepared, prepare, vtt_body

__all__ = [
    "CHUNK_CHARS",
    "DETECT_CHARS",
    "MAX_BLOCK_CHARS",
    "MAX_DOCUMENT_BYTES",
    "MAX_HEADER_CHARS",
    "MAX_LINE_CHARS",
    "MAX_SECONDS",
    "PARALLEL_BYTES",
    "Captions",
    "Cue",
    "CueReader",
    "CueStream",
    "Decisions",
    "Decoder",
    "EmptyFile",
    "NotCaptions",
    "Prepared",
    "TooLong",
    "Truncated",
    "UnsafeXml",
    "_spaced",
    "clean_text",
    "decode",
    "detect",
    "detect_encoding",
    "gc_paused",
    "parse",
    "parse_decoded",
    "parse_text",
    "prepare",
    "text_encoding",
    "vtt_body",
]
