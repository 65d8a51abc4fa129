"""`make demo` shows each command exactly as it runs it (issue 21: it printed commands
without the --archive and --json flags it ran)."""

from __future__ import annotations

import re
from pathlib import Path

DEMO = Path(__file__).parent.parent / "examples" / "demo.sh"


def test_every_xdl_command_of_the_demo_is_printed_as_it_runs() -> None:
    lines = DEMO.read_text().splitlines()
    calls = [
        line
        for line in lines
        if not line.startswith("run ") and re.search(r"(^|[|;&]\s*)xdl ", line.strip())
    ]
    printed = [line for line in lines if line.startswith("run ")]
    assert calls == [], f"run these through `run` so they are shown: {calls}"
    assert len(printed) >= 8
    assert any("--archive" in line and "--json" in line for line in printed)
    run_def = next(line for line in lines if line.startswith("run()"))
    assert "printf" in run_def and 'eval "$1"' in run_def
