"""`xdl queue ...` in-process with CliRunner: lines, exit codes, tables, and the messages
for a corrupt or locked queue file."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click
import filelock
import pytest

from xdl.cli.commands.queue import command as queue_group
from xdl.cli.commands.queue import complete_ids


@pytest.fixture
def qfile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "q" / "queue.json"
    monkeypatch.setenv("XDL_QUEUE", str(path))
    return path


def test_default_queue_lives_in_the_data_dir(xdl: Any, xdl_env: Path) -> None:
    ran = xdl("queue", "add", "https://example.com/a")
    assert ran.exit_code == 0, ran.stderr
    assert (xdl_env / "data" / "queue.json").exists()


def test_add_lines_dedupe_and_bad_input(xdl: Any, qfile: Path) -> None:
    ran = xdl("queue", "add", "https://example.com/a", "not a url", "https://example.com/b")
    assert ran.exit_code == 1
    assert [(r["ok"], r.get("id"), r.get("added")) for r in ran.lines] == [
        (True, 1, True),
        (False, None, None),
        (True, 2, True),
    ]
    assert ran.lines[1]["error"]["code"] == "bad_input"
    assert "not a url" in ran.stderr
    again = xdl("queue", "add", input="https://example.com/a\n# comment\n\nhttps://example.com/c\n")
    assert again.exit_code == 0
    assert again.lines == [
        {
            "ok": True,
            "id": 1,
            "url": "https://example.com/a",
            "status": "queued",
            "added": False,
            "existing": 1,
        },
        {"ok": True, "id": 3, "url": "https://example.com/c", "status": "queued", "added": True},
    ]
    forced = xdl("queue", "add", "--force", "https://example.com/a")
    assert forced.lines[0]["id"] == 4 and forced.lines[0]["added"] is True


def test_add_stores_download_options_with_absolute_paths(xdl: Any, qfile: Path) -> None:
    ran = xdl("queue", "add", "-o", "media", "--audio", "--priority", "7", "https://example.com/a")
    assert ran.exit_code == 0, ran.stderr
    (task,) = xdl("queue", "status", "--json").lines
    assert task["priority"] == 7
    assert task["options"]["audio"] is True
    assert task["options"]["output_dir"] == os.path.abspath("media")


def test_json_input_lines_carry_title_and_sha256(xdl: Any, qfile: Path) -> None:
    line = json.dumps({"url": "https://example.com/a", "title": "A", "sha256": "0" * 64})
    assert xdl("queue", "add", input=line + "\n").exit_code == 0
    (task,) = xdl("queue", "status", "--json").lines
    assert task["title"] == "A" and task["options"]["sha256"] == "0" * 64


def test_empty_piped_input_is_nothing_to_do(xdl: Any, qfile: Path) -> None:
    ran = xdl("queue", "add", input="")
    assert (ran.exit_code, ran.stdout) == (0, "")


def test_status_filters_ids_table_and_summary(xdl: Any, qfile: Path) -> None:
    xdl("queue", "add", "https://example.com/a", "https://www.example.org/b")
    xdl("queue", "cancel", "2")
    assert [r["id"] for r in xdl("queue", "status", "--status", "cancelled").lines] == [2]
    ran = xdl("queue", "status", "2", "9", "x")
    assert ran.exit_code == 1
    assert [(r["ok"], r["id"]) for r in ran.lines] == [(False, "x"), (True, 2), (False, 9)]
    assert ran.lines[2]["error"]["code"] == "not_found"
    table = xdl("queue", "status", "--table")
    assert table.stdout.splitlines()[0].split() == ["ID", "STATUS", "PRI", "TRIES", "URL", "PATH"]
    assert "cancelled" in table.stdout
    (summary,) = xdl("queue", "status", "--summary").lines
    assert (summary["total"], summary["queued"], summary["cancelled"]) == (2, 1, 1)
    assert summary["domains"] == {"example.com": 1, "example.org": 1}
    assert summary["paused"] is False
    assert "QUEUED" in xdl("queue", "status", "--summary", "--table").stdout


def test_retry_cancel_remove_clear_pause(xdl: Any, qfile: Path) -> None:
    xdl("queue", "add", "https://example.com/a", "https://example.com/b", "https://example.com/c")
    assert xdl("queue", "retry").exit_code == 2  # neither IDs nor --failed
    ran = xdl("queue", "cancel", "1", "2")
    assert [r["status"] for r in ran.lines] == ["cancelled", "cancelled"]
    ran = xdl("queue", "retry", "1", "3")
    assert ran.exit_code == 0
    assert ran.lines[0]["status"] == "queued"
    assert ran.lines[1]["skipped"].startswith("queued")
    ran = xdl("queue", "remove", "3", "42")
    assert ran.exit_code == 1
    assert ran.lines[0]["status"] == "removed" and ran.lines[1]["error"]["code"] == "not_found"
    assert xdl("queue", "clear", "--cancelled").lines[0]["cleared"] == 1
    assert [r["id"] for r in xdl("queue", "status").lines] == [1]
    assert xdl("queue", "pause").lines[0]["paused"] is True
    assert xdl("queue", "status", "--summary").lines[0]["paused"] is True
    assert xdl("queue", "resume").lines[0]["paused"] is False
    assert xdl("queue", "remove").exit_code == 2  # IDs are required


@pytest.mark.parametrize(
    "args",
    [
        ["add", "https://example.com/new"],
        ["status"],
        ["status", "--summary"],
        ["run"],
        ["retry", "--failed"],
        ["cancel", "1"],
        ["remove", "1"],
        ["clear"],
        ["pause"],
    ],
)
def test_corrupt_queue_exits_3_and_is_left_alone(xdl: Any, qfile: Path, args: list[str]) -> None:
    qfile.parent.mkdir(parents=True)
    qfile.write_bytes(b'{"version": 1, "tasks": [{"id": 1, "url": "https://x.example/"}')
    before = qfile.read_bytes()
    ran = xdl("queue", *args)
    assert ran.exit_code == 3
    assert ran.stdout == ""
    assert str(qfile) in ran.stderr and "xdl queue restore" in ran.stderr
    assert "Traceback" not in ran.stderr
    assert qfile.read_bytes() == before


def test_unknown_schema_version_exits_3(xdl: Any, qfile: Path) -> None:
    qfile.parent.mkdir(parents=True)
    qfile.write_text('{"version": 7, "tasks": []}')
    ran = xdl("queue", "add", "https://example.com/a")
    assert ran.exit_code == 3
    assert "newer xdl" in ran.stderr
    assert qfile.read_text() == '{"version": 7, "tasks": []}'


def test_restore_brings_back_a_backup(xdl: Any, qfile: Path) -> None:
    xdl("queue", "add", "https://example.com/a")
    xdl("queue", "add", "https://example.com/b")  # the first change after this: a backup
    (backup,) = xdl("queue", "backups").lines
    assert backup["backup"].endswith(".json") and backup["bytes"] > 0
    qfile.write_text("garbage")
    assert xdl("queue", "status").exit_code == 3
    ran = xdl("queue", "restore")
    assert ran.exit_code == 0, ran.stderr
    assert ran.lines[0]["tasks"] == 1
    assert Path(ran.lines[0]["kept"]).read_text() == "garbage"
    assert [r["url"] for r in xdl("queue", "status").lines] == ["https://example.com/a"]
    assert xdl("queue", "restore", "no-such-backup.json").exit_code == 3


def test_locked_queue_exits_3_after_the_timeout(xdl: Any, qfile: Path) -> None:
    xdl("queue", "add", "https://example.com/a")
    with filelock.FileLock(str(qfile) + ".lock"):
        ran = xdl("queue", "add", "--lock-timeout", "0.2", "https://example.com/b")
    assert ran.exit_code == 3
    assert "locked by another xdl process" in ran.stderr
    assert [r["id"] for r in xdl("queue", "status").lines] == [1]


def test_completion_lists_task_ids(xdl: Any, qfile: Path) -> None:
    xdl("queue", "add", *(f"https://example.com/{i}" for i in range(12)))
    xdl("queue", "cancel", "11")
    ctx = click.Context(queue_group)
    param = click.Argument(["ids"])
    every = [c.value for c in complete_ids()(ctx, param, "1")]
    assert every == ["1", "10", "11", "12"]
    cancelled = [c.value for c in complete_ids("failed", "cancelled")(ctx, param, "")]
    assert cancelled == ["11"]
    qfile.write_text("{")
    assert complete_ids()(ctx, param, "") == []  # a broken queue completes nothing


def test_help_has_fields_and_examples(xdl: Any) -> None:
    for sub in ("add", "run", "status", "retry", "cancel", "remove", "clear", "backups"):
        ran = xdl("queue", sub, "--help")
        assert ran.exit_code == 0
        assert "Fields:" in ran.stdout and "Examples:" in ran.stdout, sub
        assert "--queue FILE" in ran.stdout


def test_doctor_reports_queue_health(xdl: Any, qfile: Path) -> None:
    def queue_check() -> dict[str, Any]:
        ran = xdl("doctor", "--json")
        return next(r for r in ran.lines if r["check"] == "queue")

    assert queue_check()["status"] == "ok"
    xdl("queue", "add", "https://example.com/a")
    healthy = queue_check()
    assert healthy["status"] == "ok" and "1 tasks" in healthy["message"]
    qfile.write_text('{"version": 1, "tasks": [')
    broken = queue_check()
    assert broken["status"] == "warn"
    assert str(qfile) in broken["message"] and "xdl queue restore" in broken["message"]
    assert qfile.read_text() == '{"version": 1, "tasks": ['


def test_run_on_a_paused_queue_takes_nothing_and_says_so(xdl: Any, qfile: Path) -> None:
    xdl("queue", "add", "https://example.com/a")
    xdl("queue", "pause")
    ran = xdl("queue", "run")
    assert (ran.exit_code, ran.stdout) == (0, "")
    assert "paused" in ran.stderr
    assert xdl("queue", "status").lines[0]["status"] == "queued"


@pytest.mark.parametrize(
    "fields",
    [
        {"sha256": 5},
        {"sha256": "zz"},
        {"template": 7},
        {"template": " "},
        {"template": "../%(id)s.%(ext)s"},
        {"audio": "yes"},
    ],
)
def test_add_refuses_the_fields_fetch_refuses(
    xdl: Any, qfile: Path, fields: dict[str, Any]
) -> None:
    """One rule for an input line's fields: `queue add` refuses what `fetch` refuses,
    with the same message, and still adds the other lines."""
    bad = json.dumps({"url": "https://example.com/a", **fields})
    good = json.dumps({"url": "https://example.com/b", "sha256": "A" * 64})
    added = xdl("queue", "add", input=f"{bad}\n{good}\n")
    assert added.exit_code == 1
    refused, added_line = added.lines
    assert refused["ok"] is False and refused["error"]["code"] == "bad_input"
    assert added_line["ok"] is True and added_line["added"] is True
    fetched = xdl("fetch", "--dry-run", input=bad + "\n")
    assert fetched.lines[0]["error"] == refused["error"]
    (task,) = xdl("queue", "status", "--json").lines
    assert task["url"] == "https://example.com/b" and task["options"]["sha256"] == "a" * 64


def test_add_into_a_pipe_whose_reader_went_stops_in_the_first_chunk(tmp_path: Path) -> None:
    """`queue add -a long.txt | head -3`: the first chunk's lines meet the closed pipe, so
    nothing after that chunk is added. Written in one large write, the lines were cut
    short with no error and the next 10,000 tasks went in too."""
    import subprocess
    import sys

    from xdl.cli.commands.queue import ADD_CHUNK

    urls = tmp_path / "urls.txt"
    urls.write_text("".join(f"https://a.example/{i}\n" for i in range(ADD_CHUNK * 2 + 10)))
    queue = tmp_path / "q.json"
    exe = Path(sys.executable).parent / "xdl"
    env = {**os.environ, "XDL_QUEUE": str(queue)}
    ran = subprocess.run(
        f"'{exe}' queue add -a '{urls}' | head -3", shell=True, env=env, capture_output=True
    )
    assert ran.returncode == 0 and len(ran.stdout.splitlines()) == 3, ran
    assert b"Traceback" not in ran.stderr
    status = subprocess.run(
        [str(exe), "queue", "status", "--summary", "--json"], env=env, capture_output=True
    )
    assert json.loads(status.stdout)["total"] <= ADD_CHUNK


def test_ctrl_c_during_a_long_add_leaves_no_added_task_without_its_line(tmp_path: Path) -> None:
    """Ctrl-C while a chunk's lines are written: the chunk is in the queue already, so
    every one of its lines still comes, then exit 130. Raised where it landed, it lost
    the rest of the chunk's lines (the attack: 10,000 tasks added, 6,773 lines)."""
    import signal
    import subprocess
    import sys

    from xdl.cli.commands.queue import ADD_CHUNK

    urls = tmp_path / "urls.txt"
    urls.write_text("".join(f"https://a.example/{i}\n" for i in range(ADD_CHUNK * 3)))
    exe = Path(sys.executable).parent / "xdl"
    env = {**os.environ, "XDL_QUEUE": str(tmp_path / "q.json")}
    proc = subprocess.Popen(
        [str(exe), "queue", "add", "-a", str(urls)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        bufsize=0,
    )  # fmt: skip  (unbuffered: communicate() reads past the first line's buffer)
    assert proc.stdout is not None
    first = proc.stdout.readline()  # the first chunk is added: its lines are coming
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=60)
    lines = (first + rest).decode().splitlines()
    assert proc.returncode in (130, 0), err  # 0: the signal came after the last line
    assert (first + rest).endswith(b"\n")
    status = subprocess.run(
        [str(exe), "queue", "status", "--summary", "--json"], env=env, capture_output=True
    )
    assert len(lines) == json.loads(status.stdout)["total"] >= ADD_CHUNK
    assert len({json.loads(line)["id"] for line in lines}) == len(lines)


