"""WebVTT or SRT text fed in pieces, cleaned, de-duplicated and labelled cues out."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from itertools import islice

from .blocks import BlockReader, UsualCues, joined_lines, usual_cues
from .cues import LONG, PADDING, Captions, Cue, clean_cue, spaced
from .rolling import add_cue, repeated, repeats_last
from .speakers import SPEAKER_LABEL, apply_labels, is_id_name, is_name, label_names
from .vtt import WORD_TIMINGS, Prepared, split_segments, vtt_body


def parse_text(text: str, kind: str = "vtt", *, rolling: bool | None = None) -> Captions:
    """WebVTT or SRT text (LF line endings) into cues."""
    stream = CueStream(kind, rolling)
    if kind == "vtt":
        text = stream.header(text)
    cues = stream.feed(text, final=True)
    return stream.captions(cues)


#: How much text (in characters) the decisions that need the whole file (see
#: `Decisions`) are made from: the cues of the first pieces fed until this much was fed,
#: or of all of the text when it is shorter. The reader's first piece is longer (see
#: `reader.CHUNK_CHARS`): it decides alone, as when it was all that was read.
DECIDE_CHARS = 2 << 20


@dataclass(frozen=True)
class Decisions:
    """What `CueStream` decides from the start of the file (its first DECIDE_CHARS, all of
    it when shorter): whether YouTube's word timings are in it, whether it rolls,
    whether cue identifiers are speakers, which `NAME:` labels are speakers. Made once,
    never revised: the text is read once."""

    inline: bool
    rolling: bool
    named: bool
    labels: frozenset[str]


_Raw = list[tuple[float, float, list[str]]]
#: Cues to clean (start, end, text), as often as asked, and their identifiers (by their
#: place in the batch).
_Batch = tuple[Callable[[], Iterable[tuple[float, float, str]]], dict[int, str]]


class CueStream:
    """WebVTT or SRT text fed in pieces cut at blank lines (`feed`), cleaned cues out.

    Memory stays with the piece: cues are cleaned, de-duplicated and labelled as they
    come. What needs more than one cue (see `Decisions`) is decided from the cues of the
    first DECIDE_CHARS of text, kept uncleaned until then, and holds for the rest."""

    def __init__(self, kind: str, rolling: bool | None = None) -> None:
        self.kind = kind
        self.forced = rolling
        self.used: Decisions | None = None
        self.reader = BlockReader()
        self.waiting: list[_Batch] = []  # the cues read before the decisions
        self.fed = 0  # characters fed before the decisions
        self.held: _Raw = []
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
        may still belong to it; so do all the cues read before the decisions are made.
        `prepared`: what `prepare` made of `text` (in another process) for a stream that
        has decided that word timings are in it."""
        used = self.used
        if used is None:
            return self._gather(text, final)
        out = self._read(text, final, prepared, used)
        return self._apply_labels(out, used.labels)

    def _gather(self, text: str, final: bool) -> list[Cue]:
        """Before the decisions: the piece's cues kept, not yet cleaned; decided once
        DECIDE_CHARS of text came, or the last of it."""
        self.fed += len(text)
        text = self._plain(text, False)
        self.waiting += self._parse(text, final)
        del text
        if final or self.fed >= DECIDE_CHARS:
            return self._decide()
        return []

    def _decide(self) -> list[Cue]:
        """The decisions, from the cues read so far, and those cues cleaned.

        Cleaned once on a guess (word timings: rolling; none: not), which the counts
        made on the way then confirm (as they are the same whatever is decided); cleaned
        again only when they do not."""
        waiting, self.waiting = self.waiting, []
        rolling = self.inline_seen if self.forced is None else self.forced
        guess = Decisions(self.inline_seen, rolling, False, frozenset())
        out: list[Cue] = []
        for cues, ids in waiting:
            self._clean_dedupe(cues(), ids, guess, out)
        used = Decisions(self.inline_seen, self._rolling(), self._named(), frozenset())
        if used != guess:
            self._restart()
            out = []
            for cues, ids in waiting:
                self._clean_dedupe(cues(), ids, used, out)
        del waiting
        self._count_labels(out)
        self.used = used = replace(used, labels=self._labels())
        return self._apply_labels(out, used.labels)

    def _restart(self) -> None:
        """What cleaning counts and carries from cue to cue, as before the first cue."""
        self.candidates = self.repeats = self.removed = 0
        self.ids_total = self.ids_named = 0
        self.ids_seen = set()
        self.last, self.after_text, self.last_plain = None, False, False
        self.prev, self.prev_end = [], 0.0

    def _read(
        self, text: str, final: bool, prepared: Prepared | None, used: Decisions
    ) -> list[Cue]:
        """A piece after the decisions, cleaned and de-duplicated."""
        fast = None
        if prepared is not None:
            assert used.inline
            self.inline_seen = self.inline_seen or prepared.has_c
            if prepared.text is not None:
                text = prepared.text
            elif final or self.reader.depth:  # not as the worker assumed: read it here
                text = WORD_TIMINGS.sub("", split_segments(text))
            else:
                fast = prepared.cues
        else:
            text = self._plain(text, used.inline)
        out: list[Cue] = []
        for cues, ids in self._parse(text, final, fast):
            self._clean_dedupe(cues(), ids, used, out)
        return out

    def _plain(self, text: str, inline: bool) -> str:
        """A piece with joined segments' headers apart and, when the file has them (or
        this piece does, before the decisions), YouTube's word timings off: the bulk of
        such a file, off in one pass."""
        text = split_segments(text)
        if "<c>" in text:
            self.inline_seen = True
        return WORD_TIMINGS.sub("", text) if inline or self.inline_seen else text

    def _parse(self, text: str, final: bool, fast: UsualCues | None = None) -> list[_Batch]:
        """The cues of a piece, each with its text, in batches with their identifiers
        (each to read as often as needed: it stays as it is): the cue held from the
        piece before first; the last cue held for the next piece (text after a blank
        line may still belong to it) unless `final`. By one regex call when every block
        is a cue of the usual shape, else block by block."""
        ids: dict[int, str] = {}
        raw = self.held
        if self.held_id is not None:
            ids[0] = self.held_id
        if fast is None and not self.reader.depth:
            # The blank lines that end a file end no cue (BlockReader passes them by).
            fast = usual_cues(text.rstrip("\n") if final else text)
            if fast and final and not fast.texts[-1].strip():
                fast = None  # the file may end inside that cue's timing: see BlockReader
        if fast:
            # Every block a cue of the usual shape: the last one waits, as `BlockReader`
            # would keep it, and the reader goes on from it.
            self.reader.first = False
            starts, ends, texts = fast
            n = len(texts) if final else len(texts) - 1
            if final:
                self.held, self.held_id = [], None
            else:
                self.held, self.held_id = [(starts[n], ends[n], [texts[n]])], None
                self.reader.current = self.held[0][2]
            return [
                (lambda: joined_lines(raw), ids),
                (lambda: islice(zip(starts, ends, texts), n), {}),
            ]
        self.reader.feed(text, self.kind == "vtt", raw, ids, final)
        del text
        if final or not raw:
            self.held, self.held_id = [], None
        else:
            self.held, self.held_id = [raw.pop()], ids.pop(len(raw), None)
        return [(lambda: joined_lines(raw), ids)]

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

    def _clean_dedupe(
        self,
        raw: Iterable[tuple[float, float, str]],
        ids: dict[int, str],
        used: Decisions,
        out: list[Cue],
    ) -> None:
        """The cues of `raw` (each one's text its lines joined) cleaned and, when they
        roll, de-duplicated (`rolling`), appended to `out`; counted on the way for the
        decisions. One loop, the two cues rolling captions are made of taken in a few
        steps inline: it runs once per cue, hundreds of thousands of times a file."""
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
                if tail in PADDING:
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
                        if (
                            new[:1] != " "
                            and new[-1:] != " "
                            and "  " not in new
                            and new.isprintable()
                        ):
                            line = new  # single-spaced already (and not empty)
                        else:
                            line = " ".join(new.split()) if len(new) < LONG else spaced(new)
                        if line:
                            rolled += 1
                            after_text = True
                            prev, prev_end = [last, line], end
                            last = line
                            append(new_cue(Cue, (start, end, line, None, None)))
                            continue
            segs, flat, is_plain = clean_cue(joined, last, plain)
            if not flat:
                if after_text:  # a blank cue: a pause, after which a line said again stays
                    prev = []
                    after_text = False
                continue
            if last is not None:
                candidates += 1
                repeats += flat[0] == last or repeats_last(last, flat)
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
                    k, grown = repeated(prev, flat)
                    removed += k
                prev, prev_end = flat, end
            add_cue(append, start, end, segs, flat, k, grown, ident if named else None)
        self.last, self.after_text, self.last_plain = last, after_text, plain
        self.candidates += candidates + rolled
        self.repeats += repeats + rolled
        self.ids_total += texts + rolled
        self.prev, self.prev_end = prev, prev_end
        self.removed += removed + rolled

    def _count_id(self, ident: str) -> None:
        if is_id_name(ident):
            self.ids_named += 1
            if self.ids_seen is not None:
                if ident in self.ids_seen:
                    self.ids_seen = None
                else:
                    self.ids_seen.add(ident)

    def _named(self) -> bool:
        n = self.ids_named
        return n >= 2 and n >= self.ids_total / 2 and self.ids_seen is None

    def _count_labels(self, cues: list[Cue]) -> None:
        """The `NAME:` labels at the start of cues, for the decisions (see `_labels`)."""
        self.count += len(cues)
        found = self.found
        for cue in cues:
            if cue.speaker is None and ":" in cue.text:
                m = SPEAKER_LABEL.match(cue.text)
                if m and is_name(m.group(1)):
                    self.labelled += 1
                    found[m.group(1)] = found.get(m.group(1), 0) + 1

    def _labels(self) -> frozenset[str]:
        return label_names(self.found, self.labelled, self.count)

    def _apply_labels(self, cues: list[Cue], names: frozenset[str]) -> list[Cue]:
        if not names:
            return cues
        out, self.speaker = apply_labels(cues, names, self.speaker)
        return out
