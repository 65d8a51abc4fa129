"""The config file, profiles and XDL_<COMMAND>_<OPTION> variables (SPEC §6)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest

from xdl.cli.config import options_by_key, profile_option
from xdl.cli.main import cli
from xdl.cli.options import download_options
from xdl.core import config as core_config


def _echo(**params: Any) -> None:
    click.echo(json.dumps(params, default=str, sort_keys=True))


@click.command("probe")
@profile_option
@click.option("--audio-format", type=click.Choice(["best", "mp3", "m4a"]), default="best")
@click.option("--sleep", type=click.FloatRange(min=0), default=0.0)
@click.option("--subs/--no-subs", default=False)
@click.option("--sub-langs", multiple=True)
@click.option("--output-dir", type=click.Path(file_okay=False), default=".")
@click.option("-x", "--audio", is_flag=True)
def probe(**params: Any) -> None:
    """Echo the options it got, as JSON."""
    _echo(**params)


@click.group("grp")
def grp() -> None:
    """A group, as `queue` is."""


@grp.command("sub")
@profile_option
@click.option("--priority", type=int, default=0)
@click.option("--sleep", type=float, default=0.0)
def grp_sub(**params: Any) -> None:
    _echo(**params)


@pytest.fixture(autouse=True)
def probes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(cli.commands, "probe", probe)
    monkeypatch.setitem(cli.commands, "grp", grp)


@pytest.fixture
def config_file(xdl_env: Path) -> Any:
    """Writes the default config file (XDL_HOME/config/config.toml)."""

    def write(text: str) -> Path:
        path = xdl_env / "config" / "config.toml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    return write


def test_no_config_file_means_built_in_defaults(xdl) -> None:
    r = xdl("probe")
    assert r.exit_code == 0, r.stderr
    assert r.lines == [
        {
            "audio": False,
            "audio_format": "best",
            "output_dir": ".",
            "sleep": 0.0,
            "sub_langs": [],
            "subs": False,
        }
    ]
    assert r.stderr == ""


CONFIG = """
[defaults]
sleep = 1.0            # every command with --sleep

[defaults.probe]
audio-format = "m4a"
sub_langs = ["en", "de"]
no-subs = false        # the --no-x form of a flag works too
output-dir = "~/media"

