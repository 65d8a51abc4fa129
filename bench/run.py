"""`make bench`: xdl measured side by side with curl, wget, aria2c and yt-dlp (issue 7).

Starts its own loopback servers (nginx when installed, else a Python one, plus the test
media site for pages and a 300 ms-latency endpoint), prepares its data in a temporary
directory, runs every case alternating xdl and its peers (warm-up, then several runs,
the median), and writes BENCHMARKS.md. Every figure that is judged is a ratio measured
in the same run, or (for the queue, which has no peer) a time on this machine.

    python bench/run.py            # the full run (≤ 15 minutes), writes BENCHMARKS.md
    python bench/run.py --quick    # a ≤ 3-minute subset, writes bench/out/BENCHMARKS.md
    python bench/run.py --only startup,http --runs 3

Peers that are not installed, and xdl commands that are not there yet, are reported as
skipped, never faked. Nothing is installed system-wide.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT / "tests"))

import servers  # noqa: E402
from captions import rolling_vtt  # noqa: E402
from report import (  # noqa: E402
    Goal,
    Measure,
    Run,
    at_least,
    at_most,
    fmt_mb,
    fmt_rate,
    fmt_ratio,
    fmt_seconds,
    goals_table,
    growth,
    markdown_table,
    measures_table,
    ratio,
    svg_plot,
)
from servers import nginx_available, start_static  # noqa: E402

import media_site  # noqa: E402  (the loopback media site of the test suite)

BIN = Path(sys.executable).parent
PYTHON = sys.executable
XDL = str(BIN / "xdl")
YTDLP = str(BIN / "yt-dlp") if (BIN / "yt-dlp").exists() else shutil.which("yt-dlp")
YTDLP_ARGS = ["--ignore-config", "--no-cache-dir"]
GNU_TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None
RSS_METHOD = (
    "peak RSS is the command's own maximum resident set (`/usr/bin/time -f %M`; for a "
    "shell pipeline, its largest process)."
    if GNU_TIME
    else "peak RSS is `ru_maxrss` from `os.wait4`, an upper bound: a child started from "
    "the runner inherits the runner's own peak (`apt-get install time` for exact figures)."
)
LOAD_AT_START = "unknown"
COMMIT_AT_START = ""
LATENCY = 0.3  # seconds before the latency endpoint answers each request


class Failure(Exception):
    """A run that did not do its job (exit status, timeout, or a failed check)."""


@dataclass
class Cmd:
    """One command of a case. `argv` may be a function of the run number (unique URLs)."""

    label: str
    argv: list[str] | Callable[[int], list[str]]
    shown: str = ""
    cwd: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    stdin: Path | None = None
    setup: Callable[[], None] | None = None
    check: Callable[[Path], str | None] | None = None
    skip: str | None = None
    timeout: float = 300.0
    reported: bool = False  # the time is what the command prints ({"seconds": ...})
    #: At most this many measured runs, no warm-up (a slow peer on a big file).
    runs: int | None = None


@dataclass
class Area:
    key: str
    title: str
    intro: str
    measures: list[Measure] = field(default_factory=list)
    goals: list[Goal] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    plots: dict[str, str] = field(default_factory=dict)
    skipped: str | None = None


def log(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


class Bench:
    """Runs commands with their own rusage (os.wait4), alternating, and keeps the results."""

    def __init__(self, tmp: Path, *, quick: bool, runs: int | None) -> None:
        self.tmp = tmp
        self.quick = quick
        self.runs_override = runs
        self.started = time.monotonic()
        home = tmp / "xdl-home"
        home.mkdir(exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("XDL_")}
        env.update(
            XDL_HOME=str(home),
            XDG_CONFIG_HOME=str(tmp / "xdg-config"),
            XDG_DATA_HOME=str(tmp / "xdg-data"),
            XDG_CACHE_HOME=str(tmp / "xdg-cache"),
            PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            NO_PROXY="127.0.0.1,localhost",
            no_proxy="127.0.0.1,localhost",
        )
        for proxy in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
            env.pop(proxy, None)
        self.env = env

    def runs(self, full: int, quick: int) -> int:
        return self.runs_override or (quick if self.quick else full)

    def run_once(self, cmd: Cmd, i: int) -> Run:
        argv = cmd.argv(i) if callable(cmd.argv) else cmd.argv
        out, err = self.tmp / "last.stdout", self.tmp / "last.stderr"
        usage = self.tmp / "last.time"
        if GNU_TIME:
            # GNU time is a small C process: its child's ru_maxrss is the command's own.
            # (A child spawned straight from this runner would inherit the runner's peak.)
            usage.unlink(missing_ok=True)
            argv = [GNU_TIME, "-q", "-o", str(usage), "-f", "%M", *argv]
        timed_out = threading.Event()
        with contextlib.ExitStack() as stack:
            fo = stack.enter_context(out.open("wb"))
            fe = stack.enter_context(err.open("wb"))
            fi = stack.enter_context(cmd.stdin.open("rb")) if cmd.stdin else subprocess.DEVNULL
            t0 = time.perf_counter()
            proc = subprocess.Popen(
                argv,
                stdin=fi,
                stdout=fo,
                stderr=fe,
                cwd=cmd.cwd or self.tmp,
                env={**self.env, **cmd.env},
                start_new_session=True,
            )

            def kill() -> None:
                timed_out.set()
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)

            timer = threading.Timer(cmd.timeout, kill)
            timer.start()
            try:
                _, status, ru = os.wait4(proc.pid, 0)
            finally:
                timer.cancel()
            wall = time.perf_counter() - t0
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        if timed_out.is_set():
            raise Failure(f"timed out after {cmd.timeout:.0f} s")
        if code != 0:
            tail = err.read_text(errors="replace").strip().splitlines()[-1:] or [""]
            raise Failure(f"exit {code}: {tail[0][:200]}")
        if cmd.check and (problem := cmd.check(out)):
            raise Failure(problem)
        rss = ru.ru_maxrss
        if GNU_TIME:
            with contextlib.suppress(OSError, ValueError, IndexError):
                rss = int(usage.read_text().split()[-1])
        warm = None
        if cmd.reported:
            try:
                said = json.loads(out.read_text().splitlines()[-1])
                wall, warm = float(said["seconds"]), said.get("warm")
            except (ValueError, KeyError, IndexError) as e:
                raise Failure(f"no timing printed: {e}") from None
        cpu = ru.ru_utime + ru.ru_stime
        return Run(wall=wall, cpu=cpu, rss_kib=rss, code=code, warm=warm, user=ru.ru_utime)

    def measure(self, cmds: Sequence[Cmd], runs: int, warmup: int = 1) -> list[Measure]:
        """Run every command `warmup + runs` times, alternating, reversing the order each
        round (ABBA) so that neither side always goes first."""
        measures = {c.label: Measure(c.label, c.shown, skipped=c.skip) for c in cmds}
        for r in range(warmup + runs):
            order = list(cmds) if r % 2 == 0 else list(reversed(cmds))
            for c in order:
                m = measures[c.label]
                if m.skipped or m.error:
                    continue
                if c.runs is not None and (r < warmup or len(m.runs) >= c.runs):
                    continue
                try:
                    if c.setup:
                        c.setup()
                    run = self.run_once(c, r)
                except (Failure, OSError, subprocess.SubprocessError) as e:
                    m.error, m.runs = str(e) or type(e).__name__, []
                    log(f"  {c.label}: {e}")
                    continue
                if r >= warmup:
                    m.runs.append(run)
            log(f"  round {r + 1}/{warmup + runs} done ({self.elapsed()})")
        return [measures[c.label] for c in cmds]

    def elapsed(self) -> str:
        return f"{time.monotonic() - self.started:.0f} s"


# --- checks -------------------------------------------------------------------------


def json_lines(path: Path) -> list[dict[str, object]]:
    lines = []
    for line in path.read_text(errors="replace").splitlines():
        if line.strip():
            try:
                lines.append(json.loads(line))
            except ValueError:
                lines.append({"ok": False, "error": {"message": f"not JSON: {line[:80]}"}})
    return lines


def all_ok(count: int, *, allow_skipped: bool = False) -> Callable[[Path], str | None]:
    """The stdout holds `count` JSON lines, every one ok (and, unless allowed, none skipped:
    a skipped download would be a cheat)."""

    def check(out: Path) -> str | None:
        lines = json_lines(out)
        if len(lines) != count:
            return f"{len(lines)} result lines, expected {count}"
        bad = [x for x in lines if not x.get("ok")]
        if bad:
            err = bad[0].get("error")
            return f"{len(bad)} failed lines, first: {json.dumps(err)[:200]}"
        if not allow_skipped and (skipped := [x for x in lines if x.get("skipped")]):
            return f"{len(skipped)} lines skipped ({skipped[0].get('skipped')})"
        return None

    return check


def files_in(directory: Path, count: int, size: int | None = None) -> Callable[[Path], str | None]:
    """`directory` holds `count` files (not counting .part), each `size` bytes if given."""

    def check(out: Path) -> str | None:
        files = [p for p in directory.rglob("*") if p.is_file() and not p.name.endswith((".part",))]
        if len(files) != count:
            return f"{len(files)} files in the output directory, expected {count}"
        if size is not None and (wrong := [p for p in files if p.stat().st_size != size]):
            return f"{wrong[0].name} has {wrong[0].stat().st_size} bytes, expected {size}"
        return None

    return check


def both(*checks: Callable[[Path], str | None]) -> Callable[[Path], str | None]:
    def check(out: Path) -> str | None:
        for c in checks:
            if problem := c(out):
                return problem
        return None

    return check


def fresh(*dirs: Path) -> Callable[[], None]:
    def setup() -> None:
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)
            d.mkdir(parents=True)

    return setup


def unused(out: Path) -> Callable[[], None]:
    """`out` a new, empty folder for each run; the last run's is moved aside, not removed
    (the bench's own folder goes at its end). Thousands of files removed just before a
    run slowed the next run's file creation on a journal-less ext4 such as this VM's:
    the kernel scans past every inode freed in the last 30 s for each file it makes (a
    `perf` profile: 64 % of aria2c's CPU in `openat`, against 7 % in a new folder). That
    measured the bench's clean-up, not the tools, and swung their ratio from run to run."""
    aside = out.with_name(f"{out.name}.used")

    def setup() -> None:
        aside.mkdir(exist_ok=True)
        if out.exists():
            out.rename(aside / str(len(list(aside.iterdir()))))
        out.mkdir(parents=True)

    return setup


def missing(tool: str | None, name: str) -> str | None:
    if tool and (shutil.which(tool) or Path(tool).exists()):
        return None
    return f"{name} is not installed"


_help_cache: dict[str, tuple[int, str]] = {}


def xdl_help(bench: Bench, *words: str) -> tuple[int, str]:
    key = " ".join(words)
    if key not in _help_cache:
        proc = subprocess.run(
            [XDL, *words, "--help"], capture_output=True, text=True, env=bench.env, timeout=60
        )
        _help_cache[key] = (proc.returncode, proc.stdout)
    return _help_cache[key]


def unavailable(bench: Bench, words: Sequence[str], options: Sequence[str] = ()) -> str | None:
    """Why `xdl WORDS` cannot be benchmarked yet (not registered, or lacks an option)."""
    code, text = xdl_help(bench, *words)
    if code != 0:
        return f"`xdl {' '.join(words)}` not available yet"
    lacking = [o for o in options if o not in text]
    if lacking:
        return f"`xdl {' '.join(words)}` has no {', '.join(lacking)} yet"
    return None


def by_label(measures: Sequence[Measure]) -> dict[str, Measure]:
    return {m.label: m for m in measures}


# --- cases --------------------------------------------------------------------------


def case_startup(bench: Bench) -> Area:
    area = Area(
        "startup",
        "Start-up: `xdl --help`, `xdl --version`",
        "What every pipeline stage pays before it does anything. The peers are the import "
        "of click alone (xdl cannot start faster than its CLI library) and `yt-dlp --version`.",
    )
    cmds = [
        Cmd("xdl --help", [XDL, "--help"]),
        Cmd("import click", [PYTHON, "-c", "import click"], shown='python -c "import click"'),
        Cmd("xdl --version", [XDL, "--version"]),
        Cmd(
            "yt-dlp --version",
            [YTDLP or "yt-dlp", "--version"],
            skip=missing(YTDLP, "yt-dlp"),
        ),
        Cmd("python -c pass", [PYTHON, "-c", "pass"]),
    ]
    area.measures = bench.measure(cmds, bench.runs(20, 6), warmup=2)
    m = by_label(area.measures)
    r_help = ratio(m["xdl --help"], m["import click"])
    r_version = ratio(m["xdl --version"], m["yt-dlp --version"])
    area.goals = [
        Goal(
            area.key,
            "`xdl --help` / `import click`",
            fmt_ratio(r_help),
            "≤ 1.5×",
            at_most(r_help, 1.5),
        ),
        Goal(
            area.key,
            "`xdl --version` / `yt-dlp --version`",
            fmt_ratio(r_version),
            "≤ 0.35×",
            at_most(r_version, 0.35),
        ),
    ]
    rows = [
        [
            "`xdl --version` / `import click`",
            fmt_ratio(ratio(m["xdl --version"], m["import click"])),
        ],
        [
            "`xdl --help` / `yt-dlp --version`",
            fmt_ratio(ratio(m["xdl --help"], m["yt-dlp --version"])),
        ],
        [
            "`import click` / `python -c pass`",
            fmt_ratio(ratio(m["import click"], m["python -c pass"])),
        ],
    ]
    area.extra.append(
        "Other ratios from the same runs:\n\n" + markdown_table(["pair", "ratio"], rows)
    )
    area.extra.append(import_profile(bench))
    return area


def import_profile(bench: Bench) -> str:
    """Where `xdl --help` spends its import time (python -X importtime), top-level modules."""
    proc = subprocess.run(
        [PYTHON, "-X", "importtime", XDL, "--help"],
        capture_output=True,
        text=True,
        env=bench.env,
        timeout=60,
    )
    rows = []
    for line in proc.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)", line)
        if m and not m.group(3):  # top level: no indentation
            rows.append((int(m.group(2)), m.group(4)))
    rows.sort(reverse=True)
    total = sum(us for us, _ in rows)
    table = markdown_table(
        ["module (top-level import)", "cumulative"],
        [[f"`{name}`", fmt_seconds(us / 1e6)] for us, name in rows[:8]],
    )
    return (
        f"Where `xdl --help` spends its imports (`python -X importtime`, one run, "
        f"{fmt_seconds(total / 1e6)} of imports in all):\n\n{table}"
    )


def case_http(bench: Bench, server_base: str, data: Path, size: int) -> Area:
    mib = size // (1024 * 1024)
    area = Area(
        "http",
        f"Direct HTTP: one {mib} MiB file to disk",
        f"A {mib} MiB file from the loopback static server to a fresh directory on the same "
        "disk, each tool with its defaults for one connection. "
        "`xdl fetch --strategy http` is the requests-based tier.",
    )
    url = f"{server_base}/big.bin"
    out = bench.tmp / "http-out"

    def setup() -> None:
        fresh(out)()
        os.sync()  # every run starts with no dirty pages from the one before

    target = out / "big.bin"
    sized = files_in(out, 1, size)
    skip = unavailable(bench, ["fetch"], ["--strategy"])
    cmds = [
        Cmd(
            "xdl",
            [XDL, "fetch", "--strategy", "http", "-q", "-o", str(out), url],
            shown="xdl fetch --strategy http -q -o OUT URL",
            setup=setup,
            check=both(all_ok(1), sized),
            skip=skip,
        ),
        Cmd(
            "curl",
            ["curl", "-sS", "-f", "-o", str(target), url],
            shown="curl -sS -f -o OUT/big.bin URL",
            setup=setup,
            check=sized,
            skip=missing("curl", "curl"),
        ),
        Cmd(
            "wget",
            ["wget", "-q", "-O", str(target), url],
            shown="wget -q -O OUT/big.bin URL",
            setup=setup,
            check=sized,
            skip=missing("wget", "wget"),
        ),
        Cmd(
            "curl + sha256",
            ["sh", "-c", f"curl -sS -f -o '{target}' '{url}' && openssl dgst -sha256 '{target}'"],
            shown="curl -sS -f -o OUT/big.bin URL && openssl dgst -sha256 OUT/big.bin",
            setup=setup,
            check=sized,
            skip=missing("curl", "curl") or missing("openssl", "openssl"),
        ),
        Cmd(
            "aria2c",
            ["aria2c", "-q", "--allow-overwrite=true", "-d", str(out), "-o", "big.bin", url],
            shown="aria2c -q -d OUT -o big.bin URL",
            setup=setup,
            check=files_in(out, 1, size),
            skip=missing("aria2c", "aria2c"),
        ),
    ]
    area.measures = bench.measure(cmds, bench.runs(5, 3))
    shutil.rmtree(out, ignore_errors=True)
    m = by_label(area.measures)
    r_curl = ratio(m["xdl"], m["curl"])
    area.goals = [
        Goal(
            area.key,
            "wall, `xdl fetch --strategy http` / `curl`",
            fmt_ratio(r_curl),
            "≤ 1.0×",
            at_most(r_curl, 1.0),
        ),
        Goal(
            area.key,
            "peak RSS of `xdl fetch`",
            fmt_mb(m["xdl"].peak_rss_mb),
            "≤ 64 MB",
            at_most(m["xdl"].peak_rss_mb, 64),
        ),
    ]
    rows = []
    for x in area.measures:
        rate = size / 1e6 / x.median if x.median else None
        rows.append([x.label, fmt_rate(rate), fmt_ratio(ratio(m["xdl"], x)), fmt_mb(x.peak_rss_mb)])
    area.extra.append(
        "Throughput and ratio of xdl to each tool. xdl also computes the sha256 of every byte "
        "(its result line carries it); `curl + sha256` is curl then OpenSSL doing that same "
        "work (coreutils' sha256sum is several times slower than OpenSSL here):\n\n"
        + markdown_table(["tool", "throughput (median)", "xdl / tool", "peak RSS"], rows)
    )
    return area


def case_cache(bench: Bench, server_base: str, size: int) -> Area:
    mib = size // (1024 * 1024)
    area = Area(
        "cache",
        f"The download cache: one {mib} MiB file again after its output folder was deleted",
        "`make clean && make` with `--cache DIR`: the second fetch asks the server whether "
        "the file changed (If-None-Match, answered 304 with no body) and hard-links it from "
        "the cache; the first fetch downloads it into the cache.",
    )
    url = f"{server_base}/cached.bin"
    out, cache = bench.tmp / "cache-out", bench.tmp / "cache-dir"
    argv = [XDL, "fetch", "--strategy", "http", "-q", "--cache", str(cache), "-o", str(out), url]

    def filled() -> None:
        fresh(out)()
        if not any(cache.rglob("*")):
            subprocess.run(argv, capture_output=True, check=True, env=bench.env)
            fresh(out)()

    def cached(result: Path) -> str | None:
        lines = json_lines(result)
        if not lines or not all(x.get("cached") for x in lines):
            return "not answered from the cache"
        return None

    skip = unavailable(bench, ["fetch"], ["--cache"])
    cmds = [
        Cmd("first fetch", argv, shown="xdl fetch --cache DIR -o OUT URL (empty cache)",
            setup=fresh(out, cache), check=both(all_ok(1), files_in(out, 1, size)), skip=skip),
        Cmd("cached fetch", argv, shown="xdl fetch --cache DIR -o OUT URL (OUT deleted)",
            setup=filled, check=both(cached, files_in(out, 1, size)), skip=skip),
    ]  # fmt: skip
    area.measures = bench.measure(cmds, bench.runs(5, 3))
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(cache, ignore_errors=True)
    m = by_label(area.measures)
    speedup = ratio(m["first fetch"], m["cached fetch"])
    area.goals = [
        Goal(area.key, "first fetch / cached fetch (0 body bytes: a 304)", fmt_ratio(speedup),
             "≥ 5× faster", at_least(speedup, 5.0)),
    ]  # fmt: skip
    return area


ARIA2_SEGMENTS = "aria2c -q -x4 -s4 -k1M --allow-overwrite=true"


def case_segments(bench: Bench, server_base: str, size: int) -> Area:
    mib = size // (1024 * 1024)
    cap = servers.PER_CONNECTION // (1024 * 1024)
    area = Area(
        "segments",
        f"Several connections: one {mib} MiB file from a server that caps each at {cap} MB/s",
        f"The server sends each connection at most {cap} MiB/s (nginx's `limit_rate`), as "
        "many servers and CDNs do: what `aria2c -x4 -s4` is used for. xdl's `--connections "
        "4` fetches four ranges into one `.part` and hashes the file; curl has one "
        "connection.",
    )
    url = f"{server_base}/limited/seg.bin"
    out = bench.tmp / "seg-out"
    setup = fresh(out)
    sized = files_in(out, 1, size)
    skip = unavailable(bench, ["fetch"], ["--connections"])
    cmds = [
        Cmd(
            "xdl -N 4",
            [XDL, "fetch", "-N", "4", "--strategy", "http", "-q", "-o", str(out), url],
            shown="xdl fetch -N 4 --strategy http -q -o OUT URL",
            setup=setup,
            check=both(all_ok(1), sized),
            skip=skip,
        ),
        Cmd(
            "aria2c -x4 -s4",
            # -k1M: by default aria2c splits nothing under 20 MiB (three pieces here)
            [*ARIA2_SEGMENTS.split(), "-d", str(out), "-o", "seg.bin", url],
            shown="aria2c -q -x4 -s4 -k1M -d OUT -o seg.bin URL",
            setup=setup,
            check=sized,
            skip=missing("aria2c", "aria2c"),
        ),
        Cmd(
            "curl",
            ["curl", "-sS", "-f", "-o", str(out / "seg.bin"), url],
            shown="curl -sS -f -o OUT/seg.bin URL",
            setup=setup,
            check=sized,
            skip=missing("curl", "curl"),
        ),
    ]
    area.measures = bench.measure(cmds, bench.runs(3, 1))
    shutil.rmtree(out, ignore_errors=True)
    m = by_label(area.measures)
    r_aria = ratio(m["xdl -N 4"], m["aria2c -x4 -s4"])
    r_curl = ratio(m["xdl -N 4"], m["curl"])
    area.goals = [
        Goal(
            area.key,
            "`fetch -N 4` / `aria2c -x4 -s4 -k1M`",
            fmt_ratio(r_aria),
            "≤ 1.05×",
            at_most(r_aria, 1.05),
        ),
        Goal(
            area.key,
            "`fetch -N 4` / `curl` (one connection)",
            fmt_ratio(r_curl),
            "≤ 0.35×",
            at_most(r_curl, 0.35),
        ),
    ]
    return area


def case_latency(
    bench: Bench, site: media_site.Site, count: int = 40, *, media: bool = True
) -> Area:
    what = (
        "small MP4 URLs (`/lat/N.mp4`, video/mp4, 20 kB)"
        if media
        else "small plain files (`/latf/N.bin`, application/octet-stream, 20 kB)"
    )
    area = Area(
        "batch" if media else "batch-files",
        f"Batch: {count} {'media URLs' if media else 'plain files'} on a "
        f"{LATENCY * 1000:.0f} ms-latency endpoint",
        f"{count} {what} on an endpoint that waits {LATENCY * 1000:.0f} ms before answering "
        "every request (HEAD or GET), like a far server. yt-dlp takes them one after another "
        "from `-a`; xdl and xargs+curl run 8 at once.",
    )
    clip = (media_site.MEDIA / "clip-180p.mp4").read_bytes()
    prefix = "/lat/" if media else "/latf/"
    mime = "video/mp4" if media else "application/octet-stream"

    @site.route(prefix)
    def latency(r: media_site.Request) -> None:
        time.sleep(LATENCY)
        r.send_bytes(clip, mime, etag=media_site.etag_of(clip))

    listing = bench.tmp / f"latency-urls-{area.key}.txt"
    ext = "mp4" if media else "bin"
    listing.write_text("".join(f"{site.base}{prefix}{i:02d}.{ext}\n" for i in range(count)))
    out = bench.tmp / "latency-out"
    in_dir = files_in(out, count)
    cmds = [
        Cmd(
            "xdl",
            [XDL, "fetch", "-j", "8", "-q", "-o", str(out), "-a", str(listing)],
            shown=f"xdl fetch -j 8 -q -o OUT -a urls.txt  ({count} URLs)",
            setup=fresh(out),
            check=both(all_ok(count), in_dir),
            skip=unavailable(bench, ["fetch"], ["--jobs"]),
        ),
        Cmd(
            "yt-dlp",
            [
                YTDLP or "yt-dlp",
                *YTDLP_ARGS,
                "-q",
                "--no-progress",
                "-P",
                str(out),
                "-a",
                str(listing),
            ],
            shown="yt-dlp -q --no-progress -P OUT -a urls.txt",
            setup=fresh(out),
            check=in_dir,
            skip=missing(YTDLP, "yt-dlp"),
        ),
        Cmd(
            "xargs curl",
            ["sh", "-c", f"xargs -P 8 -n 1 curl -sS -f -O < '{listing}'"],
            shown="xargs -P 8 -n 1 curl -sS -f -O < urls.txt",
            cwd=out,
            setup=fresh(out),
            check=in_dir,
            skip=missing("curl", "curl"),
        ),
    ]
    # What each tool asks of the far server: requests per input, by method (last run).
    asked: dict[str, dict[str, int]] = {}
    for c in cmds:

        def setup(before: Callable[[], None] | None = c.setup) -> None:
            if before:
                before()
            site.clear_log()

        def check(out: Path, c: Cmd = c, after: Callable[[Path], str | None] | None = c.check):
            with site.lock:
                methods = [r.method for r in site.log if r.path.startswith(prefix)]
            asked[c.label] = {m: methods.count(m) for m in sorted(set(methods))}
            return after(out) if after else None

        c.setup, c.check = setup, check
    # yt-dlp alone takes ~30 s a run here, so no warm-up round: the start-up case has
    # already warmed the imports, and the endpoint has nothing to cache.
    area.measures = bench.measure(cmds, bench.runs(5, 3), warmup=0)
    shutil.rmtree(out, ignore_errors=True)
    m = by_label(area.measures)
    speedup = ratio(m["yt-dlp"], m["xdl"])
    area.goals = [
        Goal(
            area.key,
            f"{count} {'media URLs' if media else 'plain files'}: `yt-dlp -a` / `xdl fetch -j 8`",
            fmt_ratio(speedup),
            "≥ 6× faster",
            at_least(speedup, 6.0),
        ),
    ]
    area.extra.append(
        markdown_table(
            ["pair", "ratio"],
            [
                ["xdl / yt-dlp", fmt_ratio(ratio(m["xdl"], m["yt-dlp"]))],
                ["xdl / xargs -P 8 curl", fmt_ratio(ratio(m["xdl"], m["xargs curl"]))],
            ],
        )
        + "\n\nRequests each tool made to the far server, per input (from the server's log):\n\n"
        + markdown_table(
            ["tool", "requests per input"],
            [
                [
                    label,
                    ", ".join(f"{n / count:g} {method}" for method, n in asked[label].items())
                    or "–",
                ]
                for label in (c.label for c in cmds)
                if label in asked
            ],
        )
        + f"\n\nThe floor: {count} inputs × ≥ 1 request × {LATENCY:g} s / 8 at once = "
        f"{count * LATENCY / 8:.1f} s; one request each in sequence = {count * LATENCY:.0f} s."
    )
    return area


#: The small files of issue 22: every `/s/NAME` of the static server is this many bytes.
SMALL_FILE = 2048


def case_small_files(bench: Bench, base: str, counts: Sequence[int]) -> Area:
    """Many small plain files on loopback, 8 at once: xdl against aria2c and curl."""
    area = Area(
        "small-files",
        "Many small files, 8 at once: xdl, aria2c and curl",
        f"{' and '.join(f'{n:,}' for n in counts)} distinct URLs of {SMALL_FILE:,}-byte "
        "files (`/s/NAME.bin`) from the static server on loopback, fetched 8 at once "
        "into an empty folder: `xdl fetch -j 8`, `aria2c -j 8` and curl's own parallel "
        "mode (`curl -Z --parallel-max 8`). Each tool writes every file whole; xdl also "
        "hashes each (sha256) and prints its JSON line.",
    )
    if reason := unavailable(bench, ["fetch"], ["--jobs"]):
        area.skipped = reason
        return area
    tmp = bench.tmp / "small-files"
    tmp.mkdir()
    out = tmp / "out"
    by_count: dict[int, dict[str, Measure]] = {}
    for count in counts:
        urls = tmp / f"urls-{count}.txt"
        urls.write_text("".join(f"{base}/s/f{i:06d}.bin\n" for i in range(count)))
        config = tmp / f"curl-{count}.cfg"
        config.write_text("".join(f'url = "{base}/s/f{i:06d}.bin"\n' for i in range(count)))
        in_out = files_in(out, count, SMALL_FILE)
        cmds = [
            Cmd(
                f"xdl@{count}",
                [XDL, "fetch", "-j", "8", "-q", "-o", str(out), "-a", str(urls)],
                shown=f"xdl fetch -j 8 -q -o OUT -a urls.txt  ({count:,} URLs)",
                setup=unused(out),
                check=both(all_ok(count), in_out),
            ),
            Cmd(
                f"aria2c@{count}",
                ["aria2c", "-q", "-j", "8", "-d", str(out), "-i", str(urls)],
                shown=f"aria2c -q -j 8 -d OUT -i urls.txt  ({count:,} URLs)",
                setup=unused(out),
                check=in_out,
                skip=missing("aria2c", "aria2c"),
            ),
            Cmd(
                f"curl@{count}",
                ["curl", "-s", "-Z", "--parallel-max", "8", "--remote-name-all", "-K", str(config)],
                shown=f"curl -s -Z --parallel-max 8 --remote-name-all -K urls.cfg  ({count:,})",
                cwd=out,
                setup=unused(out),
                check=in_out,
                skip=missing("curl", "curl"),
            ),
        ]
        measures = bench.measure(cmds, bench.runs(5, 3) if count <= 1000 else bench.runs(3, 2))
        area.measures += measures
        by_count[count] = by_label(measures)
    for count, m in by_count.items():
        xdl, aria = m[f"xdl@{count}"], m[f"aria2c@{count}"]
        r = ratio(xdl, aria)
        area.goals.append(
            Goal(
                area.key,
                f"{count:,} small files, 8 at once: xdl / aria2c (wall)",
                fmt_ratio(r),
                "≤ 1.2×",
                at_most(r, 1.2),
            )
        )
        # The issue's own measure is user CPU: the system's part is mostly the kernel
        # making each file's names in the folder, which aria2c pays as well (its column
        # in the table below), and which varies with the disk's state from run to run.
        per_file = xdl.user_median / count * 1000 if xdl.user_median else None
        area.goals.append(
            Goal(
                area.key,
                f"{count:,} small files: xdl CPU (user) per file",
                f"{per_file:.2f} ms" if per_file else "–",
                "≤ 2 ms",
                at_most(per_file, 2.0),
            )
        )
    first, last = min(by_count), max(by_count)
    if first != last:
        small, big = by_count[first][f"xdl@{first}"], by_count[last][f"xdl@{last}"]
        peaks = (big.peak_rss_mb, small.peak_rss_mb)
        grew = peaks[0] / peaks[1] if peaks[0] and peaks[1] else None
        area.goals.append(
            Goal(
                area.key,
                f"xdl's peak memory, {last:,} files / {first:,} files",
                fmt_ratio(grew),
                "≤ 1.1× (flat)",
                at_most(grew, 1.1),
            )
        )
    area.extra.append(
        markdown_table(
            [
                "files",
                "xdl / aria2c",
                "xdl / curl -Z",
                "xdl CPU / aria2c CPU",
                "system CPU a file: xdl, aria2c, curl",
            ],
            [
                [
                    f"{count:,}",
                    fmt_ratio(ratio(m[f"xdl@{count}"], m[f"aria2c@{count}"])),
                    fmt_ratio(ratio(m[f"xdl@{count}"], m[f"curl@{count}"])),
                    fmt_ratio(
                        m[f"xdl@{count}"].cpu_median / m[f"aria2c@{count}"].cpu_median
                        if m[f"xdl@{count}"].cpu_median and m[f"aria2c@{count}"].cpu_median
                        else None
                    ),
                    ", ".join(
                        f"{system / count * 1000:.2f} ms"
                        if (system := m[f"{tool}@{count}"].system_median) is not None
                        else "–"
                        for tool in ("xdl", "aria2c", "curl")
                    ),
                ]
                for count, m in by_count.items()
            ],
        )
    )
    return area


def case_page(bench: Bench, site: media_site.Site) -> Area:
    area = Area(
        "page",
        "One loopback video page: `xdl info`, `xdl fetch`",
        "The test site's `/watch.html` (an HTML5 page with one 180p MP4 and two subtitle "
        "tracks) read through yt-dlp's generic extractor by both tools.",
    )
    url = site.url("/watch.html")
    out = bench.tmp / "page-out"
    ytdlp_skip = missing(YTDLP, "yt-dlp")
    yt = YTDLP or "yt-dlp"
    cmds = [
        Cmd(
            "xdl info",
            [XDL, "info", "--json", url],
            shown="xdl info --json URL",
            check=all_ok(1),
            skip=unavailable(bench, ["info"]),
        ),
        Cmd("yt-dlp -J", [yt, *YTDLP_ARGS, "-J", url], shown="yt-dlp -J URL", skip=ytdlp_skip),
        Cmd(
            "xdl fetch",
            [XDL, "fetch", "-q", "-o", str(out), url],
            shown="xdl fetch -q -o OUT URL",
            setup=fresh(out),
            check=all_ok(1),
            skip=unavailable(bench, ["fetch"]),
        ),
        Cmd(
            "yt-dlp",
            [yt, *YTDLP_ARGS, "-q", "--no-progress", "-P", str(out), url],
            shown="yt-dlp -q --no-progress -P OUT URL",
            setup=fresh(out),
            check=files_in(out, 1),
            skip=ytdlp_skip,
        ),
    ]
    area.measures = bench.measure(cmds, bench.runs(5, 3), warmup=0 if bench.quick else 1)
    shutil.rmtree(out, ignore_errors=True)
    m = by_label(area.measures)
    r_info = ratio(m["xdl info"], m["yt-dlp -J"])
    r_fetch = ratio(m["xdl fetch"], m["yt-dlp"])
    area.goals = [
        Goal(
            area.key, "`xdl info` / `yt-dlp -J`", fmt_ratio(r_info), "≤ 1.0×", at_most(r_info, 1.0)
        ),
        Goal(
            area.key, "`xdl fetch` / `yt-dlp`", fmt_ratio(r_fetch), "≤ 1.1×", at_most(r_fetch, 1.1)
        ),
    ]
    return area


def case_feeds(bench: Bench, site: media_site.Site, count: int) -> Area:
    """A cron poll of `count` podcast feeds whose episodes are all in the archive: the
    first poll reads every body (and skips every entry by its guid); the next ones ask
    with If-None-Match and get 304s (issue 21)."""
    area = Area(
        "feeds",
        f"Polling {count} unchanged feeds: `xdl fetch --archive`",
        f"{count} RSS feeds of the test site (two episodes each, a new tracking token in "
        "every enclosure URL on every poll), every episode already in the archive. The "
        "first poll reads each feed whole; a later one sends the ETag the last complete "
        "poll saw and gets `304 Not Modified`: no body, one `skipped: unchanged` line a feed.",
    )
    urls = [site.url(f"/podcast.xml?n={k}") for k in range(1, count + 1)]
    listing = bench.tmp / "feeds.txt"
    listing.write_text("".join(u + "\n" for u in urls))
    archive = bench.tmp / "feeds-archive.txt"
    archive.write_text(
        "".join(f"feed {u} lr-ep-{e}-{k}\n" for k, u in enumerate(urls, 1) for e in (2, 1))
    )
    remembered = Path(bench.env["XDL_HOME"]) / "cache" / "feeds"
    seen = [len(site.log)]
    bodies: dict[str, list[int]] = {"first poll": [], "second poll": []}

    def counted(label: str, lines: int) -> Callable[[Path], str | None]:
        def check(out: Path) -> str | None:
            with site.lock:
                new, seen[0] = site.log[seen[0] :], len(site.log)
            fed = [r for r in new if r.path.startswith("/podcast.xml")]
            bodies[label].append(sum(1 for r in fed if r.status == 200))
            if media := [r for r in new if r.path.startswith("/media/")]:
                return f"{len(media)} episodes downloaded again"
            return all_ok(lines, allow_skipped=True)(out)

        return check

    argv = [XDL, "fetch", "-q", "-j", "8", "--archive", str(archive), "-o", "feeds-out"]
    cmds = [
        Cmd(
            "first poll",
            [*argv, "-a", str(listing)],
            shown=f"xdl fetch -j 8 --archive A -a FEEDS ({count} feeds, no ETag known)",
            setup=lambda: shutil.rmtree(remembered, ignore_errors=True),
            check=counted("first poll", 2 * count),
        ),
        Cmd(
            "second poll",
            [*argv, "-a", str(listing)],
            shown=f"xdl fetch -j 8 --archive A -a FEEDS ({count} feeds, unchanged)",
            check=counted("second poll", count),
        ),
    ]
    area.measures = bench.measure(cmds, bench.runs(3, 2), warmup=0)
    m = by_label(area.measures)
    fetched = max(bodies["second poll"]) if bodies["second poll"] else None
    per_feed = (m["second poll"].median or 0) / count if m["second poll"].ok else None
    area.extra = [
        f"Feed bodies fetched per poll: first {bodies['first poll']}, "
        f"second {bodies['second poll']} (of {count})."
    ]
    area.goals = [
        Goal(
            area.key,
            "feed bodies fetched by a second poll",
            "-" if fetched is None else str(fetched),
            "0",
            None if fetched is None else fetched == 0,
        ),
        Goal(
            area.key,
            "second poll, per feed",
            "-" if per_feed is None else f"{per_feed * 1000:.1f} ms",
            "≤ 20 ms",
            at_most(per_feed, 0.020),
        ),
    ]
    return area


def write_urls(path: Path, base: str, count: int, prefix: str) -> Path:
    path.write_text("".join(f"{base}/t/{prefix}{i:06d}.txt\n" for i in range(count)))
    return path


def case_queue_scale(bench: Bench, base: str, scales: Sequence[int]) -> Area:
    area = Area(
        "queue",
        "Queue: adding in bulk, and single operations as the queue grows",
        "pueue rewrites its whole state file on every change, so its adds slow down as the "
        "state grows (its published 500-task batch adds: 2.3 s, 4.8 s … 12.2 s). Here each "
        "queue is prepared with one `xdl queue add -a FILE` of N distinct URLs (loopback "
        "`/t/*.txt`, 14 bytes each); then single operations are timed against it, the scales "
        "alternating: as whole `xdl` processes (start-up included; the row `xdl --version` "
        "is that start-up alone), and *in-process* (`bench/queue_probe.py`: the queue's own "
        "work in one call, timed inside a fresh process; its CPU and RSS columns are the "
        "whole probe process's).",
    )
    if reason := unavailable(bench, ["queue", "add"]):
        area.skipped = reason
        return area
    tmp = bench.tmp / "queue"
    tmp.mkdir()

    # 1. add 10,000 URLs in one call, into a fresh queue each run.
    ten_k = write_urls(tmp / "urls-10k.txt", base, 10_000, "bulk")
    qdir = tmp / "bulk"
    bulk = Cmd(
        "queue add 10k",
        [XDL, "queue", "add", "-a", str(ten_k), "-o", str(tmp / "bulk-out")],
        shown="xdl queue add -a urls-10k.txt  (empty queue)",
        env={"XDL_QUEUE": str(qdir / "queue.json")},
        setup=fresh(qdir),
        check=all_ok(10_000),
        timeout=300,
    )
    bulk_m = bench.measure([bulk], bench.runs(5, 3))[0]
    area.measures.append(bulk_m)
    area.goals.append(
        Goal(
            area.key,
            "`queue add` of 10,000 URLs in one call",
            f"{fmt_seconds(bulk_m.median)} (CPU: {fmt_seconds(bulk_m.cpu_median)})",
            "≤ 1 s",
            at_most(bulk_m.median, 1.0),
        )
    )

    # 2. prepare one queue per scale, with one call each.
    prepare: dict[int, float | None] = {}
    queues: dict[int, Path] = {}
    for n in scales:
        qd = tmp / f"q{n}"
        qd.mkdir()
        urls = write_urls(tmp / f"urls-{n}.txt", base, n, f"s{n}-")
        queues[n] = qd
        prep = Cmd(
            f"prepare {n}",
            [XDL, "queue", "add", "-a", str(urls), "-o", str(qd / "out")],
            env={"XDL_QUEUE": str(qd / "queue.json")},
            timeout=600,
        )
        log(f"  preparing a queue of {n} tasks")
        try:
            prepare[n] = bench.run_once(prep, 0).wall
        except Failure as e:
            prepare[n] = None
            log(f"  preparing {n}: {e}")
    area.extra.append(
        "Preparing each queue, one `xdl queue add -a FILE` call (one run each):\n\n"
        + markdown_table(
            ["tasks added to an empty queue", "wall", "per 1,000 tasks"],
            [
                [
                    f"{n:,}",
                    fmt_seconds(prepare[n]),
                    fmt_seconds(prepare[n] / n * 1000) if prepare[n] else "–",
                ]
                for n in scales
            ],
        )
    )

    # 3. single operations at each scale, all alternating.
    cmds: list[Cmd] = [Cmd("xdl --version", [XDL, "--version"])]
    for n in scales:
        env = {"XDL_QUEUE": str(queues[n] / "queue.json")}
        skip = None if prepare[n] is not None else f"preparing {n} tasks failed"
        cmds.append(
            Cmd(
                f"add@{n}",
                lambda i, n=n: [XDL, "queue", "add", f"{base}/t/one-{n}-{i}.txt"],
                shown=f"xdl queue add URL  ({n:,} tasks)",
                env=env,
                check=all_ok(1),
                skip=skip,
            )
        )
        cmds.append(
            Cmd(
                f"claim@{n}",
                [XDL, "queue", "run", "-j", "1", "--max-tasks", "1", "-q"],
                shown=f"xdl queue run --max-tasks 1  ({n:,} tasks)",
                env=env,
                cwd=queues[n],
                check=all_ok(1),
                skip=skip or unavailable(bench, ["queue", "run"], ["--max-tasks"]),
            )
        )
        cmds.append(
            Cmd(
                f"status@{n}",
                [XDL, "queue", "status", "--summary", "--json"],
                shown=f"xdl queue status --summary  ({n:,} tasks)",
                env=env,
                check=lambda out: None if json_lines(out) else "no summary line",
                skip=skip or unavailable(bench, ["queue", "status"], ["--summary"]),
            )
        )
        probe = [PYTHON, str(BENCH / "queue_probe.py"), str(queues[n] / "queue.json")]
        for op in ("add", "claim", "summary"):
            cmds.append(
                Cmd(
                    f"probe-{op}@{n}",
                    (lambda i, n=n, probe=probe: [*probe, "add", f"{base}/t/probe-{n}-{i}.txt"])
                    if op == "add"
                    else [*probe, op],
                    shown=f"in-process {op}  ({n:,} tasks)",
                    env=env,
                    skip=skip,
                    reported=True,
                )
            )
    ops = bench.measure(cmds, bench.runs(5, 3))
    area.measures.extend(ops)
    m = by_label(ops)
    top = max(scales)
    # ≤ 50 ms cannot include a Python process start (`xdl --version` alone is ~60 ms), so
    # add and claim are judged on the queue's own work in one call; the summary's 1 s is
    # judged on the whole process, as a user sees it.
    for op, probe_op, what, limit, whole_process in (
        ("add", "add", "one `queue add`", 0.05, False),
        ("claim", "claim", "one claim + complete", 0.05, False),
        ("status", "summary", "`queue status --summary`", 1.0, True),
    ):
        inner = m[f"probe-{probe_op}@{top}"].median
        whole = m[f"{op}@{top}"].median
        if whole_process:
            measured = f"{fmt_seconds(whole)} (the queue's own work: {fmt_seconds(inner)})"
        else:
            measured = f"{fmt_seconds(inner)} (whole `xdl` process: {fmt_seconds(whole)})"
        area.goals.append(
            Goal(
                area.key,
                f"{what} at {top:,} tasks",
                measured,
                f"≤ {fmt_seconds(limit)}",
                at_most(whole if whole_process else inner, limit),
                note="whole process" if whole_process else "the queue's own work in one call",
            )
        )
    rows = []
    series: dict[str, list[float | None]] = {}
    for op, name in (
        ("probe-add", "add one URL (in-process, cold)"),
        ("probe-claim", "claim + complete one (in-process, cold)"),
        ("probe-summary", "summary (in-process, cold)"),
        ("add", "`xdl queue add URL`"),
        ("claim", "`xdl queue run --max-tasks 1`"),
        ("status", "`xdl queue status --summary`"),
    ):
        values = [m[f"{op}@{n}"].median for n in scales]
        series[name.replace("`", "")] = values
        rows.append([name, *[fmt_seconds(v) for v in values], growth(values)])
    for op, name in (
        ("probe-add", "add one URL (in-process, warm)"),
        ("probe-claim", "claim + complete one (in-process, warm)"),
        ("probe-summary", "summary (in-process, warm)"),
    ):
        values = [m[f"{op}@{n}"].warm_median for n in scales]
        rows.append([name, *[fmt_seconds(v) for v in values], growth(values)])
    area.extra.append(
        "How each single operation grows with the queue (medians). *In-process* is the "
        "queue's own work as one `xdl` call does it (`bench/queue_probe.py`: open the store, "
        "load snapshot + journal, lock, change, write; no interpreter start-up or imports); "
        "*cold* is the first operation of a fresh process, *warm* the same operation again "
        "in that process. The `xdl ...` rows are whole processes; `queue run` also loads the "
        "download engine and downloads the file.\n\n"
        + markdown_table(
            [
                "operation",
                *[f"{n:,} tasks" for n in scales],
                f"growth for {scales[-1] // scales[0]}× the tasks",
            ],
            rows,
        )
    )
    area.plots = {
        "queue-scale.svg": svg_plot(
            "xdl queue: one operation vs queue size (median)",
            list(scales),
            series,
            x_label="tasks in the queue",
            y_label="seconds",
            width=760,
            height=380,
        )
    }
    return area


def case_queue_run(bench: Bench, base: str, count: int = 1000) -> Area:
    area = Area(
        "queue-run",
        f"Queue overhead: `queue run -j 8` over {count:,} tiny loopback files",
        f"The same {count:,} loopback files (`/t/*.txt`, 14 bytes each) downloaded by "
        "`xdl queue run -j 8` from a queue filled just before each run (not timed; its "
        "time is shown apart), and by `xdl fetch -j 8 -a FILE`.",
    )
    if reason := unavailable(bench, ["queue", "run"], ["--jobs"]) or unavailable(
        bench, ["fetch"], ["--jobs"]
    ):
        area.skipped = reason
        return area
    tmp = bench.tmp / "queue-run"
    tmp.mkdir()
    urls = write_urls(tmp / "urls.txt", base, count, "run")
    qdir, out = tmp / "q", tmp / "out"
    env = {"XDL_QUEUE": str(qdir / "queue.json")}
    add_times: list[float] = []

    def fill() -> None:
        fresh(qdir, out)()
        t0 = time.perf_counter()
        proc = subprocess.run(
            [XDL, "queue", "add", "-q", "-a", str(urls), "-o", str(out)],
            env={**bench.env, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        add_times.append(time.perf_counter() - t0)
        if proc.returncode:
            log(f"  queue add failed: {proc.stderr.strip()[-200:]}")

    in_out = files_in(out, count)
    cmds = [
        Cmd(
            "queue run",
            [XDL, "queue", "run", "-j", "8", "-q"],
            shown=f"xdl queue run -j 8 -q  ({count:,} tasks)",
            env=env,
            cwd=tmp,
            setup=fill,
            check=both(all_ok(count), in_out),
        ),
        Cmd(
            "fetch",
            [XDL, "fetch", "-j", "8", "-q", "-o", str(out), "-a", str(urls)],
            shown=f"xdl fetch -j 8 -q -o OUT -a urls.txt  ({count:,} URLs)",
            cwd=tmp,
            setup=fresh(out),
            check=both(all_ok(count), in_out),
        ),
    ]
    area.measures = bench.measure(cmds, bench.runs(5, 3))
    m = by_label(area.measures)
    r = ratio(m["queue run"], m["fetch"])
    area.goals.append(
        Goal(
            area.key,
            "queue overhead: `queue run -j 8` / `fetch -j 8` − 1",
            f"{(r - 1) * 100:+.1f} %" if r else "–",
            "≤ +10 %",
            at_most(r, 1.10),
        )
    )
    add = statistics.median(add_times) if add_times else None
    area.extra.append(
        f"Filling the queue before each run (`xdl queue add -a urls.txt`, {count:,} URLs): "
        f"median {fmt_seconds(add)}. Counting it too, queue add + run / fetch = "
        + (
            fmt_ratio((m["queue run"].median + add) / m["fetch"].median)
            if add and m["queue run"].median and m["fetch"].median
            else "–"
        )
        + "."
    )
    qc, fc = m["queue run"].cpu_median, m["fetch"].cpu_median
    if qc and fc:
        area.extra.append(
            f"By CPU time (user + system, less sensitive to other load on the machine): "
            f"`queue run` {fmt_seconds(qc)}, `fetch` {fmt_seconds(fc)}, overhead "
            f"{(qc / fc - 1) * 100:+.1f} %, {(qc - fc) / count * 1000:.2f} ms of CPU per task."
        )
    return area


# --- the PostgreSQL store (issue 11) ------------------------------------------------

#: `status --summary` at scale: the table filled in one statement, not by `xdl queue add`.
#: A mix a long-lived queue has: half done (each with its bytes), a quarter queued, the
#: rest failed or cancelled, over 50 hosts.
PG_FILL = """INSERT INTO xdl_tasks (url, domain, status, added_at, updated_at, result)
SELECT 'http://h' || (g %% 50) || '.example/t/' || g, 'h' || (g %% 50) || '.example',
    (ARRAY['done', 'done', 'done', 'queued', 'queued', 'failed', 'cancelled', 'done'])[1 + g %% 8],
    extract(epoch FROM now()) - %(count)s + g, extract(epoch FROM now()) - %(count)s + g,
    CASE WHEN g %% 8 IN (0, 1, 2, 7) THEN json_build_object('bytes', 14, 'path', '/d/' || g) END
FROM generate_series(1, %(count)s) g"""


def pg_missing() -> str | None:
    """Why the PostgreSQL store cannot be measured here (None: it can)."""
    import pg_server

    if pg_server.bindir() is None:
        return "PostgreSQL server binaries not found (apt-get install postgresql)"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install 'xdl[postgres]')"
    return None


def drained(count: int) -> Callable[[Path], str | None]:
    """`bench/queue_drain.py` completed exactly `count` tasks."""

    def check(out: Path) -> str | None:
        lines = json_lines(out)
        if not lines or "tasks" not in lines[-1]:
            return "no drain line"
        done = lines[-1]["tasks"]
        return None if done == count else f"{done} tasks completed, expected {count}"

    return check


def exact_seconds(seconds: float | None) -> str:
    """A time judged against a round limit: enough digits that 1.004 s is not shown as 1 s."""
    return "–" if seconds is None else f"{seconds:.3f} s"


def per_second(count: int, m: Measure) -> float | None:
    return count / m.median if m.median else None


def case_queue_pg(
    bench: Bench, base: str, *, add: int, summary: int, drain: int, files: int
) -> Area:
    area = Area(
        "queue-pg",
        "Queue on PostgreSQL, side by side with the JSON file",
        "The same operations on both stores in the same run: a PostgreSQL server started "
        "for the run (`tests/pg_server.py`: Debian's binaries, `initdb` + `pg_ctl` on a free "
        "loopback port, TCP with a password; fsync and full-page writes **on**, as in "
        "production, and xdl commits synchronously), and a JSON queue file. The server runs "
        "on this machine, so its CPU is not in the `xdl` columns. `queue run` against `fetch` "
        "is measured here on PostgreSQL only: the JSON file's is the queue-run area.",
    )
    if reason := pg_missing() or unavailable(bench, ["queue", "run"], ["--jobs"]):
        area.skipped = reason
        return area
    import psycopg

    import pg_server

    tmp = bench.tmp / "queue-pg"
    tmp.mkdir()
    bin_dir = pg_server.bindir()
    assert bin_dir is not None
    log("  starting PostgreSQL")
    server = pg_server.Server(bin_dir, durable=True)
    try:
        url = server.url(server.new_database())
        return _queue_pg(bench, area, base, tmp, url, psycopg, add, summary, drain, files)
    finally:
        server.destroy()


def _queue_pg(
    bench: Bench,
    area: Area,
    base: str,
    tmp: Path,
    url: str,
    psycopg: Any,
    add: int,
    summary: int,
    drain: int,
    files: int,
) -> Area:
    shown_url = "postgresql://…"
    pg_env = {"XDL_QUEUE": url}
    jdir = tmp / "json"
    json_env = {"XDL_QUEUE": str(jdir / "queue.json")}
    # the schema, created on first use (not timed)
    subprocess.run(
        [XDL, "queue", "status", "--summary"],
        env={**bench.env, **pg_env},
        check=True,
        capture_output=True,
    )

    def sql(*statements: str, **params: object) -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            for s in statements:
                conn.execute(s, params or None)

    def empty_pg() -> None:
        sql("TRUNCATE xdl_tasks RESTART IDENTITY")

    def filled(urls: Path, out: Path, env: dict[str, str]) -> Callable[[], None]:
        """That store emptied, then filled with one `xdl queue add -a` (not timed)."""

        def setup() -> None:
            empty_pg() if env is pg_env else fresh(jdir)()
            fresh(out)()
            subprocess.run(
                [XDL, "queue", "add", "-q", "-a", str(urls), "-o", str(out)],
                env={**bench.env, **env},
                stdout=subprocess.DEVNULL,
                check=True,
            )
            if env is pg_env:  # the WAL of the steps before is flushed now, not in the run
                sql("CHECKPOINT")

        return setup

    # 1. `queue add` of N URLs in one call, into an empty queue.
    urls = write_urls(tmp / "urls-add.txt", base, add, "pgadd")
    out = tmp / "add-out"
    adds = [
        Cmd(
            f"add {label}",
            [XDL, "queue", "add", "-a", str(urls), "-o", str(out)],
            shown=f"xdl queue add -a urls.txt  ({add:,} URLs, empty {label} queue)",
            env=env,
            setup=setup,
            check=all_ok(add),
            timeout=600,
        )
        for label, env, setup in (
            ("postgresql", pg_env, empty_pg),
            ("json", json_env, fresh(jdir)),
        )
    ]
    ms = bench.measure(adds, bench.runs(2, 1))
    area.measures += ms
    m = by_label(ms)
    area.goals.append(
        Goal(
            area.key,
            f"`queue add` of {add:,} URLs in one call, PostgreSQL",
            f"{fmt_seconds(m['add postgresql'].median)} (JSON file: "
            f"{fmt_seconds(m['add json'].median)})",
            "≤ 5 s",
            at_most(m["add postgresql"].median, 5.0),
        )
    )

    # 2. `status --summary` at N tasks, the table filled by SQL.
    empty_pg()
    t0 = time.perf_counter()
    sql(PG_FILL, count=summary)
    sql("VACUUM ANALYZE xdl_tasks")
    fill_took = time.perf_counter() - t0
    log(f"  filled {summary:,} tasks by SQL in {fill_took:.1f} s")
    fresh(jdir)()
    json_n = min(summary, add)
    t0 = time.perf_counter()
    subprocess.run(
        [XDL, "queue", "add", "-q", "-a", str(write_urls(tmp / "urls-sum.txt", base, json_n, "s"))],
        env={**bench.env, **json_env},
        stdout=subprocess.DEVNULL,
        check=True,
    )
    json_fill = time.perf_counter() - t0
    summaries = [
        Cmd(
            f"summary {label}",
            [XDL, "queue", "status", "--summary", "--json"],
            shown=f"xdl queue status --summary  ({n:,} tasks, {label})",
            env=env,
            check=lambda out: None if json_lines(out) else "no summary line",
        )
        for label, env, n in (("postgresql", pg_env, summary), ("json", json_env, json_n))
    ]
    ms = bench.measure(summaries, bench.runs(5, 3))
    area.measures += ms
    m = by_label(ms)
    area.goals.append(
        Goal(
            area.key,
            f"`status --summary` at {summary:,} tasks, PostgreSQL",
            f"{exact_seconds(m['summary postgresql'].median)} (JSON file at {json_n:,}: "
            f"{fmt_seconds(m['summary json'].median)})",
            "≤ 1 s",
            at_most(m["summary postgresql"].median, 1.0),
            note="whole process",
        )
    )
    area.extra.append(
        f"The {summary:,}-task PostgreSQL queue was filled by one `INSERT … SELECT … FROM "
        f"generate_series` in {fmt_seconds(fill_took)} (then `VACUUM ANALYZE`): half done "
        "with their bytes, a quarter queued, the rest failed or cancelled, over 50 hosts. "
        f"The JSON queue beside it holds {json_n:,} queued tasks, added by one `xdl queue "
        f"add -a` in {fmt_seconds(json_fill)}"
        + (
            f" (filling it to {summary:,} that way takes minutes, past this run's budget)."
            if json_n < summary
            else "."
        )
    )

    # 3. claim + complete throughput, 4 processes × 8 workers, no download.
    durls = write_urls(tmp / "urls-drain.txt", base, drain, "drain")
    dout = tmp / "drain-out"
    drains = [
        Cmd(
            f"drain {label}",
            [PYTHON, str(BENCH / "queue_drain.py"), location, "4", "8"],
            shown=f"bench/queue_drain.py QUEUE 4 8  ({drain:,} tasks, {label})",
            setup=filled(durls, dout, env),
            check=drained(drain),
            reported=True,
            timeout=900,
        )
        for label, location, env in (
            ("postgresql", url, pg_env),
            ("json", str(jdir / "queue.json"), json_env),
        )
    ]
    ms = bench.measure(drains, bench.runs(3, 1))
    for d in ms:
        d.shown = d.shown.replace(url, shown_url)
    area.measures += ms
    m = by_label(ms)
    pg_rate, json_rate = (
        per_second(drain, m["drain postgresql"]),
        per_second(drain, m["drain json"]),
    )
    area.goals.append(
        Goal(
            area.key,
            "claim + complete, 4 processes × 8 workers, no download, PostgreSQL",
            (f"{pg_rate:,.0f} tasks/s" if pg_rate else "–")
            + (f" (JSON file: {json_rate:,.0f} tasks/s)" if json_rate else ""),
            "≥ 500 tasks/s",
            at_least(pg_rate, 500.0),
        )
    )
    area.extra.append(
        f"Claim + complete: `bench/queue_drain.py` starts 4 processes that each open the "
        f"store once and run 8 threads looping on `store.finish(...)` (record the task held "
        f"as done and claim the next in one write: one task per write, the store's worst "
        f"case, where `xdl queue run` writes up to -j at once) until the "
        f"{drain:,} tasks are done; timed from a start signal sent once every process is "
        "connected. Each queue is filled by `xdl queue add -a` before each run (not timed; "
        "then, on PostgreSQL, a `CHECKPOINT`, so the WAL of the steps before is not "
        "written out during the timed run)."
    )

    # 4. `queue run -j 8` over small files against `fetch -j 8`. The JSON file's own figure
    # is the queue-run area's (the same case; here it would add minutes to `make bench`).
    furls = write_urls(tmp / "urls-run.txt", base, files, "pgrun")
    fout = tmp / "run-out"
    in_out = files_in(fout, files)
    runs = [
        Cmd(
            "queue run postgresql",
            [XDL, "queue", "run", "-j", "8", "-q"],
            shown=f"xdl queue run -j 8 -q  ({files:,} tasks, postgresql)",
            env=pg_env,
            cwd=tmp,
            setup=filled(furls, fout, pg_env),
            check=both(all_ok(files), in_out),
        ),
        Cmd(
            "fetch",
            [XDL, "fetch", "-j", "8", "-q", "-o", str(fout), "-a", str(furls)],
            shown=f"xdl fetch -j 8 -q -o OUT -a urls.txt  ({files:,} URLs)",
            cwd=tmp,
            setup=fresh(fout),
            check=both(all_ok(files), in_out),
        ),
    ]
    ms = bench.measure(runs, bench.runs(3, 2))
    area.measures += ms
    m = by_label(ms)
    r = ratio(m["queue run postgresql"], m["fetch"])
    area.goals.append(
        Goal(
            area.key,
            f"queue overhead, PostgreSQL: `queue run -j 8` / `fetch -j 8` − 1 ({files:,} files)",
            f"{(r - 1) * 100:+.1f} %" if r else "–",
            "≤ +10 %",
            at_most(r, 1.10),
            note="the JSON file's: queue-run",
        )
    )
    qc, fc = m["queue run postgresql"].cpu_median, m["fetch"].cpu_median
    if qc and fc:
        area.extra.append(
            f"`queue run` on PostgreSQL by CPU time (user + system of `xdl`, not the server's): "
            f"{fmt_seconds(qc)} against `fetch`'s {fmt_seconds(fc)}, "
            f"{(qc / fc - 1) * 100:+.1f} %. The same case on the JSON file is the queue-run area."
        )
    return area


@dataclass
class PoliteRun:
    """One run of a politeness setup, as the strict site saw it."""

    wall: float
    ok: int
    refusals: int
    bans: int
    banned_answers: int
    peak_in_flight: int
    error: str | None = None


@dataclass
class PoliteSetup:
    """One way of downloading the same files from the strict site."""

    label: str
    shown: str
    argvs: list[list[str]]  # started together; the run ends when the last one does
    refusals_goal: int
    env: dict[str, str] = field(default_factory=dict)
    setup: Callable[[], None] | None = None
    skip: str | None = None
    runs: list[PoliteRun] = field(default_factory=list)


def run_polite(
    bench: Bench, setup: PoliteSetup, site: Any, out: Path, files: int, timeout: float
) -> PoliteRun:
    """Start the setup's commands together against a fresh site and output directory;
    its wall time, result lines and what the site counted (banned runs are results too,
    not failures)."""
    fresh(out)()
    if setup.setup:
        setup.setup()
    site.reset()
    logs = [
        (bench.tmp / f"polite-{i}.stdout", bench.tmp / f"polite-{i}.stderr")
        for i in range(len(setup.argvs))
    ]
    with contextlib.ExitStack() as stack:
        t0 = time.perf_counter()
        procs = [
            subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=stack.enter_context(o.open("w")),
                stderr=stack.enter_context(e.open("w")),
                cwd=bench.tmp,
                env={**bench.env, **setup.env},
                start_new_session=True,
            )
            for argv, (o, e) in zip(setup.argvs, logs)
        ]
        stopped = None
        banned_at = None
        while any(p.poll() is None for p in procs):
            now = time.perf_counter()
            if banned_at is None and site.bans:
                banned_at = now
            if now - t0 > timeout:
                stopped = f"timed out after {timeout:.0f} s"
            elif banned_at is not None and now - banned_at > 3:
                stopped = "banned: stopped 3 s after the ban"
            if stopped:
                for p in procs:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(p.pid, signal.SIGKILL)
                for p in procs:
                    p.wait()
                break
            time.sleep(0.05)
        wall = time.perf_counter() - t0
    outputs = [
        (proc.returncode, o.read_text(errors="replace"), e.read_text(errors="replace"))
        for proc, (o, e) in zip(procs, logs)
    ]
    lines = [
        json.loads(x) for _, stdout, _ in outputs for x in stdout.splitlines() if x.startswith("{")
    ]
    ok = sum(1 for x in lines if x.get("ok") and not x.get("skipped"))
    on_disk = len([p for p in out.rglob("*") if p.is_file() and p.suffix != ".part"])
    bad = [(code, err) for code, _, err in outputs if code != 0]
    error = stopped
    if error is None and bad:
        tail = (bad[0][1].strip().splitlines() or [""])[-1][:160]
        error = f"exit {bad[0][0]}" + (f": {tail}" if tail else "")
    if error is None and (ok != files or on_disk != files):
        error = f"{ok} ok lines and {on_disk} files, expected {files}"
    with site.lock:
        refused, bans, banned = sum(site.refused.values()), site.bans, site.banned_answers
        peak = site.peak_in_flight
    return PoliteRun(wall, ok, refused, bans, banned, peak, error)


def case_politeness(bench: Bench, *, rate: int, files: int) -> Area:
    area = Area(
        "politeness",
        "Politeness: one budget per site (issue 20)",
        f"The strict site (`tests/strict_site.py`) allows {rate} requests a second (a "
        "sliding one-second window of served requests; past it 429 with `Retry-After: 1`) "
        "and bans a client that collects 12 refusals within 10 s (403 to everything, here "
        f"until the run ends). {files} files of 32 KiB (`/f/N.bin`) are downloaded by each "
        "setup, from a fresh site each run. Refusals and bans are the site's counts; "
        "throughput is the files downloaded per second of the whole run (process start "
        f"included), as a fraction of the site's {rate}/s. A banned run is a result, not a "
        "failure of the bench: it is counted, not retried, and stopped 3 s after the ban.",
    )
    import strict_site

    tmp = bench.tmp / "politeness"
    tmp.mkdir()
    out = tmp / "out"
    site = strict_site.start(per_second=rate, retry_after=1, ban_seconds=3600)
    urls = tmp / "urls.txt"
    urls.write_text("".join(site.url(f"/f/{n}.bin") + "\n" for n in range(1, files + 1)))
    sleep = round(1.05 / rate, 3)
    fetch = [XDL, "fetch", "-j", "8", "-q", "-o", str(out), "-a", str(urls)]
    setups = [
        PoliteSetup(
            "fetch",
            f"xdl fetch -j 8 -a urls.txt  ({files} URLs, no option)",
            [fetch],
            refusals_goal=11,
        ),
        PoliteSetup(
            "fetch --per-host",
            f"xdl fetch -j 8 --per-host 2 --sleep {sleep:g} -a urls.txt  ({files} URLs)",
            [[*fetch, "--per-host", "2", "--sleep", f"{sleep:g}"]],
            refusals_goal=1,
            skip=unavailable(bench, ["fetch"], ["--per-host"]),
        ),
    ]
    server = None
    runner_label = "3 × queue run, PostgreSQL"
    runners = PoliteSetup(
        runner_label,
        f"3 × xdl queue run -j 4  ({files} tasks, one PostgreSQL queue, no option)",
        [],
        refusals_goal=11,
        skip=pg_missing() or unavailable(bench, ["queue", "run"], ["--jobs"]),
    )
    try:
        if not runners.skip:
            import psycopg

            import pg_server

            bin_dir = pg_server.bindir()
            assert bin_dir is not None
            log("  starting PostgreSQL")
            server = pg_server.Server(bin_dir, durable=True)
            url = server.url(server.new_database())
            env = {"XDL_QUEUE": url}
            subprocess.run(  # the schema, created on first use (not timed)
                [XDL, "queue", "status", "--summary"],
                env={**bench.env, **env},
                check=True,
                capture_output=True,
            )

            def filled() -> None:
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute("TRUNCATE xdl_tasks RESTART IDENTITY")
                subprocess.run(
                    [XDL, "queue", "add", "-q", "-a", str(urls), "-o", str(out)],
                    env={**bench.env, **env},
                    stdout=subprocess.DEVNULL,
                    check=True,
                )

            runners.argvs = [[XDL, "queue", "run", "-j", "4", "-q"]] * 3
            runners.env, runners.setup = env, filled
        setups.append(runners)
        timeout = 30 + 4 * files / rate
        for r in range(bench.runs(3, 1)):
            for s in setups if r % 2 == 0 else reversed(setups):
                if s.skip:
                    continue
                run = run_polite(bench, s, site, out, files, timeout)
                s.runs.append(run)
                log(
                    f"  {s.label}: {run.wall:.1f} s, {run.refusals} refusals, {run.bans} bans"
                    + (f" ({run.error})" if run.error else "")
                )
    finally:
        site.stop()
        if server:
            server.destroy()

    rows = []
    for s in setups:
        if s.skip:
            rows.append([f"`{s.shown}`", "0", f"skipped: {s.skip}", "", "", "", "", ""])
            continue
        thr = polite_throughput(s, files, rate)
        errors = sorted({x.error for x in s.runs if x.error})
        rows.append(
            [
                f"`{s.shown}`",
                str(len(s.runs)),
                str(max(x.refusals for x in s.runs)),
                str(sum(x.bans for x in s.runs)),
                str(max(x.banned_answers for x in s.runs)),
                str(max(x.peak_in_flight for x in s.runs)),
                fmt_seconds(statistics.median(x.wall for x in s.runs)),
                f"{thr:.2f} R" if thr is not None else "–",
            ]
        )
        if errors:
            area.extra.append(f"`{s.label}` did not download every file: {'; '.join(errors)}.")
    area.extra.insert(
        0,
        markdown_table(
            [
                "setup",
                "runs",
                "refusals (max)",
                "bans (total)",
                "403s (max)",
                "peak in flight",
                "wall (median)",
                "throughput",
            ],
            rows,
            align="lrrrrrrr",
        ),
    )
    area.extra.append(
        f"`--sleep {sleep:g}` is the site's published limit ({rate}/s) with 5 % to spare, "
        "the way a user sets it; the no-option setups must find the limit themselves "
        "(a refusal's `Retry-After`, then fewer requests at once until the refusals stop)."
    )
    for s in setups:
        measured = s.runs if not s.skip else []
        bans = sum(x.bans for x in measured) if measured else None
        refusals = max(x.refusals for x in measured) if measured else None
        thr = polite_throughput(s, files, rate)
        area.goals += [
            Goal(
                area.key,
                f"bans, {s.label}",
                "–" if bans is None else f"{bans} in {len(measured)} runs",
                "0",
                at_most(bans, 0),
            ),
            Goal(
                area.key,
                f"refusals, {s.label}",
                "–" if refusals is None else f"{refusals} (worst run)",
                f"≤ {s.refusals_goal}",
                at_most(refusals, s.refusals_goal),
            ),
            Goal(
                area.key,
                f"throughput, {s.label}",
                "–" if thr is None else f"{thr:.2f} R",
                "≥ 0.8 R",
                at_least(thr, 0.8),
                note="median run, every file downloaded",
            ),
        ]
    return area


def polite_throughput(setup: PoliteSetup, files: int, rate: int) -> float | None:
    """Files per second over the median wall time, as a fraction of the site's rate; None
    unless some run downloaded every file."""
    walls = [x.wall for x in setup.runs if not x.error]
    return files / statistics.median(walls) / rate if walls else None


def case_markdown(bench: Bench, sizes: Sequence[int]) -> Area:
    area = Area(
        "captions",
        "Captions: `xdl to-markdown` on automatic-caption WebVTT",
        "Generated YouTube-style rolling automatic captions (every line typed with inline "
        "`<00:00:01.234><c>` word timings, repeated in a 10 ms snapshot cue and again atop the "
        "next cue). The peer is webvtt-py parsing the same file and nothing else "
        "(`webvtt.read`); `python -c pass` is interpreter start-up alone.",
    )
    tmp = bench.tmp / "captions"
    tmp.mkdir()
    skip = unavailable(bench, ["to-markdown"])
    cmds: list[Cmd] = [Cmd("python -c pass", [PYTHON, "-c", "pass"])]
    files: dict[int, Path] = {}
    for size in sizes:
        f = tmp / f"auto-{size // 100_000 / 10:g}MB.vtt"
        f.write_text(rolling_vtt(size), encoding="utf-8")
        files[size] = f
        md = f.with_suffix(".md")
        cmds.append(
            Cmd(
                f"xdl@{size}",
                [XDL, "to-markdown", str(f)],
                shown=f"xdl to-markdown {f.name}",
                setup=lambda md=md: md.unlink(missing_ok=True),
                check=all_ok(1),
                skip=skip,
            )
        )
        cmds.append(
            Cmd(
                f"webvtt@{size}",
                [PYTHON, "-c", "import sys, webvtt; webvtt.read(sys.argv[1])", str(f)],
                shown=f'python -c "webvtt.read(...)" {f.name}',
                skip="left out of QUICK=1" if bench.quick and size != min(sizes) else None,
                # webvtt-py holds every cue: about 50 s and 1.4 GB for 200 MB, so once.
                runs=1 if size > 100_000_000 else None,
                timeout=900.0,
            )
        )
    area.measures = bench.measure(cmds, bench.runs(5, 3))
    m = by_label(area.measures)
    start = m["python -c pass"].median
    rows = []
    for size in sizes:
        real = files[size].stat().st_size
        x, w = m[f"xdl@{size}"], m[f"webvtt@{size}"]
        rate = real / 1e6 / x.median if x.median else None
        cpu_rate = real / 1e6 / x.cpu_median if x.cpu_median else None
        net = x.median - start if x.median and start else None
        rows.append(
            [
                f"{real / 1e6:.1f} MB",
                fmt_rate(rate),
                fmt_rate(real / 1e6 / net if net and net > 0 else None),
                fmt_rate(cpu_rate),
                fmt_rate(real / 1e6 / w.median if w.median else None),
                fmt_ratio(ratio(x, w)),
                fmt_seconds(net),
            ]
        )
    area.extra.append(
        markdown_table(
            [
                "file",
                "xdl to-markdown",
                "xdl, start-up excluded",
                "xdl per CPU second",
                "webvtt-py parse",
                "xdl / webvtt-py",
                "xdl above interpreter start-up",
            ],
            rows,
        )
    )
    small = min(sizes)
    for size, goal in ((15_000_000, 20.0), (200_000_000, 40.0)):
        if size not in files:
            continue
        x = m[f"xdl@{size}"]
        real = files[size].stat().st_size
        rate = real / 1e6 / x.median if x.median else None
        peer = m[f"webvtt@{size}"]
        shown = fmt_rate(rate)
        if x.cpu_median:
            shown += f" (per CPU second: {fmt_rate(real / 1e6 / x.cpu_median)})"
        if peer.median:
            shown += f"; webvtt-py: {fmt_rate(real / 1e6 / peer.median)}"
        area.goals.append(
            Goal(
                area.key,
                f"`to-markdown` throughput, {size / 1e6:g} MB file",
                shown,
                f"≥ {goal:g} MB/s",
                at_least(rate, goal),
                note="whole process",
            )
        )
    if 200_000_000 in files:
        x = m["xdl@200000000"]
        area.goals.append(
            Goal(
                area.key,
                "peak RSS of `to-markdown`, 200 MB file",
                fmt_mb(x.peak_rss_mb)
                + (
                    f" (webvtt-py: {fmt_mb(m['webvtt@200000000'].peak_rss_mb)})"
                    if m["webvtt@200000000"].peak_rss_mb
                    else ""
                ),
                "≤ 400 MB",
                at_most(x.peak_rss_mb, 400),
            )
        )
    small_net = m[f"xdl@{small}"].median - start if m[f"xdl@{small}"].median and start else None
    area.goals.append(
        Goal(
            area.key,
            f"{small / 1e6:g} MB (2-hour) file, above interpreter start-up",
            fmt_seconds(small_net)
            + (
                f" (CPU: {fmt_seconds(small_cpu - start_cpu)})"
                if (small_cpu := m[f"xdl@{small}"].cpu_median)
                and (start_cpu := m["python -c pass"].cpu_median)
                else ""
            ),
            "< 300 ms",
            at_most(small_net, 0.3),
        )
    )
    if not skip:
        proc = subprocess.run(
            [PYTHON, "-X", "importtime", XDL, "to-markdown", str(files[small])],
            capture_output=True,
            text=True,
            env=bench.env,
            timeout=120,
        )
        imported = "yt_dlp" in proc.stderr
        area.goals.append(
            Goal(
                area.key,
                "`to-markdown` does not import yt-dlp",
                "imports yt_dlp" if imported else "no yt_dlp import",
                "no import",
                None if proc.returncode else not imported,
            )
        )
    return area


def case_diagnose(bench: Bench, base: str) -> Area:
    area = Area(
        "diagnose",
        "Where the time goes",
        "Costs measured inside a fresh process (`bench/diagnose.py`; medians of 3 runs, 1 "
        "with `QUICK=1`), to "
        "explain the figures above.",
    )
    runs: list[dict[str, float | None]] = []
    for _ in range(1 if bench.quick else 3):
        proc = subprocess.run(
            [PYTHON, str(BENCH / "diagnose.py"), base],
            capture_output=True,
            text=True,
            env=bench.env,
            timeout=120,
        )
        if proc.returncode == 0:
            runs.append(json.loads(proc.stdout))
    if not runs:
        area.skipped = "bench/diagnose.py failed"
        return area

    def med(key: str) -> float | None:
        values = [r[key] for r in runs if r.get(key) is not None]
        return statistics.median(v for v in values if v is not None) if values else None

    sha = med("sha256_mb_per_s")
    imp = med("import_yt_dlp_s")
    first = med("extractor_for_first_s")
    per = med("extractor_for_per_url_ms")
    rows = [
        [
            "`import yt_dlp`",
            fmt_seconds(imp),
            "paid by every process that may need yt-dlp (`fetch`, `info`, `queue run`)",
        ],
        [
            "`xdl.core.extractors.extractor_for(url)`, first call",
            fmt_seconds(first),
            "reads the extractor index kept in the cache (built once per yt-dlp, ~1 s)",
        ],
        [
            "`extractor_for(url)`, each later URL",
            fmt_seconds(per / 1000 if per is not None else None),
            "per input, under the GIL" + (f": {per:.1f} s of CPU for 1,000 inputs" if per else ""),
        ],
        [
            "sha256 (hashlib, one core)",
            fmt_rate(sha),
            f"{1024**3 / 1e6 / sha:.2f} s of CPU per GiB, which curl -o does not spend"
            if sha
            else "",
        ],
    ]
    area.extra.append(markdown_table(["cost", "measured", "what it means"], rows, align="lrl"))
    return area


# --- the report ---------------------------------------------------------------------


def version_of(argv: Sequence[str], pattern: str = r"(\d+(?:\.\d+)+)") -> str:
    exe = shutil.which(argv[0]) or (argv[0] if Path(argv[0]).exists() else None)
    if not exe:
        return "not installed"
    try:
        proc = subprocess.run([exe, *argv[1:]], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "not runnable"
    m = re.search(pattern, proc.stdout + proc.stderr)
    return m.group(1) if m else "unknown"


def git_commit() -> str:
    """The commit measured (taken at the start: others may commit during the run)."""
    with contextlib.suppress(OSError):
        return subprocess.run(
            ["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
        ).stdout.strip()
    return ""


def load() -> str:
    with contextlib.suppress(OSError):
        return " / ".join(f"{x:.1f}" for x in os.getloadavg())
    return "unknown"


def machine(server: str) -> list[list[str]]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "unknown"
    with contextlib.suppress(OSError, ValueError, IndexError):
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kib / 1024 / 1024:.0f} GiB"
    commit = COMMIT_AT_START
    xdl_version = subprocess.run([XDL, "--version"], capture_output=True, text=True).stdout
    import site as site_mod

    editable = any(
        any(Path(d).glob("__editable__*xdl*"))
        for d in site_mod.getsitepackages()
        if Path(d).is_dir()
    )
    dirty = commit.endswith("-dirty")
    return [
        ["cores", f"{os.cpu_count()} ({cpu})"],
        ["memory", mem],
        ["system", f"{platform.system()} {platform.release()}"],
        ["Python", platform.python_version()],
        [
            "xdl",
            f"{xdl_version.strip()} (git {commit or 'unknown'} at the start of the run"
            + ("; the tree had uncommitted changes" if dirty else "")
            + ")",
        ],
        [
            "xdl install",
            "editable (`pip install -e`; its import hook adds a little to every start-up)"
            if editable
            else "regular",
        ],
        ["yt-dlp", version_of([YTDLP or "yt-dlp", "--version"], r"(\S+)")],
        ["curl", version_of(["curl", "--version"])],
        ["wget", version_of(["wget", "--version"])],
        ["aria2c", version_of(["aria2c", "--version"])],
        ["nginx", version_of(["nginx", "-v"])],
        ["static server used", server],
        ["load average (1/5/15 min) at the start", LOAD_AT_START],
        ["load average (1/5/15 min) at the end", load()],
    ]


def render(areas: Sequence[Area], *, quick: bool, server: str, took: float, plots_rel: str) -> str:
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    goals = [g for a in areas for g in a.goals]
    parts = [
        "# Benchmarks",
        "",
        f"Written by `make bench{' QUICK=1' if quick else ''}` (`bench/run.py`) on {now}, "
        f"in {took / 60:.1f} minutes. Do not edit by hand: run `make bench` again.",
        "",
        "Each case runs xdl and its peers alternately on this machine (a warm-up round, then "
        "every round in reversed order, so neither side always goes first) against loopback "
        "servers started for the run; the median is the figure, and every judged figure is a "
        "ratio from the same run, the median of the ratios of the runs taken in the same "
        "round (a pair shares the machine's speed of the moment) — except the goals that "
        "have no peer (the queue's times, "
        "to-markdown's MB/s, peak RSS), judged in absolute units, with CPU time beside "
        "the times (other load on the machine disturbs it less). "
        "Wall time is from fork to exit; CPU is user + system of the process and "
        "its children (`os.wait4`); " + RSS_METHOD + " The machine is shared and noisy: "
        "trust ratios over absolute times.",
        "",
        markdown_table(["machine", ""], machine(server), align="ll"),
        "",
        "## Goals",
        "",
        goals_table(goals, with_area=True),
        "",
    ]
    for a in areas:
        parts += [f"## {a.title}", "", a.intro, ""]
        if a.skipped:
            parts += [f"Skipped: {a.skipped}.", ""]
            continue
        if a.measures:
            parts += [measures_table(a.measures), ""]
        for extra in a.extra:
            parts += [extra, ""]
        for name in a.plots:
            parts += [f"![{name}]({plots_rel}/{name})", ""]
        if a.goals:
            parts += [goals_table(a.goals), ""]
    return "\n".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the ≤ 3-minute subset")
    parser.add_argument("--only", help="comma-separated areas: " + ",".join(AREAS))
    parser.add_argument("--runs", type=int, help="runs per command (after the warm-up)")
    parser.add_argument("--output", type=Path, help="where to write BENCHMARKS.md")
    parser.add_argument("--server", choices=["auto", "nginx", "python"], default="auto")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    every = set(AREAS) - (QUICK_SKIPS if args.quick else set())
    only = set(args.only.split(",")) if args.only else every
    if unknown := only - set(AREAS):
        parser.error(f"unknown areas: {', '.join(sorted(unknown))}")
    partial = args.quick or only != every or args.runs
    output = args.output or (BENCH / "out" / "BENCHMARKS.md" if partial else ROOT / "BENCHMARKS.md")
    output = output.resolve()
    plots = BENCH / "plots" if output == ROOT / "BENCHMARKS.md" else output.parent / "plots"

    global LOAD_AT_START, COMMIT_AT_START
    LOAD_AT_START = load()
    COMMIT_AT_START = git_commit()
    tmp = Path(tempfile.mkdtemp(prefix="xdl-bench-"))
    tmp.chmod(0o755)
    bench = Bench(tmp, quick=args.quick, runs=args.runs)
    data = tmp / "data"
    data.mkdir()
    (data / "tiny.txt").write_text("xdl bench ok\n")
    (data / "small.bin").write_bytes(bytes(range(256)) * (SMALL_FILE // 256))
    static = None
    site = None
    areas: list[Area] = []
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        if args.server == "nginx" and not nginx_available():
            parser.error("nginx is not installed")
        static = start_static(data, tmp / "nginx", args.server)
        site = media_site.start()
        log(f"static server: {static.name} at {static.base}; media site at {site.base}")
        log(f"temporary directory: {tmp}")
        for key in AREAS:
            if key not in only:
                continue
            log(f"{key} ({bench.elapsed()})")
            areas.append(AREAS[key](bench, static.base, site, data))
    except KeyboardInterrupt:
        log("interrupted: writing what was measured")
    finally:
        if static:
            static.stop()
        if site:
            site.stop()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    took = time.monotonic() - bench.started
    rel = os.path.relpath(plots, output.parent)
    text = render(
        areas, quick=args.quick, server=static.name if static else "none", took=took, plots_rel=rel
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    for a in areas:
        for name, svg in a.plots.items():
            plots.mkdir(parents=True, exist_ok=True)
            (plots / name).write_text(svg, encoding="utf-8")
    raw = BENCH / "out" / "results.json"
    raw.parent.mkdir(parents=True, exist_ok=True)
    raw.write_text(
        json.dumps(
            {
                "quick": args.quick,
                "areas": [
                    {
                        "key": a.key,
                        "skipped": a.skipped,
                        "measures": [
                            {
                                "label": m.label,
                                "status": m.status,
                                "runs": [r.__dict__ for r in m.runs],
                            }
                            for m in a.measures
                        ],
                        "goals": [g.__dict__ for g in a.goals],
                    }
                    for a in areas
                ],
            },
            indent=1,
        )
    )
    log(
        f"wrote {output.relative_to(ROOT) if output.is_relative_to(ROOT) else output} "
        f"in {took:.0f} s"
    )
    for g in (g for a in areas for g in a.goals):
        log(
            f"  {g.area}: {g.what}: {g.measured} (goal {g.target}) -> "
            f"{ {True: 'met', False: 'NOT MET', None: 'not measured'}[g.met] }"
        )
    return 0


def _http_size(bench: Bench) -> int:
    return (256 if bench.quick else 1024) * 1024 * 1024


def _area_http(bench: Bench, base: str, site: media_site.Site, data: Path) -> Area:
    size = _http_size(bench)
    big = data / "big.bin"
    block = os.urandom(1024 * 1024)
    with big.open("wb") as f:
        for _ in range(size // len(block)):
            f.write(block)
    try:
        return case_http(bench, base, data, size)
    finally:
        big.unlink(missing_ok=True)


def _area_segments(bench: Bench, base: str, site: media_site.Site, data: Path) -> Area:
    size = (16 if bench.quick else 64) * 1024 * 1024
    limited = data / "limited"
    limited.mkdir(exist_ok=True)
    (limited / "seg.bin").write_bytes(os.urandom(size))
    try:
        return case_segments(bench, base, size)
    finally:
        shutil.rmtree(limited, ignore_errors=True)


def _area_cache(bench: Bench, base: str, site: media_site.Site, data: Path) -> Area:
    size = _http_size(bench)  # the saving grows with the file; start-up is the floor
    block = os.urandom(1024 * 1024)
    with (data / "cached.bin").open("wb") as f:
        for _ in range(size // len(block)):
            f.write(block)
    try:
        return case_cache(bench, base, size)
    finally:
        (data / "cached.bin").unlink(missing_ok=True)


AREAS: dict[str, Callable[[Bench, str, media_site.Site, Path], Area]] = {
    "startup": lambda b, base, site, data: case_startup(b),
    "http": _area_http,
    "segments": _area_segments,
    "cache": _area_cache,
    "batch": lambda b, base, site, data: case_latency(b, site, 16 if b.quick else 40),
    "batch-files": lambda b, base, site, data: case_latency(b, site, 40, media=False),
    "small-files": lambda b, base, site, data: case_small_files(
        b, base, (500,) if b.quick else (500, 5000)
    ),
    "page": lambda b, base, site, data: case_page(b, site),
    "feeds": lambda b, base, site, data: case_feeds(b, site, 50 if b.quick else 200),
    "queue": lambda b, base, site, data: case_queue_scale(
        b, base, (1_000, 10_000) if b.quick else (1_000, 10_000, 100_000)
    ),
    "queue-run": lambda b, base, site, data: case_queue_run(b, base, 100 if b.quick else 1000),
    "queue-pg": lambda b, base, site, data: case_queue_pg(
        b,
        base,
        add=10_000 if b.quick else 100_000,
        summary=100_000 if b.quick else 1_000_000,
        drain=2_000 if b.quick else 5_000,
        files=100 if b.quick else 1000,
    ),
    "politeness": lambda b, base, site, data: case_politeness(
        b, rate=10, files=50 if b.quick else 100
    ),
    "captions": lambda b, base, site, data: case_markdown(b, (1_500_000, 15_000_000, 200_000_000)),
    "diagnose": lambda b, base, site, data: case_diagnose(b, base),
}

#: Left out of `--quick` to keep it under 3 minutes (yt-dlp alone takes ~25 s a run there).
QUICK_SKIPS = {"batch-files"}


if __name__ == "__main__":
    sys.exit(main())
