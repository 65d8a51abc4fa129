"""Which yt-dlp extractor claims a URL, as `yt-dlp URL` would choose: without importing
yt-dlp when none can.

Every extractor's URL pattern needs some literal text in any URL it matches: `vimeo`,
`youtube.com/watch`, one of `npo.nl` or `ntr.nl`. Those needs are read once per
installed yt-dlp with Python's own regex parser, and kept in the cache directory
(`yt-dlp-extractors.json`). A URL is then matched only against the patterns whose needs
it meets (about ten of ~2,000 for a plain file's URL), and yt-dlp itself is imported only
when one of them matches and its extractor has a `suitable` of its own (YouTube's).

Sound by construction: a need is only ever left out, never made up, so a pattern that
matches a URL is always asked. An extractor whose own `suitable` could claim a URL its
pattern does not match (none today; `_narrows_own_pattern` reads each one's source) is
asked on every URL.
"""

from __future__ import annotations

import ast
import inspect
import json
import logging
import os
import re
import sys
import tempfile
import textwrap
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    from re import _constants as _sre
    from re import _parser as _sre_parse
else:  # Python 3.10
    import sre_constants as _sre
    import sre_parse as _sre_parse

log = logging.getLogger("xdl.extractors")

#: Bumped when what the cache file holds changes meaning.
FORMAT = 2
CACHE_NAME = "yt-dlp-extractors.json"
_MAX_CACHE = 32 << 20  # a larger file is not ours: built again


@dataclass(frozen=True)
class Extractor:
    """One specific yt-dlp extractor, as the index keeps it."""

    name: str  # ie_key(): "Youtube", "Vimeo"
    working: bool
    own_suitable: bool  # its class has a `suitable` of its own (asked through yt-dlp)
    #: (pattern, needs) per `_VALID_URL`; None when it must be asked whatever the URL.
    #: `needs`: every clause is a tuple of lower-case literals, one of which is in any
    #: URL the pattern matches.
    patterns: tuple[tuple[str, tuple[tuple[str, ...], ...]], ...] | None


class Index:
    """The extractors in yt-dlp's order, and which patterns a URL's text could wake."""

    def __init__(self, extractors: list[Extractor], rarest: dict[str, str] | None = None) -> None:
        self.extractors = extractors
        #: a literal → the (extractor, pattern) numbers it is the chosen need of
        self.anchors: dict[str, list[tuple[int, int]]] = {}
        self.always: list[tuple[int, int]] = []  # patterns with no need at all
        for e, ex in enumerate(extractors):
            if ex.patterns is None:
                self.always.append((e, -1))
                continue
            for p, (_, needs) in enumerate(ex.patterns):
                if not needs:
                    self.always.append((e, p))
                    continue
                for literal in needs[0] if len(needs) == 1 else max(needs, key=_strength):
                    self.anchors.setdefault(literal, []).append((e, p))
        #: each anchor of three characters or more → its rarest three among the anchors'
        #: (a URL holds few of them, and then few anchors hold its). Counting them is
        #: most of the building (40 ms a start): the cache file keeps them.
        self.rarest = _rarest(self.anchors) if rarest is None else rarest
        self.by_trigram: dict[str, list[tuple[str, list[tuple[int, int]]]]] = {}
        self.short: list[tuple[str, list[tuple[int, int]]]] = []  # anchors of one or two
        for literal, where in self.anchors.items():
            if len(literal) < 3:
                self.short.append((literal, where))
            else:
                self.by_trigram.setdefault(self.rarest[literal], []).append((literal, where))
        self._compiled: dict[str, re.Pattern[str]] = {}

    def candidates(self, url: str) -> Iterator[tuple[int, int]]:
        """(extractor, pattern) pairs that could match `url`, in yt-dlp's order."""
        low = url.lower() if url.isascii() else url.translate(_FOLD)
        found = set(self.always)
        for trigram in _trigrams(low):
            for literal, where in self.by_trigram.get(trigram, ()):
                if literal in low:
                    found.update(where)
        for literal, where in self.short:
            if literal in low:
                found.update(where)
        for e, p in sorted(found):
            if p < 0:
                yield e, p
                continue
            needs = self.extractors[e].patterns[p][1]  # type: ignore[index]
            if all(any(x in low for x in clause) for clause in needs):
                yield e, p

    def matches(self, pattern: str, url: str) -> bool:
        compiled = self._compiled.get(pattern)
        if compiled is None:
            with _lock:  # once, not by every worker at the same time (PeerTube's: 70 ms)
                compiled = self._compiled.get(pattern) or re.compile(pattern)  # as yt-dlp
                self._compiled[pattern] = compiled
        return compiled.match(url) is not None

    def first_claim(self, url: str) -> str | None:
        """The name of the first extractor that claims `url`, None when none does."""
        asked: set[int] = set()
        for e, p in self.candidates(url):
            if e in asked:
                continue
            ex = self.extractors[e]
            if p >= 0 and not self.matches(ex.patterns[p][0], url):  # type: ignore[index]
                continue
            asked.add(e)  # its other patterns need no asking
            if ex.own_suitable or ex.patterns is None:
                ie = _classes().get(ex.name)
                if ie is None:
                    raise _Stale(ex.name)
                if ie.suitable(url) and ie.working():
                    return ex.name
            elif ex.working:
                return ex.name
        return None


