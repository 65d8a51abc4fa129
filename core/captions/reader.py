"""A caption document read from a binary stream a piece at a time: memory follows the
piece, not the file, for WebVTT and SRT; a large file of word timings is read a piece
ahead by a second process (`worker`)."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .. import errors
from .cues import Captions, Cue, gc_paused
from .decode import DETECT_BYTES, Decoder
from .formats import detect, detectable, parse_decoded
from .stream import CueStream
from .vtt import MAX_HEADER_CHARS, Prepared, vtt_body

if TYPE_CHECKING:
    from .worker import Worker


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


class TooLong(errors.TooLarge):
    """More bytes than allowed (the caller turns it into its own `too_large`)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"more than {limit} bytes")
        self.limit = limit


class CueReader:
    """The cues of a caption document read from `read` (a binary stream's `read`), a
    list per piece of text, never the whole document at once for WebVTT and SRT.

    Read once: the encoding is decided on the first bytes (`decode.Decoder`), what the
    cleaning needs to know of the file on its first pieces (`stream.Decisions`)."""

    def __init__(
        self,
        read: Any,
        *,
        rolling: bool | None = None,
        encoding: str | None = None,
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
        self.decoder = Decoder(encoding)
        self.chunk = max(16, chunk or CHUNK_CHARS)
        self.limit = limit
        self.document_limit = MAX_DOCUMENT_BYTES if document_limit is None else document_limit
        self.size = 0  # bytes read
        self.format = ""
        self.stream: CueStream | None = None
        self.whole: Captions | None = None
        self._eof = False

    @property
    def encoding(self) -> str:
        return self.decoder.encoding

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

    def _more(self) -> str:
        data = self._bytes(self.chunk)
        return self.decoder.feed(data, self._eof)

    def _start(self) -> str:
        return self.decoder.start(self._bytes(max(self.chunk, DETECT_BYTES)), self._eof)

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
            from .worker import Worker

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
        while not self._eof and not detectable(buf):
            if self.size > self.document_limit:
                raise TooLong(self.document_limit)
            buf += self._more()
        kind = self.format = detect(buf)
        if kind not in ("vtt", "srt"):
            yield self._whole(buf)
            return
        stream = self.stream = CueStream(kind, self.rolling)
        if kind == "vtt":
            buf = self._past_header(buf, stream)
        yield from self._pieces(stream, buf)

    def _whole(self, buf: str) -> list[Cue]:
        """The cues of a document parsed whole (XML, JSON, SBV): `buf` and the rest of
        it, at most `document_limit` bytes."""
        parts = [buf]
        del buf
        while True:
            if self.size > self.document_limit:
                raise TooLong(self.document_limit)
            if self._eof:
                break
            parts.append(self._more())
        caps = parse_decoded("".join(parts), self.encoding, rolling=self.rolling)
        del parts
        self.whole = caps
        self.format = caps.format
        return caps.cues

    def _pieces(self, stream: CueStream, buf: str) -> Iterator[list[Cue]]:
        """WebVTT or SRT text (`buf` and the rest of it) fed to `stream` a piece at a
        time, each cut where a blank line starts."""
        chunk = self.chunk
        while True:
            if not self._eof and len(buf) < chunk:
                buf += self._more()
                continue
            if self._eof and len(buf) <= chunk:
                break
            cut = piece_end(buf, chunk)
            if cut >= 0:
                piece, buf = buf[:cut], buf[cut + 2 :]
                yield from self._feed(stream, piece)
                continue
            # One block longer than a piece: read on. The line being read (at most two
            # reads long when it is not the last by the next look) may not grow past
            # MAX_LINE_CHARS, nor the block past MAX_BLOCK_CHARS.
            if len(buf) - buf.rfind("\n") > MAX_LINE_CHARS:
                mib = MAX_LINE_CHARS >> 20
                raise errors.TooLarge(f"a line of more than {mib} Mi characters: not captions")
            if self._eof:
                break
            if len(buf) > MAX_BLOCK_CHARS:
                mib = MAX_BLOCK_CHARS >> 20
                raise errors.TooLarge(f"more than {mib} MiB of text without a blank line")
            buf += self._more()
        yield from self._flush(stream)
        yield stream.feed(buf, final=True)

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


def piece_end(buf: str, chunk: int) -> int:
    """Where the next piece of `buf` ends: at the last blank line within `chunk`
    characters (the first one further on for a longer block), never in the text that
    ends `buf` (more of it may follow); -1 when there is no such blank line."""
    end = len(buf.rstrip())
    cut = buf.rfind("\n\n", 0, min(chunk, end) if end else len(buf))
    if cut < 0:
        cut = buf.find("\n\n", 0, end)
    if cut > 0 and buf[cut - 1] == "\n":
        # Inside a run of line feeds, `split` pairs them from where the run starts.
        cut -= (cut - len(buf[:cut].rstrip("\n"))) % 2
    return cut


def parse(data: bytes, *, rolling: bool | None = None, encoding: str | None = None) -> Captions:
    """Parse a caption document of any supported format, as `CueReader` reads it.

    `rolling`: True to remove YouTube-style rolling repeats, False to keep every line,
    None to decide from the file (inline word timings, or most cues repeating their
    predecessor's last line). Creator-made captions never match and keep everything.
    `encoding` overrides the detected one."""
    reader = CueReader(
        io.BytesIO(data).read,
        rolling=rolling,
        encoding=encoding,
        document_limit=len(data),
        parallel=len(data),  # all of it here: no second process
    )
    cues = [cue for piece in reader for cue in piece]
    return reader.captions(cues)
