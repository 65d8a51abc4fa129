"""Caption bytes to text: the encoding (a BOM, UTF-8, UTF-16 without a BOM, else what
charset-normalizer finds), line endings made LF, binary data refused."""

from __future__ import annotations

import codecs

from .. import errors
from .cues import EmptyFile, NotCaptions

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def decode(data: bytes, encoding: str | None = None) -> tuple[str, str]:
    """All of `data` as text (see `Decoder`), and the encoding it was read in."""
    decoder = Decoder(encoding)
    text = decoder.start(data, eof=True)
    return text, decoder.encoding


class Decoder:
    """Caption bytes to text a piece at a time, line endings (CR, LF, CRLF, mixed) made LF.

    The encoding is decided once, from the first bytes given to `start`: `encoding` when
    given, else a BOM's, else UTF-8 when the first DETECT_BYTES are UTF-8, else UTF-16
    without a BOM, else what charset-normalizer finds in them (cp1251, cp1250, ...),
    CP1252 when it finds nothing. A file that is UTF-8 that far and stops being UTF-8
    later is read on from its first byte that is not in the encoding its first bytes
    suggest (CP1252 for ASCII): what came before is read as it was, never again."""

    def __init__(self, encoding: str | None = None) -> None:
        self.forced = text_encoding(encoding) if encoding else ""
        self.encoding = ""
        self._decoder: codecs.IncrementalDecoder | None = None
        self._sniff = b""  # while read as strict UTF-8: the first bytes, to tell what follows
        self._cr = ""

    def start(self, data: bytes, eof: bool) -> str:
        """The text of the first bytes of a file (DETECT_BYTES of them at least, unless
        `eof`: there are no more), which decide the encoding; binary data is refused."""
        data, encoding = after_bom(data, self.forced)
        if not data.strip(b" \t\r\n\x00"):
            if eof:
                raise EmptyFile("empty file: no captions in it")
            if b"\x00" in data:
                raise NotCaptions("binary data, not a caption file")
        handling = "replace"
        if not encoding:
            sniff = data[:DETECT_BYTES]
            try:
                codecs.getincrementaldecoder("utf-8")().decode(
                    sniff, eof and len(sniff) == len(data)
                )
                encoding, handling, self._sniff = "utf-8", "strict", sniff
            except UnicodeDecodeError:
                encoding = fallback_encoding(sniff)
        self.encoding = encoding
        self._decoder = codecs.getincrementaldecoder(encoding)(handling)
        text = self.feed(data, eof)
        refuse_binary(text)
        return text.lstrip("\ufeff")

    def feed(self, data: bytes, eof: bool) -> str:
        """The text of the next bytes (`eof`: the last ones)."""
        assert self._decoder is not None
        try:
            text: str = self._decoder.decode(data, eof)
        except UnicodeDecodeError as e:  # UTF-8 up to here, not after all
            text = self._fall_back(e, eof)
        except UnicodeError as e:  # a codec that refuses even with "replace" (idna)
            raise errors.BadInput(f"cannot read the file as {self.encoding}: {e}") from None
        if self._cr:
            text, self._cr = self._cr + text, ""
        if "\r" in text:
            if text[-1] == "\r" and not eof:
                text, self._cr = text[:-1], "\r"
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        return text

    def _fall_back(self, e: UnicodeDecodeError, eof: bool) -> str:
        """The text of bytes that stop being UTF-8 at `e.start`: UTF-8 before it, and from
        there on (this and every later piece) the encoding the first bytes suggest."""
        read = e.object[: e.start].decode("utf-8")  # what the decoder held, and the new bytes
        self.encoding = fallback_encoding(self._sniff)
        self._sniff = b""
        self._decoder = codecs.getincrementaldecoder(self.encoding)("replace")
        return read + self._decoder.decode(e.object[e.start :], eof)


def after_bom(data: bytes, encoding: str) -> tuple[bytes, str]:
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
DETECT_BYTES = 256 * 1024


def detect_encoding(data: bytes) -> str:
    """The legacy code page of bytes that are not UTF-8 (charset-normalizer, which comes
    with requests), CP1252 when nothing fits better."""
    from charset_normalizer import from_bytes

    sample = data[:DETECT_BYTES]
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


#: Control characters (not tab, line feed, carriage return, form feed), to delete.
_CONTROL = dict.fromkeys([c for c in range(32) if chr(c) not in "\t\n\r\f"] + [0x7F])


def refuse_binary(text: str) -> None:
    head = text[:8192]
    controls = len(head) - len(head.translate(_CONTROL))
    if "\x00" in head or controls > max(2, len(head) // 100):
        raise NotCaptions("binary data, not a caption file")
    if head.count("\ufffd") > max(8, len(head) // 20):
        raise NotCaptions("binary data, not a caption file (not decodable as text)")


def fallback_encoding(data: bytes) -> str:
    """The encoding of bytes that are not UTF-8 (see `decode`): UTF-16 without a BOM,
    else what the detector finds."""
    head = data[:4096]
    if head.count(0) > len(head) // 4 and (head[1::2].count(0) > len(head) // 3):
        return "utf-16-le"
    if head.count(0) > len(head) // 4 and (head[0::2].count(0) > len(head) // 3):
        return "utf-16-be"
    return detect_encoding(data)
