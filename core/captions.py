"""Caption files (WebVTT, SRT, TTML/DFXP) into clean cues: leniently, losing nothing.

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
"""

from __future__ import annotations

import codecs
import gc
import html
import operator
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from itertools import islice
from typing import TYPE_CHECKING, Any, NamedTuple
from xml.etree.ElementTree import Element

from . import errors

if TYPE_CHECKING:
    from .caption_worker import Worker

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
    encoding = text_encoding(encoding) if encoding else ""
    data, encoding = _after_bom(data, encoding)
    if not data.strip(b" \t\r\n\x00"):
        raise EmptyFile("empty file: no captions in it")
    if forced or encoding:
        try:
            text = data.decode(encoding, "replace")
        except UnicodeError as e:  # a codec that refuses even with "replace" (idna)
            raise errors.BadInput(f"cannot read the file as {encoding}: {e}") from None
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


def _after_bom(data: bytes, encoding: str) -> tuple[bytes, str]:
    """`data` without its byte order mark, and the encoding to read the rest in: the
    one given, else the BOM's. `utf-16` and `utf-32` (which want a BOM in front of what
    they read) become the BOM's byte order, little-endian without one."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            data = data[len(bom) :]
            if not encoding or name.startswith(encoding + "-"):
                encoding = name
            break
    if encoding in ("utf-16", "utf-32"):
        encoding += "-le"
    return data, encoding


def text_encoding(name: str) -> str:
    """The codec name of a text encoding, else `BadInput`: an unknown name, or a codec
    that does not turn bytes into text (hex, base64, zlib, rot13)."""
    try:
        info = codecs.lookup(name)
    except LookupError:
        raise errors.BadInput(f"unknown encoding: {name}") from None
    if not getattr(info, "_is_text_encoding", True):
        raise errors.BadInput(f"not a text encoding: {name}")
    return info.name


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


#: How far into a document its first cue timing is looked for, in characters: a real
#: file has one in its first lines. Text without one this far is not captions (it used
#: to be read up to 64 MiB and searched again at each piece: 75 s for 200 MB of junk).
DETECT_CHARS = 1 << 20


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
    m = _TIMING.search(text, 0, DETECT_CHARS)
    if m is None and _SBV_TIMING.search(text, 0, DETECT_CHARS):
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
    return parse_decoded(text, used, rolling=rolling)


def parse_decoded(text: str, used: str, *, rolling: bool | None = None) -> Captions:
    """`parse` of a document already decoded (in `used`), line endings LF."""
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


#: How much text (in characters) is parsed at a time, cut where a blank line starts:
#: memory follows this, not the size of the file.
CHUNK_CHARS = 4 << 20
#: Formats parsed as a whole document (XML, JSON, SBV): how large one may be, in bytes.
MAX_DOCUMENT_BYTES = 64 << 20
#: The longest run of WebVTT/SRT text without a blank line (real cues: a few lines).
MAX_BLOCK_CHARS = 64 << 20
#: The longest line of WebVTT/SRT text, in characters (a whole talk in one cue: 200 KB).
#: A cue's text is cleaned and cut into words whole, at some 25 bytes of memory a
#: character: a longer line is `too_large`, never gigabytes.
MAX_LINE_CHARS = 4 << 20


#: A WebVTT file of word timings larger than this (in bytes: its size, or what was read
#: of a stream) is read a piece ahead by a second process (`caption_worker`); smaller
#: ones never start it.
PARALLEL_BYTES = 16 << 20


class Reencode(Exception):
    """Text read as UTF-8 up to here is not UTF-8 after all: read it again in `encoding`."""

    def __init__(self, encoding: str) -> None:
        super().__init__(encoding)
        self.encoding = encoding


class TooLong(errors.TooLarge):
    """More bytes than allowed (the caller turns it into its own `too_large`)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"more than {limit} bytes")
        self.limit = limit


