"""What a person sees at a terminal: `xdl fetch -j 2` with stderr on a real pseudo-
terminal and stdout in a pipe, a failing URL among good ones. Error lines start at a
line start (printed above the bars, never inside one) and stdout stays clean JSON."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

XDL = str(Path(sys.executable).parent / "xdl")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def on_a_terminal(*args: str, timeout: float = 60, both: bool = False) -> tuple[int, str, str]:
    """Run xdl with stderr on a pty (80x24) and stdout on a pipe (or on the pty too, with
    `both`): (code, stdout, screen)."""
    master, slave = pty.openpty()
    os.set_blocking(master, False)
    env = {**os.environ, "COLUMNS": "80", "LINES": "24", "TERM": "xterm"}
    proc = subprocess.Popen(
        [XDL, *args],
        stdin=subprocess.DEVNULL,
        stdout=slave if both else subprocess.PIPE,
        stderr=slave,
        env=env,
    )
    os.close(slave)
    screen = b""
    deadline = time.monotonic() + timeout
    while True:
        try:
            chunk = os.read(master, 65536)
            screen += chunk
            if chunk:
                continue
        except BlockingIOError:
            pass
        except OSError:  # EIO: the child closed its end
            break
        if proc.poll() is not None:
            time.sleep(0.05)
            try:
                screen += os.read(master, 65536)
            except OSError:
                pass
            break
        assert time.monotonic() < deadline, "xdl did not finish"
        time.sleep(0.02)
    out = proc.stdout.read() if proc.stdout else b""
    proc.wait()
    os.close(master)
    return proc.returncode, out.decode(), screen.decode(errors="replace")


def shown_lines(screen: str) -> list[str]:
    """Each line as it ends up on screen: what follows its last carriage return."""
    lines = screen.replace("\r\n", "\n").split("\n")
    return [ANSI.sub("", line).split("\r")[-1] for line in lines]


def test_errors_print_above_the_bars_and_stdout_stays_json(site: Any, tmp_path: Path) -> None:
    slow = [site.url(f"/throttled.bin?rate=700000&n={i}") for i in range(3)]
    urls = [slow[0], site.url("/404"), slow[1], site.url("/files/missing"), slow[2]]
    code, out, screen = on_a_terminal("fetch", "-j", "2", "-o", str(tmp_path), *urls)
    assert code == 1
    rows = [json.loads(line) for line in out.splitlines()]  # every stdout line is JSON
    assert sorted(r["ok"] for r in rows) == [False, False, True, True, True]
    assert "%|" in screen  # bars were drawn
    raw = screen.replace("\r\n", "\n").split("\n")
    errors = [line for line in raw if "xdl:" in line]
    assert len(errors) >= 2, screen
    for line in errors:
        # an error line may clear the bar first (\r, spaces, \r, ANSI), never share it
        visible = ANSI.sub("", line).split("\r")[-1]
        assert visible.startswith("xdl: "), repr(line)
        assert "%|" not in visible
    # the overall bar counts up to the number of inputs
    assert any(re.search(r"done: .*5/5", line) for line in shown_lines(screen)), screen


def test_queue_run_shows_bars_at_a_terminal(xdl: Any, site: Any, tmp_path: Path) -> None:
    slow = [site.url(f"/throttled.bin?rate=900000&q={i}") for i in range(2)]
    assert xdl("queue", "add", "-o", str(tmp_path), *slow).exit_code == 0
    code, out, screen = on_a_terminal("queue", "run", "-j", "2")
    assert code == 0
    assert sorted(json.loads(line)["task"] for line in out.splitlines()) == [1, 2]
    assert "throttled.bin" in screen and "%|" in screen
    assert any(re.search(r"done: .*2/2", line) for line in shown_lines(screen)), screen


def test_stdout_on_the_same_terminal_never_shares_a_line_with_a_bar(
    site: Any, tmp_path: Path
) -> None:
    slow = [site.url(f"/throttled.bin?rate=700000&t={i}") for i in range(3)]
    urls = [slow[0], site.url("/files/report"), slow[1], site.url("/404"), slow[2]]
    code, _, screen = on_a_terminal("fetch", "-j", "2", "-o", str(tmp_path), *urls, both=True)
    assert code == 1
    assert "%|" in screen
    results = []
    for line in screen.replace("\r\n", "\n").split("\n"):
        visible = ANSI.sub("", line).split("\r")[-1]
        if '"url"' in line:
            assert visible.startswith("{"), repr(line)
            results.append(json.loads(visible))
    assert sorted(r["ok"] for r in results) == [False, True, True, True, True]
