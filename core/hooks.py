"""`--exec CMD` / `--exec-failed CMD`: a shell command per finished item, as yt-dlp's
--exec: `{}` becomes the shell-quoted path, and the item's JSON line is on its stdin.
A hook that fails is reported, never a failed download."""

from __future__ import annotations

import json
import shlex
import subprocess
from collections.abc import Mapping
from typing import Any


def run_hook(command: str, row: Mapping[str, Any]) -> dict[str, Any] | None:
    """Run `command` for `row`; None when it exited 0, else what went wrong."""
    path = row.get("path")
    quoted = shlex.quote(str(path)) if path else "''"
    line = command.replace("{}", quoted) if "{}" in command else command
    data = json.dumps(dict(row), ensure_ascii=False, default=str) + "\n"
    try:
        proc = subprocess.run(
            ["/bin/sh", "-c", line], input=data.encode(), stdout=subprocess.DEVNULL, check=False
        )
    except OSError as e:
        return {"command": command, "exit": None, "message": str(e)}
    if proc.returncode != 0:
        return {"command": command, "exit": proc.returncode}
    return None
