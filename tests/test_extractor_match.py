"""`extractor_for` picks the same extractor yt-dlp's own loop would (every class asked
`suitable(url)` in yt-dlp's order), only faster: a wrong answer sends a YouTube URL to the
plain-file path or a plain file through yt-dlp."""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yt_dlp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from yt_dlp.utils import variadic

from xdl.core import extractors


def asked_one_by_one(url: str) -> str | None:
    """The answer the slow way, as yt-dlp's extract_info chooses."""
    for ie in yt_dlp.extractor.gen_extractor_classes():
        name = ie.ie_key()
        if name != "Generic" and ie.suitable(url) and ie.working():
            return str(name)
    return None


URLS = [
    # sites whose extractors have a `suitable` of their own, that defer to each other
    "https://www.youtube.com/watch?v=BaW_jenozKc",
    "https://youtu.be/BaW_jenozKc",
    "https://www.youtube.com/playlist?list=PLwiyx1dc3P2JR9N8gQaQN_BCvlSlap7re",
    "https://www.youtube.com/watch?v=BaW_jenozKc&list=PLwiyx1dc3P2JR9N8gQaQN_BCvlSlap7re",
    "https://www.youtube.com/@PhilippHagemeister/videos",
    "https://www.twitch.tv/shroomztv",
    "https://www.bbc.co.uk/programmes/b039g8p7",
    "https://www.npostart.nl/zondag-met-lubach/VPWON_1250334",
    # extractors with several patterns, or very long ones
    "https://peertube.cpy.re/videos/watch/2790feb0-8120-4e63-9af3-c943c69f5e6c",
    "https://vimeo.com/56015672",
    "https://player.vimeo.com/video/56015672",
    "https://soundcloud.com/ethmusic/lostin-powers-she-so-heavy",
    "https://www.dailymotion.com/video/x5kesuj",
    "https://archive.org/details/XD300-23_68HighlightsAResearchCntAugHumanIntellect",
    "https://twitter.com/freethenipple/status/643211948184596480",
    "https://www.reddit.com/r/videos/comments/6rrwyj/that_small_heart_attack/",
    # what no specific extractor claims: the generic path
    "http://127.0.0.1:8080/t/r000001.txt",
    "http://127.0.0.1:43210/media/clip.mp4",
    "https://example.com/some/page.html",
    "https://downloads.example.org/file.zip?token=abc",
    "ftp://example.net/file.bin",
    "not a url at all",
    "",
]


@pytest.mark.parametrize("url", URLS)
def test_the_same_extractor_as_asking_each_class(url: str) -> None:
    assert extractors.extractor_for(url) == asked_one_by_one(url)


def test_well_known_sites_are_claimed_and_plain_files_are_not() -> None:
    """The comparison above cannot pass by both sides answering None everywhere."""
    assert extractors.extractor_for("https://www.youtube.com/watch?v=BaW_jenozKc") == "Youtube"
    assert extractors.extractor_for("https://vimeo.com/56015672") == "Vimeo"
    assert extractors.extractor_for("http://127.0.0.1:8080/t/r000001.txt") is None


def every_test_url() -> list[str]:
    """The URLs of yt-dlp's own test cases, for every extractor (thousands of real sites)."""
    urls: list[str] = []
    for ie in yt_dlp.extractor.gen_extractor_classes():
        try:
            cases = list(ie.get_testcases(include_onlymatching=True))
        except Exception:
            continue
        urls += [case["url"] for case in cases if isinstance(case.get("url"), str)]
    return urls


