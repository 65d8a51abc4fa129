"""`extractor_for` picks the same extractor yt-dlp's own loop would (every class asked
`suitable(url)` in yt-dlp's order), only faster: a wrong answer sends a YouTube URL to the
plain-file path or a plain file through yt-dlp."""

from __future__ import annotations

import pytest
import yt_dlp

from xdl.core import ytdlp


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
    assert ytdlp.extractor_for(url) == asked_one_by_one(url)


def test_well_known_sites_are_claimed_and_plain_files_are_not() -> None:
    """The comparison above cannot pass by both sides answering None everywhere."""
    assert ytdlp.extractor_for("https://www.youtube.com/watch?v=BaW_jenozKc") == "Youtube"
    assert ytdlp.extractor_for("https://vimeo.com/56015672") == "Vimeo"
    assert ytdlp.extractor_for("http://127.0.0.1:8080/t/r000001.txt") is None


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


def test_the_host_prefilter_never_changes_an_answer() -> None:
    """Only the extractors whose patterns could name a URL's host are asked: on every URL
    yt-dlp tests its extractors with, the answer is that of asking all of them."""
    urls = every_test_url()
    assert len(urls) > 3000
    everything = ytdlp._url_matchers()
    differ = [u for u in urls if ytdlp.extractor_for(u) != ytdlp._first_claim(u, everything)]
    assert differ == []
    # and it does prune: a host no pattern names is matched against a minority
    assert len(ytdlp._by_host("http://127.0.0.1:8080/f.bin")) < len(everything) / 2
