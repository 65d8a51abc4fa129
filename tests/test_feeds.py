"""Feeds (SPEC §5b): RSS and Atom read as playlists, the pipe equal to the direct fetch,
the archive keyed by feed ids (tracking tokens change every poll), conditional polls."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from xdl.core import feeds


def tags(path: Path) -> dict[str, str]:
    """The file's container tags (ID3 for an MP3) as ffprobe reads them."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format_tags", "-of", "json", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    found = json.loads(out.stdout).get("format", {}).get("tags", {})
    found.pop("encoder", None)
    return {k.lower(): v for k, v in found.items()}


def streams(path: Path) -> list[dict[str, Any]]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-of", "json", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return list(json.loads(out.stdout)["streams"])


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def media_requests(site: Any) -> int:
    return len([r for r in site.log if r.path.startswith("/media/")])


# --- reading feeds --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("3723", 3723.0),
        ("3723.5", 3723.5),
        ("62:03", 3723.0),
        ("1:02:03", 3723.0),
        ("00:00:01", 1.0),
        ("", None),
        ("one hour", None),
        ("1:2:3:4", None),
        (None, None),
    ],
)
def test_itunes_durations_in_seconds(text: str | None, seconds: float | None) -> None:
    assert feeds.parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("content_type", "first", "is_feed"),
    [
        ("application/rss+xml", b"", True),
        ("application/atom+xml; charset=utf-8", b"", True),
        ("text/xml", b'<?xml version="1.0"?>\n<rss version="2.0"><channel>', True),
        ("application/xml", b"\xef\xbb\xbf<?xml version='1.0'?><!-- hi --><feed xmlns=", True),
        ("text/plain", b"<rdf:RDF xmlns='http://purl.org/rss/1.0/'>", True),
        ("application/xml", b'<?xml version="1.0"?><MPD xmlns="urn:mpeg:dash">', False),
        ("text/html", b"<rss version='2.0'>", False),
        ("audio/mpeg", b"ID3", False),
        ("text/xml", b"<svg xmlns='http://www.w3.org/2000/svg'>", False),
    ],
)
def test_a_feed_is_told_by_its_type_and_first_bytes(
    content_type: str, first: bytes, is_feed: bool
) -> None:
    assert feeds.looks_like_feed(content_type, first) is is_feed


RSS_091 = b"""<?xml version="1.0"?><rss version="0.91"><channel><title>Old Show</title>
<item><title>Old one</title><link>http://example.com/1.html</link></item></channel></rss>"""
RSS_10 = b"""<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/">
<channel rdf:about="http://example.com/"><title>RDF Show</title></channel>
<item rdf:about="http://example.com/r1"><title>R one</title><link>http://example.com/r1</link></item>
</rdf:RDF>"""
ATOM_03 = b"""<?xml version="1.0"?><feed version="0.3" xmlns="http://purl.org/atom/ns#">
<title>Atom03 Show</title><entry><title>A03</title><id>tag:example.com,2005:1</id>
<link rel="enclosure" href="http://example.com/a.mp3?x=1" type="audio/mpeg"/>
<issued>2005-01-02T03:04:05Z</issued></entry></feed>"""


@pytest.mark.parametrize(
    ("body", "show", "entry_id", "url"),
    [
        (RSS_091, "Old Show", "http://example.com/1.html", "http://example.com/1.html"),
        (RSS_10, "RDF Show", "http://example.com/r1", "http://example.com/r1"),
        (ATOM_03, "Atom03 Show", "tag:example.com,2005:1", "http://example.com/a.mp3?x=1"),
    ],
)
def test_old_feed_formats_are_read_too(body: bytes, show: str, entry_id: str, url: str) -> None:
    (entry,) = feeds.parse(body, "http://example.com/feed").entries
    assert (entry.playlist, entry.id, entry.url) == (show, entry_id, url)


def test_an_entry_without_a_guid_is_known_by_its_link_then_its_enclosure_path() -> None:
    body = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>S</title>