@pytest.mark.slow
def test_the_prefilter_never_changes_an_answer() -> None:
    """Only the patterns whose literal needs a URL meets are tried. On every URL yt-dlp
    tests its extractors with, every pattern is tried too (compiled): the first claim in
    yt-dlp's order is the same, and wherever a pattern matches, the URL holds one literal
    of each of its needs (soundness, pattern by pattern)."""
    urls = every_test_url()
    assert len(urls) > 3000
    lows = [u.lower() for u in urls]
    index = extractors.index()
    defaults = extractors._default_suitables()
    first: dict[int, str] = {}  # URL number -> the first extractor that claims it
    unmet = []
    names = []
    for name, ie in extractors._classes().items():  # pattern by pattern: a tight loop
        names.append(name)
        own = getattr(ie.suitable, "__func__", None) not in defaults
        claims: set[int] = set()
        for pattern in variadic(ie._VALID_URL or ()):
            match, needs = re.compile(pattern).match, extractors.needs(pattern)
            hits = [i for i, url in enumerate(urls) if match(url)]
            claims.update(hits)
            unmet += [
                (name, urls[i], c)
                for i in hits
                if urls[i].isascii()
                for c in needs
                if not any(x in lows[i] for x in c)
            ]
        if own:  # its own `suitable` narrows what its patterns match
            claims = {i for i in claims if i not in first and ie.suitable(urls[i])}
        if ie.working():
            for i in claims:
                first.setdefault(i, name)
    differ = [u for i, u in enumerate(urls) if extractors.extractor_for(u) != first.get(i)]
    assert differ == []
    assert unmet == []
    assert len(first) > 3000  # and it is not None everywhere
    assert {x.name for x in index.extractors} <= set(names)


def test_a_plain_file_url_wakes_few_patterns() -> None:
    """It prunes: of ~2,000 patterns, a file server's URL is matched against a handful."""
    index = extractors.index()
    woken = list(index.candidates("http://127.0.0.1:8080/files/f0001.bin"))
    assert len(woken) < 12
    assert sum(len(x.patterns or ()) for x in index.extractors) > 1500


@pytest.mark.parametrize(
    ("pattern", "needs"),
    [
        (r"https?://(?:www\.)?vimeo\.com/(?P<id>\d+)", [("http",), ("://",), ("vimeo.com/",)]),
        (r"https?://(?:foo|bar)\.tv/", [("http",), ("://",), ("bar", "foo"), (".tv/",)]),
        (r"(?i)https?://YouTube\.com", [("http",), ("://youtube.com",)]),
        (r"https?://[yY][oO][uU]tube\.com", [("http",), ("://youtube.com",)]),
        (r"(?x) https?:// example \. org  # a comment", [("http",), ("://example.org",)]),
        (r"https?://(?:ab|)cd", [("http",), ("://",), ("cd",)]),  # an empty alternative
        (r"(?:ab)+cd", [("ab",), ("cd",)]),
        (r"(?:ab)*cd", [("cd",)]),
        (r"a(?=bc)bcd", [("a",), ("bcd",)]),
        (r"abc|def", [("abc", "def")]),
        (r"caf\u00e9s", [("caf",), ("s",)]),  # a run ends at a character beyond ASCII
        (r"[0-9]+", []),
        ("(unbalanced", []),
    ],
)
def test_needs_of_a_pattern(pattern: str, needs: list[tuple[str, ...]]) -> None:
    assert list(extractors.needs(pattern)) == needs


@functools.cache
def short_patterns() -> list[str]:
    return sorted({p for ex in extractors.build() for p, _ in ex.patterns or () if len(p) < 400})


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_needs_hold_for_any_text_a_real_pattern_matches(data: st.DataObject) -> None:
    """Fuzzed: text generated to match one of yt-dlp's own patterns meets its needs."""
    pattern = data.draw(st.sampled_from(short_patterns()))
    text = data.draw(st.from_regex(pattern))
    if not text.isascii() or re.match(pattern, text) is None:
        return
    low = text.lower()
    assert all(any(x in low for x in clause) for clause in extractors.needs(pattern))


def test_every_suitable_of_its_own_is_read_and_narrows_its_pattern() -> None:
    """yt-dlp's ~80 extractors with a `suitable` of their own each defer to their pattern
    (else they would be asked of every URL, importing yt-dlp)."""
    index = extractors.index()
    own = [x for x in index.extractors if x.own_suitable]
    assert len(own) > 50
    assert [x.name for x in own if x.patterns is None] == []