class CueReader:
    """The cues of a caption document read from `read` (a binary stream's `read`), a
    list per piece of text, never the whole document at once for WebVTT and SRT.

    Decoding is decided on the first bytes (as `decode` decides it on all of them; a
    file that stops being UTF-8 later raises `Reencode`). After the last piece,
    `stream.used != stream.decided()` means the file decides otherwise than its first
    piece did: parse it again with `assume=stream.decided()`."""

    def __init__(
        self,
        read: Any,
        *,
        rolling: bool | None = None,
        encoding: str | None = None,
        assume: Decisions | None = None,
        chunk: int | None = None,
        limit: int | None = None,
        document_limit: int | None = None,
        parallel: int | None = None,
        size: int | None = None,
    ) -> None:
        self.read = read
        #: A file of more bytes than this (`size`, when known, else as read so far) is
        #: read with a second process (see `_feed`).
        self.parallel = PARALLEL_BYTES if parallel is None else parallel
        self.expected = size or 0
        self._worker: Worker | None = None
        self._pending: str | None = None  # the piece the worker holds
        self._worker_lost = False
        self.rolling = rolling
        self.forced = encoding
        self.assume = assume
        self.chunk = max(16, chunk or CHUNK_CHARS)
        self.limit = limit
        self.document_limit = MAX_DOCUMENT_BYTES if document_limit is None else document_limit
        self.size = 0  # bytes read
        self.format = ""
        self.encoding = ""
        self.stream: CueStream | None = None
        self.whole: Captions | None = None
        self._fallback: bytes = b""
        self._eof = False
        self._strict = False
        self._decoder: Any = None
        self._cr = ""

    def _bytes(self, n: int) -> bytes:
        parts = []
        got = 0
        while got < n:
            data = self.read(n - got)
            if not data:
                self._eof = True
                break
            parts.append(data)
            got += len(data)
        self.size += got
        if self.limit is not None and self.size > self.limit:
            raise TooLong(self.limit)
        return b"".join(parts)

    def _text(self, data: bytes) -> str:
        try:
            text: str = self._decoder.decode(data, self._eof)
        except UnicodeDecodeError:
            raise Reencode(_fallback_encoding(self._fallback)) from None
        except UnicodeError as e:  # a codec that refuses even with "replace" (idna)
            raise errors.BadInput(f"cannot read the file as {self.encoding}: {e}") from None
        if self._cr:
            text, self._cr = self._cr + text, ""
        if "\r" in text:
            if text[-1] == "\r" and not self._eof:
                text, self._cr = text[:-1], "\r"
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        return text

    def _more(self) -> str:
        return self._text(self._bytes(self.chunk))

    def _start(self) -> str:
        encoding = self.forced or ""
        if encoding:
            encoding = text_encoding(encoding)
        data = self._bytes(max(self.chunk, _DETECT_BYTES))
        data, encoding = _after_bom(data, encoding)
        if not data.strip(b" \t\r\n\x00"):
            if self._eof:
                raise EmptyFile("empty file: no captions in it")
            if b"\x00" in data:
                raise NotCaptions("binary data, not a caption file")
        if not encoding:
            self._fallback = data[:_DETECT_BYTES]
            try:
                codecs.getincrementaldecoder("utf-8")("strict").decode(data, self._eof)
                encoding, self._strict = "utf-8", True
            except UnicodeDecodeError:
                encoding = _fallback_encoding(self._fallback)
        self.encoding = encoding
        self._decoder = codecs.getincrementaldecoder(encoding)(
            "strict" if self._strict else "replace"
        )
        text = self._text(data)
        _refuse_binary(text)
        return text.lstrip("\ufeff")

    def __iter__(self) -> Iterator[list[Cue]]:
        with gc_paused():
            try:
                yield from self._cues()
            finally:
                self._stop_worker()

    def _feed(self, stream: CueStream, piece: str) -> Iterator[list[Cue]]:
        """`stream.feed(piece)`; on a large file of word timings, with the timings taken
        off by a second process one piece ahead (see `caption_worker`)."""
        used = stream.used
        if (
            self._worker is None
            and not self._worker_lost
            and max(self.size, self.expected) > self.parallel
            and used is not None
            and used.inline
            and hasattr(os, "fork")
        ):
            from .caption_worker import Worker

            try:
                self._worker = Worker()
            except OSError:  # no process to be had: all of it here, as for small files
                self._worker_lost = True
        prepared = self._receive() if self._pending is not None else None
        worker = self._worker
        if worker is not None:
            try:
                worker.send(piece)
            except OSError:  # the worker has gone: its work is done here from now on
                self._stop_worker(lost=True)
        if self._worker is None:
            yield from self._flush(stream, prepared)
            yield stream.feed(piece)
            return
        pending, self._pending = self._pending, piece
        if pending is not None:
            yield stream.feed(pending, prepared=prepared)

    def _receive(self) -> Prepared | None:
        """The worker's result for the piece it holds; None when it has gone."""
        if self._worker is None:
            return None
        try:
            return self._worker.recv()
        except (EOFError, OSError):
            self._stop_worker(lost=True)
            return None

    def _flush(self, stream: CueStream, prepared: Prepared | None = None) -> Iterator[list[Cue]]:
        """The piece the worker holds, fed (before any piece after it)."""
        pending, self._pending = self._pending, None
        if pending is None:
            return
        if prepared is None:
            prepared = self._receive()
        yield stream.feed(pending, prepared=prepared)

    def _stop_worker(self, lost: bool = False) -> None:
        self._worker_lost = self._worker_lost or lost
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.close()

    def _cues(self) -> Iterator[list[Cue]]:
        buf = self._start()
        while not self._eof and not _detectable(buf):
            if self.size > self.document_limit:
                raise TooLong(self.document_limit)
            buf += self._more()
        kind = detect(buf)
        self.format = kind
        if kind not in ("vtt", "srt"):  # a whole document (XML, JSON, SBV)
            parts = [buf]
            while True:
                if self.size > self.document_limit:
                    raise TooLong(self.document_limit)
                if self._eof:
                    break
                parts.append(self._more())
            caps = parse_decoded("".join(parts), self.encoding, rolling=self.rolling)
            del parts, buf
            self.whole = caps
            self.format = caps.format
            yield caps.cues
            return
        stream = self.stream = CueStream(kind, self.rolling, self.assume)
        if kind == "vtt":
            buf = self._past_header(buf, stream)
        chunk = self.chunk
        while True:
            if not self._eof and len(buf) < chunk:
                buf += self._more()
                continue
            if self._eof and len(buf) <= chunk:
                yield from self._flush(stream)
                yield stream.feed(buf, final=True)
                return
            end = len(buf.rstrip())  # a piece never holds the last text read so far
            cut = buf.rfind("\n\n", 0, min(chunk, end) if end else len(buf))
            if cut < 0:
                cut = buf.find("\n\n", 0, end)
            if cut > 0 and buf[cut - 1] == "\n":
                # Inside a run of line feeds, `split` pairs them from where the run starts.
                cut -= (cut - len(buf[:cut].rstrip("\n"))) % 2
            if cut < 0:  # one block longer than a piece: read on
                # The line being read (at most two reads long when it is not the last
                # by the next look) may not grow past MAX_LINE_CHARS.
                if len(buf) - buf.rfind("\n") > MAX_LINE_CHARS:
                    mib = MAX_LINE_CHARS >> 20
                    raise errors.TooLarge(f"a line of more than {mib} Mi characters: not captions")
                if self._eof:
                    yield from self._flush(stream)
                    yield stream.feed(buf, final=True)
                    return
                if len(buf) > MAX_BLOCK_CHARS:
                    mib = MAX_BLOCK_CHARS >> 20
                    raise errors.TooLarge(f"more than {mib} MiB of text without a blank line")
                buf += self._more()
                continue
            piece, buf = buf[:cut], buf[cut + 2 :]
            yield from self._feed(stream, piece)

    def _past_header(self, buf: str, stream: CueStream) -> str:
        """The text after the WebVTT header, read on as far as needed. A header longer
        than MAX_HEADER_CHARS (a WEBVTT line with megabytes after it) is not kept: it is
        read past a piece at a time, up to the next blank line, in bounded memory."""
        while vtt_body(buf, self._eof) < 0:
            if len(buf) > MAX_HEADER_CHARS:
                break
            buf += self._more()
        else:
            return stream.header(buf)
        # No blank line and no cue timing in the first MAX_HEADER_CHARS: skip on, keeping
        # only the last character read (a "\n" that may start the blank line).
        start = buf.find("WEBVTT")
        while True:
            blank = buf.find("\n\n", start)
            if blank >= 0:
                return buf[blank + 2 :]
            if self._eof:
                return ""
            buf, start = buf[-1:] + self._more(), 0

    def captions(self, cues: list[Cue]) -> Captions:
        """What was read, as `parse` would give it, with `cues` as its cues."""
        if self.whole is not None:
            return replace(self.whole, cues=cues, encoding=self.encoding)
        assert self.stream is not None
        return replace(self.stream.captions(cues), encoding=self.encoding)


