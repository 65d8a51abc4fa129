"""What one download is asked to do: `FetchOptions`, and the per-input overrides a JSON
input line may carry (checked once, here: a wrong type is `bad_input`, never ignored)."""

from __future__ import annotations

import dataclasses
import functools
import os
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import errors
from ..hosts import check_rule
from ..network import NetworkOptions

DEFAULT_TEMPLATE = "%(title)s [%(id)s].%(ext)s"
STRATEGIES = ("auto", "ytdlp", "youtube-dl", "http", "wget", "curl")
AUDIO_FORMATS = ("best", "mp3", "m4a", "opus", "flac", "wav")
QUALITIES = ("best", "worst", "2160p", "1440p", "1080p", "720p", "480p", "360p")
CONTAINERS = ("mp4", "mkv", "webm")


#: progress(key, done_bytes, total_bytes_or_None); called from worker threads.
Progress = Callable[[str, int, "int | None"], None]
#: progress(input_url, key, done_bytes, total_bytes_or_None): a batch's, per input.
BatchProgress = Callable[[str, str, int, "int | None"], None]


@dataclass(frozen=True)
class FetchOptions:
    """Every option of one download task (what `queue add` stores with a task).

    JSON-serialisable with `to_dict()`; `from_dict()` ignores unknown keys and fills
    missing ones with defaults, so a queue written by another xdl version still loads.
    Sizes and rates are in bytes (per second).
    """

    output_dir: str = "."
    template: str = DEFAULT_TEMPLATE
    audio: bool = False
    audio_format: str = "best"
    audio_quality: str | None = None
    keep_video: bool = False
    quality: str | None = None
    format: str | None = None
    container: str | None = None
    subs: bool = False
    auto_subs: bool = False
    sub_langs: tuple[str, ...] = ()
    write_info_json: bool = False
    write_description: bool = False
    embed_metadata: bool = False
    embed_thumbnail: bool = False
    embed_subs: bool = False
    embed_chapters: bool = False
    normalize: bool = False
    playlist_items: str | None = None
    no_playlist: bool = False
    max_downloads: int | None = None
    live_from_start: bool = False
    live_duration: float | None = None
    strategy: str = "auto"
    fallback: bool = True
    connections: int = 1
    rate_limit: int | None = None
    sleep: float = 0.0
    #: At most this many downloads from one host at once (None: only -j bounds them).
    per_host: int | None = None
    retries: int = 3
    archive: str | None = None
    break_on_existing: bool = False
    overwrite: bool = False
    min_size: int | None = None
    max_size: int | None = None
    sha256: str | None = None
    min_free: int | None = None
    net: NetworkOptions = field(default_factory=NetworkOptions)
    dry_run: bool = False
    cache: str | None = None
    cache_size: int | None = None

    @property
    def timeout(self) -> float | None:
        return self.net.timeout

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["sub_langs"] = list(self.sub_langs)
        d["net"] = {**dataclasses.asdict(self.net), "headers": dict(self.net.headers)}
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> FetchOptions:
        d = dict(d or {})
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {k: v for k, v in d.items() if k in names and k != "net"}
        langs = kwargs.get("sub_langs")
        if isinstance(langs, str) or (
            isinstance(langs, list | tuple) and all(isinstance(x, str) for x in langs)
        ):
            kwargs["sub_langs"] = split_langs(langs)
        elif isinstance(langs, list):
            kwargs["sub_langs"] = tuple(langs)  # of the wrong type: _check_types says so
        raw_net = dict(d.get("net") or {})
        for key in ("timeout", "proxy", "user_agent", "headers", "cookies"):
            if key in d and key not in raw_net:  # flat keys, as a hand-written file may have
                raw_net[key] = d[key]
        net_names = {f.name for f in dataclasses.fields(NetworkOptions)}
        net = {k: v for k, v in raw_net.items() if k in net_names}
        headers = net.get("headers") or {}
        if not isinstance(headers, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
        ):
            raise errors.BadInput("the option 'headers' must map names to strings")
        net["headers"] = dict(headers)
        _check_types(cls, kwargs)
        _check_types(NetworkOptions, {k: v for k, v in net.items() if k != "headers"})
        check_rule(kwargs.get("per_host"), kwargs.get("sleep", 0.0), "the task's options")
        if kwargs.get("sha256") is not None:  # a stored task is checked as a fetch line is
            kwargs["sha256"] = check_sha256(kwargs["sha256"], "the task's sha256")
        return cls(**kwargs, net=NetworkOptions(**net))

    def replace(self, **changes: Any) -> FetchOptions:
        return dataclasses.replace(self, **changes)

    def for_input(self, fields: Mapping[str, Any] | None) -> FetchOptions:
        """These options for one input line (see `for_input`); a line with no override
        of its own gets one shared copy (`queue add` of 100,000 plain URLs)."""
        if fields and not fields.keys().isdisjoint(_FIELD_TYPES):
            return for_input(self, fields)
        plain: FetchOptions | None = self.__dict__.get("_plain")
        if plain is None:
            plain = for_input(self, None)
            object.__setattr__(self, "_plain", plain)
        return plain

    @property
    def free_space_margin(self) -> int:
        from .target import FREE_SPACE_MARGIN

        return FREE_SPACE_MARGIN if self.min_free is None else self.min_free