@pytest.mark.parametrize(
    ("source", "narrows"),
    [
        ("return False if X.suitable(url) else super().suitable(url)", True),
        ("return cls._match_valid_url(url) and not X.suitable(url)", True),
        ("return cls._match_valid_url(url) is not None", True),
        ("if x(url):\n        return False\n    return super().suitable(url)", True),
        ("return True", False),
        ("return X.suitable(url) or super().suitable(url)", False),
        ("return super().suitable(url.lower())", False),
        ("return not super().suitable(url)", False),
        ("f = lambda: True\n    return super().suitable(url)", False),
    ],
)
def test_reading_a_suitable_of_its_own(source: str, narrows: bool) -> None:
    namespace: dict[str, Any] = {}
    code = "class Base:\n  @classmethod\n  def suitable(cls, url): return True\n"
    code += f"class IE(Base):\n  @classmethod\n  def suitable(cls, url):\n    {source}\n"
    path = Path(__file__).parent / "_suitable_probe.py"
    # inspect reads the source from a file: the class is made from one
    namespace["__file__"] = str(path)
    import linecache

    linecache.cache[str(path)] = (len(code), None, code.splitlines(True), str(path))
    try:
        exec(compile(code, str(path), "exec"), namespace)
        base = namespace["Base"].suitable.__func__
        assert extractors._narrows_own_pattern(namespace["IE"], {base}) is narrows
    finally:
        linecache.cache.pop(str(path), None)