#: The longest WebVTT header kept in memory, in characters (real ones: the WEBVTT line
#: and a few `Kind:`, `Language:`, `X-TIMESTAMP-MAP` lines). A longer one is skipped a
#: piece at a time up to the next blank line: what it says is never used.
MAX_HEADER_CHARS = 1 << 20


def vtt_body(text: str, eof: bool = True) -> int:
    """Where the cues of WebVTT `text` start: after the WEBVTT line and the header lines
    under it, which end at a blank line or before a line holding `-->` (a cue timing, as
    the WebVTT parser reads it: a header need not end with a blank line). -1 when `text`
    does not tell yet (not `eof`: more of it follows)."""
    nl = text.find("\n", text.find("WEBVTT"))
    if nl < 0:  # all of it is the WEBVTT line
        return len(text) if eof else -1
    blank = text.find("\n\n", nl)
    arrow = text.find("-->", nl, blank if blank >= 0 else len(text))
    if arrow >= 0:
        return text.rfind("\n", 0, arrow) + 1
    if blank >= 0:
        return blank + 2
    return len(text) if eof else -1


def _detectable(text: str) -> bool:
    """Is there enough of a document's start in `text` for `detect` to tell its format
    as it would from all of it?"""
    if len(text) < 4096:
        return False
    if len(text) >= DETECT_CHARS:  # all `detect` looks at
        return True
    head = text[:4096].lstrip()
    if head.startswith(("WEBVTT", "<")):
        return True
    if head.startswith("{") and re.search(r'"(?:events|wireMagic)"', head):
        return True
    return _TIMING.search(text) is not None


