#!/usr/bin/env python3
"""Generate the man pages (man/*.1) and shell completions (completions/*) from the click tree.

    python tools/gen_docs.py            # write man/ and completions/ (what `make docs` runs)
    python tools/gen_docs.py --out DIR  # write them under DIR instead
    python tools/gen_docs.py --check    # exit 1 when the committed copies differ

Each page is built from what the command already says about itself: its help text (the
"Fields:" sentence becomes JSON FIELDS, the `Examples:` block becomes EXAMPLES), its
options (with defaults and the XDL_<COMMAND>_<OPTION> variable each one reads), and the
contract shared by every command (exit status, environment, files). The output depends
only on the code: user paths are written as $HOME/..., the date is the newest date in
CHANGELOG.md.
"""

from __future__ import annotations

import argparse
import difflib
import inspect
import os
import re
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _neutral_environment() -> None:
    """Paths in defaults and profiles come out as $HOME/..., whoever runs this."""
    for name in list(os.environ):
        if name.startswith(("XDL_", "XDG_")):
            del os.environ[name]
    os.environ["HOME"] = "$HOME"
    os.environ["XDG_CONFIG_HOME"] = "$HOME/.config"
    os.environ["XDG_DATA_HOME"] = "$HOME/.local/share"


_neutral_environment()

import click  # noqa: E402
from click.shell_completion import get_completion_class  # noqa: E402

from xdl.cli.main import cli  # noqa: E402
from xdl.core import __version__  # noqa: E402
from xdl.core import config as core_config  # noqa: E402

SHELLS = {"bash": "xdl.bash", "zsh": "_xdl", "fish": "xdl.fish"}

EXIT_STATUS = [
    ("0", "Every input succeeded or was skipped."),
    ("1", "At least one input failed; all the others were still processed."),
    ("2", "Usage error: a bad option or value, or no input given at a terminal."),
    (
        "3",
        "Could not work at all: a broken config file, a corrupt or locked queue file, "
        "an output directory that is not writable, a required tool missing "
        "(ffmpeg for --audio).",
    ),
    ("130, 143", "Interrupted by SIGINT or SIGTERM, after cleaning up."),
]

ENVIRONMENT = [
    (
        "XDL_<COMMAND>_<OPTION>",
        "Any option of any command, named after the command path and the option's "
        "parameter name in capitals, e.g. XDL_FETCH_OUTPUT_DIR, XDL_QUEUE_ADD_PRIORITY. "
        "Flags take 1/0, true/false. The command line wins over the environment, which "
        "wins over a profile, the config file's defaults and the built-in defaults.",
    ),
    ("XDL_CONFIG", "The config file to read, instead of the default one (as --config)."),
    ("XDL_NO_CONFIG", "When 1, ignore the config file (as --no-config)."),
    (
        "XDL_HOME",
        "Keep everything (config, queue, data, cache) under this one directory: "
        "XDL_HOME/config/config.toml, XDL_HOME/data/queue.json, XDL_HOME/cache.",
    ),
    ("XDL_QUEUE", "The queue file (as --queue)."),
    ("XDL_DEBUG", "When set, internal errors show a Python traceback."),
    ("XDG_CONFIG_HOME", "Base of the config directory (default $HOME/.config)."),
    ("XDG_DATA_HOME", "Base of the data directory: queue, archives (default $HOME/.local/share)."),
    ("XDG_CACHE_HOME", "Base of the cache directory: what can be lost (default $HOME/.cache)."),
]

FILES = [
    (
        "$XDG_CONFIG_HOME/xdl/config.toml",
        "The config file: [defaults] and [profiles.NAME] tables (see xdl(1), CONFIGURATION).",
    ),
    (
        "$XDG_DATA_HOME/xdl/queue.json",
        "The download queue (with its journal and backups beside it).",
    ),
    (
        "$XDG_DATA_HOME/xdl/podcast-archive.txt",
        "The download archive of the built-in podcast profile.",
    ),
    (
        "$XDG_CACHE_HOME/xdl/yt-dlp-extractors.json",
        "What each yt-dlp extractor's URL patterns need, made once per installed yt-dlp:"
        " a plain file's URL is told apart without loading yt-dlp. Safe to delete.",
    ),
    (
        "$XDG_CACHE_HOME/xdl/feeds/",
        "The ETag and Last-Modified of each feed polled with --archive. Safe to delete.",
    ),
]


# --- roff -----------------------------------------------------------------------------


def esc(text: str) -> str:
    """Text for a roff line: backslashes escaped, no line starting like a request."""
    text = text.replace("\\", "\\e").replace("\x08", "")
    lines = []
    for line in text.split("\n"):
        if line.startswith((".", "'")):
            line = "\\&" + line
        lines.append(line)
    return "\n".join(lines)