def test_a_signal_ends_an_add_whose_output_nobody_reads(tmp_path: Path) -> None:
    """Its stdout a pipe nobody reads, `queue add` waits in a write: a SIGTERM held back
    for the lines' sake must not wait with it (a supervisor's `kill`). Past a second of
    waiting the signal is raised as before: exit 143, and no torn line in the pipe."""
    import signal
    import subprocess
    import sys
    import time

    from xdl.cli.commands.queue import ADD_CHUNK

    urls = tmp_path / "urls.txt"
    urls.write_text("".join(f"https://a.example/{i}\n" for i in range(ADD_CHUNK)))
    exe = Path(sys.executable).parent / "xdl"
    env = {**os.environ, "XDL_QUEUE": str(tmp_path / "q.json")}
    reader, writer = os.pipe()
    proc = subprocess.Popen(
        [str(exe), "queue", "add", "-a", str(urls)],
        stdout=writer, stderr=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    os.close(writer)
    try:
        deadline = time.monotonic() + 30  # until the pipe is full: ~700 of 10,000 lines
        while time.monotonic() < deadline and not (tmp_path / "q.json").exists():
            time.sleep(0.1)
        time.sleep(2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 143
        got = b""
        while chunk := os.read(reader, 1 << 20):
            got += chunk
        assert got.endswith(b"\n") and len(got.splitlines()) < ADD_CHUNK
    finally:
        proc.kill()
        os.close(reader)


@pytest.mark.parametrize("sig, code", [("SIGINT", 130), ("SIGTERM", 143)])
def test_a_signal_while_a_pipe_is_read_adds_what_was_read(
    tmp_path: Path, sig: str, code: int
) -> None:
    """`producer | xdl queue add`, then Ctrl-C while the pipe is quiet: the lines read
    after the last chunk of 10,000 are added and printed too (the producer cannot send
    them again), then exit 130 (143). They were neither in the queue nor printed."""
    import signal
    import subprocess
    import sys

    from xdl.cli.commands.queue import ADD_CHUNK

    count = ADD_CHUNK + 1234
    exe = Path(sys.executable).parent / "xdl"
    env = {**os.environ, "XDL_QUEUE": str(tmp_path / "q.json")}
    with (tmp_path / "out").open("w+b") as out:
        proc = _add_from_a_quiet_pipe(env, out, count)
        proc.send_signal(getattr(signal, sig))
        _, err = proc.communicate(timeout=60)
        out.seek(0)
        lines = out.read().decode().splitlines()
    assert proc.returncode == code, err
    assert len(lines) == count
    status = subprocess.run(
        [str(exe), "queue", "status", "--summary", "--json"], env=env, capture_output=True
    )
    assert json.loads(status.stdout)["total"] == count


def _add_from_a_quiet_pipe(env: dict[str, str], out: Any, count: int) -> Any:
    """`xdl queue add` reading `count` URLs from a pipe that stays open, once it has read
    them all and waits for more (its stdout `out`, its stderr a pipe)."""
    import subprocess
    import sys
    import time

    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "xdl"), "queue", "add"],
        stdin=subprocess.PIPE, stdout=out, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    assert proc.stdin is not None
    proc.stdin.write("".join(f"https://a.example/{i}\n" for i in range(count)).encode())
    proc.stdin.flush()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not _waits_on_empty_pipe(proc.pid, proc.stdin):
        time.sleep(0.05)  # until every line is read and xdl waits for the next
    return proc


