"""Every cookbook recipe (examples/ and the README's Cookbook) runs here, for real, against
the loopback site, with HOME and XDL_HOME in temporary directories."""

from __future__ import annotations

import configparser
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from xdl.cli.main import COMMANDS

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
BIN = Path(sys.executable).parent

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")


@pytest.fixture
def home(tmp_path: Path, xdl_env: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def shell(home: Path, xdl_env: Path) -> Any:
    """Runs a shell command line the way a user would, with this venv's xdl on PATH."""

    def run(command: str, *args: str, cwd: Path | None = None, timeout: float = 300) -> Any:
        env = {
            **os.environ,
            "HOME": str(home),
            "XDL_HOME": str(xdl_env),
            "PATH": f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        }
        return subprocess.run(
            ["sh", "-c", command, "sh", *args],
            cwd=cwd or Path.cwd(),
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    return run


def jsonl(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def commands_of(script: Path) -> list[str]:
    """The lines of a recipe that do something (not comments, not blank)."""
    return [
        line.strip()
        for line in script.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


# --- cat urls.txt | xdl fetch --audio -j 4, filtered with jq -----------------------------


@needs_ffmpeg
def test_audio_batch(shell, site, tmp_path: Path) -> None:
    good = [site.url("/watch.html"), site.url("/audio.html"), site.url("/multi.html")]
    bad = [site.url("/404"), "not-a-url"]
    Path("urls.txt").write_text("\n".join(["# my list", *good, "", *bad]) + "\n")
    if shutil.which("jq"):
        r = shell(f"sh {EXAMPLES / 'audio-batch.sh'}")
        assert r.returncode == 1, r.stderr  # some failed, the others still ran
        paths = r.stdout.splitlines()
        retry = Path("retry.txt").read_text().splitlines()
    else:  # the same pipeline, filtered in Python
        r = shell("cat urls.txt | xdl fetch --audio -j 4 > results.jsonl")
        lines = jsonl(Path("results.jsonl").read_text())
        paths = [x["path"] for x in lines if x["ok"]]
        retry = [x["url"] for x in lines if not x["ok"]]
    assert len(paths) == 3
    for path in paths:
        assert Path(path).is_file() and Path(path).stat().st_size > 1000
        probe = subprocess.run(
            ["ffprobe", "-v", "error", "-show_entries", "stream=codec_type", "-of", "csv", path],
            capture_output=True,
            text=True,
        )
        assert probe.stdout.split() == ["stream,audio"], path
    assert sorted(retry) == sorted(bad)
    results = jsonl(Path("results.jsonl").read_text())
    assert {x["url"] for x in results} == {*good, *bad}


# --- xdl info --flat PLAYLIST | xdl fetch --profile podcast ------------------------------


@needs_ffmpeg
def test_podcast_feed_with_the_podcast_profile(shell, site, home: Path, xdl_env: Path) -> None:
    feed = site.url("/feed.xml")
    r = shell(f"sh {EXAMPLES / 'podcast.sh'} {feed}")
    assert r.returncode == 0, r.stderr
    lines = jsonl(r.stdout)
    assert [x["ok"] for x in lines] == [True, True, True]
    for line in lines:
        path = Path(line["path"])
        assert path.suffix == ".mp3"
        # the profile's folder template: ~/Podcasts/<show or site>/<title> [<id>].mp3
        assert path.parent.parent == home / "Podcasts"
        assert path.name == f"{line['title']} [{line['id']}].mp3"
        tags = subprocess.run(
            ["ffprobe", "-v", "error", "-show_entries", "format_tags=title", "-of", "json", path],
            capture_output=True,
            text=True,
        ).stdout
        assert json.loads(tags)["format"]["tags"]["title"] == line["title"]  # embed-metadata
    archive = (xdl_env / "data" / "podcast-archive.txt").read_text().splitlines()
    assert len(archive) == 3
    # from cron, the next run downloads only what is new: nothing
    again = shell(f"sh {EXAMPLES / 'podcast.sh'} {feed}")
    assert again.returncode == 0
    assert [x.get("skipped") for x in jsonl(again.stdout)] == ["archive"] * 3


# --- crontab, under flock -n -------------------------------------------------------------


def cron_job() -> str:
    """The command of the job line in examples/crontab (after the five time fields)."""
    (job,) = [
        line
        for line in (EXAMPLES / "crontab").read_text().splitlines()
        if line.strip() and not line.startswith("#") and not re.match(r"^[A-Z]+=", line)
    ]
    fields = job.split(None, 5)
    assert len(fields) == 6 and "%" not in fields[5]  # cron turns % into newlines
    return fields[5]


@needs_ffmpeg
@pytest.mark.skipif(shutil.which("flock") is None, reason="flock not installed")
def test_crontab_line(shell, site, home: Path, xdl_env: Path) -> None:
    (home / "feeds.txt").write_text(site.url("/feed.xml") + "\n")
    job = cron_job()
    r = shell(job)
    assert r.returncode == 0, (home / "xdl-errors.log").read_text()
    done = jsonl((home / "xdl-downloads.jsonl").read_text())
    assert len(done) == 3 and all(x["ok"] for x in done)
    assert all(Path(x["path"]).is_file() for x in done)
    # the next run finds nothing new: no task added, nothing downloaded
    assert shell(job).returncode == 0
    assert len(jsonl((home / "xdl-downloads.jsonl").read_text())) == 3
    status = shell("xdl queue status --summary --json")
    (summary,) = jsonl(status.stdout)
    assert summary["total"] == 3 and summary["done"] == 3


@pytest.mark.skipif(shutil.which("flock") is None, reason="flock not installed")
def test_crontab_line_does_not_pile_up(shell, home: Path, site) -> None:
    """While a run holds the lock, the next one exits at once and touches nothing."""
    (home / "feeds.txt").write_text(site.url("/feed.xml") + "\n")
    with open(home / ".xdl-feeds.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        r = shell(cron_job())
    assert r.returncode == 1
    assert (home / "xdl-downloads.jsonl").read_text() == ""
    assert jsonl(shell("xdl queue status --json").stdout) == []


# --- systemd user units ------------------------------------------------------------------


UNITS = sorted((EXAMPLES / "systemd").glob("xdl-*"))


def test_systemd_units_parse() -> None:
    assert [u.name for u in UNITS] == [
        "xdl-feeds.service",
        "xdl-feeds.timer",
        "xdl-queue.service",
        "xdl-worker@.service",
    ]
    for unit in UNITS:
        parser = configparser.ConfigParser(strict=False, interpolation=None)
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        parser.read_string(unit.read_text())
        assert "Unit" in parser
        kind = unit.suffix[1:].capitalize()
        assert kind in parser, unit.name
    timer = configparser.ConfigParser(interpolation=None)
    timer.read_string((EXAMPLES / "systemd" / "xdl-feeds.timer").read_text())
    assert timer["Timer"]["OnUnitActiveSec"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_units_verify(tmp_path: Path) -> None:
    units = tmp_path / "units"
    units.mkdir()
    for unit in UNITS:
        text = unit.read_text().replace("%h/.local/bin/xdl", str(BIN / "xdl"))
        (units / unit.name).write_text(text)
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    r = subprocess.run(
        ["systemd-analyze", "verify", "--user", *(str(units / u.name) for u in UNITS)],
        capture_output=True,
        text=True,
        env={**os.environ, "XDG_RUNTIME_DIR": str(runtime)},
    )
    if r.returncode != 0 and "Failed to initialize manager" in r.stderr:
        pytest.skip(f"systemd-analyze cannot run here: {r.stderr.strip()}")
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip() == ""  # unknown keys are only warnings: none here


def exec_start(unit: str, home: Path) -> str:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string((EXAMPLES / "systemd" / unit).read_text())
    command = parser["Service"]["ExecStart"].replace("%h/.local/bin/xdl", "xdl")
    return command.replace("%h", str(home))


@needs_ffmpeg
def test_systemd_services_run_the_queue(shell, site, home: Path, xdl_env: Path) -> None:
    """What the timer starts queues the feed; the watching runner downloads it, and
    `systemctl stop` (SIGTERM) ends it with 143, which the unit counts as success."""
    (home / "feeds.txt").write_text(site.url("/feed.xml") + "\n")
    r = shell(exec_start("xdl-feeds.service", home))
    assert r.returncode == 0, r.stderr
    env = {
        **os.environ,
        "HOME": str(home),
        "XDL_HOME": str(xdl_env),
        "PATH": f"{BIN}:/usr/bin:/bin",
    }
    runner = subprocess.Popen(
        ["sh", "-c", "exec " + exec_start("xdl-queue.service", home)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            (summary,) = jsonl(shell("xdl queue status --summary --json").stdout)
            if summary["done"] + summary["failed"] == 3:
                break
            time.sleep(0.2)
        runner.send_signal(signal.SIGTERM)
        out, err = runner.communicate(timeout=60)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert summary["done"] == 3, summary
    assert runner.returncode == 143, err
    assert "SuccessExitStatus=143" in (EXAMPLES / "systemd" / "xdl-queue.service").read_text()
    assert [x["ok"] for x in jsonl(out)] == [True, True, True]


# --- the example config file and the README ---------------------------------------------


def test_example_config_is_valid_and_does_what_it_says(shell, home: Path) -> None:
    r = shell(f"xdl --config {EXAMPLES / 'config.toml'} doctor --json")
    assert r.stderr == ""  # no unknown keys
    (check,) = [x for x in jsonl(r.stdout) if x["check"] == "config"]
    assert check["status"] == "ok" and "lectures" in check["message"]


def readme_recipes() -> list[tuple[str, list[str]]]:
    """(comment, command lines) of each recipe in the README's Cookbook code blocks (the
    indented blocks at the top level; those nested in lists are files, tested above)."""
    cookbook = (ROOT / "README.md").read_text().split("## Cookbook", 1)[1].split("\n## ", 1)[0]
    recipes: list[tuple[str, list[str]]] = []
    comment, lines = "", []
    for line in [*cookbook.splitlines(), ""]:
        code = line.startswith("    ") and not line.startswith("     ")
        if code and line[4:].startswith("# "):
            comment, lines = line[6:], []
        elif code and line.strip():
            lines.append(line[4:])
        elif lines:
            recipes.append((comment, lines))
            lines = []
    return recipes


def test_readme_has_recipes() -> None:
    comments = [c for c, _ in readme_recipes()]
    assert len(comments) >= 8 and len(set(comments)) == len(comments)
    assert cron_job() in (ROOT / "README.md").read_text()


@needs_ffmpeg
@pytest.mark.parametrize(
    "comment, lines", readme_recipes(), ids=lambda x: x if isinstance(x, str) else ""
)
def test_readme_recipe_runs(shell, site, home: Path, comment: str, lines: list[str]) -> None:
    """Each README recipe, as written, with example.com pointing at the loopback site."""
    Path("urls.txt").write_text(
        f"{site.url('/watch.html')}\n{site.url('/audio.html')}\n{site.url('/404')}\n"
    )
    before = {p for p in Path.cwd().rglob("*")} | {p for p in home.rglob("*")}
    script = "\n".join(lines).replace("https://example.com/", site.url("/"))
    r = shell(script)
    assert r.returncode == 0, f"{comment}: {r.stderr}"
    for bad in ("Traceback", "internal error", "Usage:", "No such option"):
        assert bad not in r.stderr, f"{comment}: {r.stderr}"
    made = [p for p in [*Path.cwd().rglob("*"), *home.rglob("*")] if p not in before]
    assert r.stdout.strip() or any(p.is_file() and p.stat().st_size for p in made), comment


@pytest.mark.slow
def test_demo_script_still_runs(shell, site) -> None:
    """examples/demo.sh (`make demo`) starts its own site and must keep working."""
    r = shell(f"sh {EXAMPLES / 'demo.sh'}", timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert jsonl(r.stdout)


def test_every_command_in_the_cookbook_exists() -> None:
    cookbook = (ROOT / "README.md").read_text().split("## Cookbook", 1)[1].split("\n## ", 1)[0]
    code = "\n".join(line for line in cookbook.splitlines() if line.startswith("    "))
    used = set(re.findall(r"\bxdl ([a-z][a-z-]+)", code))
    assert {"fetch", "queue", "transcript", "to-markdown"} <= used
    assert used <= set(COMMANDS), used - set(COMMANDS)


# --- examples/Makefile: URLs -> Markdown notes ---------------------------------------------


@pytest.mark.skipif(
    shutil.which("make") is None or shutil.which("bash") is None, reason="needs make and bash"
)
def test_makefile_turns_urls_into_notes_once_and_make_clean_keeps_the_media(
    shell, site, home: Path
) -> None:
    """One run of the recipe, looked at from every side: `make` makes a note per URL,
    a second `make` does nothing, `make clean && make` takes the media from the download
    cache (~/.cache/xdl, which clean keeps: no media bytes on the wire), and a URL
    without captions fails alone."""
    urls = Path("urls.txt")
    urls.write_text(f"# talks\n{site.url('/watch.html')}\n\n{site.url('/multi.html')}\r\n")
    make = f"make -f {EXAMPLES / 'Makefile'}"
    r = shell(make)
    assert r.returncode == 0, r.stderr
    notes = sorted(Path("notes").glob("*.md"))
    port = urlsplit(site.url("/")).port
    assert [n.name for n in notes] == [
        f"127.0.0.1_{port}_multi.html.md",
        f"127.0.0.1_{port}_watch.html.md",
    ]
    for note in notes:
        assert "Hello from the loopback site." in note.read_text()
    first = {p.name: json.loads(p.read_text()) for p in Path("media/.done").glob("*.json")}
    assert len(first) == 2 and all(x["ok"] and not x.get("cached") for x in first.values())
    assert any(r.path.startswith("/media/") for r in site.log)
    assert (home / ".cache/xdl/downloads/CACHEDIR.TAG").is_file()
    fetched = len(site.requests("/subs/en.vtt"))

    again = shell(make)
    assert again.returncode == 0
    assert "Nothing to be done" in again.stdout
    assert shell(f"{make} -q").returncode == 0  # everything up to date
    assert len(site.requests("/subs/en.vtt")) == fetched  # nothing downloaded again

    site.clear_log()
    r = shell(f"{make} clean && {make}")
    assert r.returncode == 0, r.stderr
    again_done = {p.name: json.loads(p.read_text()) for p in Path("media/.done").glob("*.json")}
    assert again_done.keys() == first.keys()
    for name, line in again_done.items():
        assert line["cached"] is True and line["sha256"] == first[name]["sha256"]
        assert hashlib.sha256(Path(line["path"]).read_bytes()).hexdigest() == line["sha256"]
    media = [r for r in site.log if r.path.startswith("/media/")]
    assert media == []  # no media request, so no media bytes on the wire
    notes = sorted(Path("notes").glob("*.md"))
    assert len(notes) == 2  # the notes were made again

    # a new URL makes only its note; one without captions leaves none and fails the run
    with urls.open("a") as f:
        f.write(f"{site.url('/nosubs.html')}\n")
    before = {n: n.stat().st_mtime_ns for n in notes}
    r = shell(f"{make} -k")
    assert r.returncode != 0
    assert "no subtitles" in r.stderr
    assert {n: n.stat().st_mtime_ns for n in notes} == before
    assert sorted(Path("notes").glob("*.md")) == notes
    assert not list(Path("notes").glob("*.tmp"))
    assert shell(f"{make} -q").returncode != 0  # the failed one is still to do
