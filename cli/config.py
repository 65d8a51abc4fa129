"""The config file meets the click tree: turn `[defaults]` and `[profiles.NAME]` into
click's `default_map`, so the precedence is click's own plus one layer (SPEC §6):
command line > environment (XDL_<COMMAND>_<OPTION>) > profile > config defaults > built-in.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from xdl.core import config as core_config
from xdl.core.errors import ConfigError

if TYPE_CHECKING:
    from xdl.core.context import Context

log = logging.getLogger("xdl")

#: ctx.meta key holding the loaded Config on the root context.
META = "xdl.config"
CONTEXT = "xdl.context"


def options_by_key(command: click.Command) -> dict[str, tuple[click.Option, bool]]:
    """Every name a config key may use for an option of `command` -> (option, negated):
    its long names, its secondary (`--no-x`) names, and its parameter name."""
    keys: dict[str, tuple[click.Option, bool]] = {}
    for param in command.params:
        if not isinstance(param, click.Option) or param.name is None:
            continue
        if param.hidden or param.name == "help":
            continue
        keys[core_config.normalize_key(param.name)] = (param, False)
        for opt in param.opts:
            if opt.startswith("--"):
                keys[core_config.normalize_key(opt)] = (param, False)
        for opt in param.secondary_opts:
            if opt.startswith("--"):
                keys[core_config.normalize_key(opt)] = (param, True)
    return keys


def walk(
    group: click.Command, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    """(path, command) for `group` and every command below it."""
    yield path, group
    if isinstance(group, click.Group):
        ctx = click.Context(group, info_name=path[-1] if path else "xdl")
        for name in group.list_commands(ctx):
            sub = group.get_command(ctx, name)
            if sub is not None:
                yield from walk(sub, (*path, name))


def _value(
    cfg: core_config.Config,
    table: tuple[str, ...],
    key: str,
    raw: Any,
    param: click.Option,
    negated: bool,
    command: click.Command,
) -> Any:
    """Checks a config value against the option's type; returns what goes in default_map."""
    where = cfg.where(table, key)
    label = ".".join((*table, key))
    if negated:
        if not isinstance(raw, bool):
            raise ConfigError(f"{where}: {label} must be true or false, not {raw!r}")
        raw = not raw
    if param.multiple or param.nargs != 1:
        values = raw if isinstance(raw, list) else [raw]
    else:
        if isinstance(raw, (list, dict)):
            raise ConfigError(f"{where}: {label} takes one value, not {raw!r}")
        values = [raw]
    values = [_expand(v, param) for v in values]
    if isinstance(param.type, click.File):
        bad = [v for v in values if not isinstance(v, str)]
        if bad:
            raise ConfigError(f"{where}: {label} must be a file name, not {bad[0]!r}")
    else:
        ctx = click.Context(command, info_name=command.name, resilient_parsing=True)
        try:
            for v in values:
                if param.is_flag and not param.is_bool_flag:
                    continue
                param.type(v, param, ctx)
        except click.BadParameter as e:
            raise ConfigError(f"{where}: {label}: {e.message}") from None
    return values if (param.multiple or param.nargs != 1) else values[0]


def _expand(value: Any, param: click.Option) -> Any:
    if isinstance(value, str) and isinstance(param.type, (click.Path, click.File)):
        return str(Path(value).expanduser())
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if number and isinstance(param.type, (click.types.StringParamType, click.Choice)):
        return str(value)
    return value


def resolve(
    cfg: core_config.Config,
    table: dict[str, Any],
    table_path: tuple[str, ...],
    command_path: tuple[str, ...],
    command: click.Command,
) -> dict[str, Any]:
    """The default_map entries (parameter name -> value) `table` gives one command."""
    known = options_by_key(command)
    out: dict[str, Any] = {}
    for where, key, raw in core_config.cascade(table, command_path):
        found = known.get(core_config.normalize_key(key))
        if found is None:
            continue  # for another command; unknown keys are warned about by check_keys
        param, negated = found
        assert param.name is not None
        out[param.name] = _value(cfg, (*table_path, *where), key, raw, param, negated, command)
    return out


def check_keys(
    cfg: core_config.Config, table: dict[str, Any], table_path: tuple[str, ...], root: click.Group
) -> list[str]:
    """Warnings for keys no command would use and tables that name no command."""
    tree = dict(walk(root))
    keys_by_path = {path: set(options_by_key(cmd)) for path, cmd in tree.items() if path}
    warnings: list[str] = []

    def visit(level: dict[str, Any], path: tuple[str, ...]) -> None:
        below = [keys for p, keys in keys_by_path.items() if p[: len(path)] == path]
        for key, value in level.items():
            if isinstance(value, dict):
                if (*path, key) in tree:
                    visit(value, (*path, key))
                else:
                    name = " ".join(("xdl", *path, key))
                    warnings.append(
                        f"{cfg.where((*table_path, *path), key)}: "
                        f"[{'.'.join((*table_path, *path, key))}] ignored: "
                        f"there is no command `{name}`"
                    )
            elif not any(core_config.normalize_key(key) in keys for keys in below):
                where = " ".join(("xdl", *path))
                warnings.append(
                    f"{cfg.where((*table_path, *path), key)}: "
                    f"{'.'.join((*table_path, *path, key))} ignored: "
                    f"no option --{core_config.normalize_key(key)} in `{where}`"
                )

    visit(table, ())
    return warnings