def _fallback_encoding(data: bytes) -> str:
    """The encoding of bytes that are not UTF-8 (see `decode`): UTF-16 without a BOM,
    else what the detector finds."""
    head = data[:4096]
    if head.count(0) > len(head) // 4 and (head[1::2].count(0) > len(head) // 3):
        return "utf-16-le"
    if head.count(0) > len(head) // 4 and (head[0::2].count(0) > len(head) // 3):
        return "utf-16-be"
    return detect_encoding(data)


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


#: The latest time a cue may have, in seconds (31,700 years): past it a number is not a
#: time, and times stay finite through every sum and `* 1000` made of them.
MAX_SECONDS = 1e12

#: Digits read of a time's fraction (nanoseconds); the rest changes nothing, and
#: `int()` of 4,300 digits or more raises.
_FRACTION_DIGITS = 9


def _checked(seconds: float) -> float:
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
    frac = frac[:_FRACTION_DIGITS]
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


_HM = _HoursMinutes()
_SS = _Seconds()
_ENDS = frozenset(("", " ", "\t"))
_ENDS_LF = frozenset((" ", "\t", "\n"))


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
    stream = CueStream(kind, rolling)
    if kind == "vtt":
        text = stream.header(text)
    cues = stream.feed(text, final=True)
    return stream.captions(cues)


@dataclass(frozen=True)
class Decisions:
    """What `CueStream` decides from the whole file: whether YouTube's word timings are
    in it, whether it rolls, whether cue identifiers are speakers, which `NAME:` labels
    are speakers. A stream fed in several pieces decides from the first and checks at
    the end (`CueStream.decided`); the caller parses again when they differ."""

    inline: bool
    rolling: bool
    named: bool
    labels: frozenset[str]


_Cleaned = tuple[float, float, _Segs | None, list[str], str | None]
#: What may follow a line repeated alone in a cue (YouTube pads snapshot cues with " ").
_PADDING = frozenset(("", "\n", "\n "))


def _clean_cue(joined: str, last: str | None, plain: bool) -> tuple[_Segs | None, list[str], bool]:
    """A cue's text cleaned: its voices (or None), its lines, and whether the text had no
    markup (so the next cue's snapshot test can compare strings)."""
    if plain and joined.startswith(last) and joined[len(last) :] in _PADDING:  # type: ignore[arg-type]
        # The last line again (YouTube's 10 ms snapshot cues: half the cues of automatic
        # captions): the plain path below would give just that.
        return None, [last], True  # type: ignore[list-item]
    if "<" not in joined and "&" not in joined and "{" not in joined and joined.isascii():
        return (
            None,
            [
                " ".join(x.split()) if len(x) < _LONG else _spaced(x)
                for x in joined.split("\n")
                if x and not x.isspace()
            ],
            True,
        )
    if "<v" in joined or "<V" in joined:
        segs = _voices(joined)
        return segs, [line for _, seg in segs for line in seg], False
    return None, clean_text(joined), False


def _repeated(prev: list[str], flat: list[str]) -> tuple[int, str | None]:
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


