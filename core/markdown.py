"""Clean cues into readable text: sentences joined across cues, then paragraphs.

`render_markdown` is what `xdl to-markdown` and `xdl transcript -F md` print;
`convert_file` is the whole of one `to-markdown` input (read, parse, write, count).
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from . import errors
from .captions import Captions, Cue, gc_paused, parse
from .inputs import shown

#: The largest caption document read, in bytes. Real ones are a few MB (a 10-hour
#: stream's automatic captions); reading more would only fill memory (/dev/zero).
MAX_CAPTION_BYTES = 64 * 1024 * 1024

SoundLabels = Literal["keep", "drop"]

_SENTENCE_END = frozenset(".!?…。！？")
#: Scripts written without spaces between words (Han, kana), and their punctuation.
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_CJK_TEXT = re.compile(
    r"[\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]"
)
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
    timestamps: bool = False
    title: str | None = None
    sound_labels: SoundLabels = "keep"
    #: With timestamps: each paragraph links to `link` + t=SECONDS (a URL) when given.
    link: str | None = None
    #: (start seconds, title) of chapters: `##` sections.
    chapters: Sequence[tuple[float, str]] = ()


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
    if joined.isascii() or not _CJK_TEXT.search(joined):
        return joined
    out = [parts[0]] if parts else []
    for part in parts[1:]:
        if not (_CJK_TEXT.match(part[:1]) and _CJK_TEXT.match(out[-1][-1:])):
            out.append(" ")
        out.append(part)
    return "".join(out)


def count_words(text: str) -> int:
    """Words separated by spaces; in scripts without spaces (Han, kana) each character
    counts as a word, so that word limits mean something there too."""
    if text.isascii():
        return len(text.split())
    han = len(_CJK.findall(text))
    return han + len(_CJK_TEXT.sub(" ", text).split()) if han else len(text.split())


def ends_sentence(word: str) -> bool:
    last = word[-1]
    if last in _SENTENCE_END:
        return True
    return last in _CLOSERS and len(word) > 1 and word[-2] in _SENTENCE_END


def paragraphs(cues: Sequence[Cue], layout: Layout) -> list[Paragraph]:
    """Join the cues' words and cut them into paragraphs.

    A paragraph ends at a change of speaker (a voice, a `NAME:` line, `>>`), at a
    sentence end once it has `min_words`, at a pause of `gap` seconds after a sentence
    end (any pause when the text has no punctuation), at a chapter, or at `max_words`."""
    punctuated = any(c in cue.text for cue in cues[:200] for c in ".?!")
    chapters = sorted(layout.chapters)
    next_chapter = 0
    out: list[Paragraph] = []
    para: Paragraph | None = None
    speaker: str | None = None
    prev_end: float | None = None
    turn = False
    min_words, max_words = max(1, layout.min_words), max(1, layout.max_words)
    limit = min(min_words, max_words)
    drop_sounds = layout.sound_labels == "drop"
    speakers = layout.speakers
    gap = layout.gap
    for cue in cues:
        chapter = None
        while next_chapter < len(chapters) and cue.start >= chapters[next_chapter][0] - 0.001:
            chapter = chapters[next_chapter][1]
            next_chapter += 1
        if chapter is not None:
            para = None
            out.append(Paragraph(cue.start, None, [], 0, chapter))
        if cue.speaker is not None and cue.speaker != speaker:
            speaker = cue.speaker
            para = None
        if (
            para is not None
            and prev_end is not None
            and cue.start - prev_end >= gap
            and para.parts
            and (
                not punctuated
                or ends_sentence(para.parts[-1])
                or para.parts[-1][-1] in ")]"
                or cue.start - prev_end >= 4 * gap
            )
        ):
            para = None
        prev_end = cue.end
        text = cue.text
        if drop_sounds and ("[" in text or "(" in text):
            text = " ".join(_drop_sound_labels(text.replace("\n", " ")).split())
            if not text:
                continue
        # Cue lines are non-empty and single-spaced: words are spaces + 1.
        index = 0
        for line in text.split("\n") if "\n" in text else (text,):
            if speakers and line[-1] == ":" and (m := _LABEL.match(line)):
                speaker = m.group(1)
                para = None
                continue
            n = line.count(" ") + 1 if line.isascii() else count_words(line)
            if (
                para is not None
                and para.count + n < (max_words if _no_stop(line) else limit)
                and ">>" not in line
            ):
                para.parts.append(line)  # no paragraph can end inside this line
                para.count += n
                index += n
                continue
            for word in line.split(" "):
                if word.startswith(">>"):  # a new, unnamed speaker
                    speaker, para, turn = None, None, True
                    word = word[2:]
                    if not word:
                        continue
                if para is None:
                    at = cue.start
                    timed = _word_times(cue, text)
                    if index and index < len(timed):
                        at = timed[index]  # json3, srv3: the word's own time
                    elif index:
                        total = text.count(" ") + text.count("\n") + 1
                        at += (cue.end - cue.start) * index / total
                    para = Paragraph(at, speaker, turn=turn)
                    turn = False
                    out.append(para)
                para.parts.append(word)
                para.count += 1 if word.isascii() else max(1, count_words(word))
                index += 1
                if para.count >= max_words or (para.count >= min_words and ends_sentence(word)):
                    para = None
    return [p for p in out if p.count or p.chapter]


def _word_times(cue: Cue, text: str) -> tuple[float, ...]:
    """The cue's word times when the word counts of `paragraphs` index them: not once
    sound labels were dropped, nor in a script without spaces (a word is a character)."""
    if cue.words is None or text is not cue.text:
        return ()
    return cue.words if text.isascii() or not _CJK.search(text) else ()


def _drop_sound_labels(text: str) -> str:
    """`Hi (laughs).` -> `Hi.`, `[Music] Hi` -> ` Hi`, `a[x]b` -> `a b`."""

    def gap(m: re.Match[str]) -> str:
        return " " if text[m.end() : m.end() + 1].isalnum() else ""

    return _SOUND.sub(gap, text)


def _no_stop(line: str) -> bool:
    return "." not in line and "?" not in line and "!" not in line and "…" not in line


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
    s = int(seconds)
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def timestamp_link(url: str, seconds: float) -> str:
    """`url` at a moment: YouTube and most players read `t=SECONDS`."""
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}t={int(seconds)}"


def render_markdown(caps: Captions, layout: Layout) -> tuple[str, list[Paragraph]]:
    """The Markdown document and the paragraphs it was made of."""
    paras = paragraphs(caps.cues, layout)
    out: list[str] = []
    if layout.title:
        out.append(f"# {' '.join(layout.title.split())}")
    shown: str | None = None
    for p in paras:
        if p.chapter is not None:
            out.append(f"## {' '.join(p.chapter.split())}")
            if not p.count:
                continue
        text = _escape(p.text)
        if p.turn:
            shown = None
        if layout.speakers and p.speaker and p.speaker != shown:
            text = f"**{_escape(p.speaker)}:** {text}"
        if p.speaker:
            shown = p.speaker
        if layout.timestamps:
            stamp = clock(p.start)
            if layout.link:
                stamp = f"[{stamp}]({timestamp_link(layout.link, p.start)})"
            else:
                stamp = f"[{stamp}]"
            text = f"{stamp} {text}"
        out.append(text)
    return ("\n\n".join(out) + "\n") if out else "", [p for p in paras if p.count]


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


def summary(
    path: str,
    output: str | None,
    source_size: int,
    text: str,
    caps: Captions,
    paras: list[Paragraph],
    skipped: str | None = None,
) -> Converted:
    words = sum(p.count for p in paras)
    speakers: list[str] = []
    for p in paras:
        if p.speaker and p.speaker not in speakers:
            speakers.append(p.speaker)
    size = len(text.encode("utf-8"))
    return Converted(
        path=path,
        output=output,
        format=caps.format,
        encoding=caps.encoding,
        words=words,
        paragraphs=len(paras),
        avg_words_per_paragraph=round(words / len(paras), 1) if paras else 0.0,
        compression_ratio=round(source_size / size, 2) if size else 0.0,
        speakers=speakers,
        duplicates_removed=caps.duplicates_removed,
        skipped_blocks=caps.skipped_blocks,
        segment_headers=caps.segment_headers,
        skipped=skipped,
    )


def markdown_name(path: str) -> str:
    """`talk.en.vtt` -> `talk.en.md`; a name without a suffix gets `.md` added."""
    p = Path(path)
    return p.with_suffix(".md").name if p.suffix and p.suffix != ".md" else p.name + ".md"


def read_source(path: str) -> bytes:
    """The bytes of a caption file: at most MAX_CAPTION_BYTES, so /dev/zero, a FIFO that
    never ends or a huge file is `too_large`, never a MemoryError."""
    where = shown(path)
    try:
        with open(path, "rb") as f:
            info = os.fstat(f.fileno())
            if stat.S_ISDIR(info.st_mode):
                raise errors.BadInput(f"a directory, not a caption file: {where}")
            if stat.S_ISREG(info.st_mode) and info.st_size > MAX_CAPTION_BYTES:
                raise too_large()
            return check_size(read_capped(f))
    except FileNotFoundError:
        raise errors.NotFound(f"no such file: {where}") from None
    except IsADirectoryError:
        raise errors.BadInput(f"a directory, not a caption file: {where}") from None
    except OSError as e:
        raise errors.BadInput(f"cannot read {where}: {e.strerror or e}") from None


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


def too_large() -> errors.TooLarge:
    mib = MAX_CAPTION_BYTES // 2**20
    return errors.TooLarge(f"larger than {mib} MiB, the most a caption file may be")


def write_new(dest: Path, content: str | bytes, overwrite: bool, root: Path | None = None) -> bool:
    """Write `dest` whole, never through a link (see `fetch.target.write_new`)."""
    from .fetch.target import write_new as write

    return write(dest, content, overwrite, root)


def convert_file(
    path: str,
    layout: Layout,
    *,
    data: bytes | None = None,
    output: str | None = None,
    output_dir: str | None = None,
    overwrite: bool = False,
    rolling: bool | None = None,
    encoding: str | None = None,
) -> tuple[Converted, str]:
    """Convert one caption file; write it next to the input (or to `output`, or into
    `output_dir`) unless `output` is "-". Returns the result and the Markdown."""
    data = read_source(path) if data is None else check_size(data)
    text, caps, paras = convert(data, layout, rolling, encoding)
    if output == "-":
        return summary(path, None, len(data), text, caps, paras), text
    if output:
        dest = Path(output)
    elif output_dir:
        dest = Path(output_dir) / markdown_name(path)
    else:
        dest = Path(path).parent / markdown_name(path)
    written = write_new(dest, text, overwrite)
    return summary(
        path, str(dest), len(data), text, caps, paras, None if written else "exists"
    ), text