def load(explicit: Path | None, disabled: bool, root: click.Group) -> core_config.Config:
    """Finds and reads the config file, and warns (stderr) about keys that do nothing."""
    path = core_config.find(explicit, disabled)
    cfg = core_config.load(path)
    if path is None:
        return cfg
    warnings = list(cfg.warnings)
    warnings += check_keys(cfg, cfg.defaults, ("defaults",), root)
    for name, table in cfg.profiles.items():
        warnings += check_keys(cfg, table, ("profiles", name), root)
    for warning in warnings:
        log.warning("warning: %s", warning)
    return replace(cfg, warnings=tuple(warnings))


def default_map(cfg: core_config.Config, root: click.Group, name: str) -> dict[str, Any] | None:
    """click's default_map for the subcommand `name` (and, for a group, the commands in it)."""
    if not cfg.defaults:
        return None
    ctx = click.Context(root, info_name="xdl")
    command = root.get_command(ctx, name)
    if command is None:
        return None
    out: dict[str, Any] = {}
    for path, cmd in walk(command, (name,)):
        entry = out
        for step in path[1:]:
            entry = entry.setdefault(step, {})
        entry.update(resolve(cfg, cfg.defaults, ("defaults",), path, cmd))
    return {name: out}


def apply_profile(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """--profile's callback (eager, so it runs before the other options read their
    defaults): lays the profile over the config defaults in this command's default_map."""
    if value is None or ctx.resilient_parsing:
        return value
    cfg = ctx.find_root().meta.get(META) or core_config.Config()
    table = cfg.profile(value)
    if table is None:
        names = ", ".join(cfg.profile_names())
        raise click.BadParameter(f"no profile {value!r} (profiles: {names})", ctx, param)
    path = tuple(ctx.command_path.split()[1:])
    values = resolve(cfg, table, ("profiles", value), path, ctx.command)
    values.pop("profile", None)  # a profile does not name another
    ctx.default_map = {**(ctx.default_map or {}), **values}
    log.debug("profile %s: %s", value, values)
    return value


def complete_profile(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[click.shell_completion.CompletionItem]:
    """Profile names: the built-in ones and those in the config file."""
    from click.shell_completion import CompletionItem

    root = ctx.find_root()
    try:
        explicit = root.params.get("config")
        path = core_config.find(
            Path(explicit) if explicit else None, bool(root.params.get("no_config"))
        )
        cfg = core_config.load(path)
    except ConfigError:
        cfg = core_config.Config()
    return [CompletionItem(n) for n in cfg.profile_names() if n.startswith(incomplete)]


profile_option = click.option(
    "--profile",
    metavar="NAME",
    is_eager=True,
    expose_value=False,
    callback=apply_profile,
    shell_complete=complete_profile,
    help="Use a profile's options: podcast, music, archive, social, stream, "
    "or a [profiles.NAME] table of the config file.",
)


def setup(ctx: click.Context, explicit: Path | None, disabled: bool) -> None:
    """The group's callback: read the config once and give the invoked command its
    default_map. `xdl doctor` still runs with a broken config, to report it."""
    if explicit is not None and ctx.get_parameter_source("config") is (
        click.core.ParameterSource.ENVIRONMENT
    ):
        explicit = None  # XDL_CONFIG: core_config.find reads it and says so
    name = ctx.invoked_subcommand
    root = ctx.command
    assert isinstance(root, click.Group)
    try:
        cfg = load(explicit, disabled, root)
    except ConfigError:
        if name == "doctor":
            return
        raise
    ctx.meta[META] = cfg
    if name and (defaults := default_map(cfg, root, name)):
        ctx.default_map = defaults


def shared() -> Context:
    """What the downloads of this command line share (`core.context`): made at the first
    ask, its per-host budget from the config's [hosts] table."""
    from xdl.core.context import Context
    from xdl.core.hosts import Budget

    meta = click.get_current_context().meta  # one for the whole command line
    if CONTEXT not in meta:
        cfg = meta.get(META) or core_config.Config()
        meta[CONTEXT] = Context(Budget(cfg.hosts))
    context: Context = meta[CONTEXT]
    return context
