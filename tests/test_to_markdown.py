"""`xdl to-markdown` as a user runs it: files in, .md files and JSON lines out."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

CORPUS = Path(__file__).parent / "captions" / "corpus"
FIXTURES = Path(__file__).parent / "captions" / "fixtures"

VTT = "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n<v Ann>Hello <i>there</i>.\n\n" + (
    "00:00:02.000 --> 00:00:03.000\n<v Ann>How are you?\n"
)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_converts_next_to_the_input(xdl: Any) -> None:
    Path("talk.en.vtt").write_text(VTT)
    ran = xdl("to-markdown", "talk.en.vtt")
    assert ran.exit_code == 0, ran.stderr
    assert Path("talk.en.md").read_text() == "**Ann:** Hello there. How are you?\n"
    (row,) = ran.lines
    assert row == {
        "path": "talk.en.vtt",
        "output": "talk.en.md",
        "ok": True,
        "format": "vtt",
        "encoding": "utf-8",
        "words": 5,
        "paragraphs": 1,
        "avg_words_per_paragraph": 5.0,
        "compression_ratio": round(len(VTT) / len("**Ann:** Hello there. How are you?\n"), 2),
        "speakers": ["Ann"],
        "duplicates_removed": 0,
        "skipped_blocks": 0,
        "segment_headers": 0,
    }
    assert ran.stderr == ""


def test_an_existing_markdown_file_is_never_overwritten_unless_asked(xdl: Any) -> None:
    Path("talk.vtt").write_text(VTT)
    Path("talk.md").write_text("my own notes\n")
    ran = xdl("to-markdown", "talk.vtt")
    assert ran.exit_code == 0
    assert ran.lines[0]["skipped"] == "exists"
    assert Path("talk.md").read_text() == "my own notes\n"
    assert sorted(p.name for p in Path().iterdir()) == ["talk.md", "talk.vtt"]  # no temp left
    ran = xdl("to-markdown", "--overwrite", "talk.vtt")
    assert "skipped" not in ran.lines[0]
    assert Path("talk.md").read_text().startswith("**Ann:**")


def test_output_file_output_dir_and_stdout(xdl: Any) -> None:
    Path("a.vtt").write_text(VTT)
    Path("b.srt").write_text("1\n00:00:01,000 --> 00:00:02,000\nBee.\n")
    ran = xdl("to-markdown", "-o", "out/one.md", "a.vtt")
    assert ran.lines[0]["output"] == "out/one.md"
    assert Path("out/one.md").read_text().startswith("**Ann:**")
    ran = xdl("to-markdown", "--output-dir", "md", "a.vtt", "b.srt")
    assert [r["output"] for r in ran.lines] == ["md/a.md", "md/b.md"]
    assert Path("md/b.md").read_text() == "Bee.\n"
    ran = xdl("to-markdown", "--stdout", "a.vtt", "b.srt")
    assert ran.stdout == "**Ann:** Hello there. How are you?\n\nBee.\n"
    assert not Path("a.md").exists() and not Path("b.md").exists()
    assert xdl("to-markdown", "-o", "x.md", "a.vtt", "b.srt").exit_code == 2
    assert not Path("x.md").exists()


def test_stdin_document_and_json_lines(xdl: Any) -> None:
    ran = xdl("to-markdown", "-", input=VTT)
    assert ran.exit_code == 0
    assert ran.stdout == "**Ann:** Hello there. How are you?\n"
    ran = xdl("to-markdown", input=VTT)  # a caption document piped in, no `-`
    assert ran.stdout == "**Ann:** Hello there. How are you?\n"
    Path("t.vtt").write_text(VTT)
    lines = json.dumps({"url": "https://example.com/v", "path": "t.vtt", "ok": True})
    ran = xdl("to-markdown", input=lines + "\n")
    assert ran.lines[0]["output"] == "t.md"
    assert Path("t.md").exists()


def test_options_change_the_markdown(xdl: Any) -> None:
    Path("t.vtt").write_text(
        "WEBVTT\n\n00:01:05.000 --> 00:01:06.000\n<v Ann>[Music] Hi (laughs).\n"
    )
    ran = xdl(
        "to-markdown",
        "--stdout",
        "--title",
        "My Talk",
        "--timestamps",
        "--no-speakers",
        "--sound-labels",
        "drop",
        "t.vtt",
    )
    assert ran.stdout == "# My Talk\n\n[00:01:05] Hi.\n"


@pytest.mark.parametrize(("min_words", "paragraphs"), [("1", 4), ("6", 2)])
def test_max_words_is_never_below_min_words(xdl: Any, min_words: str, paragraphs: int) -> None:
    """Unpunctuated words break at --max-words; a --max-words below --min-words is
    --min-words."""
    cues = (f"00:00:{i:02d}.000 --> 00:00:{i + 1:02d}.000\nword{i}\n" for i in range(12))
    Path("t.vtt").write_text("WEBVTT\n\n" + "\n".join(cues))
    ran = xdl("to-markdown", "--stdout", "--min-words", min_words, "--max-words", "3", "t.vtt")
    assert ran.exit_code == 0, ran.stderr
    assert len(ran.stdout.strip().split("\n\n")) == paragraphs, ran.stdout


def test_youtube_auto_captions_through_the_command(xdl: Any) -> None:
    Path("auto.vtt").write_bytes((FIXTURES / "youtube_auto.vtt").read_bytes())
    (row,) = xdl("to-markdown", "auto.vtt").lines
    assert row["duplicates_removed"] == 15
    assert Path("auto.md").read_text().count("yeah") == 2
    (row,) = xdl("to-markdown", "--no-dedupe", "--overwrite", "auto.vtt").lines
    assert row["duplicates_removed"] == 0


BOMB = (
    b'<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
    b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
    b'<tt xmlns="http://www.w3.org/ns/ttml"><body><div><p begin="0s" end="1s">&lol3;</p>'
    b"</div></body></tt>"
)
BAD = {
    "empty.vtt": (b"", "empty_file"),
    "binary.vtt": (bytes(range(256)) * 16, "not_captions"),
    "page.vtt": (
        b"<!DOCTYPE html>\n<html><head><title>Watch</title></head><body>"
        b"<!-- player --></body></html>\n",
        "not_captions",
    ),
    "cut.vtt": (b"WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nHello\n\n00:00:03.0", "truncated"),
    "cut.ttml": (
        b'<tt xmlns="http://www.w3.org/ns/ttml"><body><div><p begin="1s" end="2s">Hi</p><p be',
        "truncated",
    ),
    "bomb.ttml": (BOMB, "unsafe_xml"),
    "missing.vtt": (None, "not_found"),
}


def test_bad_inputs_fail_alone_with_a_clear_code(xdl: Any) -> None:
    for name, (data, _) in BAD.items():
        if data is not None:
            Path(name).write_bytes(data)
    Path("good.vtt").write_text(VTT)
    ran = xdl("to-markdown", *BAD, "good.vtt")
    assert ran.exit_code == 1
    rows = {r["path"]: r for r in ran.lines}
    for name, (_, code) in BAD.items():
        assert rows[name]["ok"] is False
        assert rows[name]["error"]["code"] == code, name
        assert not Path(name).with_suffix(".md").exists()
    assert rows["good.vtt"]["ok"] is True
    assert Path("good.md").exists()
    assert len(ran.stderr.strip().splitlines()) == len(BAD)  # one line each, no traceback
    assert "Traceback" not in ran.stderr


def test_an_unwritable_output_dir_stops_with_exit_3(xdl: Any) -> None:
    Path("t.vtt").write_text(VTT)
    Path("file").write_text("not a directory")
    ran = xdl("to-markdown", "--output-dir", "file/sub", "t.vtt")
    assert ran.exit_code == 3
    assert "cannot write" in ran.stderr


def test_no_input_at_a_terminal_is_a_usage_error(xdl: Any) -> None:
    ran = xdl("to-markdown", "-o", "a.md", "--output-dir", "d", "x.vtt")
    assert ran.exit_code == 2


def test_corpus_through_the_real_command_without_yt_dlp(tmp_path: Path) -> None:
    """The console script on every corpus file; yt-dlp and requests are never imported."""
    work = tmp_path / "corpus"
    work.mkdir()
    names = sorted(p.name for p in CORPUS.iterdir() if p.name != "ATTRIBUTION.md")
    for name in names:
        (work / name).write_bytes((CORPUS / name).read_bytes())
    before = {name: sha(work / name) for name in names}
    script = (
        "import sys\nfrom xdl.cli.main import cli\n"
        "code = cli.main(sys.argv[1:], prog_name='xdl', standalone_mode=False)\n"
        "heavy = sorted(m for m in ('yt_dlp', 'requests') if m in sys.modules)\n"
        "print(code, heavy, file=sys.stderr)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, "to-markdown", "--output-dir", "md", *names],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.stderr.strip().splitlines()[-1] == "0 []"
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["path"] for r in rows] == names
    assert all(r["ok"] and r["skipped_blocks"] == 0 and r["words"] > 0 for r in rows)
    assert {name: sha(work / name) for name in names} == before  # inputs untouched


@pytest.mark.parametrize("flag", ["--help"])
def test_help_has_fields_and_examples(xdl: Any, flag: str) -> None:
    ran = xdl("to-markdown", flag)
    assert "Fields:" in ran.stdout and "Examples:" in ran.stdout
    assert "skipped_blocks" in ran.stdout


def test_legacy_code_pages_are_detected_and_can_be_forced(xdl: Any) -> None:
    text = "1\n00:00:01,000 --> 00:00:03,000\nДобро вече, како сте данас?\n\n"
    text += "2\n00:00:03,000 --> 00:00:05,000\nХвала, добро сам. Видимо се сутра.\n"
    Path("sr.srt").write_bytes(text.encode("cp1251"))
    ran = xdl("to-markdown", "--stdout", "sr.srt")
    assert ran.exit_code == 0, ran.stderr
    assert ran.stdout == "Добро вече, како сте данас? Хвала, добро сам. Видимо се сутра.\n"
    ran = xdl("to-markdown", "sr.srt")
    assert ran.lines[0]["encoding"] == "cp1251"
    ran = xdl("to-markdown", "--overwrite", "--encoding", "latin-1", "sr.srt")
    assert ran.lines[0]["encoding"] == "iso8859-1"  # the codec's own name
    assert "Добро" not in Path("sr.md").read_text()
    ran = xdl("to-markdown", "--encoding", "klingon", "sr.srt")
    assert ran.exit_code == 2 and "unknown encoding" in ran.stderr


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o644), (0o077, 0o600)])
def test_markdown_files_honour_the_umask(xdl: Any, umask: int, mode: int) -> None:
    Path("talk.vtt").write_text(VTT)
    old = os.umask(umask)
    try:
        ran = xdl("to-markdown", "talk.vtt")
    finally:
        os.umask(old)
    assert ran.exit_code == 0, ran.stderr
    assert stat.S_IMODE(Path("talk.md").stat().st_mode) == mode


# --- a piece at a time: the same Markdown whatever the size of the pieces ---------------

CAPTION_FILES = sorted(
    p for p in [*CORPUS.iterdir(), *FIXTURES.iterdir()] if p.suffix not in (".md", ".txt")
)


def streamed(data: bytes, chunk: int | None = None, **kw: Any) -> tuple[dict[str, Any], str]:
    """`to-markdown` of `data` read from a pipe (no seeking back), `chunk` characters at
    a time: the result line and the Markdown."""
    import io

    from xdl.core import markdown

    class Pipe(io.RawIOBase):
        def __init__(self) -> None:
            self.data = memoryview(data)

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            n = min(len(buffer), len(self.data), 1000)  # a pipe gives little at a time
            buffer[:n] = self.data[:n]
            self.data = self.data[n:]
            return n

    source = io.BufferedReader(Pipe())
    result, text = markdown.convert_file(
        "-", markdown.MarkdownOptions(markdown.Layout(**kw)), data=source, output="-", chunk=chunk
    )
    return result.to_dict(), text


@pytest.mark.parametrize("path", CAPTION_FILES, ids=lambda p: p.name)
@pytest.mark.parametrize("chunk", [16, 300, 5000])
def test_tiny_pieces_give_the_same_markdown(path: Path, chunk: int) -> None:
    """Cut into pieces of a few characters (so that what the first piece decides is often
    wrong and the file is read again), every file comes out as read whole."""
    from xdl.core import markdown

    data = path.read_bytes()
    try:
        whole, _, _ = markdown.convert(data, markdown.Layout())
    except Exception as e:  # the same error either way
        with pytest.raises(type(e)):
            streamed(data, chunk)
        return
    row, text = streamed(data, chunk)
    assert text == whole
    assert row == streamed(data)[0]
    assert (
        streamed(data, chunk, timestamps="auto")[1]
        == (markdown.convert(data, markdown.Layout(timestamps="auto"))[0])
    )


def rolling(size: int) -> bytes:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    import captions as bench_captions

    return bench_captions.rolling_vtt(size).encode()


@pytest.mark.parametrize("chunk", [997, 4096, 65536, None])
def test_rolling_captions_in_pieces(chunk: int | None) -> None:
    from xdl.core import markdown

    data = rolling(300_000)
    whole, caps, paras = markdown.convert(data, markdown.Layout())
    row, text = streamed(data, chunk)
    assert text == whole
    assert row["duplicates_removed"] == caps.duplicates_removed > 1000
    assert row["words"] == sum(p.count for p in paras)


def test_what_only_a_later_piece_shows_decides_for_the_whole_file() -> None:
    """Creator-made-looking cues first, YouTube's word timings only further on: within
    the first DECIDE_CHARS, the word timings still decide, however small the pieces."""
    from xdl.core import markdown

    plain = "".join(
        f"00:00:{i:02d}.000 --> 00:00:{i:02d}.500\nline number {i}\n\n" for i in range(40)
    )
    data = ("WEBVTT\n\n" + plain).encode() + rolling(20_000)[len(b"WEBVTT\n") :]
    whole, caps, _ = markdown.convert(data, markdown.Layout())
    assert caps.rolling
    assert streamed(data, 200)[1] == whole


def test_the_source_is_read_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the start of a file decides holds for all of it: past DECIDE_CHARS nothing is
    read again (it used to be, up to six times, when a later piece decided otherwise),
    and the cues read before the decision are not lost."""
    import io

    from xdl.core import captions, markdown

    plain = "".join(
        f"00:00:{i:02d}.000 --> 00:00:{i:02d}.500\nline number {i}\n\n" for i in range(40)
    )
    data = ("WEBVTT\n\n" + plain).encode() + rolling(20_000)[len(b"WEBVTT\n") :]
    monkeypatch.setattr(captions.stream, "DECIDE_CHARS", 1000)

    class Once(io.RawIOBase):
        def __init__(self) -> None:
            self.data, self.sent = memoryview(data), 0

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            n = min(len(buffer), len(self.data) - self.sent)
            buffer[:n] = self.data[self.sent : self.sent + n]
            self.sent += n
            return n

    source = Once()
    sink = io.BytesIO()
    done = markdown.render_stream(source, markdown.Layout(), sink, chunk=200)  # type: ignore[arg-type]
    assert source.sent == len(data) == done.source_size
    text = sink.getvalue().decode()
    assert text.startswith("line number 0 line number 1 ")
    assert not done.caps.rolling  # decided by the plain cues it started with


