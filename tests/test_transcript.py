"""`xdl transcript` end to end on the loopback site (real yt-dlp, no internet), and the
choice of track as a pure function."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

import media_site
from xdl.core import errors
from xdl.core.markdown import Layout
from xdl.core.transcript import Track, TranscriptOptions, _item_transcripts, pick, tracks

TTML = b"""<?xml version="1.0" encoding="UTF-8"?>
<tt xmlns="http://www.w3.org/ns/ttml"><body><div>
<p begin="0.5s" end="1.5s">A talk<br/>in TTML.</p>
<p begin="2s" end="3s">Second &amp; last.</p>
</div></body></tt>
"""

CAPTIONS = Path(__file__).parent / "captions"
ROLLING = (CAPTIONS / "fixtures" / "youtube_auto.vtt").read_bytes()
CP1251 = (
    CAPTIONS / "corpus" / "SamsungDForum__JuvoPlayer__media_player_subs_windows-1251.srt"
).read_bytes()

CHAPTERED = (
    "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nWelcome everyone.\n\n"
    "00:01:00.000 --> 00:01:02.000\nNow the details.\n\n"
    "00:02:00.000 --> 00:02:02.000\nThanks for listening.\n"
)


@pytest.fixture
def caption_site(site: Any) -> Any:
    """The loopback site plus a TTML-only page, a page whose track is missing, and a
    chaptered track."""
    page = media_site.video_page("TTML Talk", [media_site.MP4_180], [("en", "/subs/talk.ttml")])
    site.route("/ttml.html")(lambda r: r.send_bytes(page.encode(), "text/html; charset=utf-8"))
    site.route("/subs/talk.ttml")(lambda r: r.send_bytes(TTML, "application/ttml+xml"))
    gone = media_site.video_page("Gone", [media_site.MP4_180], [("en", "/404.vtt")])
    site.route("/gone.html")(lambda r: r.send_bytes(gone.encode(), "text/html; charset=utf-8"))
    site.route("/subs/chaptered.vtt")(lambda r: r.send_bytes(CHAPTERED.encode(), "text/vtt"))
    legacy = media_site.video_page("Legacy", [media_site.MP4_180], [("sr", "/subs/sr.srt")])
    site.route("/legacy.html")(lambda r: r.send_bytes(legacy.encode(), "text/html"))
    site.route("/subs/sr.srt")(lambda r: r.send_bytes(CP1251, "application/x-subrip"))
    rolling = media_site.video_page("Rolling", [media_site.MP4_180], [("en", "/subs/roll.vtt")])
    site.route("/rolling.html")(lambda r: r.send_bytes(rolling.encode(), "text/html"))
    site.route("/subs/roll.vtt")(lambda r: r.send_bytes(ROLLING, "text/vtt"))
    return site


def test_default_is_the_published_vtt(xdl: Any, caption_site: Any) -> None:
    url = caption_site.url("/watch.html")
    ran = xdl("transcript", url)
    assert ran.exit_code == 0, ran.stderr
    (row,) = ran.lines
    assert row["ok"] and row["lang"] == "en" and row["source"] == "manual"
    assert row["format"] == "vtt" and row["id"] and row["title"].startswith("Loopback Clip")
    assert row["words"] == 11 and row["encoding"] == "utf-8"
    path = Path(row["path"])
    assert path.name.endswith(".en.vtt")
    assert path.read_bytes() == media_site.VTT_EN.encode()  # as published, byte for byte


def test_language_choice_and_markdown(xdl: Any, caption_site: Any) -> None:
    url = caption_site.url("/watch.html")
    ran = xdl("transcript", "-l", "fr,es,en", "-F", "md", "--timestamps", url)
    (row,) = ran.lines
    assert row["lang"] == "es" and row["format"] == "md" and row["words"] == 10
    text = Path(row["path"]).read_text()
    assert text == (
        f"# {row['title']}\n\n[00:00:00]({url}?t=0) Hola desde el sitio local. "
        "Este clip dura dos segundos.\n"
    )


def test_all_languages_as_json_cues(xdl: Any, caption_site: Any) -> None:
    ran = xdl(
        "transcript", "-l", "all", "-F", "json", "-o", "subs", caption_site.url("/watch.html")
    )
    assert ran.exit_code == 0
    assert [r["lang"] for r in ran.lines] == ["en", "es"]
    cues = json.loads(Path(ran.lines[1]["path"]).read_text())
    assert cues[0] == {
        "start": 0.0,
        "end": 1.0,
        "speaker": None,
        "text": "Hola desde el sitio local.",
    }
    assert all(Path(r["path"]).parent.name == "subs" for r in ran.lines)


def test_no_subtitles_names_what_exists(xdl: Any, caption_site: Any) -> None:
    ran = xdl(
        "transcript", "-l", "fr", caption_site.url("/watch.html"), caption_site.url("/nosubs.html")
    )
    assert ran.exit_code == 1
    wrong_lang, none = ran.lines
    assert wrong_lang["error"]["code"] == "no_subtitles"
    assert "en, es" in wrong_lang["error"]["message"]
    assert none["error"]["code"] == "no_subtitles"
    assert none["url"].endswith("/nosubs.html")
    assert len(ran.stderr.strip().splitlines()) == 2
    assert list(Path().iterdir()) == []


def test_srt_txt_and_stdout(xdl: Any, caption_site: Any) -> None:
    url = caption_site.url("/watch.html")
    (row,) = xdl("transcript", "-F", "srt", url).lines
    assert Path(row["path"]).read_text() == (
        "1\n00:00:00,000 --> 00:00:01,000\nHello from the loopback site.\n\n"
        "2\n00:00:01,000 --> 00:00:02,000\nThis clip is two seconds long.\n"
    )
    ran = xdl("transcript", "-F", "txt", "--stdout", url)
    assert ran.stdout == "Hello from the loopback site. This clip is two seconds long.\n"
    assert xdl("transcript", "--stdout", url, url).exit_code == 2


def test_an_existing_file_is_kept(xdl: Any, caption_site: Any) -> None:
    url = caption_site.url("/watch.html")
    (first,) = xdl("transcript", "--template", "talk.%(lang)s.%(ext)s", url).lines
    Path(first["path"]).write_text("edited by hand\n")
    (again,) = xdl("transcript", "--template", "talk.%(lang)s.%(ext)s", url).lines
    assert again["skipped"] == "exists" and again["path"] == "talk.en.vtt"
    assert Path("talk.en.vtt").read_text() == "edited by hand\n"


def test_template_folders_are_kept_and_stay_inside(xdl: Any, caption_site: Any) -> None:
    url = caption_site.url("/watch.html")
    ran = xdl(
        "transcript", "-o", "subs", "--template", "%(extractor)s/by-lang/%(lang)s.%(ext)s", url
    )
    assert ran.exit_code == 0, ran.stderr
    (line,) = ran.lines
    assert Path(line["path"]).resolve() == Path("subs/html5/by-lang/en.vtt").resolve()
    assert Path(line["path"]).is_file()
    sneaky = xdl("transcript", "-o", "subs", "--template", "../../%(lang)s.%(ext)s", url)
    assert sneaky.exit_code == 0, sneaky.stderr
    assert Path(sneaky.lines[0]["path"]).resolve() == Path("subs/en.vtt").resolve()
    assert not Path("../en.vtt").exists()


def test_ttml_track_converted_and_a_missing_track(xdl: Any, caption_site: Any) -> None:
    (md,) = xdl("transcript", "-F", "md", caption_site.url("/ttml.html")).lines
    assert Path(md["path"]).read_text().endswith("A talk in TTML. Second & last.\n")
    (vtt,) = xdl("transcript", caption_site.url("/ttml.html")).lines  # no vtt published
    assert Path(vtt["path"]).read_text() == (
        "WEBVTT\n\n00:00:00.500 --> 00:00:01.500\nA talk\nin TTML.\n\n"
        "00:00:02.000 --> 00:00:03.000\nSecond &amp; last.\n"
    )
    ran = xdl("transcript", caption_site.url("/gone.html"))
    assert ran.exit_code == 1
    assert ran.lines[0]["error"]["code"] == "not_found"


def test_a_feed_entry_without_captions_fails_alone(xdl: Any, caption_site: Any) -> None:
    ran = xdl("transcript", "--template", "%(id)s.%(lang)s.%(ext)s", caption_site.url("/feed.xml"))
    assert ran.exit_code == 1
    ok, audio, silent = ran.lines
    assert ok["ok"] and Path(ok["path"]).read_bytes() == media_site.VTT_EN.encode()
    assert audio["error"]["code"] == silent["error"]["code"] == "no_subtitles"
    assert silent["entry"] == caption_site.url("/nosubs.html")
    assert sorted(p.name for p in Path().iterdir()) == [ok["path"]]


def test_transcript_pipes_into_to_markdown(xdl_cmd: Any, caption_site: Any) -> None:
    got = xdl_cmd("transcript", "-l", "all", caption_site.url("/watch.html"))
    assert got.exit_code == 0, got.stderr
    md = xdl_cmd("to-markdown", input=got.stdout.encode())
    assert md.exit_code == 0, md.stderr
    outputs = [Path(r["output"]) for r in md.lines]
    assert [p.read_text() for p in outputs] == [
        "Hello from the loopback site. This clip is two seconds long.\n",
        "Hola desde el sitio local. Este clip dura dos segundos.\n",
    ]


def test_chapters_and_timestamp_links(caption_site: Any) -> None:
    info = {
        "id": "abc",
        "title": "A Chaptered Talk",
        "webpage_url": "https://video.example/watch?v=abc",
        "chapters": [
            {"start_time": 0, "end_time": 60, "title": "Opening"},
            {"start_time": 60, "end_time": 120, "title": "Details"},
            {"start_time": 120, "end_time": 180, "title": "End"},
        ],
        "subtitles": {"en": [{"url": caption_site.url("/subs/chaptered.vtt"), "ext": "vtt"}]},
    }
    options = TranscriptOptions(fmt="md", layout=Layout(timestamps="auto"), write=False)
    (t,) = _item_transcripts("u", info, options)
    link = "https://video.example/watch?v=abc&t="
    assert t.text == (
        "# A Chaptered Talk\n\n## Opening\n\n"
        f"[00:00:01]({link}1) Welcome everyone.\n\n## Details\n\n"
        f"[00:01:00]({link}60) Now the details.\n\n## End\n\n"
        f"[00:02:00]({link}120) Thanks for listening.\n"
    )
    assert t.words == 8 and t.path is None


# --- choosing the track ---------------------------------------------------------------

INFO = {
    "subtitles": {"en-GB": [{"ext": "vtt", "url": "m-en-GB"}], "es": [{"ext": "vtt", "url": "m"}]},
    "automatic_captions": {
        "en": [{"ext": "vtt", "url": "a-en"}],
        "de-orig": [{"ext": "vtt", "url": "a-de"}],
        "fr": [{"ext": "vtt", "url": "a-fr"}],
    },
}


@pytest.mark.parametrize(
    "langs, source, expected",
    [
        (["en"], None, [("en-GB", "manual")]),  # creator-made regional before automatic
        (["en"], "auto", [("en", "auto")]),
        (["fr", "es"], None, [("fr", "auto")]),  # the language order comes first
        (["de"], None, [("de-orig", "auto")]),
        (["all"], None, [("en-GB", "manual"), ("es", "manual")]),
        (["all"], "auto", [("de-orig", "auto")]),  # the original, not machine translations
        (None, None, [("en-GB", "manual")]),
    ],
)
def test_pick(langs: list[str] | None, source: Any, expected: list[tuple[str, str]]) -> None:
    assert [(t.lang, t.source) for t in pick(tracks(INFO), langs, source)] == expected


def test_pick_says_what_exists() -> None:
    with pytest.raises(errors.NoSubtitles) as e:
        pick(tracks(INFO), ["ja"])
    assert e.value.message == (
        "no subtitles in ja; available creator-made: en-GB, es; automatic: de-orig, en, fr"
    )
    with pytest.raises(errors.NoSubtitles, match="the item has none"):
        pick([], ["en"])
    with pytest.raises(errors.NoSubtitles, match="creator-made"):
        pick([Track("en", "auto", [])], None, "manual")


def test_help_has_fields_and_examples(xdl: Any) -> None:
    ran = xdl("transcript", "--help")
    assert "Fields:" in ran.stdout and "Examples:" in ran.stdout and "no_subtitles" in ran.stdout


def test_rolling_captions_on_a_track_are_cleaned_whatever_the_label(
    xdl: Any, caption_site: Any
) -> None:
    """yt-dlp calls a <track> "subtitles" (creator-made): the content says otherwise."""
    url = caption_site.url("/rolling.html")
    ran = xdl("transcript", "-F", "txt", "--stdout", url)
    assert ran.exit_code == 0, ran.stderr
    said = (
        "so today we're going to talk about captions and why they repeat yeah yeah "
        "[Music] [Music] and then the other person speaks about the weather & more"
    )
    assert ran.stdout.split() == said.split(" ")
    ran = xdl("transcript", "-F", "txt", "--stdout", "--no-dedupe", url)
    assert ran.stdout.count("so today we're going to talk about") == 3


@pytest.mark.parametrize(
    "source, want, offered, expected",
    [
        ("auto", "md", ["vtt", "ttml", "srv3", "json3"], "json3"),
        ("auto", "txt", ["vtt", "srv3"], "srv3"),
        ("auto", "vtt", ["vtt", "json3"], "vtt"),  # -F vtt: the site's own file
        ("manual", "md", ["json3", "vtt"], "vtt"),
        ("manual", "md", ["json3"], "json3"),
    ],
)
def test_choose_format(source: Any, want: str, offered: list[str], expected: str) -> None:
    from xdl.core.transcript import choose_format

    track = Track("en", source, [{"ext": ext, "url": ext} for ext in offered])
    assert choose_format(track, want)["ext"] == expected


def test_json3_converted_each_word_once() -> None:
    from xdl.core.transcript import convert

    data = (Path(__file__).parent / "captions" / "fixtures" / "youtube_auto.json3").read_bytes()
    text, caps, _ = convert(data, "txt", Layout())
    assert caps.format == "json3" and caps.duplicates_removed == 0
    said = "so today we're going to talk about captions yeah yeah [Music] [Music] and that's it"
    assert text.split() == said.split(" ")


@pytest.mark.parametrize("fmt", ["vtt", "md"])
@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600)])
def test_transcript_files_honour_the_umask(
    xdl: Any, caption_site: Any, fmt: str, umask: int, mode: int
) -> None:
    old = os.umask(umask)
    try:
        ran = xdl("transcript", "-F", fmt, caption_site.url("/watch.html"))
    finally:
        os.umask(old)
    assert ran.exit_code == 0, ran.stderr
    assert stat.S_IMODE(Path(ran.lines[0]["path"]).stat().st_mode) == mode


@pytest.mark.parametrize("fmt", ["txt", "srt"])
def test_the_line_says_which_encoding_the_track_was_read_in(
    xdl: Any, caption_site: Any, fmt: str
) -> None:
    ran = xdl("transcript", "-F", fmt, "--stdout", caption_site.url("/legacy.html"))
    assert ran.exit_code == 0, ran.stderr
    assert "Жж Зз Кк" in ran.stdout
    ran = xdl("transcript", "-F", fmt, caption_site.url("/legacy.html"))
    (row,) = ran.lines
    assert row["encoding"] == "cp1251" and row["format"] == fmt
    assert "Жж Зз Кк" in Path(row["path"]).read_text(encoding="utf-8")


def test_json3_words_keep_their_own_times() -> None:
    """json3 times every word: `-F json` gives each word's start, and a paragraph that
    starts inside a cue starts at its first word's time (not a guess along the cue)."""
    from xdl.core.transcript import convert

    data = (CAPTIONS / "fixtures" / "youtube_auto.json3").read_bytes()
    text, caps, _ = convert(data, "json", Layout())
    first = json.loads(text)[0]
    assert first["start"] == 0.16 and first["text"] == "so today we're going to talk"
    assert first["words"][:3] == [
        {"start": 0.16, "text": "so"},
        {"start": 0.4, "text": "today"},
        {"start": 0.72, "text": "we're"},
    ]
    assert [c.start for c in caps.cues if c.words] == [c.words[0] for c in caps.cues if c.words]
    md, _, _ = convert(data, "md", Layout(min_words=2, max_words=3, timestamps="auto"))
    # "going" is said at 0.96 s: a guess along the cue (0.16 + 4.48 * 3/6) would say 2.4
    from xdl.core.markdown import paragraphs

    starts = {p.text: round(p.start, 2) for p in paragraphs(caps.cues, Layout(2, 3))}
    assert starts["going to talk"] == 0.96
    assert "[00:00:00] going to talk" in md