<item><title>a</title><link>/a.html</link><enclosure url="/a.mp3?t=1" type="audio/mpeg"/></item>
<item><title>b</title><enclosure url="https://cdn.example/b.mp3?sig=9" type="audio/mpeg"/></item>
</channel></rss>"""
    a, b = feeds.parse(body, "https://example.com/feed").entries
    assert (a.id, a.url) == ("https://example.com/a.html", "https://example.com/a.mp3?t=1")
    assert (b.id, b.url) == ("https://cdn.example/b.mp3", "https://cdn.example/b.mp3?sig=9")
    assert a.enclosure is not None and a.enclosure.length is None


def test_info_flat_lists_an_rss_podcast_with_its_metadata(xdl: Any, site: Any) -> None:
    r = xdl("info", "--flat", "--json", site.url("/podcast.xml"))
    assert r.exit_code == 0, r.stderr
    two, one = r.lines
    assert one["url"].startswith(site.url("/media/low.mp3?token="))
    assert one["id"] == "lr-ep-1" and one["title"] == "Episode 1: Low tone"
    assert (one["upload_date"], one["timestamp"]) == ("20251201", 1764576000)
    assert (one["duration"], one["episode_number"]) == (1.0, 1)
    assert one["playlist"] == "Loopback Radio" and one["playlist_index"] == 2
    assert one["description"] == "A 220 Hz tone."
    assert two["description"] == "An 880 Hz tone & nothing else."  # HTML made text
    assert two["uploader"] == "Tone Makers"
    assert two["thumbnail"] == site.url("/media/cover.jpg")
    assert one["enclosure"]["type"] == "audio/mpeg" and one["enclosure"]["length"] == 4486


@pytest.mark.parametrize("path", ["/podcast.atom", "/podcast-atom.xml"])
def test_info_flat_lists_an_atom_feed(xdl: Any, site: Any, path: str) -> None:
    r = xdl("info", "--flat", "--json", site.url(path))
    assert r.exit_code == 0, r.stderr
    assert [x["id"] for x in r.lines] == ["urn:uuid:atom-ep-2", "urn:uuid:atom-ep-1"]
    assert [x["upload_date"] for x in r.lines] == ["20251202", "20251201"]
    assert {x["playlist"] for x in r.lines} == {"Loopback Atom Radio"}
    assert r.lines[0]["url"].startswith(site.url("/media/high.mp3?sig="))


def test_info_describes_a_feed_by_its_first_entry(xdl: Any, site: Any) -> None:
    atom = xdl("info", "--json", site.url("/podcast.atom"))
    assert atom.exit_code == 0, atom.stderr
    (line,) = atom.lines
    assert (line["id"], line["title"]) == ("urn:uuid:atom-ep-2", "Atom Two: High tone")
    assert line["upload_date"] == "20251202"
    rss = xdl("info", "--json", site.url("/podcast.xml"))
    assert rss.lines[0]["id"] == "lr-ep-2"
    assert "__youtubedl_smuggle" not in rss.lines[0]["webpage_url"]


def test_fetch_of_an_atom_feed_downloads_its_enclosures_not_the_xml(xdl: Any, site: Any) -> None:
    r = xdl("fetch", "-o", "out", site.url("/podcast-atom.xml"))
    assert r.exit_code == 0, r.stderr
    assert files_under(Path("out")) == [
        "Atom One_ Low tone [urn_uuid_atom-ep-1].mp3",
        "Atom Two_ High tone [urn_uuid_atom-ep-2].mp3",
    ]
    assert [x["playlist_index"] for x in r.lines] == [1, 2]
    low = Path("out/Atom One_ Low tone [urn_uuid_atom-ep-1].mp3").read_bytes()
    assert low == (Path(__file__).parent / "media" / "low.mp3").read_bytes()


# --- the pipe equals the direct fetch -------------------------------------------------


def test_the_pipe_names_and_tags_files_as_the_direct_fetch(
    xdl: Any, xdl_cmd: Any, site: Any
) -> None:
    feed = site.url("/podcast.xml")
    direct = xdl("fetch", "--profile", "podcast", "--archive", "a1.txt", "-o", "direct", feed)
    assert direct.exit_code == 0, direct.stderr
    listed = xdl("info", "--flat", "--json", feed)
    piped = xdl(
        "fetch", "--profile", "podcast", "--archive", "a2.txt", "-o", "piped", input=listed.stdout
    )
    assert piped.exit_code == 0, piped.stderr
    names = files_under(Path("direct"))
    assert names == [
        "Loopback Radio/2025-12-01 Episode 1_ Low tone [lr-ep-1].mp3",
        "Loopback Radio/2025-12-02 Episode 2_ High tone [lr-ep-2].mp3",
    ]
    assert files_under(Path("piped")) == names
    for name in names:
        assert tags(Path("piped", name)) == tags(Path("direct", name))
    low = tags(Path("direct", names[0]))
    # the feed's date, not the download's (ID3v2.3, as cover art is embedded, keeps the year)
    assert low["title"] == "Episode 1: Low tone" and low["date"] in ("20251201", "2025")
    assert low["artist"] == "Tone Makers" and low["album"] == "Loopback Radio"
    assert low["track"] == "1" and low["comment"] == "A 220 Hz tone."
    assert Path("a1.txt").read_text() == Path("a2.txt").read_text()
    # the profile's promise: MP3 at 128k (the source's own 22.05 kHz), with cover art
    audio, cover = streams(Path("direct", names[0]))
    assert (audio["codec_name"], audio["bit_rate"], audio["sample_rate"]) == (
        "mp3",
        "128000",
        "22050",
    )
    assert cover["disposition"]["attached_pic"] == 1
    # the queue, too: the entry's fields are kept with its task
    added = xdl_cmd("queue", "add", "--profile", "podcast", "--archive", "a3.txt", "-o", "queued",
                    input=listed.stdout.encode())  # fmt: skip
    assert added.exit_code == 0, added.stderr
    ran = xdl_cmd("queue", "run")
    assert ran.exit_code == 0, ran.stderr
    assert files_under(Path("queued")) == names
    for name in names:
        assert tags(Path("queued", name)) == tags(Path("direct", name))


# --- the archive and tracking tokens --------------------------------------------------


@pytest.mark.parametrize("path", ["/podcast.xml", "/podcast.atom"])
def test_a_second_poll_downloads_nothing_though_every_url_changed(
    xdl: Any, site: Any, path: str
) -> None:
    feed = site.url(path)
    first = xdl("info", "--flat", "--json", feed)
    r = xdl("fetch", "--archive", "done.txt", "-o", "out", input=first.stdout)
    assert r.exit_code == 0, r.stderr
    second = xdl("info", "--flat", "--json", feed)
    assert {x["url"] for x in second.lines}.isdisjoint(x["url"] for x in first.lines)
    before = media_requests(site)
    again = xdl("fetch", "--archive", "done.txt", "-o", "out", input=second.stdout)
    assert again.exit_code == 0, again.stderr
    assert [x["skipped"] for x in again.lines] == ["archive", "archive"]
    assert all(Path(x["path"]).exists() for x in again.lines)
    assert media_requests(site) == before
    # and queue add does not queue them again
    added = xdl("queue", "add", "--archive", "done.txt", input=second.stdout)
    assert [x.get("skipped") for x in added.lines] == ["archive", "archive"]


def test_an_unchanged_feed_costs_one_304_and_no_body(xdl: Any, site: Any) -> None:
    feed = site.url("/podcast.xml?n=1")
    first = xdl("fetch", "--archive", "done.txt", "-o", "out", feed)
    assert first.exit_code == 0, first.stderr
    assert len(first.lines) == 2
    before = len(site.log)
    again = xdl("fetch", "--archive", "done.txt", "-o", "out", feed)
    assert again.exit_code == 0, again.stderr
    assert [(x["url"], x["skipped"]) for x in again.lines] == [(feed, "unchanged")]
    asked = site.log[before:]
    assert [(r.path, r.status, r.body) for r in asked] == [("/podcast.xml?n=1", 304, 0)]
    assert "If-None-Match" in asked[0].headers
    # an archive emptied (to fetch everything again) makes the next poll a full one
    Path("done.txt").write_text("")
    full = xdl("fetch", "--archive", "done.txt", "-o", "again", feed)
    assert [x.get("skipped") for x in full.lines] == [None, None]
    assert len(list(Path("again").iterdir())) == 2
    # without an archive nothing is remembered: every entry is listed again
    plain = xdl("fetch", "-o", "out", feed)
    assert [x["skipped"] for x in plain.lines] == ["exists", "exists"]


def test_a_poll_with_a_failed_entry_is_not_remembered(xdl: Any, site: Any) -> None:
    from media_site import PODCAST_RSS, etag_of

    text = PODCAST_RSS.replace("{base}/media/high.mp3", "{base}/404").replace("{n}{m}", "")

    @site.route("/feeds/half-broken.xml")
    def half_broken(r: Any) -> None:
        body = text.replace("{base}", site.base).replace("{n}", "").replace("{m}", "")
        r.send_bytes(body.encode(), "application/rss+xml", etag=etag_of(body.encode()))

    feed = site.url("/feeds/half-broken.xml")
    first = xdl("fetch", "--archive", "done.txt", "-o", "out", feed)
    assert first.exit_code == 1
    assert [x["ok"] for x in first.lines] == [False, True]
    before = len(site.log)
    again = xdl("fetch", "--archive", "done.txt", "-o", "out", feed)
    assert again.exit_code == 1
    assert site.log[before].status == 200  # asked in full: the failed entry is tried again
    assert [x.get("skipped") for x in again.lines] == [None, "archive"]


def test_break_on_existing_stops_at_the_first_archived_entry(xdl: Any, site: Any) -> None:
    feed = site.url("/podcast.xml?n=2")
    newest = xdl("fetch", "--archive", "done.txt", "--playlist-items", "1", "-o", "out", feed)
    assert [x["id"] for x in newest.lines] == ["lr-ep-2-2"]
    before = media_requests(site)
    stopped = xdl("fetch", "--archive", "done.txt", "--break-on-existing", "-o", "out", feed)
    assert stopped.exit_code == 0, stopped.stderr
    assert [(x["id"], x["skipped"]) for x in stopped.lines] == [("lr-ep-2-2", "archive")]
    assert media_requests(site) == before
    # without it the older entry is fetched (a poll of part of a feed is not remembered)
    rest = xdl("fetch", "--archive", "done.txt", "-o", "out", feed)
    assert [(x["id"], x["skipped"]) for x in rest.lines] == [
        ("lr-ep-2-2", "archive"),
        ("lr-ep-1-2", None),
    ]


# --- transcript reads a feed the same way ---------------------------------------------


def test_transcript_reads_a_feed_and_its_podcast_transcripts(xdl: Any, site: Any) -> None:
    feed = site.url("/podcast.xml")
    direct = xdl("transcript", "-o", "direct", feed)
    assert direct.exit_code == 1  # episode 2 has no transcript
    missing, found = direct.lines
    assert missing["error"]["code"] == "no_subtitles" and missing["title"].startswith("Episode 2")
    assert (found["id"], found["lang"], found["words"]) == ("lr-ep-1", "en", 11)
    listed = xdl("info", "--flat", "--json", feed)
    piped = xdl("transcript", "-o", "piped", input=listed.stdout)
    assert files_under(Path("piped")) == files_under(Path("direct")) != []
    markdown = xdl("to-markdown", input=piped.stdout)
    assert [x["ok"] for x in markdown.lines] == [False, True]
    atom = xdl("transcript", "-o", "atom", site.url("/podcast.atom"))
    assert [x["error"]["code"] for x in atom.lines] == ["no_subtitles", "no_subtitles"]


def test_a_feed_entry_line_with_wrong_or_absurd_fields_is_still_one_line(
    xdl: Any, site: Any
) -> None:
    low = site.url("/media/low.mp3")
    lines = [
        {"url": low, "extractor": "feed", "id": "a", "timestamp": 1e300, "episode_number": -1,
         "title": ["t"], "upload_date": "2025", "transcripts": "no", "playlist_id": {"x": 1}},
        {"url": low, "extractor": "feed", "id": "\u0000../../b", "title": "\ud800 \u001b[31m",
         "playlist": "../../etc"},
        {"url": low, "extractor": "feed", "id": {"a": 1}},
    ]  # fmt: skip
    text = "\n".join(json.dumps(line) for line in lines) + "\n"
    text = text.replace('"timestamp": 1e+300', '"timestamp": Infinity')
    r = xdl("fetch", "-o", "out", "--archive", "done.txt", input=text)
    # Infinity and a lone surrogate are no JSON text (SPEC §3): one failed line each; the
    # entry with fields of the wrong types is fetched, its odd fields ignored.
    assert r.exit_code == 1, r.stderr
    assert [x["ok"] for x in r.lines] == [False, False, True]
    assert [x["error"]["code"] for x in r.lines[:2]] == ["bad_input", "bad_input"]
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr
    archive = Path("done.txt").read_text()
    assert "\x00" not in archive and "\x1b" not in archive
    assert "feed - a\n" not in archive
    out = Path("out").resolve()
    assert out in Path(r.lines[2]["path"]).resolve().parents

    # the same absurd fields, but as text: NUL, escapes and `..` never reach a name
    lines[0]["timestamp"] = 1e300
    lines[1]["title"] = "t \u001b[31m"
    text = "\n".join(json.dumps(line) for line in lines) + "\n"
    r = xdl("fetch", "-o", "out2", "--archive", "done2.txt", input=text)
    assert r.exit_code == 0, r.stderr
    assert [x["ok"] for x in r.lines] == [True, True, True]
    archive = Path("done2.txt").read_text()
    assert "\x00" not in archive and "\x1b" not in archive
    assert "feed - a\n" in archive and "feed - ../../b\n" in archive
    out = Path("out2").resolve()
    assert all(out in Path(x["path"]).resolve().parents for x in r.lines)


def test_break_on_existing_stops_a_playlist_of_yt_dlp_too(xdl: Any, site: Any) -> None:
    """A page with two videos is a playlist to yt-dlp; its first entry archived, the
    second is not downloaded with --break-on-existing."""
    from media_site import MP4_180, WEBM_180, video_page

    one = video_page("Two Videos", [MP4_180], []).split("<video", 1)
    second = video_page("x", [WEBM_180], []).split("<video", 1)[1].split("</video>")[0]
    page = one[0] + "<video" + one[1].replace("</video>", "</video>\n<video" + second + "</video>")

    @site.route("/feeds/two-videos.html")
    def two(r: Any) -> None:
        r.send_bytes(page.encode(), "text/html; charset=utf-8")

    url = site.url("/feeds/two-videos.html")
    first = xdl("fetch", "--archive", "done.txt", "--playlist-items", "1", "-o", "out", url)
    assert first.exit_code == 0, first.stderr
    assert len(first.lines) == 1
    stopped = xdl("fetch", "--archive", "done.txt", "--break-on-existing", "-o", "out", url)
    assert stopped.exit_code == 0, stopped.stderr
    assert [x.get("skipped") for x in stopped.lines] == ["archive"]
    assert len(list(Path("out").iterdir())) == 1  # nor the page saved as a file
    rest = xdl("fetch", "--archive", "done.txt", "-o", "out", url)
    assert [x.get("skipped") for x in rest.lines if x["ok"]][-1] is None
    assert len(list(Path("out").iterdir())) == 2
