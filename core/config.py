"""The config file (SPEC §6): TOML with a `[defaults]` table and `[profiles.NAME]` tables.

    [defaults]               # every command that has the option
    timeout = 30
    [defaults.fetch]         # only `xdl fetch` (deeper tables win)
    output-dir = "~/Videos"
    [defaults.queue.add]     # a subcommand of a group
    priority = 5
    [profiles.lectures]      # `--profile lectures` on fetch, queue add, transcript
    quality = "720p"
    sub-langs = "en"
    [hosts."www.youtube.com"] # one site's budget (SPEC §5a), for every command
    per-host = 2             # at most 2 downloads from it at once
    sleep = 1.5              # at least 1.5 s between two requests to it

Keys are long option names (`output-dir` or `output_dir`). This module reads, checks the
shape and finds line numbers; which keys are real options is decided by the CLI, which
knows the commands. It never imports click, and imports tomllib only when a file exists.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import paths
from .errors import BadInput, ConfigError
from .hosts import HostRule, check_rule, host_key

#: Tables a config file may have at the top.
TOP_LEVEL = ("defaults", "profiles", "hosts")

#: Profile-capable commands (as paths in the command tree).
PROFILE_COMMANDS = (("fetch",), ("queue", "add"), ("transcript",))


def builtin_profiles() -> dict[str, dict[str, Any]]:
    """The built-in profiles: each key is a long option of `xdl fetch` (and `queue add`)."""
    archive_dir = paths.data_dir()
    return {
        "podcast": {
            "audio": True,
            "audio-format": "mp3",
            "audio-quality": "128",  # kbit/s (yt-dlp: above 10 is a bitrate)
            "normalize": True,
            "embed-metadata": True,
            "embed-thumbnail": True,
            "template": "%(playlist_title,playlist,uploader,channel,webpage_url_domain|podcast)s/"
            "%(upload_date>%Y-%m-%d |)s%(title)s [%(id)s].%(ext)s",
            "archive": str(archive_dir / "podcast-archive.txt"),
        },
        "music": {
            "audio": True,
            "audio-format": "mp3",
            "audio-quality": "320",
            "embed-metadata": True,
            "embed-thumbnail": True,
        },
        "archive": {
            "quality": "best",
            "container": "mkv",
            "subs": True,
            "sub-langs": "all",
            "embed-subs": True,
            "write-info-json": True,
            "write-description": True,
            "embed-chapters": True,
            "embed-metadata": True,
            "template": "%(uploader,channel|unknown)s/"
            "%(upload_date>%Y-%m-%d |)s%(title)s [%(id)s].%(ext)s",
        },
        "social": {
            "quality": "720p",
            "container": "mp4",
            "max-size": "100M",
            "sleep": 2.0,
        },
        "stream": {
            "live-from-start": True,
            "timeout": 120.0,
            "retries": 20,
        },
    }


@dataclass(frozen=True)
class Config:
    """A loaded config file (or none: `path` is None and the tables are empty)."""

    path: Path | None = None
    defaults: dict[str, Any] = field(default_factory=dict)
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)
    text: str = ""
    #: `[hosts."NAME"]`: what the user set for a site (per-host, sleep).
    hosts: dict[str, HostRule] = field(default_factory=dict)
    #: Problems worth a warning that do not stop anything (unknown tables...).
    warnings: tuple[str, ...] = ()

    def profile_names(self) -> list[str]:
        return sorted({*builtin_profiles(), *self.profiles})

    def profile(self, name: str) -> dict[str, Any] | None:
        """A profile's table: a built-in one with the file's table of the same name over it."""
        builtin = builtin_profiles().get(name)
        mine = self.profiles.get(name)
        if builtin is None and mine is None:
            return None
        return merge(builtin or {}, mine or {})

    def where(self, table: tuple[str, ...], key: str | None = None) -> str:
        """`FILE:LINE` of a key (or of its table) for error messages."""
        name = str(self.path) if self.path else "config"
        line = find_line(self.text, table, key)
        return f"{name}:{line}" if line else name


def find(explicit: Path | None = None, disabled: bool = False) -> Path | None:
    """The config file to read, or None. An explicit file (--config, XDL_CONFIG) must exist."""
    if disabled:
        return None
    if explicit is not None:
        path = explicit.expanduser()
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist (given with --config)")
        return path
    if env := os.environ.get("XDL_CONFIG"):
        path = Path(env).expanduser()
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist (given with XDL_CONFIG)")
        return path
    path = paths.config_file()
    return path if path.is_file() else None


def load(path: Path | None) -> Config:
    """Read and shape-check a config file; a file that is not valid TOML raises ConfigError."""
    if path is None:
        return Config()
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: {_toml_message(e)}") from None
    cfg = Config(path=path, text=text)
    warnings = []
    for key in data:
        if key not in TOP_LEVEL:
            warnings.append(
                f"{cfg.where((), key)}: unknown table or key {key!r} ignored "
                f"(a config file has {' and '.join(f'[{t}]' for t in TOP_LEVEL)})"
            )
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise ConfigError(f"{cfg.where((), 'defaults')}: 'defaults' must be a table")
    profiles = data.get("profiles", {})
    if not isinstance(profiles, dict):
        raise ConfigError(f"{cfg.where((), 'profiles')}: 'profiles' must be a table")
    for name, table in profiles.items():
        if not isinstance(table, dict):
            raise ConfigError(
                f"{cfg.where(('profiles',), name)}: profile {name!r} must be a table "
                f"([profiles.{name}])"
            )
    hosts = _hosts(cfg, data.get("hosts", {}))
    return Config(path, defaults, profiles, text, hosts, tuple(warnings))


def _hosts(cfg: Config, table: Any) -> dict[str, HostRule]:
    """The `[hosts."NAME"]` tables as rules; a wrong shape or value is a ConfigError
    that names it."""
    if not isinstance(table, dict):
        raise ConfigError(f"{cfg.where((), 'hosts')}: 'hosts' must be a table of host names")
    rules: dict[str, HostRule] = {}
    for host, entry in table.items():
        where = cfg.where(("hosts",), host)
        if not isinstance(entry, dict):
            raise ConfigError(f'{where}: hosts.{host!r} must be a table ([hosts."{host}"])')
        keys = {normalize_key(k): v for k, v in entry.items()}
        unknown = sorted(set(keys) - {"per-host", "sleep"})
        if unknown:
            raise ConfigError(
                f'{where}: [hosts."{host}"] has {unknown[0]!r}; it may set per-host and sleep'
            )
        try:
            rules[host_key(host)] = check_rule(
                keys.get("per-host"), keys.get("sleep"), f'[hosts."{host}"]'
            )
        except BadInput as e:
            written = next((k for k in entry if normalize_key(k) == "per-host"), "per-host")
            raise ConfigError(f"{where}: {e.message.replace('per-host', written)}") from None
    return rules


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`over` on top of `base`, table by table."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def cascade(
    table: dict[str, Any], command_path: tuple[str, ...]
) -> Iterator[tuple[tuple[str, ...], str, Any]]:
    """The (table path, key, value) entries of `table` that apply to a command, least
    specific first: the top level, then the table named after the command (and, for a
    group's subcommand, the one below it), so deeper keys override."""
    level: dict[str, Any] | None = table
    where: tuple[str, ...] = ()
    for step in (None, *command_path):
        if step is not None:
            nxt = level.get(step) if level is not None else None
            if not isinstance(nxt, dict):
                return
            level, where = nxt, (*where, step)
        assert level is not None
        for key, value in level.items():
            if not isinstance(value, dict):
                yield where, key, value


def normalize_key(key: str) -> str:
    """`output_dir`, `--output-dir`, `Output-Dir` -> `output-dir`."""
    return key.strip().lstrip("-").replace("_", "-").lower()


_TOML_POS = re.compile(r"\(at line (\d+), column (\d+)\)")


def _toml_message(e: Exception) -> str:
    message = str(e)
    pos = _TOML_POS.search(message)
    if pos:
        message = _TOML_POS.sub("", message).strip()
        return f"line {pos.group(1)}, column {pos.group(2)}: {message}"
    return message


_HEADER = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(#.*)?$")
_KEY = re.compile(r"""^\s*("([^"]*)"|'([^']*)'|[A-Za-z0-9_-]+)\s*=""")


def _split_dotted(header: str) -> tuple[str, ...]:
    parts = re.findall(r'"([^"]*)"|\'([^\']*)\'|([^.\s]+)', header)
    return tuple(a or b or c for a, b, c in parts)


def find_line(text: str, table: tuple[str, ...], key: str | None = None) -> int | None:
    """The 1-based line where `key` is set in `[table]` (or the table's header line):
    best effort for error messages, not a TOML parser."""
    current: tuple[str, ...] = ()
    header_line = 1 if not table else None
    for number, line in enumerate(text.splitlines(), 1):
        header = _HEADER.match(line)
        if header:
            current = _split_dotted(header.group(1))
            if current == table and header_line is None:
                header_line = number
            if key is not None and current[: len(table) + 1] == (*table, key):
                return number
            continue
        if key is None or current != table:
            continue
        found = _KEY.match(line)
        if found:
            name = found.group(2) or found.group(3) or found.group(1)
            if name == key:
                return number
    return header_line
