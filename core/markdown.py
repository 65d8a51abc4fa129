"""Clean cues into readable text: sentences joined across cues, then paragraphs.

`render_stream` is what `xdl to-markdown` and `xdl transcript -F md` print, made a piece
at a time; `convert_file` is the whole of one `to-markdown` input (read, parse, write,
count). `convert` makes the same Markdown from a whole parse (`captions.parse`).
"""

from __future__ import annotations

import dataclasses
import functools
import io
import math
import os
import re
import stat
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from . import captions, errors
from .captions import Captions, Cue, gc_paused, parse

#: The largest caption document read, in bytes. Real ones are a few MB (a 10-hour
#: stream's automatic captions); reading more would only fill memory (/dev/zero).
MAX_CAPTION_BYTES = 1 << 30

SoundLabels = Literal["keep", "drop"]
#: Times at the start of paragraphs: none; `[hh:mm:ss]` linked to the page when it is
#: known (auto); never linked (plain); linked, with a warning when no page is known (link).
Timestamps = Literal["none", "auto", "plain", "link"]

_SENTENCE_END = frozenset(".!?…。！？")
#: Scripts written without spaces between words (Han, kana), and their punctuation.
_CJK_CHARS = r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]"
_CJK_TEXT_CHARS = (
    r"[\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]"
)


@functools.cache
def _cjk(text: bool = False) -> re.Pattern[str]:
    """Han and kana (`text`: and their punctuation), compiled when first needed: only
    text that is not ASCII asks, and the compiling is a third of this module's import."""
    return re.compile(_CJK_TEXT_CHARS if text else _CJK_CHARS)


_CLOSERS = frozenset("\"')]}”’»")
_SOUND = re.compile(r"\s*(?:\[[^\[\]\n]*\]|\([^()\n]*\))")
_LABEL = re.compile(r"^([A-Z][A-Z0-9'. -]{0,40}[A-Z0-9.]):$")


@dataclass(frozen=True)
class Layout:
    """How cues become paragraphs (the options of `to-markdown`)."""

    min_words: int = 50
    max_words: int = 250
    gap: float = 1.5
    speakers: bool = True
    timestamps: Timestamps = "none"
    title: str | None = None
    sound_labels: SoundLabels = "keep"
    #: The page the times link to (`link` + t=SECONDS), when known: the item's.
    link: str | None = None
    #: (start seconds, title) of chapters: `##` sections.
    chapters: Sequence[tuple[float, str]] = ()


@dataclass(frozen=True)
class MarkdownOptions:
    """What `to-markdown` does with each input: its layout, where NAME.md goes (next to
    the input unless `output_dir`), whether an existing one is replaced, and how the input
    is read (`rolling`: None when its content decides, `encoding`: None when detected)."""

    layout: Layout = field(default_factory=Layout)
    output_dir: str | None = None
    overwrite: bool = False
    rolling: bool | None = None
    encoding: str | None = None


@dataclass
class Paragraph:
    """A paragraph's text as pieces (cue lines or words) joined by spaces."""

    start: float
    speaker: str | None
    parts: list[str] = field(default_factory=list)
    count: int = 0  # words
    chapter: str | None = None
    #: A new speaker without a name (`>>`) starts here.
    turn: bool = False

    @property
    def text(self) -> str:
        return join_words(self.parts)


def join_words(parts: Sequence[str]) -> str:
    """Pieces of text joined by spaces, except between two pieces of a script written
    without spaces (Chinese, Japanese): there, as the source wrote them."""
    joined = " ".join(parts)
    if joined.isascii() or not _cjk(True).search(joined):
        return joined
    out = [parts[0]] if parts else []
    for part in parts[1:]:
        if not (_cjk(True).match(part[:1]) and _cjk(True).match(out[-1][-1:])):
            out.append(" ")
        out.append(part)
    return "".join(out)