def unusual_rolling(size: int) -> bytes:
    """Rolling captions with, here and there, blocks that are not of the usual shape: an
    identifier, a comment, a blank line inside a cue, markup, an entity, an extra blank
    line, times past 99 hours."""
    text = rolling(size).decode()
    blocks = text.split("\n\n")
    odd = [
        lambda b: "intro\n" + b,
        lambda b: "NOTE a comment\n\n" + b,
        lambda b: b + "\n\nand what follows a blank line",
        lambda b: b + " <i>Tom</i> &amp; Jerry",
        lambda b: b + "\n",
        lambda b: b.replace("00:", "100:", 2),
    ]
    for n in range(40, len(blocks) - 1, 97):
        blocks[n] = odd[n % len(odd)](blocks[n])
    return "\n\n".join(blocks).encode()


@pytest.mark.parametrize("make", [rolling, unusual_rolling])
@pytest.mark.parametrize("chunk", [997, 65536])
def test_a_second_process_reading_ahead_changes_nothing(
    monkeypatch: pytest.MonkeyPatch, make: Any, chunk: int
) -> None:
    """Past PARALLEL_BYTES, a worker process reads the next piece (word timings off, cues
    found) while this one cleans the current one: the same Markdown and counts as the
    file read whole, and the worker is gone afterwards."""
    from xdl.core import captions, markdown
    from xdl.core.captions import worker as caption_worker

    data = make(300_000)
    whole, caps, paras = markdown.convert(data, markdown.Layout(timestamps="auto"))
    received, pids = [], []
    worker = caption_worker.Worker
    recv, start = worker.recv, worker.__init__
    monkeypatch.setattr(worker, "recv", lambda w: received.append(1) or recv(w))
    monkeypatch.setattr(worker, "__init__", lambda w: start(w) or pids.append(w._pid))
    monkeypatch.setattr(captions.reader, "PARALLEL_BYTES", 0)
    monkeypatch.setattr(captions.stream, "DECIDE_CHARS", 4096)  # decided on the first pieces
    row, text = streamed(data, chunk, timestamps="auto")
    assert text == whole
    assert row["duplicates_removed"] == caps.duplicates_removed > 1000
    assert row["skipped_blocks"] == caps.skipped_blocks
    assert row["words"] == sum(p.count for p in paras)
    assert len(received) >= 2
    assert pids and not any(Path(f"/proc/{pid}").exists() for pid in pids)  # reaped