def opt(text: str) -> str:
    """An option name or command: bold, with real minus signs."""
    return "\\fB" + esc(text).replace("-", "\\-") + "\\fR"


def section(name: str) -> str:
    return f".SH {name}"


def wrap(text: str) -> str:
    """Prose as roff source lines of at most 80 bytes (mandoc's style)."""
    lines = textwrap.wrap(
        " ".join(text.split()), 78, break_long_words=False, break_on_hyphens=False
    )
    return "\n".join(esc(line) for line in lines)


def para(text: str) -> str:
    return ".PP\n" + wrap(text)


def tagged(tag: str, body: str) -> str:
    return f".TP\n{tag}\n{wrap(body)}"


def literal(lines: list[str]) -> str:
    body = "\n".join(esc(line) for line in lines)
    return f".PP\n.RS 4\n.nf\n{body}\n.fi\n.RE"


# --- reading a command's help -----------------------------------------------------------


class Help:
    """A command's help text, split the way a man page needs it."""

    def __init__(self, text: str | None) -> None:
        text = inspect.cleandoc(text or "")
        self.summary = ""
        self.paragraphs: list[tuple[str, list[str]]] = []  # ("text"|"literal", lines)
        self.fields = ""
        self.examples: list[str] = []
        blocks = re.split(r"\n\s*\n", text.strip()) if text.strip() else []
        for n, block in enumerate(blocks):
            lines = block.split("\n")
            verbatim = lines[0].strip() == "\x08"
            if verbatim:
                lines = lines[1:]
            if lines and lines[0].strip().rstrip(":").lower() == "examples":
                self.examples += [line.strip() for line in lines[1:] if line.strip()]
                continue
            if verbatim:
                self.paragraphs.append(("literal", [line.rstrip() for line in lines]))
                continue
            words = " ".join(line.strip() for line in lines)
            if n == 0:
                self.summary = words
                continue
            words = self._take_fields(words)
            if words:
                self.paragraphs.append(("text", [words]))

    def _take_fields(self, words: str) -> str:
        """Moves the "Fields: a, b, c." sentence out of a paragraph."""
        found = re.search(r"(?:^|(?<=\s))Fields:\s*", words)
        if not found or self.fields:
            return words
        rest = words[found.end() :]
        end = re.search(r"\.(\s+(?=[A-Z`])|$)", rest)
        fields = rest[: end.start() + 1] if end else rest
        after = rest[end.end() :] if end else ""
        self.fields = fields.strip()
        return (words[: found.start()] + after).strip()


def summary_line(command: click.Command) -> str:
    return Help(command.help).summary.rstrip(".") or (command.short_help or "")


def option_entries(command: click.Command, ctx: click.Context) -> Iterator[str]:
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is None or not isinstance(param, click.Option):
            continue
        names, help_text = record
        help_text = help_text.replace("\x08", "")
        env = envvar(param, ctx)
        if env:
            help_text = f"{help_text.rstrip()} Environment: {env}."
        yield tagged(option_tag(names), help_text)


def option_tag(names: str) -> str:
    """'-o, --output-dir DIRECTORY' -> bold names, italic metavar."""
    out = []
    for token in re.split(r"(, | / )", names):
        if token in (", ", " / "):
            out.append(token)
            continue
        name, _, metavar = token.partition(" ")
        out.append(opt(name) if name.startswith("-") else "\\fI" + esc(name) + "\\fR")
        if metavar:
            out.append("\\ \\fI" + esc(metavar).replace(" ", "\\ ") + "\\fR")
    return "".join(out)


def envvar(param: click.Option, ctx: click.Context) -> str | None:
    if param.name in ("help", "version") or set(param.opts) & set(ctx.help_option_names):
        return None
    if param.envvar:
        return param.envvar if isinstance(param.envvar, str) else ", ".join(param.envvar)
    if param.allow_from_autoenv and ctx.auto_envvar_prefix and param.name:
        return f"{ctx.auto_envvar_prefix}_{param.name.upper()}"
    return None


def usage(command: click.Command, ctx: click.Context) -> str:
    pieces = command.collect_usage_pieces(ctx)
    return " ".join([ctx.command_path, *pieces])


# --- pages ----------------------------------------------------------------------------


def page_date() -> str:
    changelog = ROOT / "CHANGELOG.md"
    dates = re.findall(r"\b(20\d\d-\d\d-\d\d)\b", changelog.read_text(encoding="utf-8"))
    return max(dates) if dates else "2026-11-21"


def tidy(page: str) -> str:
    """No paragraph break right after a section heading (mandoc warns about it)."""
    return re.sub(r"^(\.S[HS] [^\n]*\n)\.PP\n", r"\1", page, flags=re.M)


