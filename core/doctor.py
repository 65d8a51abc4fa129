"""`xdl doctor`: is this machine ready to fetch? One check a line."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from . import paths
from .errors import ConfigError

Status = Literal["ok", "warn", "fail"]
YTDLP_MAX_AGE_DAYS = 90


@dataclass(frozen=True)
class Check:
    check: str
    status: Status
    message: str
    version: str | None = None
    path: str | None = None

    @property
    def ok(self) -> bool:
        return self.status != "fail"

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, **asdict(self)}


def run_checks(
    output_dir: Path | None = None,
    today: dt.date | None = None,
    config_file: Path | None = None,
    no_config: bool = False,
    config_warnings: Sequence[str] = (),
) -> Iterator[Check]:
    """Every check, in the order a person reads them; a `fail` means fetch cannot work."""
    yield Check(
        "python", "ok", "Python " + sys.version.split()[0], sys.version.split()[0], sys.executable
    )
    yield check_ytdlp(today or dt.date.today())
    yield check_js_runtime()
    for tool, why in (
        ("ffmpeg", "needed for --audio and for merging video+audio"),
        ("ffprobe", "needed for --audio and --embed-* post-processing"),
    ):
        found = shutil.which(tool)
        yield Check(
            tool,
            "ok" if found else "warn",
            f"{tool} found" if found else f"{tool} not found: {why} (apt-get install ffmpeg)",
            _version([tool, "-version"]) if found else None,
            found,
        )
    for tool in ("wget", "curl"):
        found = shutil.which(tool)
        yield Check(
            tool,
            "ok" if found else "warn",
            f"{tool} found: fallback tier available"
            if found
            else f"{tool} not found: that fallback tier is skipped",
            _version([tool, "--version"]) if found else None,
            found,
        )
    yield check_youtube_dl()
    yield check_output_dir(output_dir or Path.cwd())
    yield check_free_space("output-space", output_dir or Path.cwd())
    yield check_config(config_file, no_config, config_warnings)
    from .queue import is_url

    queue = paths.queue_location()
    yield check_queue(queue)
    if not is_url(queue):
        yield check_free_space("queue-space", Path(queue).parent)


def check_ytdlp(today: dt.date) -> Check:
    try:
        from yt_dlp.version import __version__ as version
    except ImportError:
        return Check("yt-dlp", "fail", "yt-dlp is not installed: pip install -U 'yt-dlp[default]'")
    import yt_dlp

    where = str(Path(yt_dlp.__file__).parent)
    try:
        released = dt.date(*map(int, version.split(".")[:3]))
    except (TypeError, ValueError):
        return Check("yt-dlp", "ok", f"yt-dlp {version}", version, where)
    age = (today - released).days
    if age > YTDLP_MAX_AGE_DAYS:
        return Check(
            "yt-dlp",
            "warn",
            f"yt-dlp {version} is {age} days old; sites change: pip install -U yt-dlp",
            version,
            where,
        )
    return Check("yt-dlp", "ok", f"yt-dlp {version} ({age} days old)", version, where)


def check_js_runtime() -> Check:
    for tool in ("deno", "node", "bun"):
        found = shutil.which(tool)
        if found:
            return Check(
                "js-runtime",
                "ok",
                f"{tool} found: yt-dlp can solve YouTube's challenges",
                _version([tool, "--version"]),
                found,
            )
    return Check(
        "js-runtime",
        "warn",
        "no JavaScript runtime (deno, node): YouTube needs one; pip install 'xdl[js]'",
    )


def check_youtube_dl() -> Check:
    import importlib.util

    if importlib.util.find_spec("youtube_dl") is None:
        return Check(
            "youtube-dl", "warn", "youtube-dl not installed: that fallback tier is skipped"
        )
    return Check("youtube-dl", "ok", "youtube-dl importable: fallback tier available")


def check_output_dir(directory: Path) -> Check:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".xdl-doctor-"):
            pass
    except OSError as e:
        return Check(
            "output-dir",
            "fail",
            f"cannot write to {directory}: {e.strerror or e}",
            path=str(directory),
        )
    return Check("output-dir", "ok", f"{directory} is writable", path=str(directory))


#: Below this much free space a download may well not fit: warn.
LOW_SPACE = 1024**3
#: Below this much even the queue file and .part files cannot be written: fail.
NO_SPACE = 16 * 1024**2


def space_status(free: int, total: int) -> Literal["ok", "warn", "fail"]:
    """ok, warn (under 1 GiB or 5 % free) or fail (under 16 MiB free)."""
    if free < NO_SPACE:
        return "fail"
    if free < LOW_SPACE or (total and free < total * 0.05):
        return "warn"
    return "ok"


def check_free_space(name: str, directory: Path) -> Check:
    """Free space on the file system of `directory` (or its nearest existing parent)."""
    where = directory.expanduser().absolute()
    while not where.exists() and where != where.parent:
        where = where.parent
    try:
        usage = shutil.disk_usage(where)
    except OSError as e:
        return Check(name, "warn", f"cannot tell the free space of {directory}: {e}")
    status = space_status(usage.free, usage.total)
    free = f"{usage.free / 1024**3:.1f} GiB free of {usage.total / 1024**3:.1f} GiB"
    hint = {"ok": "", "warn": ": low on space", "fail": ": downloads cannot be written"}
    return Check(name, status, f"{directory}: {free}{hint[status]}", path=str(directory))


def check_config(
    explicit: Path | None = None, disabled: bool = False, warnings: Sequence[str] = ()
) -> Check:
    """The config file in use (--config, XDL_CONFIG or the default place) and its profiles;
    `warnings` are what the CLI found while checking its keys against the commands."""
    from . import config

    if disabled:
        return Check("config", "ok", "config file ignored (--no-config)")
    try:
        path = config.find(explicit)
        cfg = config.load(path)
    except ConfigError as e:
        return Check("config", "fail", e.message, path=str(explicit or paths.config_file()))
    builtin = ", ".join(sorted(config.builtin_profiles()))
    if path is None:
        where = paths.config_file()
        return Check(
            "config",
            "ok",
            f"no config file at {where} (built-in defaults); profiles: {builtin}",
            path=str(where),
        )
    mine = ", ".join(sorted(cfg.profiles)) or "none"
    problems = [*cfg.warnings, *(w for w in warnings if w not in cfg.warnings)]
    unknown = f"; {len(problems)} key(s) ignored: {problems[0]}" if problems else ""
    return Check(
        "config",
        "warn" if problems else "ok",
        f"{path} parses; profiles: {builtin} (built-in), {mine} (this file){unknown}",
        path=str(path),
    )


def check_queue(location: Path | str) -> Check:
    """The queue store's own health check: healthy, or unreadable and how to fix it (for a
    database: the connection, the schema version and the queue)."""
    from .errors import XdlError
    from .queue import open_store, redact

    try:
        store = open_store(location, lock_timeout=5)
        try:
            health = store.health()
        finally:
            store.close()
        name = store.name
    except XdlError as e:  # the server is down, the driver missing, a malformed URL...
        return Check("queue", "warn", e.message, path=redact(location))
    return Check("queue", "ok" if health.ok else "warn", health.message, path=name)


def _version(cmd: list[str]) -> str | None:
    try:
        out = subprocess.run(
            cmd, capture_output=True, text=True, timeout=10, env={**os.environ, "LC_ALL": "C"}
        )
    except (OSError, subprocess.SubprocessError):
        return None
    first = (out.stdout or out.stderr).strip().splitlines()
    return first[0][:80] if first else None