def count_words(text: str) -> int:
    """Words separated by spaces; in scripts without spaces (Han, kana) each character
    counts as a word, so that word limits mean something there too. (A text of
    megabytes is counted without a string per word.)"""
    if len(text) >= _SPLIT_CHARS:
        return _count_long(text)
    if text.isascii():
        return len(text.split())
    han = len(_cjk().findall(text))
    return han + len(_cjk(True).sub(" ", text).split()) if han else len(text.split())


_WORD = re.compile(r"\S+")


def _count_long(text: str) -> int:
    """`count_words` of a long text, in constant memory."""
    han = sum(1 for _ in _cjk().finditer(text))
    if not han:
        return sum(1 for _ in _WORD.finditer(text))
    rest = re.compile(rf"(?:(?!{_CJK_TEXT_CHARS})\S)+")
    return han + sum(1 for _ in rest.finditer(text))


def ends_sentence(word: str) -> bool:
    last = word[-1]
    if last in _SENTENCE_END:
        return True
    return last in _CLOSERS and len(word) > 1 and word[-2] in _SENTENCE_END


def paragraphs(cues: Sequence[Cue], layout: Layout) -> list[Paragraph]:
    """Join the cues' words and cut them into paragraphs (see `Paragraphs`)."""
    maker = Paragraphs(layout)
    return maker.add(cues) + maker.close()


