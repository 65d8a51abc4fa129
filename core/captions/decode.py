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
    """Text and the encoding used: `encoding` when given, else a BOM, then UTF-8, then
    UTF-16 without BOM, then what charset-normalizer finds (cp1251, cp1250, ...), CP1252
    when it finds nothing. Line endings (CR, LF, CRLF, mixed) become LF."""
    forced = bool(encoding)
    encoding = text_encoding(encoding) if encoding else ""
    data, encoding = after_bom(data, encoding)
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
    refuse_binary(text)
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.lstrip("\ufeff"), encoding


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


_CONTROL = frozenset(chr(c) for c in range(32) if chr(c) not in "\t\n\r\f") | {"\x7f"}


def refuse_binary(text: str) -> None:
    head = text[:8192]
    if "\x00" in head or sum(c in _CONTROL for c in head) > max(2, len(head) // 100):
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


class Reencode(Exception):
    """Text read as UTF-8 up to here is not UTF-8 after all: read it again in `encoding`."""

    def __init__(self, encoding: str) -> None:
        super().__init__(encoding)
        self.encoding = encoding
