"""`NAME: text` at the start of a cue (Zoom, Meet, `>> NAME:`) as the cue's speaker,
when the file uses labels that way; cue identifiers that are names."""

from __future__ import annotations

import re

from .cues import Cue

#: Words that end in a colon at the start of a line without naming anyone.
_NOT_NAMES_TEXT = (
    "note warning tip example thus so now well yes no ok okay update edit ps q a question "
    "answer step caution important remember summary agenda recap conclusion introduction "
    "intro outro disclaimer credits sources source reminder hint fyi bonus spoiler "
    "translation transcript chapter topic background takeaway takeaways todo overview "
    "notes updates questions answers next action key fun highlights topics items tasks "
    "decisions outcome outcomes results goals status progress context problem solution "
    "tips warnings reminders announcement announcements news feedback comments findings "
    "lessons conclusions steps agreed blockers risks"
)


_NOT_NAMES = frozenset(_NOT_NAMES_TEXT.split())


_NAME = r"[^\W\d_][\w.'’-]*(?: [^\W\d_][\w.'’-]*){0,3}(?: \([^()\n]{1,40}\))?"


SPEAKER_LABEL = re.compile(rf"(?:>>[ \t]*)?({_NAME}):[ \t]+(?=\S)")


def is_id_name(ident: str) -> bool:
    return re.fullmatch(_NAME, ident) is not None and ident.split()[0][0].isupper()


def label_speakers(cues: list[Cue]) -> list[Cue]:
    """`Name: text` at the start of a cue (Zoom, Meet, `>> NAME:`) is a speaker when the
    file uses labels that way: on half the cues or more, or an upper-case NAME that comes
    back.
    `Note: ...` and times (`10:30`) are never names."""
    found: dict[str, int] = {}
    labelled = 0
    for cue in cues:
        if cue.speaker is None and ":" in cue.text:
            m = SPEAKER_LABEL.match(cue.text)
            if m and is_name(m.group(1)):
                labelled += 1
                found[m.group(1)] = found.get(m.group(1), 0) + 1
    names = label_names(found, labelled, len(cues))
    return apply_labels(cues, names, None)[0] if names else cues


def label_names(found: dict[str, int], labelled: int, total: int) -> frozenset[str]:
    """Of the `NAME:` labels found (and how often), those that are speakers. A label
    seen once must be written as a name (`Audience:`, `Priya:` and `Li Wei:` are; the
    words of `Action items:` are said), and is never a heading word (`Summary:`)."""
    if not found:
        return frozenset()
    everyone = labelled >= 2 and labelled >= total / 2
    return frozenset(
        n
        for n, count in found.items()
        if (everyone and (count >= 2 or written_as_name(n))) or (count >= 2 and n.isupper())
    )


#: Words of a name that are not capitalised (`Maria de Souza`, `Ludwig van Beethoven`).
_PARTICLES_TEXT = "al bin bint da das de del della der di do dos du el ibn la le van von y zu"
_PARTICLES = frozenset(_PARTICLES_TEXT.split())


def written_as_name(label: str) -> bool:
    """Is every word of a label (before its `(Role)`) capitalised, as a person's name is
    written? A label seen once must be: `Action items:` that opens a cue Zoom could not
    name is words said, `Li Wei:` is a speaker."""
    name = label.split(" (", 1)[0]
    return all(word[0].isupper() or word in _PARTICLES for word in name.split())


def apply_labels(
    cues: list[Cue], names: frozenset[str], speaker: str | None
) -> tuple[list[Cue], str | None]:
    """Cues with their `NAME:` labels made speakers; the speaker at the end."""
    out: list[Cue] = []
    for cue in cues:
        if cue.speaker is not None:
            out.append(cue)
            continue
        m = SPEAKER_LABEL.match(cue.text) if ":" in cue.text else None
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


def is_name(name: str) -> bool:
    return name[0].isupper() and name.split()[0].lower() not in _NOT_NAMES