def _trigrams(text: str) -> set[str]:
    return {text[i : i + 3] for i in range(len(text) - 2)}


def _rarest(anchors: Iterable[str]) -> dict[str, str]:
    """Each literal of three characters or more → the three of its characters that the
    fewest of `anchors` hold. Any three of a literal's are sound (a URL holding it holds
    them all); the rarest wake the fewest literals to test."""
    held = {literal: _trigrams(literal) for literal in anchors if len(literal) >= 3}
    holding: dict[str, int] = {}  # three characters → how many anchors hold them
    for trigrams in held.values():
        for trigram in trigrams:
            holding[trigram] = holding.get(trigram, 0) + 1
    return {literal: min(trigrams, key=holding.__getitem__) for literal, trigrams in held.items()}


#: Letters as a case-insensitive pattern's ASCII letter sees them: A-Z, and the four
#: beyond ASCII that Python's `re` matches to one (İ ı ſ, the Kelvin sign); any other is no
#: ASCII letter's (the needs hold ASCII only). Not str.lower(): `İ` would become two.
_FOLD = str.maketrans(
    {
        **{chr(c): chr(c + 32) for c in range(65, 91)},
        "\u0130": "i",
        "\u0131": "i",
        "\u017f": "s",
        "\u212a": "k",
    }
)


def extractor_for(url: str) -> str | None:
    """The name of the specific (non-generic) yt-dlp extractor that claims `url`, if any:
    the first in yt-dlp's own order that is working, as `yt-dlp URL` would choose (its
    plugins left out, as `xdl fetch` does not load them)."""
    used = index()
    try:
        return used.first_claim(url)
    except (_Stale, re.error) as e:  # a cache that is not this yt-dlp's: made again
        log.debug("the extractor index is stale (%s): building it again", e)
        return rebuilt(used).first_claim(url)


class _Stale(Exception):
    """The index names an extractor the installed yt-dlp has not."""


_index: Index | None = None
_lock = threading.RLock()


def index() -> Index:
    """The index of this process: read from the cache file when it was made for the
    installed yt-dlp, else built (~0.8 s, importing yt-dlp) and kept for next time."""
    global _index
    with _lock:
        if _index is None:
            key = installed_key()
            _index = _read(cache_path(), key) if key is not None else None
            if _index is None:
                _index = Index(build())
                if key is not None:
                    _write(cache_path(), key, _index)
        return _index