def _waits_on_empty_pipe(pid: int, pipe: Any) -> bool:
    """Whether process `pid` waits in a read of its stdin, the pipe `pipe` writes to
    holding nothing: all that was sent is read (Linux: /proc, FIONREAD)."""
    import fcntl
    import struct
    import termios

    held = fcntl.ioctl(pipe.fileno(), termios.FIONREAD, struct.pack("i", 0))
    if struct.unpack("i", held)[0]:
        return False
    try:
        wchan = Path(f"/proc/{pid}/wchan").read_text()
        call = Path(f"/proc/{pid}/syscall").read_text().split()
    except OSError:
        return False
    return "pipe" in wchan or call[:2] == ["0", "0x0"]  # x86-64: read(0, ...)


def test_a_signal_while_a_pipe_is_read_does_not_wait_on_anothers_lock(tmp_path: Path) -> None:
    """The signal lands while the pipe is read; what was read must be added, but another
    process holds the queue's lock: past a second the wait is given up, exit 130, and
    what is printed is what is queued (nothing). It waited for --lock-timeout (30 s)."""
    import signal
    import subprocess
    import sys
    import time

    exe = Path(sys.executable).parent / "xdl"
    queue = tmp_path / "q.json"
    env = {**os.environ, "XDL_QUEUE": str(queue)}
    with (tmp_path / "out").open("w+b") as out:
        proc = _add_from_a_quiet_pipe(env, out, 500)
        with filelock.FileLock(str(queue) + ".lock"):
            began = time.monotonic()
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=60)
            took = time.monotonic() - began
        out.seek(0)
        lines = out.read().decode().splitlines()
    assert proc.returncode == 130, err
    assert took < 20  # not --lock-timeout's 30 s
    status = subprocess.run(
        [str(exe), "queue", "status", "--summary", "--json"], env=env, capture_output=True
    )
    assert json.loads(status.stdout)["total"] == len(lines)