@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    """A dataclass's resolved field types: evaluated once (`queue run` reads every task's
    options, and resolving the string annotations costs a millisecond each time)."""
    return typing.get_type_hints(cls)


def _check_types(cls: type, values: Mapping[str, Any]) -> None:
    """BadInput unless each value has its field's type (a stored task, a hand-written
    queue file): a wrong type is never quietly used or ignored."""
    hints = _type_hints(cls)
    for name, value in values.items():
        hint = hints[name]
        union = typing.get_origin(hint) in (typing.Union, types.UnionType)
        kinds = typing.get_args(hint) if union else (hint,)
        ok = any(_is(value, kind) for kind in kinds)
        if not ok:
            wanted = " or ".join(
                "a list of strings" if typing.get_origin(k) is tuple else k.__name__ for k in kinds
            ).replace("NoneType", "null")
            raise errors.BadInput(
                f"the option {name!r} must be {wanted}, not {type(value).__name__}"
            )


def _is(value: Any, kind: Any) -> bool:
    if kind is type(None):
        return value is None
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    origin = typing.get_origin(kind)
    if origin is tuple:
        return isinstance(value, tuple) and all(isinstance(x, str) for x in value)
    if origin is not None or not isinstance(kind, type):
        return True  # nested types are checked where they are built
    return isinstance(value, kind)


#: The fields of a JSON input line that change how that one input is fetched.
_FIELD_TYPES: dict[str, type] = {"sha256": str, "template": str, "audio": bool}


def check_sha256(value: str, what: str = "the sha256") -> str:
    """A SHA-256 hex digest, normalised (stripped, lower case); BadInput otherwise."""
    sha = value.strip().lower()
    if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise errors.BadInput(f"{what} is not a SHA-256 hex digest: {sha[:80]!r}")
    return sha


def split_langs(values: str | tuple[str, ...] | list[str] | None) -> tuple[str, ...]:
    """Subtitle languages as given (`en,de`, or several values of `en` and `de`): one tuple."""
    items = [values] if isinstance(values, str) else list(values or ())
    return tuple(lang.strip() for item in items for lang in item.split(",") if lang.strip())


def _with_fields(options: FetchOptions, fields: Mapping[str, Any]) -> FetchOptions:
    changes: dict[str, Any] = {}
    for name, kind in _FIELD_TYPES.items():
        value = fields.get(name)
        if value is None:
            continue
        if not isinstance(value, kind):
            raise errors.BadInput(
                f"the input's {name!r} must be a {'boolean' if kind is bool else 'string'},"
                f" not {type(value).__name__}"
            )
        changes[name] = value
    if "sha256" in changes:
        changes["sha256"] = check_sha256(changes["sha256"], "the input's sha256")
    if "template" in changes:
        if not changes["template"].strip():
            raise errors.BadInput("the input's template is empty")
        check_template(changes["template"])
    return options.replace(**changes) if changes else options


def _absolute(options: FetchOptions) -> FetchOptions:
    """Paths made absolute: a queued task may run from another directory."""

    def absolute(path: str) -> str:
        return os.path.abspath(os.path.expanduser(path))

    changes: dict[str, Any] = {"output_dir": absolute(options.output_dir)}
    if options.archive:
        changes["archive"] = absolute(options.archive)
    if options.cache:
        changes["cache"] = absolute(options.cache)
    if options.net.cookies:
        changes["net"] = dataclasses.replace(options.net, cookies=absolute(options.net.cookies))
    return options.replace(**changes)


def for_input(options: FetchOptions, fields: Mapping[str, Any] | None) -> FetchOptions:
    """The ONE place an input line's fields become the options of its download: `fetch`
    and `queue add` both call it (so a task stores exactly what `fetch` would use).

    The line's overrides (`sha256`, `template`, `audio`) are checked, a wrong type or
    value being `bad_input` (`"sha256": 5` must never download unverified, nor
    `"audio": "yes"` quietly keep the video); paths are made absolute.
    """
    return _absolute(_with_fields(options, fields or {}))


def check_template(template: str) -> tuple[str, ...]:
    """The folders of an output template, which must stay inside --output-dir."""
    parts = template.replace("\\", "/").split("/")
    if template.startswith(("/", "~")) or ".." in parts:
        raise errors.BadInput(f"the template must stay inside --output-dir: {template!r}")
    return tuple(p for p in parts[:-1] if p not in ("", "."))