def rebuilt(stale: Index) -> Index:
    """The index built afresh (once: another thread may have done it already)."""
    global _index
    with _lock:
        if _index is stale or _index is None:
            _index = Index(build())
            if (key := installed_key()) is not None:
                _write(cache_path(), key, _index)
        return _index


def cache_path() -> Path:
    from .paths import cache_dir

    return cache_dir() / CACHE_NAME


def installed_key() -> list[Any] | None:
    """What the index depends on: the files yt-dlp lists its extractors in (path, size,
    mtime), Python's regex parser, this format. None when yt-dlp cannot be found."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("yt_dlp")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(next(iter(spec.submodule_search_locations)))
    stats: list[Any] = []
    for name in ("version.py", "extractor/lazy_extractors.py", "extractor/_extractors.py"):
        try:
            st = (root / name).stat()
        except OSError:
            stats.append(None)
        else:
            stats.append([str(root / name), st.st_size, st.st_mtime_ns])
    flags = os.environ.get("YTDLP_NO_LAZY_EXTRACTORS", "")
    if flags or stats[1] is None:  # the patterns are read from the modules themselves
        try:
            with os.scandir(root / "extractor") as entries:
                stats.append(max(e.stat().st_mtime_ns for e in entries if e.name.endswith(".py")))
        except (OSError, ValueError):
            return None
    return [FORMAT, list(sys.version_info[:2]), flags, stats]


def _read(path: Path, key: list[Any]) -> Index | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if not _is_plain(st.st_mode) or st.st_size > _MAX_CACHE:
                return None
            data = json.loads(f.read(_MAX_CACHE + 1))
        if not isinstance(data, dict) or data.get("key") != key:
            return None
        if not isinstance(data["rarest"], dict):  # (None would be counted at every start)
            raise TypeError("no trigrams")
        index = Index([_from_json(item) for item in data["extractors"]], data["rarest"])
        if not all(
            type(trigram) is str and len(trigram) == 3 and trigram in literal  # sound
            for literal, trigram in index.rarest.items()
        ):
            raise TypeError("a malformed trigram")
        return index
    except (OSError, ValueError, TypeError, KeyError, IndexError, RecursionError) as e:
        log.debug("%s: not a usable extractor index (%s): building it again", path, e)
        return None


def _is_plain(mode: int) -> bool:
    import stat

    return stat.S_ISREG(mode)


def _from_json(item: Any) -> Extractor:
    name, working, own, patterns = item
    if not isinstance(name, str) or not isinstance(working, bool) or not isinstance(own, bool):
        raise TypeError("a malformed extractor")
    if patterns is None:
        return Extractor(name, working, own, None)
    kept = []
    for text, wanted in patterns:
        clauses = tuple(tuple(_literal(x) for x in clause) for clause in wanted)
        if not isinstance(text, str) or not all(clauses):
            raise TypeError("a malformed pattern")
        kept.append((text, clauses))
    return Extractor(name, working, own, tuple(kept))


def _literal(x: Any) -> str:
    if not isinstance(x, str) or not x or not x.isascii() or x != x.lower():
        raise TypeError("a malformed literal")
    return x


def _write(path: Path, key: list[Any], index: Index) -> None:
    """Atomically, beside it (never through a link planted at its name); a cache that
    cannot be written is only time lost."""
    data = {
        "key": key,
        "extractors": [[x.name, x.working, x.own_suitable, x.patterns] for x in index.extractors],
        "rarest": index.rarest,
    }
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _drop_leftovers(path.parent)
        fd, tmp = tempfile.mkstemp(prefix=".extractors.", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, separators=(",", ":"))
        os.replace(tmp, path)
        tmp = None
    except OSError as e:
        log.debug("could not keep the extractor index in %s: %s", path, e)
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def _drop_leftovers(folder: Path) -> None:
    """Temporary files of a writer killed before its rename (an hour old: not a live one)."""
    import time

    old = time.time() - 3600
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                ours = entry.name.startswith(".extractors.")
                if ours and entry.stat(follow_symlinks=False).st_mtime < old:
                    os.unlink(entry.path)
    except OSError:
        pass


def build() -> list[Extractor]:
    """Every specific extractor of the installed yt-dlp, in its order, with the literal
    needs of each URL pattern."""
    from yt_dlp.utils import variadic

    defaults = _default_suitables()
    out: list[Extractor] = []
    for name, ie in _classes().items():
        own = getattr(ie.suitable, "__func__", None) not in defaults
        working = bool(ie.working())
        if own and not _narrows_own_pattern(ie, defaults):
            out.append(Extractor(name, working, own, None))
            continue
        if not ie._VALID_URL:  # None or False: the class claims no URL
            if own:
                out.append(Extractor(name, working, own, None))
            continue
        patterns = tuple((p, needs(p)) for p in variadic(ie._VALID_URL))
        out.append(Extractor(name, working, own, patterns))
    return out


_classes_cache: dict[str, Any] | None = None


def _classes() -> dict[str, Any]:
    """yt-dlp's own specific extractor classes by name, in its order (importing yt-dlp).
    Not its plugins': whether they are there depends on what ran before in the process
    (yt-dlp loads them when a YoutubeDL is made), and the index must not."""
    global _classes_cache
    if _classes_cache is None:
        import yt_dlp.extractor
        from yt_dlp.extractor import extractors as builtin

        lookup = getattr(builtin, "_CLASS_LOOKUP", None)
        classes = lookup.values() if lookup else yt_dlp.extractor.gen_extractor_classes()
        found: dict[str, Any] = {}
        for ie in classes:
            name = str(ie.ie_key())
            if name != "Generic":
                found.setdefault(name, ie)
        _classes_cache = found
    return _classes_cache


def _default_suitables() -> set[Any]:
    from yt_dlp.extractor.common import InfoExtractor

    found = {InfoExtractor.suitable.__func__}
    try:
        from yt_dlp.extractor.lazy_extractors import LazyLoadExtractor
    except ImportError:  # yt-dlp built without its lazy extractors
        pass
    else:
        found.add(LazyLoadExtractor.suitable.__func__)
    return found


# ---- what a pattern needs ---------------------------------------------------------------


def needs(pattern: str) -> tuple[tuple[str, ...], ...]:
    """The literal needs of a regex pattern (compiled without flags, as yt-dlp does): each
    a tuple of lower-case ASCII strings, one of which is in any text it matches. Empty
    when nothing is known."""
    try:
        parsed: Any = _sre_parse.parse(pattern)
    except Exception:  # a pattern Python's parser refuses: yt-dlp's own problem
        return ()
    try:
        return tuple(tuple(sorted(c)) for c in _clauses(parsed))
    except RecursionError:
        return ()


_REPEATS = (_sre.MAX_REPEAT, _sre.MIN_REPEAT, getattr(_sre, "POSSESSIVE_REPEAT", None))


def _clauses(seq: Iterable[tuple[Any, Any]]) -> list[frozenset[str]]:
    """The needs of a parsed sequence: runs of literal characters; what a required group
    or a repeat of at least one needs; for an alternation, one need of each alternative
    (any of them will do)."""
    out: list[frozenset[str]] = []
    run: list[str] = []

    def end_run() -> None:
        if run:
            out.append(frozenset(["".join(run).lower()]))
            run.clear()

    for op, av in seq:
        if op is _sre.LITERAL and av < 128:
            run.append(chr(av))
            continue
        if op is _sre.IN and (letter := _one_letter(av)):  # [yY]
            run.append(letter)
            continue
        if op is _sre.AT:  # ^, $, \b: no character between the literals around it
            continue
        end_run()
        if op is _sre.SUBPATTERN:
            out += _clauses(av[-1])
        elif op in _REPEATS and av[0] >= 1:
            out += _clauses(av[2])
        elif op is _sre.BRANCH:
            picks: list[frozenset[str]] = []
            for alternative in av[1]:
                found = _clauses(alternative)
                if not found:
                    picks = []
                    break
                picks.append(max(found, key=_strength))
            if picks:
                out.append(frozenset().union(*picks))
        # anything else (a class, `.`, a back reference, a lookaround) needs nothing
    end_run()
    return out


def _one_letter(members: list[tuple[Any, Any]]) -> str | None:
    """The letter a class of its two cases stands for (`[yY]`: y), else None."""
    chars = set()
    for op, av in members:
        if op is not _sre.LITERAL or av >= 128:
            return None
        chars.add(chr(av).lower())
    return chars.pop() if len(chars) == 1 else None


def _strength(clause: Iterable[str]) -> int:
    """How rare a need is in URLs: its shortest literal's length, none for a piece of
    what most URLs start with (`http`, `://`, `www.`)."""
    return min(0 if x in "https://www." else len(x) for x in clause)


# ---- a `suitable` of an extractor's own ---------------------------------------------------


def _narrows_own_pattern(ie: Any, defaults: set[Any]) -> bool:
    """Whether `ie.suitable(url)` can be true only when its own `_VALID_URL` matches:
    every `suitable` from the class up to yt-dlp's default returns False, a call to the
    default (`super().suitable(url)`, `cls._match_valid_url(url)`) or what only that makes
    true (`x and super()...`, `False if x else super()...`). Read from their source."""
    for klass in ie.__mro__:
        method = klass.__dict__.get("suitable")
        if method is None:
            continue
        func = getattr(method, "__func__", method)
        if func in defaults:
            return True
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
        except (OSError, TypeError, SyntaxError):
            return False
        fn = tree.body[0] if tree.body else None
        if not isinstance(fn, ast.FunctionDef) or len(fn.args.args) != 2:
            return False
        url = fn.args.args[1].arg
        returns = [n for n in ast.walk(fn) if isinstance(n, ast.Return)]
        if not all(_only_when_matched(r.value, url) for r in returns):
            return False
        if any(isinstance(n, (ast.Lambda, ast.FunctionDef)) and n is not fn for n in ast.walk(fn)):
            return False
    return False


def _only_when_matched(expr: ast.expr | None, url: str) -> bool:
    if expr is None:
        return True  # a bare `return`: None
    if isinstance(expr, ast.Constant):
        return not expr.value
    if isinstance(expr, ast.BoolOp):
        parts = [_only_when_matched(v, url) for v in expr.values]
        return any(parts) if isinstance(expr.op, ast.And) else all(parts)
    if isinstance(expr, ast.IfExp):
        return _only_when_matched(expr.body, url) and _only_when_matched(expr.orelse, url)
    if isinstance(expr, ast.Compare):  # cls._match_valid_url(url) is not None
        return (
            len(expr.ops) == 1
            and isinstance(expr.ops[0], ast.IsNot)
            and isinstance(expr.comparators[0], ast.Constant)
            and expr.comparators[0].value is None
            and _asks_own_pattern(expr.left, url)
        )
    return _asks_own_pattern(expr, url)


def _asks_own_pattern(expr: ast.expr, url: str) -> bool:
    """`super().suitable(url)`, `super(X, cls).suitable(url)` or
    `cls._match_valid_url(url)`."""
    if not (
        isinstance(expr, ast.Call)
        and isinstance(expr.func, ast.Attribute)
        and len(expr.args) == 1
        and not expr.keywords
        and isinstance(expr.args[0], ast.Name)
        and expr.args[0].id == url
    ):
        return False
    owner, attr = expr.func.value, expr.func.attr
    if attr == "suitable":
        return (
            isinstance(owner, ast.Call)
            and isinstance(owner.func, ast.Name)
            and owner.func.id == "super"
        )
    return attr == "_match_valid_url" and isinstance(owner, ast.Name) and owner.id == "cls"