def _add_cue(
    append: Callable[[Cue], None],
    start: float,
    end: float,
    segs: _Segs | None,
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


class CueStream:
    """WebVTT or SRT text fed in pieces cut at blank lines (`feed`), cleaned cues out.

    Memory stays with the piece: cues are cleaned, de-duplicated and labelled as they
    come. What needs the whole file (see `Decisions`) is decided from the first piece
    (all of a file of one piece, so exact there) and counted over the rest."""

    def __init__(
        self, kind: str, rolling: bool | None = None, assume: Decisions | None = None
    ) -> None:
        self.kind = kind
        self.forced = rolling
        self.used = assume
        self.reader = _BlockReader()
        self.held: list[tuple[float, float, list[str]]] = []
        self.held_id: str | None = None
        self.inline_seen = False
        self.candidates = self.repeats = 0
        self.last: str | None = None
        self.after_text = False  # the last cleaned cue had text (a blank one may follow)
        self.last_plain = False
        self.ids_total = self.ids_named = 0
        self.ids_seen: set[str] | None = set()  # None once a name came back
        self.found: dict[str, int] = {}
        self.labelled = self.count = 0
        self.prev: list[str] = []
        self.prev_end = 0.0
        self.removed = 0
        self.speaker: str | None = None

    def header(self, text: str) -> str:
        """`text` without its WebVTT header (the WEBVTT line and the lines under it, up
        to a blank line or a cue timing: see `vtt_body`)."""
        end = vtt_body(text, eof=True)
        self.inline_seen = self.inline_seen or "<c>" in text[:end]
        return text[end:]

    def feed(self, text: str, final: bool = False, prepared: Prepared | None = None) -> list[Cue]:
        """The cues of the next piece of text (whole blocks: cut where a blank line
        starts). The last cue of a piece waits for the next one: text after a blank line
        may still belong to it. `prepared`: what `prepare` made of `text` (in another
        process) for a stream that has decided that word timings are in it."""
        fast = None
        if prepared is not None:
            assert self.used is not None and self.used.inline
            self.inline_seen = self.inline_seen or prepared.has_c
            if prepared.text is not None:
                text = prepared.text
            elif final or self.reader.depth:  # not as the worker assumed: read it here
                text = _WORD_TIMINGS.sub("", text)
            else:
                fast = prepared.cues
        else:
            if "<c>" in text:
                self.inline_seen = True
            inline = self.used.inline if self.used is not None else self.inline_seen
            if inline:  # YouTube's word timings, the bulk of the file: off in one pass
                text = _WORD_TIMINGS.sub("", text)
            if self.used is not None and not final and not self.reader.depth:
                fast = _usual_cues(text)
        ids: dict[int, str] = {}
        raw = self.held
        if self.held_id is not None:
            ids[0] = self.held_id
        used = self.used
        if fast:
            # Every block a cue of the usual shape: the last one waits, as `_BlockReader`
            # would keep it, and the reader goes on from it.
            self.reader.first = False
            starts, ends, texts = fast
            n = len(texts) - 1
            self.held, self.held_id = [(starts[n], ends[n], [texts[n]])], None
            self.reader.current = self.held[0][2]
            assert used is not None
            out: list[Cue] = []
            self._clean_dedupe(_joined(raw), ids, used, out)
            self._clean_dedupe(islice(zip(starts, ends, texts), n), {}, used, out)
            del fast, starts, ends, texts
        else:
            self.reader.feed(text, self.kind == "vtt", raw, ids, final)
            del text
            if final or not raw:
                self.held, self.held_id = [], None
            else:
                self.held, self.held_id = [raw.pop()], ids.pop(len(raw), None)
            if used is not None:
                out = []
                self._clean_dedupe(_joined(raw), ids, used, out)
            else:  # the first piece: decide from it
                cleaned = self._clean(raw, ids)
                used = Decisions(self.inline_seen, self._rolling(), self._named(), frozenset())
                out = self._dedupe(cleaned, used)
                del cleaned
            del raw
        self._count_labels(out)
        if self.used is None:
            used = replace(used, labels=self._labels())
            self.used = used
        return self._apply_labels(out, used.labels)

    def decided(self) -> Decisions:
        """What the whole file decides (compare with `used` after the last piece)."""
        return Decisions(self.inline_seen, self._rolling(), self._named(), self._labels())

    def _rolling(self) -> bool:
        """Rolling captions: forced, or most cues so far open with the last line of the
        cue before (with word timings, a fifth is enough)."""
        if self.forced is not None:
            return self.forced
        share, minimum = (0.2, 1) if self.inline_seen else (0.6, 20)
        return self.candidates >= minimum and self.repeats >= share * self.candidates

    def captions(self, cues: list[Cue]) -> Captions:
        rolling = self.used.rolling if self.used is not None else False
        r = self.reader
        return Captions(
            self.kind, cues, r.skipped, self.removed, rolling, segment_headers=r.headers
        )

    def _clean(
        self, raw: list[tuple[float, float, list[str]]], ids: dict[int, str]
    ) -> list[_Cleaned]:
        cleaned: list[_Cleaned] = []
        append = cleaned.append
        last = self.last
        plain = self.last_plain  # `last` came from text without markup (see below)
        candidates = repeats = texts = 0
        after_text = self.after_text
        for number, (start, end, lines) in enumerate(raw):
            joined = lines[0] if len(lines) == 1 else "\n".join(lines)
            segs, flat, is_plain = _clean_cue(joined, last, plain)
            if flat:
                if last is not None:
                    candidates += 1
                    repeats += flat[0] == last or _repeats(last, flat)
                last = flat[-1]
                plain = is_plain
                after_text = True
                texts += 1
                if ids:
                    ident = ids.get(number)
                    append((start, end, segs, flat, ident))
                    if ident:
                        self._count_id(ident)
                else:
                    append((start, end, segs, flat, None))
            elif after_text:
                append((start, end, None, [], None))  # a blank cue: a pause
                after_text = False
        self.last, self.after_text, self.last_plain = last, after_text, plain
        self.candidates += candidates
        self.repeats += repeats
        self.ids_total += texts
        return cleaned

    def _clean_dedupe(
        self,
        raw: Iterable[tuple[float, float, str]],
        ids: dict[int, str],
        used: Decisions,
        out: list[Cue],
    ) -> None:
        """`_dedupe(_clean(raw, ids), used)` in one pass, appended to `out`: once the
        decisions are made (every piece after the first), nothing waits between them.
        Each cue's text is its lines joined."""
        rolling, named = used.rolling, used.named
        append = out.append
        last = self.last
        plain = self.last_plain
        after_text = self.after_text
        prev, prev_end = self.prev, self.prev_end
        candidates = repeats = texts = removed = 0
        rolled = 0  # cues taken by the shortcuts: each a candidate, a repeat, a removal
        new_cue = tuple.__new__  # `Cue(...)` without the Python frame of its __new__
        for number, (start, end, joined) in enumerate(raw):
            if (
                plain
                and rolling
                and joined.startswith(last)  # type: ignore[arg-type]
                and prev
                and prev[-1] == last
                and start <= prev_end + 1.0
                and not (ids and number in ids)
            ):
                # The two cues rolling captions are made of, in a few steps (as the
                # general ones below would take them): a snapshot of the last line, and
                # the last line with a new one under it.
                tail = joined[len(last) :]
                if tail in _PADDING:
                    rolled += 1
                    after_text = True
                    prev, prev_end = [last], end
                    continue
                if tail[:1] == "\n" and len(prev) == 1:
                    new = tail[1:]
                    if (
                        "\n" not in new
                        and "<" not in new
                        and "&" not in new
                        and "{" not in new
                        and new.isascii()
                    ):
                        line = " ".join(new.split()) if len(new) < _LONG else _spaced(new)
                        if line:
                            rolled += 1
                            after_text = True
                            prev, prev_end = [last, line], end
                            last = line
                            append(new_cue(Cue, (start, end, line, None, None)))
                            continue
            segs, flat, is_plain = _clean_cue(joined, last, plain)
            if not flat:
                if after_text:  # a blank cue: a pause, after which a line said again stays
                    prev = []
                    after_text = False
                continue
            if last is not None:
                candidates += 1
                repeats += flat[0] == last or _repeats(last, flat)
            last = flat[-1]
            plain = is_plain
            after_text = True
            texts += 1
            ident = ids.get(number) if ids else None
            if ident:
                self._count_id(ident)
            k, grown = 0, None
            if rolling:
                if prev and start <= prev_end + 1.0:
                    k, grown = _repeated(prev, flat)
                    removed += k
                prev, prev_end = flat, end
            _add_cue(append, start, end, segs, flat, k, grown, ident if named else None)
        self.last, self.after_text, self.last_plain = last, after_text, plain
        self.candidates += candidates + rolled
        self.repeats += repeats + rolled
        self.ids_total += texts + rolled
        self.prev, self.prev_end = prev, prev_end
        self.removed += removed + rolled

    def _count_id(self, ident: str) -> None:
        if _is_id_name(ident):
            self.ids_named += 1
            if self.ids_seen is not None:
                if ident in self.ids_seen:
                    self.ids_seen = None
                else:
                    self.ids_seen.add(ident)

    def _named(self) -> bool:
        n = self.ids_named
        return n >= 2 and n >= self.ids_total / 2 and self.ids_seen is None

    def _dedupe(self, cleaned: list[_Cleaned], used: Decisions) -> list[Cue]:
        rolling, named = used.rolling, used.named
        out: list[Cue] = []
        removed = 0
        prev, prev_end = self.prev, self.prev_end
        for start, end, segs, flat, ident in cleaned:
            if not flat:
                prev = []  # after a pause, a line said again is said again
                continue
            k, grown = 0, None
            if rolling:
                if prev and start <= prev_end + 1.0:
                    k, grown = _repeated(prev, flat)
                    removed += k
                prev, prev_end = flat, end
            _add_cue(out.append, start, end, segs, flat, k, grown, ident if named else None)
        self.prev, self.prev_end = prev, prev_end
        self.removed += removed
        return out

    def _count_labels(self, cues: list[Cue]) -> None:
        self.count += len(cues)
        found = self.found
        for cue in cues:
            if cue.speaker is None and ":" in cue.text:
                m = _SPEAKER_LABEL.match(cue.text)
                if m and _is_name(m.group(1)):
                    self.labelled += 1
                    found[m.group(1)] = found.get(m.group(1), 0) + 1

    def _labels(self) -> frozenset[str]:
        return _label_names(self.found, self.labelled, self.count)

    def _apply_labels(self, cues: list[Cue], names: frozenset[str]) -> list[Cue]:
        if not names:
            return cues
        out, self.speaker = _apply_labels(cues, names, self.speaker)
        return out


class _BlockReader:
    """`_blocks` over a text fed in pieces: what carries from one piece to the next."""

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
        """The cues of `text` appended to `cues` (see `_blocks`)."""
        blocks = text.split("\n\n")
        last = len(blocks) - 1
        if final:
            while last >= 0 and not blocks[last].strip():
                last -= 1
        else:
            last = -1  # more text follows: no block here is the file's last
        first, self.first = self.first, False
        current = self.current
        depth = self.depth
        skipped = headers = 0
        hm, ss, ends, ends_lf = _HM, _SS, _ENDS, _ENDS_LF
        append = cues.append
        for number, block in enumerate(blocks):
            if block[12:17] == " --> " and block[29:30] in ends_lf and not depth and number != last:
                # The usual cue (`00:00:01.000 --> 00:00:02.000 ...`, then its text), as
                # the general path below would read it, in a few steps.
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
            if depth > 0:
                depth += block.count("{") - block.count("}")
                continue
            arrow = block.find("-->")
            if arrow < 0:
                if not block or block.isspace():
                    continue
                block = block.lstrip("\n")
                lines = block.split("\n")
                if lines[0].startswith("WEBVTT") and (number or not first):
                    headers += 1  # a joined segment's header
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
                arrow = block.find("-->")
            # The usual shape, without splitting lines: [identifier] timing, then the text.
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
                current, n = _scan(block.split("\n"), current, cues, number == last)
                skipped += n
                continue
            times = None
            if timing[12:17] == " --> " and timing[29:30] in ends:
                try:  # _timing's fast path, inlined: this runs once per cue
                    times = hm[timing[:6]] + ss[timing[6:12]], hm[timing[17:23]] + ss[timing[23:29]]
                except KeyError:
                    pass
            elif timing[13:18] == " --> " and timing[31:32] in ends:
                try:  # the same past 99 hours (long live streams)
                    times = hm[timing[:7]] + ss[timing[7:13]], hm[timing[18:25]] + ss[timing[25:31]]
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
            append((times[0], times[1], current))
        self.current, self.depth = current, depth
        self.skipped += skipped
        self.headers += headers


class _UsualCues(NamedTuple):
    """The cues of a piece (see `_usual_cues`): their starts, ends and texts."""

    starts: list[float]
    ends: list[float]
    texts: Sequence[str]


def _usual_cues(text: str) -> _UsualCues | None:
    """The cues of a piece made only of cues of the usual shape (timing line, then text
    without `-->`; automatic captions are), each with its text, read by one regex call as
    `_BlockReader.feed` reads them block by block; None when any block differs."""
    if (text[12:17] != " --> " and text[13:18] != " --> ") or "\n\n\n" in text:
        return None
    text = "\n\n" + text
    blocks = text.count("\n\n")
    if text.count("-->") != blocks:
        return None
    starts: list[float] = []
    ends: list[float] = []
    texts: list[str] = []
    hm, ss, add = _HM.__getitem__, _SS.__getitem__, operator.add
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
    return _UsualCues(starts, ends, texts) if len(texts) == blocks else None


#: How much of a piece `_usual_cues` reads at a time, in characters.
_USUAL_BATCH = 128 * 1024


def _joined(
    raw: list[tuple[float, float, list[str]]],
) -> Iterator[tuple[float, float, str]]:
    return ((s, e, lines[0] if len(lines) == 1 else "\n".join(lines)) for s, e, lines in raw)


class Prepared(NamedTuple):
    """A piece of WebVTT as `prepare` leaves it: whether it held `<c>`; its cues when
    every block is one of the usual shape, else its text without word timings."""

    has_c: bool
    text: str | None
    cues: _UsualCues | None


def prepare(text: str) -> Prepared:
    """The part of `CueStream.feed` that needs nothing from the pieces before (run in
    `caption_worker` for a stream that has decided that word timings are in it)."""
    has_c = "<c>" in text
    text = _WORD_TIMINGS.sub("", text)
    cues = _usual_cues(text)
    return Prepared(has_c, None if cues else text, cues)


#: A block of the usual shape (see `_BlockReader.feed`), after its blank line: both
#: times with two-digit hours, or both with three (past 99 hours: long live streams).
#: Any character stands for a digit: `_HM` and `_SS` refuse what is not a time.
_USUAL_CUE = re.compile(
    r"\n\n(..(?P<h>.)?:..:)(......) --> ((?(h)...|..):..:)(......)"
    r"(?:[ \t][^\n]*)?\n([^\n]*(?:\n[^\n]+)*+)(?=\n\n|\Z)"
)


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
        text = text[vtt_body(text) :]
    reader = _BlockReader()
    cues: list[tuple[float, float, list[str]]] = []
    reader.feed(text, vtt, cues, ids, final=True)
    return cues, reader.skipped, reader.headers


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
#: `<c>`, `</c>` and `<00:00:01.234>`, and where they follow each other as YouTube writes
#: them (`</c><00:00:01.234><c>`), all of them in one match: the same text a fifth sooner.
_WORD_TIMINGS = re.compile(
    r"<(?:/c>(?:<\d\d+:\d\d:\d\d\.\d\d\d>(?:<c>)?)?|c>|\d\d+:\d\d:\d\d\.\d\d\d>(?:<c>)?)"
)
_INLINE = re.compile(r"<\d\d+:\d\d:\d\d\.\d\d\d>")
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


#: A line this long (in characters) is single-spaced a stretch at a time: a cue of
#: megabytes on one line never becomes a string per word at once (90 MB for 4 MB).
_LONG = 1 << 16
_SPACE = re.compile(r"\s")


def _spaced(line: str) -> str:
    """`" ".join(line.split())`: single-spaced and stripped, in memory the size of `line`
    (cut into stretches at spaces, so that no word is cut)."""
    if len(line) < _LONG:
        return " ".join(line.split())
    out = []
    start, size = 0, len(line)
    while start < size:
        m = _SPACE.search(line, min(start + _LONG, size))
        end = m.start() if m else size
        if piece := " ".join(line[start:end].split()):
            out.append(piece)
        start = end
    return " ".join(out)


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
    return [
        " ".join(line.split()) if len(line) < _LONG else _spaced(line)
        for line in text.split("\n")
        if line and not line.isspace()
    ]


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


def _is_id_name(ident: str) -> bool:
    return re.fullmatch(_NAME, ident) is not None and ident.split()[0][0].isupper()


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
    names = _label_names(found, labelled, len(cues))
    return _apply_labels(cues, names, None)[0] if names else cues


def _label_names(found: dict[str, int], labelled: int, total: int) -> frozenset[str]:
    """Of the `NAME:` labels found (and how often), those that are speakers."""
    if not found:
        return frozenset()
    everyone = labelled >= 2 and labelled >= total / 2
    return frozenset(n for n, count in found.items() if everyone or (count >= 2 and n.isupper()))


def _apply_labels(
    cues: list[Cue], names: frozenset[str], speaker: str | None
) -> tuple[list[Cue], str | None]:
    """Cues with their `NAME:` labels made speakers; the speaker at the end."""
    out: list[Cue] = []
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
    return out, speaker


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
            start = _checked(_ms(event.get("tStartMs")))
            end = _checked(start + _ms(event.get("dDurationMs")))
            timed = [(_checked(start + _ms(seg.get("tOffsetMs"))), _utf8(seg)) for seg in segs]
        except (TypeError, ValueError, AttributeError, OverflowError):
            skipped += 1  # a time or a text that is something else: the event is unreadable
            continue
        cue = _timed_cue(start, end, timed)
        if cue is not None:
            cues.append(cue)
    return Captions("json3", _label_speakers(cues), skipped)


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
                start = _checked(float(el.get("start") or 0))
                end = _checked(start + float(el.get("dur") or 0))
            else:
                start = _checked(float(el.get("t") or 0) / 1000)
                end = _checked(start + float(el.get("d") or 0) / 1000)
        except ValueError:  # also NaN, inf, 1e400: not a time
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
            at = _checked(start + float(child.get("t") or "x") / 1000)
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
    return [
        " ".join(line.split()) if len(line) < _LONG else _spaced(line)
        for line in text.split("\n")
        if line and not line.isspace()
    ]


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
            return _checked(self._seconds(value.strip()))
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
            fraction = m.group(4)[:_FRACTION_DIGITS]
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
    lines = (_spaced(chunk) for chunk in "".join(parts).split(_BR))
    return "\n".join(line for line in lines if line)
