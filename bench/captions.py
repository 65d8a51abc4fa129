"""Generate YouTube-style rolling automatic captions (WebVTT) of a given size.

Each spoken line appears while being "typed" (inline <00:00:01.234><c> word timings, under
the previous line), again in a 10 ms snapshot cue with a whitespace padding line, and
again as the top line of the next cue: the shape `to-markdown` has to de-duplicate.
"""

from __future__ import annotations

import random

TEXT = (
    "the of and to a in that is was he for it with as his on be at by i this had not are "
    "but from or have an they which one you were her all she there would their we him been "
    "has when who will more no if out so said what up its about into than them can only "
    "other new some could time these two may then do first any my now such like our over "
    "man me even most made after also did many before must through back years where much "
    "your way well down should because each just those people how too little state good "
    "very make world still own see men work long get here between both life being under "
    "never day same another know while last might us great old year off come since against "
    "go came right used take three caption rolling transcript markdown benchmark loopback"
)
WORDS = TEXT.split()


def stamp(ms: int) -> str:
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def rolling_vtt(target_bytes: int, seed: int = 7) -> str:
    """A rolling auto-caption document of at least `target_bytes` UTF-8 bytes."""
    rnd = random.Random(seed)
    parts = ["WEBVTT\nKind: captions\nLanguage: en\n\n"]
    size = len(parts[0])
    t = 160
    previous = " "
    while size < target_bytes:
        words = [rnd.choice(WORDS) for _ in range(rnd.randint(5, 9))]
        starts = []
        for _ in words:
            starts.append(t)
            t += rnd.randint(180, 420)
        end = t
        typed = words[0] + "".join(
            f"<{stamp(s)}><c> {w}</c>" for s, w in zip(starts[1:], words[1:])
        )
        line = " ".join(words)
        cue = (
            f"{stamp(starts[0])} --> {stamp(end)} align:start position:0%\n{previous}\n{typed}\n\n"
            f"{stamp(end)} --> {stamp(end + 10)} align:start position:0%\n{line}\n \n\n"
        )
        parts.append(cue)
        size += len(cue.encode())
        previous = line
        t = end + 10
    return "".join(parts)