def header(name: str, summary: str) -> list[str]:
    return [
        f'.TH {name.upper()} 1 {page_date()} "xdl {__version__}" "xdl manual"',
        ".nh",  # no hyphenation: option names and XDL_* variables stay whole
        ".ad l",  # ragged right: long names do not stretch the spaces of a line
        section("NAME"),
        f"{esc(name)} \\- {esc(summary)}",
    ]


def command_body(command: click.Command, ctx: click.Context, level: str = ".SH") -> list[str]:
    """DESCRIPTION/OPTIONS/JSON FIELDS of one command (as .SS parts inside a group page)."""
    help_ = Help(command.help)
    out: list[str] = []
    if level == ".SS":
        out += [f".SS {esc(ctx.command_path)}", literal([usage(command, ctx)])]
        out.append(para(help_.summary))
    for kind, lines in help_.paragraphs:
        out.append(literal(lines) if kind == "literal" else para(lines[0]))
    options = list(option_entries(command, ctx))
    if options:
        out.append(section("OPTIONS") if level == ".SH" else para("Options:"))
        out += options
    if help_.fields:
        if level == ".SH":
            out += [section("JSON FIELDS"), para(JSON_INTRO), para(help_.fields)]
        else:
            out.append(para(f"JSON fields: {help_.fields}"))
    return out


JSON_INTRO = (
    "One JSON object a line on stdout. Every line has ok (true or false) and the input it "
    "answers (url or path); a failed one has error: {code, message}; a skipped one has "
    'ok: true and skipped: "REASON". The fields:'
)


def common_sections(examples: list[str], see_also: list[str]) -> list[str]:
    out = [section("EXIT STATUS")]
    out += [tagged(opt(code) if code[0].isdigit() else code, text) for code, text in EXIT_STATUS]
    out.append(section("ENVIRONMENT"))
    out += [tagged(f"\\fB{esc(name)}\\fR", text) for name, text in ENVIRONMENT]
    out.append(section("FILES"))
    out += [tagged(f"\\fI{esc(name)}\\fR", text) for name, text in FILES]
    if examples:
        out += [section("EXAMPLES"), literal(examples)]
    out += [section("SEE ALSO"), ",\n".join(f"\\fB{esc(n)}\\fR(1)" for n in see_also)]
    return out


def command_page(name: str, command: click.Command, root_ctx: click.Context) -> str:
    ctx = click.Context(command, info_name=name, parent=root_ctx)
    help_ = Help(command.help)
    lines = header(f"xdl-{name}", summary_line(command))
    lines += [section("SYNOPSIS"), literal([usage(command, ctx)])]
    lines += [section("DESCRIPTION"), para(help_.summary)]
    examples = list(help_.examples)
    if isinstance(command, click.Group):
        body = command_body(command, ctx)
        lines += body
        lines.append(section("COMMANDS"))
        for sub_name in command.list_commands(ctx):
            sub = command.get_command(ctx, sub_name)
            if sub is None or sub.hidden:
                continue
            sub_ctx = click.Context(sub, info_name=sub_name, parent=ctx)
            lines += command_body(sub, sub_ctx, ".SS")
            examples += [e for e in Help(sub.help).examples if e not in examples]
    else:
        lines += command_body(command, ctx)
    others = [f"xdl-{n}" for n in visible_commands(root_ctx) if n != name]
    lines += common_sections(examples, ["xdl", *others, "yt-dlp", "jq"])
    return tidy("\n".join(lines) + "\n")


def visible_commands(root_ctx: click.Context) -> list[str]:
    group = root_ctx.command
    assert isinstance(group, click.Group)
    return [
        n
        for n in group.list_commands(root_ctx)
        if (c := group.get_command(root_ctx, n)) is not None and not c.hidden
    ]


def main_page(root_ctx: click.Context) -> str:
    help_ = Help(cli.help)
    lines = header("xdl", help_.summary.rstrip("."))
    lines += [section("SYNOPSIS"), literal(["xdl [--config FILE | --no-config] COMMAND [ARGS]..."])]
    lines += [section("DESCRIPTION"), para(help_.summary)]
    for kind, text in help_.paragraphs:
        if kind == "text":
            lines.append(para(text[0]))
    lines += [section("COMMANDS")]
    for name in visible_commands(root_ctx):
        command = cli.get_command(root_ctx, name)
        assert command is not None
        lines.append(tagged(f"\\fBxdl\\-{esc(name)}\\fR(1)", summary_line(command) + "."))
    lines.append(section("OPTIONS"))
    lines += list(option_entries(cli, root_ctx))
    lines += [section("INPUT"), para(INPUT), section("OUTPUT"), para(OUTPUT)]
    lines += configuration_section()
    lines += common_sections(
        help_.examples, [f"xdl-{n}" for n in visible_commands(root_ctx)] + ["yt-dlp", "jq"]
    )
    return tidy("\n".join(lines) + "\n")