class Paragraphs:
    """Cues in (a list at a time), finished paragraphs out.

    A paragraph ends at a change of speaker (a voice, a `NAME:` line, `>>`), at a
    sentence end once it has `min_words`, at a pause of `gap` seconds after a sentence
    end (any pause when the text has no punctuation: told from the first 200 cues), at a
    chapter, or at `max_words`."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.waiting: list[Cue] | None = []  # the first cues, until punctuation is known
        self.punctuated = False
        self.chapters = sorted(layout.chapters)
        self.next_chapter = 0
        self.out: list[Paragraph] = []
        self.para: Paragraph | None = None
        self.speaker: str | None = None
        self.prev_end: float | None = None
        self.turn = False

    def add(self, cues: Sequence[Cue]) -> list[Paragraph]:
        """The paragraphs finished by these cues."""
        if self.waiting is not None:
            self.waiting.extend(cues)
            if len(self.waiting) < 200:
                return []
            cues = self._decide()
        return self._run(cues)

    def close(self) -> list[Paragraph]:
        """The paragraphs still open."""
        done = self._run(self._decide()) if self.waiting is not None else []
        out, self.out, self.para = self.out, [], None
        return done + [p for p in out if p.count or p.chapter]

    def _decide(self) -> list[Cue]:
        cues, self.waiting = self.waiting or [], None
        self.punctuated = any(c in cue.text for cue in cues[:200] for c in ".?!")
        return cues

    def _run(self, cues: Sequence[Cue]) -> list[Paragraph]:
        layout = self.layout
        punctuated = self.punctuated
        chapters = self.chapters
        next_chapter = self.next_chapter
        out = self.out
        para, speaker, prev_end, turn = self.para, self.speaker, self.prev_end, self.turn
        min_words, max_words = max(1, layout.min_words), max(1, layout.max_words)
        limit = min(min_words, max_words)
        drop_sounds = layout.sound_labels == "drop"
        speakers = layout.speakers
        gap = layout.gap
        n_chapters = len(chapters)
        for start, end, text, cue_speaker, cue_words in cues:
            if next_chapter < n_chapters and start >= chapters[next_chapter][0] - 0.001:
                chapter = None
                while next_chapter < n_chapters and start >= chapters[next_chapter][0] - 0.001:
                    chapter = chapters[next_chapter][1]
                    next_chapter += 1
                para = None
                out.append(Paragraph(start, None, [], 0, chapter))
            if cue_speaker is not None and cue_speaker != speaker:
                speaker = cue_speaker
                para = None
            if (
                para is not None
                and prev_end is not None
                and start - prev_end >= gap
                and para.parts
                and (
                    not punctuated
                    or ends_sentence(para.parts[-1])
                    or para.parts[-1][-1] in ")]"
                    or start - prev_end >= 4 * gap
                )
            ):
                para = None
            prev_end = end
            text_of_cue = text
            if drop_sounds and ("[" in text or "(" in text):
                text = " ".join(_drop_sound_labels(text.replace("\n", " ")).split())
                if not text:
                    continue
            # Cue lines are non-empty and single-spaced: words are spaces + 1.
            index = 0
            timed: tuple[float, ...] | None = None
            total = 0
            for line in text.split("\n") if "\n" in text else (text,):
                if speakers and line[-1] == ":" and (m := _LABEL.match(line)):
                    speaker = m.group(1)
                    para = None
                    continue
                n = line.count(" ") + 1 if line.isascii() else count_words(line)
                if para is not None and ">>" not in line:
                    stops = "." in line or "?" in line or "!" in line or "…" in line
                    fits = para.count + n < (limit if stops else max_words)
                else:
                    fits = False
                if fits:
                    assert para is not None
                    para.parts.append(line)  # no paragraph can end inside this line
                    para.count += n
                    index += n
                    continue
                words = line.split(" ") if len(line) <= _SPLIT_CHARS else _words_of(line)
                for word in words:
                    if word.startswith(">>"):  # a new, unnamed speaker
                        speaker, para, turn = None, None, True
                        word = word[2:]
                        if not word:
                            continue
                    if para is None:
                        at = start
                        if index:  # what the cue's text tells, once a cue: it may be long
                            if timed is None:
                                timed = _word_times(cue_words, text, text_of_cue)
                            if index < len(timed):
                                at = timed[index]  # json3, srv3: the word's own time
                            else:
                                total = total or text.count(" ") + text.count("\n") + 1
                                at += (end - start) * index / total
                        para = Paragraph(at, speaker, turn=turn)
                        turn = False
                        out.append(para)
                    para.parts.append(word)
                    para.count += 1 if word.isascii() else max(1, count_words(word))
                    index += 1
                    if para.count >= max_words or (para.count >= min_words and ends_sentence(word)):
                        if len(para.parts) > 1:  # finished: one string, not a list of words
                            para.parts = [para.text]
                        para = None
        self.next_chapter = next_chapter
        self.para, self.speaker, self.prev_end, self.turn = para, speaker, prev_end, turn
        # Every paragraph but the last is finished (only the last one can still grow).
        done, self.out = out[:-1], out[-1:]
        return [p for p in done if p.count or p.chapter]


#: A line longer than this (in characters) is cut into words one at a time: a cue of
#: megabytes on one line never becomes millions of strings at once.
_SPLIT_CHARS = 1 << 16


def _words_of(line: str) -> Iterator[str]:
    """`line.split(" ")`, a word at a time."""
    start = 0
    while (end := line.find(" ", start)) >= 0:
        yield line[start:end]
        start = end + 1
    yield line[start:]


def _word_times(words: tuple[float, ...] | None, text: str, said: str) -> tuple[float, ...]:
    """A cue's word times (`words`, of its text `said`) when the word counts of
    `paragraphs` index them (in `text`): not once sound labels were dropped, nor in a
    script without spaces (a word is a character)."""
    if words is None or text is not said:
        return ()
    return words if text.isascii() or not _cjk().search(text) else ()


def _drop_sound_labels(text: str) -> str:
    """`Hi (laughs).` -> `Hi.`, `[Music] Hi` -> ` Hi`, `a[x]b` -> `a b`."""

    def gap(m: re.Match[str]) -> str:
        return " " if text[m.end() : m.end() + 1].isalnum() else ""

    return _SOUND.sub(gap, text)


def _escape(text: str) -> str:
    """Keep Markdown from reading caption text as markup."""
    if any(c in text for c in "\\*_`<]"):
        text = (
            text.replace("\\", "\\\\")
            .replace("*", "\\*")
            .replace("_", "\\_")
            .replace("`", "\\`")
            .replace("](", "\\](")
        )
        text = re.sub(r"<(?=[A-Za-z/!?])", r"\\<", text)
    if text[:1] in "#>+-=|" or re.match(r"\d+[.)](\s|$)", text):
        text = "\\" + text
    return text


def clock(seconds: float) -> str:
    s = int(seconds) if math.isfinite(seconds) else 0
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def timestamp_link(url: str, seconds: float) -> str:
    """`url` at a moment: YouTube and most players read `t=SECONDS` (one, in the query,
    before any #fragment), written so that it stays one Markdown link destination."""
    from urllib.parse import quote  # only with --timestamps: not at every start

    base, hash_, fragment = url.partition("#")
    path, _, query = base.partition("?")
    kept = [p for p in query.split("&") if p and p.split("=", 1)[0] != "t"]
    marks = [p for p in fragment.split("&") if p and p.split("=", 1)[0] != "t"]  # #t=30
    hash_ = hash_ if marks else ""
    linked = f"{path}?{'&'.join([*kept, f't={int(seconds)}'])}{hash_}{'&'.join(marks)}"
    return _LINK_UNSAFE.sub(lambda m: quote(m.group(), safe=""), linked)


#: What would end (or break) a Markdown link's destination: percent-encoded (as UTF-8).
_LINK_UNSAFE = re.compile(r"[\s()<>\[\]\\`\x00-\x1f\x7f]")


#: An info.json larger than this is not read (yt-dlp's are a few MB with every format).
MAX_INFO_BYTES = 64 << 20


def with_info(layout: Layout, info: Mapping[str, Any], url: str | None = None) -> Layout:
    """`layout` with what an item's yt-dlp metadata says: its title (as `# heading`
    unless one was given), its chapters (`##` sections at their times) and, with
    timestamps, its page (each paragraph's time links there, `&t=SECONDS`)."""
    title = info.get("title") if isinstance(info.get("title"), str) else None
    link = page_of(info.get("webpage_url")) or page_of(url) or layout.link
    return dataclasses.replace(
        layout, title=layout.title or title, chapters=chapters_of(info), link=link
    )


def page_of(url: object) -> str | None:
    """`url` when it is a web page's address (http or https) that times can link to."""
    if isinstance(url, str) and url.lower().startswith(("http://", "https://")):
        return url
    return None


def chapters_of(info: Mapping[str, Any]) -> list[tuple[float, str]]:
    """(start seconds, title) of an item's chapters; one the site wrote wrong (no title,
    a start that is not a finite number) is left out, never an error."""
    listed = info.get("chapters")
    out: list[tuple[float, str]] = []
    for c in listed if isinstance(listed, list) else []:
        if not isinstance(c, dict) or not isinstance(c.get("title"), str) or not c["title"]:
            continue
        try:
            start = float(c.get("start_time") or 0)
        except (TypeError, ValueError, OverflowError):
            continue
        if math.isfinite(start):
            out.append((start, c["title"]))
    return out


def read_info(path: str) -> dict[str, Any]:
    """An item's metadata from `NAME.info.json` (`xdl fetch --write-info-json`): a
    regular file holding one JSON object, at most MAX_INFO_BYTES (`bad_input` otherwise,
    `not_found` when missing)."""
    import json

    from .inputs import shown

    where = shown(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise errors.NotFound(f"no such info file: {where}") from None
    except (OSError, ValueError) as e:
        raise errors.BadInput(f"cannot read the info file {where}: {e}") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_INFO_BYTES:
        os.close(fd)
        if not stat.S_ISREG(st.st_mode):
            raise errors.BadInput(f"not a regular file: {where}")
        raise errors.BadInput(f"{where} is over {_size(MAX_INFO_BYTES)}: not an info file")
    os.set_blocking(fd, True)
    with os.fdopen(fd, "rb") as f:
        data = f.read(MAX_INFO_BYTES + 1)
    try:
        info = json.loads(data)
    except (ValueError, RecursionError):
        info = None
    if not isinstance(info, dict):
        raise errors.BadInput(f"not an info.json (one JSON object): {where}")
    return info


def render_markdown(caps: Captions, layout: Layout) -> tuple[str, list[Paragraph]]:
    """The Markdown document and the paragraphs it was made of."""
    parts: list[str] = []
    writer = MarkdownWriter(layout, parts.append)
    paras = paragraphs(caps.cues, layout)
    writer.write(paras)
    writer.close()
    return "".join(parts), [p for p in paras if p.count]


class MarkdownWriter:
    """Paragraphs in, Markdown text out through `write`, a piece at a time; what the
    result line counts (words, paragraphs, speakers, bytes) counted on the way."""

    def __init__(self, layout: Layout, write: Callable[[str], object]) -> None:
        self.layout = layout
        self._write = write
        self.started = False
        self.shown: str | None = None
        self.words = self.paragraphs = self.size = 0
        self.speakers: list[str] = []
        if layout.title:
            self._block(f"# {' '.join(layout.title.split())}")

    def _block(self, text: str) -> None:
        if self.started:
            text = "\n\n" + text
        self.started = True
        self.size += len(text) if text.isascii() else len(text.encode("utf-8"))
        self._write(text)

    def write(self, paras: Sequence[Paragraph]) -> None:
        layout = self.layout
        for p in paras:
            if p.chapter is not None:
                self._block(f"## {' '.join(p.chapter.split())}")
                if not p.count:
                    continue
            if not p.count:
                continue
            self.words += p.count
            self.paragraphs += 1
            if p.speaker and p.speaker not in self.speakers:
                self.speakers.append(p.speaker)
            text = _escape(p.text)
            if p.turn:
                self.shown = None
            if layout.speakers and p.speaker and p.speaker != self.shown:
                text = f"**{_escape(p.speaker)}:** {text}"
            if p.speaker:
                self.shown = p.speaker
            if layout.timestamps != "none":
                stamp = clock(p.start)
                if layout.link and layout.timestamps != "plain":
                    stamp = f"[{stamp}]({timestamp_link(layout.link, p.start)})"
                else:
                    stamp = f"[{stamp}]"
                text = f"{stamp} {text}"
            self._block(text)

    def close(self) -> None:
        if self.started:
            self.size += 1
            self._write("\n")


def render_text(caps: Captions, layout: Layout) -> str:
    """Plain text: the same paragraphs as Markdown, without any markup."""
    paras = paragraphs(caps.cues, layout)
    out = []
    for p in paras:
        if p.chapter is not None:
            out.append(p.chapter)
        if p.count:
            out.append(p.text)
    return "\n\n".join(out) + "\n" if out else ""


def render_srt(caps: Captions) -> str:
    """The cleaned cues as SubRip (a voice becomes a `Name: ` prefix)."""

    def stamp(t: float) -> str:
        ms = round(t * 1000)
        return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"

    blocks = []
    for n, cue in enumerate(caps.cues, 1):
        text = f"{cue.speaker}: {cue.text}" if cue.speaker else cue.text
        blocks.append(f"{n}\n{stamp(cue.start)} --> {stamp(cue.end)}\n{text}\n")
    return "\n".join(blocks)


def render_json(caps: Captions) -> str:
    """The cleaned cues as a JSON array of {start, end, speaker, text}."""
    import json

    return json.dumps([c.to_dict() for c in caps.cues], ensure_ascii=False, indent=1) + "\n"


# --- one file through `to-markdown` -----------------------------------------------------


@dataclass(frozen=True)
class Converted:
    """The result line of one `to-markdown` input."""

    path: str
    output: str | None
    format: str
    encoding: str
    words: int
    paragraphs: int
    avg_words_per_paragraph: float
    compression_ratio: float
    speakers: list[str]
    duplicates_removed: int
    skipped_blocks: int
    segment_headers: int = 0
    skipped: str | None = None
    ok: bool = True

    def to_dict(self) -> dict[str, Any]:
        row = asdict(self)
        if row["skipped"] is None:
            del row["skipped"]
        return row


def convert(
    data: bytes, layout: Layout, rolling: bool | None = None, encoding: str | None = None
) -> tuple[str, Captions, list[Paragraph]]:
    """Caption bytes to Markdown: the text, what was parsed, the paragraphs."""
    with gc_paused():
        caps = parse(data, rolling=rolling, encoding=encoding)
        text, paras = render_markdown(caps, layout)
    return text, caps, paras


def markdown_name(path: str) -> str:
    """`talk.en.vtt` -> `talk.en.md`; a name without a suffix gets `.md` added."""
    p = Path(path)
    return p.with_suffix(".md").name if p.suffix and p.suffix != ".md" else p.name + ".md"


@dataclass(frozen=True)
class Rendered:
    """What `render_stream` made: the parse (without its cues) and the counts."""

    caps: Captions
    source_size: int
    size: int
    words: int
    paragraphs: int
    speakers: list[str]


#: Markdown written to a temporary file kept in memory up to this size.
_SPOOL_BYTES = 8 << 20


def render_stream(
    source: IO[bytes],
    layout: Layout,
    sink: IO[bytes],
    *,
    rolling: bool | None = None,
    encoding: str | None = None,
    chunk: int | None = None,
) -> Rendered:
    """Caption bytes from `source` to Markdown written to `sink`, a piece at a time, in
    one pass: memory follows the piece (`captions.CHUNK_CHARS`), not the file, for
    WebVTT and SRT. Larger than MAX_CAPTION_BYTES is `too_large`."""
    reader = captions.CueReader(
        source.read,
        rolling=rolling,
        encoding=encoding,
        chunk=chunk,
        limit=MAX_CAPTION_BYTES,
        document_limit=min(MAX_CAPTION_BYTES, captions.MAX_DOCUMENT_BYTES),
        size=_file_size(source),
    )
    pending: list[str] = []
    writer = MarkdownWriter(layout, pending.append)
    maker = Paragraphs(layout)
    try:
        for cues in reader:
            writer.write(maker.add(cues))
            if pending:
                sink.write("".join(pending).encode("utf-8"))
                pending.clear()
    except captions.TooLong as e:
        raise too_large(e.limit) from None
    writer.write(maker.close())
    writer.close()
    sink.write("".join(pending).encode("utf-8"))
    return Rendered(
        reader.captions([]),
        reader.size,
        writer.size,
        writer.words,
        writer.paragraphs,
        writer.speakers,
    )


def markdown_of(
    data: bytes, layout: Layout, rolling: bool | None = None, encoding: str | None = None
) -> tuple[str, Rendered]:
    """Caption bytes to Markdown in memory, by `to-markdown`'s own path (`render_stream`)."""
    import io

    sink = io.BytesIO()
    done = render_stream(io.BytesIO(data), layout, sink, rolling=rolling, encoding=encoding)
    return sink.getvalue().decode("utf-8"), done


def _file_size(stream: IO[bytes]) -> int | None:
    """The size of a regular file being read (None for a pipe or a stream in memory)."""
    try:
        info = os.fstat(stream.fileno())
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return None
    return info.st_size if stat.S_ISREG(info.st_mode) else None


def read_source(path: str) -> IO[bytes]:
    """A caption file opened for reading: a directory, a missing file, a name no file
    can have (a NUL byte) or a regular file over MAX_CAPTION_BYTES fails here;
    /dev/zero or a FIFO that never ends fails as it is read (binary, or `too_large`),
    never with a MemoryError."""
    from .inputs import shown

    where = shown(path)
    try:
        f = open(path, "rb")  # noqa: SIM115 (the caller closes it)
        try:
            info = os.fstat(f.fileno())
            if stat.S_ISDIR(info.st_mode):
                raise errors.BadInput(f"a directory, not a caption file: {where}")
            if stat.S_ISREG(info.st_mode) and info.st_size > MAX_CAPTION_BYTES:
                raise too_large()
        except BaseException:
            f.close()
            raise
        return f
    except FileNotFoundError:
        raise errors.NotFound(f"no such file: {where}") from None
    except IsADirectoryError:
        raise errors.BadInput(f"a directory, not a caption file: {where}") from None
    except OSError as e:
        raise errors.BadInput(f"cannot read {where}: {e.strerror or e}") from None
    except ValueError:  # a NUL byte, or a character the file system cannot encode
        raise errors.BadInput(f"not a file name: {where}") from None


def read_capped(stream: IO[bytes], limit: int | None = None) -> bytes:
    """Up to `limit` (default MAX_CAPTION_BYTES) + 1 bytes of `stream`: one more than
    allowed tells a document that is too large from one that just fits."""
    limit = MAX_CAPTION_BYTES if limit is None else limit
    parts: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = stream.read(min(limit + 1 - size, 1 << 20))
        if not chunk:
            break
        parts.append(chunk)
        size += len(chunk)
    return b"".join(parts)


def check_size(data: bytes) -> bytes:
    """`data` when it is not over the limit on caption documents, else `too_large`."""
    if len(data) > MAX_CAPTION_BYTES:
        raise too_large()
    return data


def too_large(limit: int | None = None) -> errors.TooLarge:
    limit = MAX_CAPTION_BYTES if limit is None else limit
    if limit < captions.MAX_DOCUMENT_BYTES or limit == MAX_CAPTION_BYTES:
        return errors.TooLarge(f"larger than {_size(limit)}, the most a caption file may be")
    return errors.TooLarge(
        f"larger than {_size(limit)}, the most a TTML, json3, srv3 or SBV document may be"
    )


def _size(n: int) -> str:
    for unit, name in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if n >= unit and not n % unit:
            return f"{n // unit} {name}"
    return f"{n:,} bytes"


def convert_file(
    path: str,
    options: MarkdownOptions,
    *,
    data: bytes | IO[bytes] | None = None,
    output: str | None = None,
    chunk: int | None = None,
) -> tuple[Converted, str]:
    """Convert one caption file (or `data`: its bytes, or a stream of them); write it
    next to the input (or to `output`, or into `options.output_dir`) unless `output` is
    "-".
    Returns the result and the Markdown ("" when written to a file)."""
    import io
    import tempfile
    from contextlib import nullcontext

    from .files import write_new

    if isinstance(data, bytes):
        source: IO[bytes] = io.BytesIO(check_size(data))
    else:
        source = read_source(path) if data is None else data
    owned = source if data is None else nullcontext()  # stdin stays open: not ours
    with owned, tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as sink:
        done = render_stream(
            source,
            options.layout,
            sink,
            rolling=options.rolling,
            encoding=options.encoding,
            chunk=chunk,
        )
        if output == "-":
            sink.seek(0)
            return summary(path, None, done), sink.read().decode("utf-8")
        if output:
            dest = Path(output)
        elif options.output_dir:
            dest = Path(options.output_dir) / markdown_name(path)
        else:
            dest = Path(path).parent / markdown_name(path)
        sink.seek(0)
        written = write_new(dest, sink, options.overwrite)
    return summary(path, str(dest), done, None if written else "exists"), ""


def summary(path: str, output: str | None, done: Rendered, skipped: str | None = None) -> Converted:
    """The result line of one converted input."""
    caps, words, n = done.caps, done.words, done.paragraphs
    return Converted(
        path=path,
        output=output,
        format=caps.format,
        encoding=caps.encoding,
        words=words,
        paragraphs=n,
        avg_words_per_paragraph=round(words / n, 1) if n else 0.0,
        compression_ratio=round(done.source_size / done.size, 2) if done.size else 0.0,
        speakers=done.speakers,
        duplicates_removed=caps.duplicates_removed,
        skipped_blocks=caps.skipped_blocks,
        segment_headers=caps.segment_headers,
        skipped=skipped,
    )