[profiles.slow]
sleep = 5
audio-format = "mp3"
"""


def test_defaults_cascade_from_global_to_command(xdl, config_file) -> None:
    config_file(CONFIG)
    (line,) = xdl("probe").lines
    assert line["sleep"] == 1.0
    assert line["audio_format"] == "m4a"
    assert line["sub_langs"] == ["en", "de"]
    assert line["subs"] is True
    assert line["output_dir"] == str(Path("~/media").expanduser())


@pytest.mark.parametrize(
    "layers, expected",
    [
        ((), "best"),  # built-in
        (("defaults",), "m4a"),
        (("defaults", "profile"), "mp3"),
        (("defaults", "profile", "env"), "best"),
        (("defaults", "profile", "env", "cli"), "m4a"),
        (("defaults", "env"), "best"),
        (("profile", "cli"), "m4a"),
    ],
)
def test_precedence(xdl, config_file, monkeypatch, layers, expected) -> None:
    """command line > environment > profile > config defaults > built-in."""
    config_file(CONFIG if "defaults" in layers else CONFIG.replace('audio-format = "m4a"', ""))
    if "env" in layers:
        monkeypatch.setenv("XDL_PROBE_AUDIO_FORMAT", "best")
    args = ["probe"]
    if "profile" in layers:
        args += ["--profile", "slow"]
    if "cli" in layers:
        args += ["--audio-format", "m4a"]
    (line,) = xdl(*args).lines
    assert line["audio_format"] == expected


def test_profile_from_environment_and_from_defaults(xdl, config_file, monkeypatch) -> None:
    config_file(CONFIG + '\n[defaults.grp.sub]\nprofile = "slow"\n')
    monkeypatch.setenv("XDL_PROBE_PROFILE", "slow")
    assert xdl("probe").lines[0]["sleep"] == 5
    # a profile named in [defaults.grp.sub] applies to `xdl grp sub`
    assert xdl("grp", "sub").lines[0]["sleep"] == 5


def test_nested_command_tables_and_variables(xdl, config_file, monkeypatch) -> None:
    config_file("[defaults.grp]\nsleep = 2\n[defaults.grp.sub]\npriority = 7\n")
    assert xdl("grp", "sub").lines == [{"priority": 7, "sleep": 2.0}]
    monkeypatch.setenv("XDL_GRP_SUB_PRIORITY", "9")
    assert xdl("grp", "sub").lines == [{"priority": 9, "sleep": 2.0}]
    assert xdl("grp", "sub", "--priority", "1").lines[0]["priority"] == 1


def test_profile_keys_a_command_lacks_are_skipped(xdl, config_file) -> None:
    """A profile made for fetch (audio, ...) used where only some keys apply."""
    config_file("[profiles.p]\npriority = 3\naudio = true\n")
    assert xdl("grp", "sub", "--profile", "p").lines == [{"priority": 3, "sleep": 0.0}]
    assert xdl("probe", "--profile", "p").lines[0]["audio"] is True


def test_profile_per_command_subtable(xdl, config_file) -> None:
    config_file("[profiles.p]\nsleep = 1\n[profiles.p.probe]\nsleep = 3\n")
    assert xdl("probe", "--profile", "p").lines[0]["sleep"] == 3
    assert xdl("grp", "sub", "--profile", "p").lines[0]["sleep"] == 1


def test_user_profile_extends_a_built_in_one(xdl, config_file) -> None:
    config_file('[profiles.music]\noutput-dir = "/srv/music"\n')
    (line,) = xdl("probe", "--profile", "music").lines
    assert line["output_dir"] == "/srv/music"
    assert line["audio"] is True  # from the built-in music profile
    assert line["audio_format"] == "mp3"


def test_unknown_profile_is_a_usage_error(xdl) -> None:
    r = xdl("probe", "--profile", "nope")
    assert r.exit_code == 2
    assert "no profile 'nope'" in r.stderr
    assert "podcast" in r.stderr
    assert r.stdout == ""


def test_unknown_keys_warn_naming_file_line_and_key(xdl, config_file) -> None:
    path = config_file(
        "[defaults]\nsleep = 1\nslepe = 2\n\n[defaults.probbe]\naudio = true\n"
        "[defaults.probe]\naudo = true\n[profile.x]\nsleep=1\n"
    )
    r = xdl("probe")
    assert r.exit_code == 0
    assert r.lines[0]["sleep"] == 1.0
    assert f"{path}:3: defaults.slepe ignored" in r.stderr
    assert f"{path}:5: [defaults.probbe] ignored: there is no command `xdl probbe`" in r.stderr
    assert f"{path}:8: defaults.probe.audo ignored: no option --audo in `xdl probe`" in r.stderr
    assert f"{path}:9: unknown table or key 'profile'" in r.stderr


def test_key_for_another_command_is_not_a_warning(xdl, config_file) -> None:
    config_file("[defaults]\npriority = 4\n")
    r = xdl("probe")
    assert r.exit_code == 0
    assert r.stderr == ""


@pytest.mark.parametrize(
    "text, where, says",
    [
        ("[defaults\nsleep = 1\n", ":", "line 1, column 10"),
        ("[defaults]\nsleep = 1\nsleep = 2\n", ":", "line 3"),
        ('[defaults]\n\nsleep = "soon"\n', ":3:", "defaults.sleep: 'soon' is not a valid float"),
        ('[defaults.probe]\naudio-format = "ogg"\n', ":2:", "defaults.probe.audio-format:"),
        ("[defaults.probe]\nno-subs = 3\n", ":2:", "must be true or false"),
        ("[defaults.probe]\naudio-format = [1, 2]\n", ":2:", "takes one value"),
        ("defaults = 3\n", ":1:", "'defaults' must be a table"),
        ("[profiles]\nfast = 1\n", ":2:", "profile 'fast' must be a table"),
        (b"[defaults]\nsleep = 1 # \xff\n", ":", "not UTF-8"),
    ],
)
def test_broken_config_is_exit_3_naming_file_and_line(xdl, config_file, text, where, says) -> None:
    path = config_file("")
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    r = xdl("probe")
    assert r.exit_code == 3
    assert r.stdout == ""
    (message,) = r.stderr.splitlines()
    assert message.startswith(f"xdl: error: {path}{where}"), message
    assert says in message
    assert "Traceback" not in r.stderr


def test_profile_with_a_bad_value_is_exit_3(xdl, config_file) -> None:
    path = config_file('[profiles.p]\nsleep = "x"\n')
    assert xdl("probe").exit_code == 0  # not used: no error
    r = xdl("probe", "--profile", "p")
    assert r.exit_code == 3
    assert f"{path}:2: profiles.p.sleep" in r.stderr


def test_config_option_no_config_and_xdl_config(xdl, config_file, tmp_path, monkeypatch) -> None:
    config_file("[defaults]\nsleep = 1\n")
    other = tmp_path / "other.toml"
    other.write_text("[defaults]\nsleep = 2\n")
    assert xdl("probe").lines[0]["sleep"] == 1
    assert xdl("--no-config", "probe").lines[0]["sleep"] == 0
    assert xdl("--config", str(other), "probe").lines[0]["sleep"] == 2
    monkeypatch.setenv("XDL_CONFIG", str(other))
    assert xdl("probe").lines[0]["sleep"] == 2
    monkeypatch.setenv("XDL_CONFIG", str(tmp_path / "missing.toml"))
    r = xdl("probe")
    assert r.exit_code == 3
    assert "missing.toml does not exist (given with XDL_CONFIG)" in r.stderr
    r = xdl("--config", str(tmp_path / "gone.toml"), "probe")
    assert r.exit_code == 3
    assert "gone.toml does not exist (given with --config)" in r.stderr


def test_a_real_command_takes_its_defaults_from_the_config(xdl, site, config_file) -> None:
    url = site.url("/feed.xml")
    assert len(xdl("info", "--json", url).lines) == 1
    config_file("[defaults.info]\nflat = true\n")
    r = xdl("info", "--json", url)
    assert r.exit_code == 0, r.stderr
    assert len(r.lines) > 1
    assert all("playlist_index" in line for line in r.lines)


def test_a_real_command_takes_options_from_the_environment(xdl, site, monkeypatch) -> None:
    monkeypatch.setenv("XDL_INFO_FLAT", "1")
    r = xdl("info", "--json", site.url("/feed.xml"))
    assert len(r.lines) > 1


def test_doctor_shows_the_config_file_and_its_profiles(xdl, config_file, tmp_path) -> None:
    (line,) = [x for x in xdl("doctor", "--json").lines if x["check"] == "config"]
    assert line["status"] == "ok"
    assert "no config file" in line["message"]
    assert "podcast" in line["message"]
    path = config_file("[profiles.lectures]\nsleep = 1\n")
    (line,) = [x for x in xdl("doctor", "--json").lines if x["check"] == "config"]
    assert line["path"] == str(path)
    assert "lectures (this file)" in line["message"]
    other = tmp_path / "o.toml"
    other.write_text("[profiles.talks]\nsleep = 1\n")
    (line,) = [
        x for x in xdl("--config", str(other), "doctor", "--json").lines if x["check"] == "config"
    ]
    assert line["path"] == str(other)
    assert "talks" in line["message"]
    (line,) = [x for x in xdl("--no-config", "doctor", "--json").lines if x["check"] == "config"]
    assert "ignored" in line["message"]


def test_doctor_reports_a_broken_config_and_exits_3(xdl, config_file) -> None:
    path = config_file("[defaults\n")
    r = xdl("doctor", "--json")
    assert r.exit_code == 3
    (line,) = [x for x in r.lines if x["check"] == "config"]
    assert line["status"] == "fail"
    assert str(path) in line["message"]
    assert "line 1" in line["message"]


def test_every_built_in_profile_key_is_a_real_download_option() -> None:
    @click.command()
    @download_options
    def fake(**kw: Any) -> None: ...

    known = options_by_key(fake)
    for name, table in core_config.builtin_profiles().items():
        for key in table:
            assert key in known, f"profile {name}: {key} is not an option of xdl fetch"


def test_podcast_profile_gives_fetch_its_options(xdl, config_file) -> None:
    @click.command("fakefetch")
    @profile_option
    @download_options
    def fake(options: Any) -> None:
        _echo(**{k: getattr(options, k) for k in ("audio", "audio_format", "normalize", "archive")})

    cli.commands["fakefetch"] = fake
    try:
        (line,) = xdl("fakefetch", "--profile", "podcast").lines
    finally:
        del cli.commands["fakefetch"]
    assert line["audio"] is True
    assert line["audio_format"] == "mp3"
    assert line["normalize"] is True
    assert line["archive"].endswith("podcast-archive.txt")


@pytest.mark.parametrize(
    "table, key, line",
    [
        ((), "defaults", 2),
        (("defaults",), None, 2),
        (("defaults",), "sleep", 3),
        (("defaults", "fetch"), "output-dir", 6),
        (("defaults", "queue", "add"), "priority", 8),
        (("profiles", "my podcast"), "audio", 10),
        (("defaults",), "missing", 2),
    ],
)
def test_find_line(table, key, line) -> None:
    text = (
        "# xdl\n[defaults]\nsleep = 1\n\n[ defaults.fetch ]  # c\n'output-dir' = \"x\"\n"
        '[defaults.queue.add]\npriority = 2\n[profiles."my podcast"]\n  audio = true\n'
    )
    assert core_config.find_line(text, table, key) == line


def test_help_does_not_read_any_config(tmp_path) -> None:
    code = (
        "import sys; from xdl.cli.main import cli\n"
        "for args in (['--help'], ['info', '--help']):\n"
        "    cli.main(args, standalone_mode=False)\n"
        "print('tomllib' in sys.modules or 'tomli' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"XDL_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        check=True,
    ).stdout
    assert out.strip().splitlines()[-1] == "False"


@pytest.mark.parametrize(
    "layers, lands_in",
    [
        ((), "."),
        (("defaults",), "from-defaults"),
        (("defaults", "profile"), "from-profile"),
        (("defaults", "profile", "env"), "from-env"),
        (("defaults", "profile", "env", "cli"), "from-cli"),
    ],
)
def test_precedence_on_a_real_fetch(xdl, site, config_file, monkeypatch, layers, lands_in) -> None:
    """command line > environment > profile > config defaults > built-in, where the
    downloaded file lands."""
    config_file(
        '[defaults.fetch]\noutput-dir = "from-defaults"\n'
        '[profiles.mine]\noutput-dir = "from-profile"\n'
        if "defaults" in layers
        else ""
    )
    args = ["fetch", site.url("/files/report")]
    if "profile" in layers:
        args += ["--profile", "mine"]
    if "env" in layers:
        monkeypatch.setenv("XDL_FETCH_OUTPUT_DIR", "from-env")
    if "cli" in layers:
        args += ["-o", "from-cli"]
    r = xdl(*args)
    assert r.exit_code == 0, r.stderr
    (line,) = r.lines
    assert Path(line["path"]).resolve().parent == (Path.cwd() / lands_in).resolve()


def test_queue_add_stores_the_profile_options(xdl, site) -> None:
    r = xdl("queue", "add", "--profile", "podcast", site.url("/audio.html"))
    assert r.exit_code == 0, r.stderr
    (task,) = xdl("queue", "status", "--json").lines
    assert task["options"]["audio"] is True
    assert task["options"]["audio_format"] == "mp3"
    assert task["options"]["normalize"] is True


def test_transcript_profile_subtable(xdl, site, config_file) -> None:
    config_file(
        '[profiles.notes]\noutput-dir = "notes"\n[profiles.notes.transcript]\nformat = "md"\n'
    )
    r = xdl("transcript", "--profile", "notes", site.url("/watch.html"))
    assert r.exit_code == 0, r.stderr
    (line,) = r.lines
    assert line["format"] == "md"
    assert Path(line["path"]).parent.name == "notes"
    assert Path(line["path"]).read_text().strip()


def test_doctor_warns_about_ignored_keys(xdl, config_file) -> None:
    path = config_file("[defaults]\nsleep = 1\ntimout = 3\n")
    r = xdl("doctor", "--json")
    (line,) = [x for x in r.lines if x["check"] == "config"]
    assert line["status"] == "warn"
    assert f"{path}:3: defaults.timout ignored" in line["message"]
    assert r.exit_code == 0  # a warning, not a failure


def _streams(path: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", path],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    data = json.loads(out)
    return [*data["streams"], {"format": data["format"]}]


@pytest.mark.skipif(shutil.which("ffprobe") is None, reason="ffmpeg not installed")
@pytest.mark.parametrize("profile", ["archive", "social", "music", "stream"])
def test_built_in_profiles_do_what_they_say(xdl, site, profile) -> None:
    r = xdl("fetch", "--profile", profile, "-o", profile, site.url("/watch.html"))
    assert r.exit_code == 0, r.stderr
    (line,) = r.lines
    path = Path(line["path"])
    streams = _streams(str(path))
    kinds = [s.get("codec_type") for s in streams]
    if profile == "archive":  # MKV, every subtitle embedded, info JSON, a folder per uploader
        assert path.suffix == ".mkv"
        assert kinds.count("subtitle") == 2
        assert path.with_suffix(".info.json").is_file()
        assert path.parent.parent == Path.cwd() / "archive"
    elif profile == "social":  # MP4, at most 720p
        assert path.suffix == ".mp4"
        assert all(s.get("height", 0) <= 720 for s in streams)
    elif profile == "music":  # MP3 at 320k
        assert path.suffix == ".mp3" and kinds == ["audio", None]
        assert int(streams[0]["bit_rate"]) >= 300_000
    else:
        assert "video" in kinds
