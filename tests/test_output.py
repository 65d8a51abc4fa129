"""SPEC §3: JSON lines and tables, rendered the same way for every command."""

from __future__ import annotations

import io
import json
import os
from typing import Any

import pytest

from xdl.cli.output import Output, render_table
from xdl.core.errors import NotFound
from xdl.core.inputs import parse_line


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_json_lines_are_one_object_a_line_utf8() -> None:
    out = io.StringIO()
    o = Output(stream=out)
    o.emit({"ok": True, "url": "https://e.com", "title": "Café ☕"})
    o.emit({"ok": True, "url": "https://e.com/2", "title": "two\nlines"})
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert json.loads(lines[0])["title"] == "Café ☕"
    assert "☕" in lines[0]  # real UTF-8, not \\u escapes
    assert o.close() == 0


def test_a_failure_makes_exit_1_and_others_still_run() -> None:
    out = io.StringIO()
    o = Output(stream=out)

    def work(item):  # type: ignore[no-untyped-def]
        if "bad" in item.value:
            raise NotFound("HTTP 404")
        return [{"ok": True, "url": item.value}]

    items = [
        parse_line(u) for u in ("https://e.com/1", "https://e.com/bad", "nope", "https://e.com/3")
    ]
    o.each([i for i in items if i], work)
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["ok"] for r in rows] == [True, False, False, True]
    assert rows[1]["error"] == {"code": "not_found", "message": "HTTP 404"}
    assert rows[2]["error"]["code"] == "bad_input"
    assert o.close() == 1


def test_table_only_at_a_terminal_unless_forced() -> None:
    cols = [("title", "TITLE"), ("url", "URL")]
    assert Output(stream=Tty(), columns=cols).table
    assert not Output(stream=io.StringIO(), columns=cols).table
    assert Output(mode="table", stream=io.StringIO(), columns=cols).table
    assert not Output(mode="json", stream=Tty(), columns=cols).table
    assert not Output(stream=Tty()).table  # a command without columns always speaks JSON


def test_render_table_aligns_and_lists_failures() -> None:
    rows = [
        {"ok": True, "title": "A", "url": "https://e.com/a"},
        {"ok": True, "title": "Longer title", "url": "https://e.com/b"},
        {"ok": False, "url": "https://e.com/c", "error": {"code": "not_found", "message": "gone"}},
    ]
    text = render_table(rows, [("title", "TITLE"), ("url", "URL")])
    lines = text.splitlines()
    assert lines[0].split() == ["TITLE", "URL"]
    assert lines[1].index("https") == lines[2].index("https")
    assert lines[3] == "FAILED https://e.com/c: not_found: gone"


def test_render_table_never_cuts_the_last_column() -> None:
    hint = " ".join(["yt-dlp is 200 days old; pip install -U yt-dlp"] * 5)
    rows = [{"ok": True, "check": "yt-dlp", "status": "warn", "message": hint}]
    columns = [("check", "CHECK"), ("status", "STATUS"), ("message", "MESSAGE")]
    text = render_table(rows, columns, key="check")
    assert hint in text and "…" not in text
    header, *wrapped = render_table(rows, columns, key="check", total_width=80).splitlines()
    assert len(wrapped) > 1 and all(len(line) <= 80 for line in wrapped)
    indent = header.index("MESSAGE")
    assert " ".join(line[indent:] for line in wrapped) == hint