def run_fresh(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=os.environ, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_plain_file_url_is_answered_without_importing_yt_dlp() -> None:
    """With the index kept (conftest's, as after a first run), telling that no site's
    extractor claims a file's URL costs no `import yt_dlp` (a third of a second)."""
    out = run_fresh(
        "import sys; from xdl.core.extractors import extractor_for as f;"
        "print(f('http://127.0.0.1:1/f.bin'), 'yt_dlp' in sys.modules,"
        " f('https://vimeo.com/56015672'))"
    )
    assert out == "None False Vimeo"


@pytest.mark.parametrize(
    "plant",
    [
        "garbage",
        "wrong key",
        "bad literal",
        "bad trigram",
        "no trigrams",
        "null trigrams",
        "huge",
        "directory",
    ],
)
def test_a_bad_index_file_is_built_again(xdl_env: Path, plant: str) -> None:
    path = xdl_env / "cache" / extractors.CACHE_NAME
    kept = json.loads(path.read_text())
    path.unlink()
    if plant == "garbage":
        path.write_bytes(b"\x00{not json")
    elif plant == "wrong key":
        path.write_text(json.dumps({**kept, "key": [0]}))
    elif plant == "bad literal":  # an upper-case need would wrongly rule URLs out
        kept["extractors"][0][3][0][1] = [["YOUTUBE"]]
        path.write_text(json.dumps(kept))
    elif plant == "bad trigram":  # three characters no URL of theirs holds: found by none
        path.write_text(json.dumps({**kept, "rarest": dict.fromkeys(kept["rarest"], "zzz")}))
    elif plant == "no trigrams":
        path.write_text(json.dumps({**kept, "rarest": {}}))
    elif plant == "null trigrams":  # right answers, but counted again at every start
        path.write_text(json.dumps({**kept, "rarest": None}))
    elif plant == "huge":
        with path.open("wb") as f:
            f.truncate(extractors._MAX_CACHE + 1)
    else:
        path.mkdir()
    out = run_fresh(
        "from xdl.core.extractors import extractor_for as f;"
        "print(f('https://www.youtube.com/watch?v=BaW_jenozKc'), f('http://127.0.0.1:1/f.bin'),"
        " f('https://vimeo.com/56015672'))"
    )
    assert out == "Youtube None Vimeo"
    if plant != "directory":
        again = json.loads(path.read_text())
        assert again["key"] == kept["key"]  # made again
        assert again["rarest"].keys() == kept["rarest"].keys()  # (ties: either of the rarest)


def test_the_index_is_never_written_through_a_planted_link(xdl_env: Path, tmp_path: Path) -> None:
    path = xdl_env / "cache" / extractors.CACHE_NAME
    precious = tmp_path / "precious.txt"
    precious.write_text("mine\n")
    path.unlink()
    path.symlink_to(precious)
    out = run_fresh(
        "from xdl.core.extractors import extractor_for as f; print(f('https://vimeo.com/1'))"
    )
    assert out == "Vimeo"
    assert precious.read_text() == "mine\n"
    assert not path.is_symlink() and json.loads(path.read_text())["key"]


def test_an_unwritable_cache_costs_time_only(xdl_env: Path) -> None:
    cache = xdl_env / "cache"
    (cache / extractors.CACHE_NAME).unlink()
    cache.rmdir()
    cache.write_text("a file where the cache folder would be\n")  # root or not: no writing
    out = run_fresh(
        "from xdl.core.extractors import extractor_for as f; print(f('https://vimeo.com/1'))"
    )
    assert out == "Vimeo"
    assert cache.read_text() == "a file where the cache folder would be\n"


@pytest.mark.parametrize(
    "url",
    [
        "https://www.youtube.com/watch?v=BaW_jenozKc&t=%C4%B0",  # İ beyond ASCII in the query
        "https://vimeo.com/56015672#caf\u00e9",
        "http://127.0.0.1:8080/files/\u0444\u0430\u0439\u043b.bin",  # a Cyrillic name
        "https://www.YOUTUBE.com/watch?v=BaW_jenozKc",
        "https://vimeo.\u212aom/56015672",  # the Kelvin sign, which (?i) takes for a k
        "https://\u0131nstagram.com/p/aye83DjauH/",  # dotless ı, which (?i) takes for an i
    ],
)
def test_urls_beyond_ascii_get_the_same_answer(url: str) -> None:
    """Letters beyond ASCII are folded as `re` folds them under (?i), not scanned with
    every pattern: the answer is still yt-dlp's."""
    assert extractors.extractor_for(url) == asked_one_by_one(url)


def test_the_letters_that_re_folds_onto_ascii_are_all_folded() -> None:
    """The fold table is complete: no other character matches an ASCII letter in
    Python's case-insensitive `re` (checked over all of Unicode)."""
    letters = re.compile("[a-z]", re.IGNORECASE)
    beyond = {chr(c) for c in range(128, sys.maxunicode + 1) if letters.fullmatch(chr(c))}
    assert beyond == {"İ", "ı", "ſ", "\u212a"}
    assert all(ch.translate(extractors._FOLD).isascii() for ch in beyond)


def test_an_index_naming_what_yt_dlp_has_not_is_built_again(xdl_env: Path) -> None:
    """An index made where a plugin extractor was loaded (or by another yt-dlp) names a
    class this process has not: it is made again, never a KeyError on every URL; and
    a pattern that does not compile (a hand edit) is the same."""
    path = xdl_env / "cache" / extractors.CACHE_NAME
    kept = json.loads(path.read_text())
    own = next(i for i, x in enumerate(kept["extractors"]) if x[2])  # a suitable of its own
    plugin = ["MyPluginNobodyHas", True, True, None]  # asked on every URL
    broken = [[kept["extractors"][own][0], True, False, [["https?://vimeo\\\\.com/(((", []]]]]
    for planted in ([plugin, *kept["extractors"]], broken + kept["extractors"]):
        path.write_text(json.dumps({**kept, "extractors": planted}))
        out = run_fresh(
            "from xdl.core.extractors import extractor_for as f;"
            "print(f('http://127.0.0.1:1/f.bin'), f('https://vimeo.com/56015672'))"
        )
        assert out == "None Vimeo"
        assert json.loads(path.read_text())["extractors"] == kept["extractors"]


def test_a_killed_writer_s_temporary_files_are_cleared(xdl_env: Path) -> None:
    import os
    import time

    cache = xdl_env / "cache"
    old, new = cache / ".extractors.dead1", cache / ".extractors.live2"
    old.write_text("{")
    new.write_text("{")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    (cache / extractors.CACHE_NAME).unlink()
    assert run_fresh("from xdl.core.extractors import extractor_for as f; print(f('x'))") == "None"
    assert not old.exists() and new.exists()  # a live writer's is left alone