INPUT = (
    "Commands that take URLs (or, for to-markdown, files) read them from the arguments, "
    "then from -a FILE (- is stdin), then from stdin when no arguments were given and "
    "stdin is not a terminal. Blank lines and lines starting with # are skipped. A line "
    "that is a JSON object contributes its url (or webpage_url, or path for files), so "
    "the output of one xdl command is the input of the next."
)
OUTPUT = (
    "stdout carries results only: one UTF-8 JSON object a line, flushed per line. info, "
    "formats and queue status print a table instead when stdout is a terminal (--json "
    "and --table force either). stderr is for people: progress bars at a terminal, "
    "warnings and errors as short lines, debug logs with -v."
)


def configuration_section() -> list[str]:
    out = [
        section("CONFIGURATION"),
        para(
            "Options can come from a TOML file: $XDG_CONFIG_HOME/xdl/config.toml "
            "(XDL_HOME/config/config.toml when XDL_HOME is set), or the file given with "
            "--config or XDL_CONFIG; --no-config ignores it. Keys are long option names "
            "(output-dir or output_dir; no-subs = true is the same as subs = false). "
            "Keys at the top of [defaults] apply to every command that has the option; "
            "[defaults.COMMAND] to one command, [defaults.queue.add] to a subcommand; "
            "the more specific table wins. [profiles.NAME] tables have the same shape "
            "and apply only with --profile NAME (on fetch, queue add and transcript); a "
            "profile's keys that a command does not have are skipped. A table named "
            "like a built-in profile adds to it. Precedence: command line > environment "
            "> profile > config defaults > built-in defaults. A file that does not parse "
            "or holds a bad value is an error naming the file, line and key (exit 3); an "
            "unknown key is a warning on stderr.",
        ),
        literal(
            [
                "[defaults]",
                "timeout = 30",
                "[defaults.fetch]",
                'output-dir = "~/Videos"',
                "jobs = 4",
                "[defaults.queue.add]",
                "priority = 5",
                "[profiles.lectures]",
                'quality = "720p"',
                "subs = true",
                'sub-langs = ["en"]',
            ]
        ),
        para("The built-in profiles, as they would be written in the file:"),
    ]
    for name, table in core_config.builtin_profiles().items():
        out.append(literal([f"[profiles.{name}]", *(f"{k} = {toml(v)}" for k, v in table.items())]))
    return out


def toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


# --- writing ------------------------------------------------------------------------------


def generate() -> dict[str, str]:
    """Relative path -> content, for every generated file."""
    root_ctx = click.Context(cli, info_name="xdl", **cli.context_settings)
    files = {"man/xdl.1": main_page(root_ctx)}
    for name in visible_commands(root_ctx):
        command = cli.get_command(root_ctx, name)
        assert command is not None
        files[f"man/xdl-{name}.1"] = command_page(name, command, root_ctx)
    for shell, filename in SHELLS.items():
        completion = get_completion_class(shell)
        assert completion is not None
        source = completion(cli, {}, "xdl", "_XDL_COMPLETE").source()
        files[f"completions/{filename}"] = source.rstrip("\n") + "\n"
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT, help="write under this directory")
    parser.add_argument("--check", action="store_true", help="compare, write nothing")
    args = parser.parse_args(argv)
    files = generate()
    if args.check:
        stale = []
        for rel, content in files.items():
            path = args.out / rel
            old = path.read_text(encoding="utf-8") if path.exists() else ""
            if old != content:
                stale.append(rel)
                sys.stderr.writelines(
                    difflib.unified_diff(
                        old.splitlines(True), content.splitlines(True), rel, rel + " (new)", n=1
                    )
                )
        for folder in ("man", "completions"):
            for path in sorted((args.out / folder).glob("*")):
                rel = f"{folder}/{path.name}"
                if rel not in files and path.name != "README":
                    stale.append(rel)
                    print(f"{rel}: not generated any more (delete it)", file=sys.stderr)
        if stale:
            print(f"out of date: {', '.join(stale)}; run `make docs`", file=sys.stderr)
            return 1
        return 0
    for rel, content in files.items():
        path = args.out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text(encoding="utf-8") != content:
            path.write_text(content, encoding="utf-8")
            print(f"wrote {path}", file=sys.stderr)
    for folder in ("man", "completions"):
        for path in sorted((args.out / folder).glob("*")):
            if f"{folder}/{path.name}" not in files:
                path.unlink()
                print(f"removed {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
