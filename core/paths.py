"""Where xdl keeps its state: config, queue, data. Resolved here and nowhere else.

`XDL_HOME` puts everything under one folder (tests point it at a temporary directory);
otherwise the XDG base directories (platformdirs picks the platform's own elsewhere).
"""

from __future__ import annotations

import os
from pathlib import Path


def _home() -> Path | None:
    home = os.environ.get("XDL_HOME")
    return Path(home).expanduser() if home else None


def config_dir() -> Path:
    if home := _home():
        return home / "config"
    if xdg := os.environ.get("XDG_CONFIG_HOME"):
        return Path(xdg) / "xdl"
    import platformdirs

    return Path(platformdirs.user_config_dir("xdl", appauthor=False))


def data_dir() -> Path:
    if home := _home():
        return home / "data"
    if xdg := os.environ.get("XDG_DATA_HOME"):
        return Path(xdg) / "xdl"
    import platformdirs

    return Path(platformdirs.user_data_dir("xdl", appauthor=False))


def cache_dir() -> Path:
    """What can be lost at no cost but time (a feed's last ETag): XDG_CACHE_HOME."""
    if home := _home():
        return home / "cache"
    if xdg := os.environ.get("XDG_CACHE_HOME"):
        return Path(xdg) / "xdl"
    import platformdirs

    return Path(platformdirs.user_cache_dir("xdl", appauthor=False))


def config_file() -> Path:
    """`XDL_CONFIG`, else config.toml in the config dir (it need not exist)."""
    if explicit := os.environ.get("XDL_CONFIG"):
        return Path(explicit).expanduser()
    return config_dir() / "config.toml"


def queue_file() -> Path:
    """`XDL_QUEUE`, else queue.json in the data dir (it need not exist)."""
    if explicit := os.environ.get("XDL_QUEUE"):
        return Path(explicit).expanduser()
    return data_dir() / "queue.json"


def queue_location() -> Path | str:
    """The queue: `XDL_QUEUE` (a file, or a `postgresql://` URL), else queue.json."""
    explicit = os.environ.get("XDL_QUEUE", "")
    if explicit.startswith(("postgresql://", "postgres://")):
        return explicit
    return queue_file()