def test_a_file_known_to_be_large_gets_its_worker_at_the_second_piece(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A regular file's size is known before it is read: past PARALLEL_BYTES, the worker
    takes the second piece already (a pipe has to be read that far first)."""
    from xdl.core import captions, markdown
    from xdl.core.captions import worker as caption_worker

    data = rolling(300_000)
    path = tmp_path / "auto.vtt"
    path.write_bytes(data)
    whole, _, _ = markdown.convert(data, markdown.Layout())
    sent: list[int] = []
    worker = caption_worker.Worker
    send = worker.send
    monkeypatch.setattr(worker, "send", lambda w, t: sent.append(len(t)) or send(w, t))
    monkeypatch.setattr(captions.reader, "PARALLEL_BYTES", 200_000)
    monkeypatch.setattr(captions.stream, "DECIDE_CHARS", 4096)  # decided on the first piece
    _, text = markdown.convert_file(str(path), markdown.MarkdownOptions(), output="-", chunk=65536)
    assert text == whole
    pieces = len(data) // 65536
    assert len(sent) >= pieces - 2  # all but the first and the last


def test_a_worker_that_dies_is_done_without(monkeypatch: pytest.MonkeyPatch) -> None:
    import signal

    from xdl.core import captions, markdown
    from xdl.core.captions import worker as caption_worker

    data = rolling(300_000)
    whole, _, _ = markdown.convert(data, markdown.Layout())
    recv = caption_worker.Worker.recv
    calls = []

    def dies(worker: Any) -> Any:
        calls.append(1)
        if len(calls) == 3:
            os.kill(worker._pid, signal.SIGKILL)
            os.waitpid(worker._pid, 0)
        return recv(worker)

    monkeypatch.setattr(caption_worker.Worker, "recv", dies)
    monkeypatch.setattr(captions.reader, "PARALLEL_BYTES", 0)
    monkeypatch.setattr(captions.stream, "DECIDE_CHARS", 4096)
    assert streamed(data, 4096)[1] == whole
    assert len(calls) == 3


def test_ctrl_c_with_a_worker_exits_130_and_leaves_no_process(tmp_path: Path) -> None:
    """Ctrl-C reaches the whole process group: the command says `interrupted` (exit 130),
    the worker ends with it, and no traceback is printed by either."""
    import signal
    import time

    data = rolling(600_000)
    script = (
        "import xdl.core.captions.reader as c; c.PARALLEL_BYTES = 0; c.CHUNK_CHARS = 4096\n"
        "import xdl.core.captions.stream as s; s.DECIDE_CHARS = 4096\n"
        "from xdl.cli.main import main; main()"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script, "to-markdown", "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
        start_new_session=True,
    )
    assert proc.stdin is not None
    proc.stdin.write(data[: len(data) // 2])  # the rest never comes: it waits for more
    proc.stdin.flush()
    children: list[int] = []
    deadline = time.monotonic() + 30
    while not children and time.monotonic() < deadline:
        children = _children(proc.pid)
        time.sleep(0.05)
    assert children, "no worker started"
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err.decode()
    assert err.decode().strip() == "xdl: interrupted"  # as without a worker
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in children):
        assert time.monotonic() < deadline, "the worker outlived the command"
        time.sleep(0.05)


def _children(pid: int) -> list[int]:
    found = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(stat_file.parent.name))
    return found


def test_a_file_that_stops_being_utf8_is_read_on_in_its_encoding() -> None:
    """UTF-8 for the first 256 KiB, CP1252 further on: read once, the CP1252 bytes as
    CP1252 from the first of them; the same whole or a piece at a time."""
    from xdl.core import markdown

    cue = "00:00:01.000 --> 00:00:02.000\nplain words\n\n"
    data = ("WEBVTT\n\n" + cue * 20_000).encode() + cue.replace("plain", "café").encode("cp1252")
    assert len(data) > 2 * 256 * 1024  # past what the first read looks at
    whole, caps, _ = markdown.convert(data, markdown.Layout())
    row, text = streamed(data, 4096)
    assert text == whole and "café" in text
    assert row["encoding"] == caps.encoding == "cp1252"


def test_what_was_read_as_utf8_stays_utf8_when_the_file_stops_being_utf8() -> None:
    """A file joined from a UTF-8 one and a CP1252 one: each part reads as written (the
    whole file used to be read again as CP1252: `naïve` became `naÃ¯ve`)."""

    cue = "00:00:01.000 --> 00:00:02.000\nnaïve words.\n\n"
    data = ("WEBVTT\n\n" + cue * 8_000).encode() + cue.replace("naïve", "café").encode("cp1252")
    assert len(data) > 256 * 1024
    for chunk in (4096, None):
        _, text = streamed(data, chunk)
        assert "naïve" in text and "café" in text and "Ã" not in text


def test_a_file_just_over_the_cap_is_too_large(xdl: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from xdl.core import markdown

    monkeypatch.setattr(markdown, "MAX_CAPTION_BYTES", 4096)
    data = (VTT + "\n" + "x" * 4096).encode()
    Path("fits.vtt").write_bytes(data[:4096])
    Path("over.vtt").write_bytes(data[:4097])
    ran = xdl("to-markdown", "--stdout", "fits.vtt")
    assert ran.exit_code == 0, ran.stderr
    ran = xdl("to-markdown", "over.vtt", "-", input=data[:4097])
    assert [r["error"]["code"] for r in ran.lines] == ["too_large", "too_large"]
    assert "larger than 4 KiB" in ran.lines[0]["error"]["message"]
    assert not Path("over.md").exists()


def test_a_whole_document_format_has_its_own_cap(xdl: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """TTML, json3, srv3 and SBV are parsed whole: at most MAX_DOCUMENT_BYTES of them."""
    from xdl.core import captions

    monkeypatch.setattr(captions, "MAX_DOCUMENT_BYTES", 300_000)
    p = '<p begin="00:00:01.000" end="00:00:02.000">words</p>'
    ttml = f'<tt xmlns="http://www.w3.org/ns/ttml"><body><div>{p * 8000}</div></body></tt>'
    Path("big.ttml").write_text(ttml)
    ran = xdl("to-markdown", "big.ttml")
    assert ran.lines[0]["error"]["code"] == "too_large"
    assert "TTML" in ran.lines[0]["error"]["message"]
    Path("small.ttml").write_text(ttml[:200] + ttml[-30:])
    assert xdl("to-markdown", "small.ttml").exit_code == 0


CHAPTERED = (
    "WEBVTT\n\n00:00:01.000 --> 00:00:03.000\nWelcome everyone.\n\n"
    "00:01:00.000 --> 00:01:03.000\nNow the details.\n\n"
    "00:02:00.000 --> 00:02:03.000\nThanks for listening.\n"
)
INFO = {
    "id": "abc",
    "title": "A Chaptered Talk",
    "webpage_url": "https://video.example/watch?v=abc",
    "chapters": [
        {"start_time": 0, "end_time": 60, "title": "Opening"},
        {"start_time": 60, "end_time": 120, "title": "Details"},
        {"start_time": "soon", "title": "A chapter the site wrote wrong"},
        {"start_time": 120, "end_time": 180, "title": "End"},
    ],
}
LINK = "https://video.example/watch?v=abc&t="
AS_TRANSCRIPT = (
    "# A Chaptered Talk\n\n## Opening\n\n"
    f"[00:00:01]({LINK}1) Welcome everyone.\n\n## Details\n\n"
    f"[00:01:00]({LINK}60) Now the details.\n\n## End\n\n"
    f"[00:02:00]({LINK}120) Thanks for listening.\n"
)


def test_info_json_gives_the_title_chapters_and_links(xdl: Any) -> None:
    """A file fetched earlier with --write-info-json: `--info` makes the same Markdown
    as `xdl transcript -F md --timestamps` made from the site."""
    Path("talk.en.vtt").write_text(CHAPTERED)
    Path("talk.info.json").write_text(json.dumps(INFO))
    ran = xdl("to-markdown", "--info", "talk.info.json", "--timestamps", "talk.en.vtt")
    assert ran.exit_code == 0, ran.stderr
    assert Path("talk.en.md").read_text() == AS_TRANSCRIPT
    plain = xdl("to-markdown", "--info", "talk.info.json", "--stdout", "talk.en.vtt")
    assert "[00:" not in plain.stdout and "## Details\n\nNow the details." in plain.stdout
    titled = xdl("to-markdown", "--info", "talk.info.json", "--title", "Mine", "--stdout",
                 "talk.en.vtt")  # fmt: skip
    assert titled.stdout.startswith("# Mine\n\n## Opening")


def test_a_fetch_line_s_info_json_is_used(xdl: Any) -> None:
    """`xdl fetch --subs --write-info-json URL | xdl to-markdown`: the line lists the
    info.json beside the subtitles, and it is read as --info would be."""
    Path("talk.en.vtt").write_text(CHAPTERED)
    Path("talk.info.json").write_text(json.dumps(INFO))
    line = {
        "url": "https://video.example/watch?v=abc",
        "ok": True,
        "path": "talk.mp4",
        "files": [
            {"path": "talk.mp4", "kind": "media"},
            {"path": "talk.en.vtt", "kind": "subtitles"},
            {"path": "talk.info.json", "kind": "info_json"},
        ],
    }
    ran = xdl("to-markdown", "--timestamps", input=json.dumps(line) + "\n")
    assert ran.exit_code == 0, ran.stderr
    assert Path("talk.en.md").read_text() == AS_TRANSCRIPT


@pytest.mark.parametrize(
    "given, linked",
    [
        (["--timestamps"], True),
        (["--timestamps=auto"], True),
        (["--timestamps", "link"], True),
        (["--timestamps=link"], True),
        (["--timestamps=plain"], False),
        (["--timestamps", "plain"], False),
    ],
)
def test_timestamps_link_to_the_page_unless_plain(xdl: Any, given: list[str], linked: bool) -> None:
    """Each mode, written with `=` or as the next word; `--timestamps FILE` (above) is
    still the option alone and a file."""
    Path("talk.en.vtt").write_text(CHAPTERED)
    Path("talk.info.json").write_text(json.dumps(INFO))
    ran = xdl("to-markdown", "--info", "talk.info.json", *given, "--stdout", "talk.en.vtt")
    assert ran.exit_code == 0, ran.stderr
    if linked:
        assert ran.stdout == AS_TRANSCRIPT
    else:
        assert ran.stdout == AS_TRANSCRIPT.replace(f"]({LINK}1)", "]").replace(
            f"]({LINK}60)", "]"
        ).replace(f"]({LINK}120)", "]")
        assert "](" not in ran.stdout


def test_timestamps_link_without_a_known_page_says_so(xdl: Any) -> None:
    Path("talk.en.vtt").write_text(CHAPTERED)
    ran = xdl("to-markdown", "--timestamps", "link", "--stdout", "talk.en.vtt")
    assert ran.exit_code == 0, ran.stderr
    assert ran.stdout.startswith("[00:00:01] Welcome everyone.")
    assert "no page is known to link its times to" in ran.stderr


def test_a_lines_url_is_the_page_times_link_to(xdl: Any) -> None:
    """`xdl transcript URL | xdl to-markdown --timestamps`: the line's `url` is the page
    (an info.json, when listed, says it better); a `url` that is not a web address is
    not linked to."""
    Path("talk.en.vtt").write_text(CHAPTERED)
    line = {"ok": True, "url": "https://video.example/watch?v=abc", "path": "talk.en.vtt"}
    ran = xdl("to-markdown", "--timestamps", "--stdout", input=json.dumps(line) + "\n")
    assert ran.exit_code == 0, ran.stderr
    assert ran.stdout.startswith(f"[00:00:01]({LINK}1) Welcome everyone.")
    line["url"] = "file:///etc/passwd"
    ran = xdl("to-markdown", "--timestamps", "--stdout", input=json.dumps(line) + "\n")
    assert ran.stdout.startswith("[00:00:01] Welcome everyone.")


@pytest.mark.parametrize("planted", ["missing", "not json", "a list", "a folder", "a fifo"])
def test_a_bad_info_file_is_a_clear_error(xdl: Any, planted: str) -> None:
    Path("talk.en.vtt").write_text(CHAPTERED)
    info = Path("talk.info.json")
    if planted == "not json":
        info.write_text("{nope")
    elif planted == "a list":
        info.write_text("[1, 2]")
    elif planted == "a folder":
        info.mkdir()
    elif planted == "a fifo":
        os.mkfifo(info)
    ran = xdl("to-markdown", "--info", str(info), "talk.en.vtt")
    assert ran.exit_code == 2, (ran.stdout, ran.stderr)
    assert "--info" in ran.stderr and "Traceback" not in ran.stderr
    assert not Path("talk.en.md").exists()
    # in a fetch line it fails that line only, with a code
    line = {
        "url": "u",
        "ok": True,
        "files": [
            {"path": "talk.en.vtt", "kind": "subtitles"},
            {"path": str(info), "kind": "info_json"},
        ],
    }
    ran = xdl("to-markdown", input=json.dumps(line) + "\n")
    assert ran.exit_code == 1
    assert ran.lines[0]["error"]["code"] in ("bad_input", "not_found")


def test_fetch_with_info_json_into_to_markdown_end_to_end(xdl_cmd: Any, site: Any) -> None:
    """The README recipe, checked on what it writes: the note has the page's title and
    each paragraph's time links back to the page at that moment."""
    page = site.url("/watch.html")
    fetched = xdl_cmd("fetch", "--subs", "--write-info-json", "-o", "media", page, timeout=120)
    assert fetched.exit_code == 0, fetched.stderr
    kinds = {f["kind"] for f in fetched.lines[0]["files"]}
    assert {"subtitles", "info_json"} <= kinds
    ran = xdl_cmd("to-markdown", "--timestamps", input=fetched.stdout.encode(), timeout=60)
    assert ran.exit_code == 0, ran.stderr
    info = json.loads(
        Path(
            next(f["path"] for f in fetched.lines[0]["files"] if f["kind"] == "info_json")
        ).read_text()
    )
    note = Path(ran.lines[0]["output"]).read_text()
    assert note.startswith(f"# {info['title']}\n\n")
    assert f"]({info['webpage_url']}?t=" in note or f"]({info['webpage_url']}&t=" in note
    assert "Hello from the loopback site." in note


@pytest.mark.parametrize(
    "page, linked",
    [
        ("https://v.example/watch?v=abc", "https://v.example/watch?v=abc&t=61"),
        ("https://v.example/p#frag", "https://v.example/p?t=61#frag"),
        ("https://v.example/p?t=5&x=1", "https://v.example/p?x=1&t=61"),
        ("https://v.example/v#t=30", "https://v.example/v?t=61"),
        ("https://e.com/a\u3000b\u00a0c\u2028d", "https://e.com/a%E3%80%80b%C2%A0c%E2%80%A8d?t=61"),
        (
            "https://ex.com/a) [x](http://evil.example",
            "https://ex.com/a%29%20%5Bx%5D%28http://evil.example?t=61",
        ),
    ],
)
def test_a_time_links_to_its_page_as_one_markdown_link(page: str, linked: str) -> None:
    """One `t=` in the query, before the #fragment; nothing in a piped line's URL can end
    the link and start another (a stranger's attack wrote `[x](http://evil...)`)."""
    from xdl.core.markdown import timestamp_link

    assert timestamp_link(page, 61.9) == linked