def test_traceback_raises_the_bug_and_leaves_the_environment_alone(
    xdl: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--traceback shows where a bug is; it used to write XDL_DEBUG=1 into the process's
    environment, which every later command of the process (and each hook) inherited."""
    from xdl.core import info

    def broken(url: str, **kw: Any) -> dict[str, Any]:
        raise RuntimeError("a bug")

    monkeypatch.setattr(info, "get_info", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        xdl("info", "--traceback", "http://127.0.0.1:9/x")
    assert "XDL_DEBUG" not in os.environ
    ran = xdl("info", "http://127.0.0.1:9/x")  # the next command line: the bug is a line
    assert ran.exit_code == 1
    assert ran.lines[0]["error"]["code"] == "internal_error"
    assert "internal error: RuntimeError: a bug" in ran.stderr


class _Writes(io.StringIO):
    """A stream that counts its writes."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0
        self.sizes: list[int] = []

    def write(self, text: str) -> int:
        self.writes += 1
        self.sizes.append(len(text.encode()))
        return super().write(text)


def test_lines_emitted_together_are_one_write_and_come_even_on_an_error() -> None:
    stream = _Writes()
    out = Output(None, None, stream=stream)
    with out.together():
        for i in range(3):
            out.emit({"ok": True, "url": f"u{i}"})
        assert stream.getvalue() == ""
    assert stream.writes == 1 and len(stream.getvalue().splitlines()) == 3
    with pytest.raises(KeyboardInterrupt), out.together():
        out.emit({"ok": True, "url": "done before the interrupt"})
        raise KeyboardInterrupt
    assert stream.getvalue().splitlines()[-1] == '{"ok": true, "url": "done before the interrupt"}'
    out.emit({"ok": True, "url": "alone"})  # outside: written at once, as before
    assert stream.writes == 3 and out.count == 5


def test_lines_emitted_together_go_out_in_writes_a_pipe_takes_whole() -> None:
    """At most PIPE_BUF bytes a write, each whole lines: a pipe never takes half of one
    (a reader gone, a Ctrl-C), and a closed pipe is seen within a few lines."""
    from xdl.cli.output import _WHOLE

    stream = _Writes()
    out = Output(None, None, stream=stream)
    with out.together():
        for i in range(300):
            out.emit({"ok": True, "url": f"https://a.example/{i}/é", "id": i})
    assert len(stream.getvalue().splitlines()) == 300
    assert stream.writes > 1 and max(stream.sizes) <= _WHOLE
    lines, seen = stream.getvalue().splitlines(keepends=True), 0
    for size in stream.sizes:  # each write ends at a line's end
        text = "".join(lines[seen:]).encode()[:size].decode()
        assert text.endswith("\n")
        seen += text.count("\n")


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
def test_an_output_that_cannot_be_written_is_one_clear_error(tmp_path: Any) -> None:
    """`> /dev/full` (a full disk): exit 3 and one line on stderr, not an internal error."""
    import subprocess
    import sys
    from pathlib import Path

    exe = Path(sys.executable).parent / "xdl"
    env = {**os.environ, "XDL_QUEUE": str(tmp_path / "q.json")}
    with open("/dev/full", "w") as full:
        ran = subprocess.run(
            [str(exe), "queue", "add", "https://a.example/x"],
            stdout=full, stderr=subprocess.PIPE, env=env, text=True,
        )  # fmt: skip
    assert ran.returncode == 3
    assert ran.stderr == "xdl: error: cannot write the output: No space left on device\n"


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
@pytest.mark.parametrize("args", [["--help"], ["fetch", "--help"], ["--version"]])
def test_help_to_an_output_that_cannot_be_written_is_one_clear_error(args: list[str]) -> None:
    """click writes help and the version itself: `--help > /dev/full` is the same exit 3
    and line as a command's output, not an internal error."""
    import subprocess
    import sys
    from pathlib import Path

    exe = Path(sys.executable).parent / "xdl"
    with open("/dev/full", "w") as full:
        ran = subprocess.run([str(exe), *args], stdout=full, stderr=subprocess.PIPE, text=True)
    assert ran.returncode == 3
    assert ran.stderr == "xdl: error: cannot write the output: No space left on device\n"


def test_a_closed_stderr_keeps_the_exit_status(tmp_path: Any) -> None:
    """`2>&-`: sys.stderr is None; the error's line has nowhere to go, and the exit
    status is still the one the error says (3), not a crash's 1."""
    import subprocess
    import sys
    from pathlib import Path

    queue = tmp_path / "q.json"
    queue.write_text("{garbage")
    exe = Path(sys.executable).parent / "xdl"
    env = {**os.environ, "XDL_QUEUE": str(queue)}
    quiet = subprocess.DEVNULL
    ran = subprocess.run(
        [str(exe), "queue", "status"], env=env, stdout=quiet, stderr=quiet,
        preexec_fn=lambda: os.close(2),
    )  # fmt: skip
    assert ran.returncode == 3


def test_the_last_word_waits_for_a_slow_reader(tmp_path: Any) -> None:
    """stderr a full pipe whose reader comes back after 3 s, and no signal: the error's
    line is written then, as any program's would be, not dropped after a second."""
    import subprocess
    import sys
    import time
    from pathlib import Path

    queue = tmp_path / "q.json"
    queue.write_text("{garbage")
    exe = Path(sys.executable).parent / "xdl"
    env = {**os.environ, "XDL_QUEUE": str(queue)}
    reader, writer = os.pipe()
    os.set_blocking(writer, False)
    with pytest.raises(BlockingIOError):
        while True:
            os.write(writer, b"x" * 4096)
    os.set_blocking(writer, True)
    proc = subprocess.Popen([str(exe), "queue", "status"], env=env, stderr=writer,
                            stdout=subprocess.DEVNULL)  # fmt: skip
    os.close(writer)
    time.sleep(3)
    got = b""
    while chunk := os.read(reader, 1 << 16):
        got += chunk
    os.close(reader)
    assert proc.wait(timeout=30) == 3
    assert got[got.index(b"xdl: ") :].startswith(b"xdl: error: ") and got.endswith(b"\n")


def test_an_ascii_output_still_gets_every_line_as_json(tmp_path: Any) -> None:
    """PYTHONIOENCODING=ascii and a URL beyond ASCII: the line comes, its characters as
    JSON's \\u escapes (a pair beyond the BMP), and reads back as the URL. It was no
    line at all and `internal error: UnicodeEncodeError`, exit 3."""
    import json
    import socket
    import subprocess
    import sys
    from pathlib import Path

    with socket.socket() as s:  # a port nobody listens on: refused at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/caf\u00e9-\U0001f600.bin"
    exe = Path(sys.executable).parent / "xdl"
    env = {**os.environ, "PYTHONIOENCODING": "ascii"}
    args = ["fetch", "--strategy", "http", "--retries", "0", "-o", str(tmp_path), url]
    ran = subprocess.run([str(exe), *args], env=env, capture_output=True)
    assert ran.returncode == 1, ran.stderr
    assert ran.stdout.isascii()
    (line,) = ran.stdout.decode().splitlines()
    assert json.loads(line)["url"] == url
    assert b"\\u00e9" in ran.stdout and b"\\ud83d\\ude00" in ran.stdout
