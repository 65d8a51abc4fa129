"""The benchmark harness's pure parts (bench/): statistics, checks, tables, plots and the
caption generator, so `make bench` does not rot between runs. Nothing here is timed."""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

import captions  # noqa: E402
import report  # noqa: E402
import run  # noqa: E402
from report import Goal, Measure, Run  # noqa: E402


def measure(label: str, *walls: float, rss_kib: int = 1000) -> Measure:
    return Measure(label, runs=[Run(wall=w, cpu=w / 2, rss_kib=rss_kib) for w in walls])


@pytest.mark.parametrize(
    ("walls", "median", "low", "high"),
    [
        ((1.0,), 1.0, 1.0, 1.0),
        ((3.0, 1.0, 2.0), 2.0, 1.0, 3.0),
        ((4.0, 1.0, 2.0, 3.0), 2.5, 1.0, 4.0),
        ((0.5, 9.0, 0.6, 0.7, 0.55), 0.6, 0.5, 9.0),  # one noisy run does not move the median
    ],
)
def test_measure_statistics(walls: tuple[float, ...], median: float, low: float, high: float):
    m = measure("x", *walls)
    assert (m.median, m.minimum, m.maximum) == (median, low, high)
    assert m.status == "ok"


def test_peak_rss_is_the_largest_run_in_megabytes():
    m = Measure("x", runs=[Run(1.0, rss_kib=1000), Run(1.0, rss_kib=62_500)])
    assert m.peak_rss_mb == pytest.approx(64.0)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (measure("xdl", 1.0, 1.2, 1.1), measure("curl", 1.0, 1.0, 1.0), 1.1),
        (measure("xdl", 2.0), measure("yt-dlp", 8.0), 0.25),
        (Measure("xdl", skipped="not available yet"), measure("curl", 1.0), None),
        (measure("xdl", 1.0), Measure("curl", error="exit 7"), None),
        # taken in pairs, round by round: the median of the pairs' ratios (2.0, 2.0, 0.5),
        # not of the medians apart (2.0 / 1.5)
        (measure("xdl", 1.0, 3.0, 2.0), measure("aria2c", 2.0, 1.5, 1.0), 2.0),
        # not in pairs (a command run fewer times): the medians'
        (measure("xdl", 1.0, 3.0, 2.0), measure("aria2c", 1.5), 2.0 / 1.5),
    ],
)
def test_ratio_of_pairs_else_of_medians(a: Measure, b: Measure, expected: float | None):
    assert report.ratio(a, b) == (pytest.approx(expected) if expected is not None else None)


def test_a_skipped_or_failed_measure_has_no_figures():
    skipped = Measure("x", skipped="curl is not installed")
    failed = Measure("y", runs=[Run(1.0)], error="exit 2: no such option")
    for m in (skipped, failed):
        assert m.median is None and m.peak_rss_mb is None and not m.ok
    assert skipped.status == "skipped: curl is not installed"
    assert failed.status == "failed: exit 2: no such option"


@pytest.mark.parametrize(
    ("check", "value", "limit", "met"),
    [
        (report.at_most, 1.0, 1.0, True),
        (report.at_most, 1.01, 1.0, False),
        (report.at_least, 6.0, 6.0, True),
        (report.at_least, 5.9, 6.0, False),
        (report.at_most, None, 1.0, None),
    ],
)
def test_goal_checks(check, value, limit, met):
    assert check(value, limit) is met


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (None, "–"),
        (0.0000042, "4 µs"),
        (0.0123, "12 ms"),
        (0.0456, "46 ms"),
        (0.2345, "234 ms"),
        (1.234, "1.23 s"),
        (25.61, "25.6 s"),
        (123.4, "123 s"),
    ],
)
def test_fmt_seconds(seconds: float | None, shown: str):
    assert report.fmt_seconds(seconds) == shown


def test_markdown_table_aligns_and_escapes():
    text = report.markdown_table(["command", "median"], [["a | b", "1 s"], ["short"]])
    assert text.splitlines() == [
        "| command | median |",
        "|:---|---:|",
        "| a \\| b | 1 s |",
        "| short |  |",
    ]


def test_markdown_table_alignment_per_column():
    text = report.markdown_table(["a", "b", "c"], [["1", "2", "3"]], align="lrl")
    assert text.splitlines()[1] == "|:---|---:|:---|"


def test_measures_table_reports_skips_not_numbers():
    text = report.measures_table(
        [measure("curl", 1.0, 2.0, 3.0), Measure("xdl", "xdl fetch URL", skipped="not yet")]
    )
    lines = text.splitlines()
    assert lines[2].startswith("| `curl` | 3 | 2 s | 1 s | 3 s |")
    assert "| `xdl fetch URL` | 0 | skipped: not yet |" in lines[3]


def test_goals_table_verdicts():
    goals = [
        Goal("http", "xdl / curl", "0.95×", "≤ 1.0×", True),
        Goal("http", "RSS", "80 MB", "≤ 64 MB", False),
        Goal("queue", "add", "–", "≤ 1 s", None, note="whole process"),
    ]
    lines = report.goals_table(goals, with_area=True).splitlines()
    assert lines[2] == "| http | xdl / curl | 0.95× | ≤ 1.0× | met |"
    assert lines[3].endswith("| **not met** |")
    assert lines[4].endswith("| not measured |")
    assert "(whole process)" in report.goals_table(goals)


@pytest.mark.parametrize(
    ("values", "shown"),
    [([0.1, 0.2, 1.0], "10.0×"), ([0.1, 0.1, 0.12], "1.20×"), ([None, 1.0], "–"), ([1.0], "–")],
)
def test_growth(values, shown):
    assert report.growth(values) == shown


def test_svg_plot_is_valid_and_breaks_lines_at_missing_points():
    svg = report.svg_plot(
        "queue",
        [1000, 10_000, 100_000],
        {"add": [0.1, 0.11, 0.2], "status": [0.1, None, 0.5]},
        x_label="tasks",
        y_label="seconds",
    )
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    assert len(root.findall(f"{ns}polyline")) == 1  # "status" has no two adjacent points
    assert len(root.findall(f"{ns}circle")) == 5
    labels = [t.text for t in root.iter(f"{ns}text")]
    assert {"1k", "10k", "100k", "add", "status"} <= set(labels)


def test_svg_plot_without_data_says_so():
    assert "no data" in report.svg_plot("x", [1, 10], {"a": [None, None]}, x_label="", y_label="")


def test_rolling_captions_have_the_youtube_shape():
    import webvtt

    text = captions.rolling_vtt(20_000, seed=1)
    assert len(text.encode()) >= 20_000
    assert text == captions.rolling_vtt(20_000, seed=1)  # deterministic
    cues = webvtt.from_string(text).captions
    assert len(cues) > 20
    typed, snapshot, following = cues[2], cues[3], cues[4]
    assert "<c>" in typed.raw_text and "<00:" in typed.raw_text
    spoken = snapshot.text.splitlines()[0]
    assert typed.text.splitlines()[1] == spoken  # typed line == its snapshot, once cleaned
    assert following.text.splitlines()[0] == spoken  # and again atop the next cue
    assert ms(snapshot.end) - ms(snapshot.start) == 10


def ms(stamp: str) -> int:
    h, m, s = stamp.split(":")
    return round((int(h) * 3600 + int(m) * 60 + float(s)) * 1000)


@pytest.mark.parametrize(
    ("lines", "count", "problem"),
    [
        ([{"ok": True}, {"ok": True}], 2, None),
        ([{"ok": True}], 2, "1 result lines, expected 2"),
        ([{"ok": True}, {"ok": False, "error": {"code": "network"}}], 2, "1 failed lines"),
        ([{"ok": True, "skipped": "exists"}], 1, "1 lines skipped (exists)"),
    ],
)
def test_all_ok_refuses_failed_and_skipped_results(tmp_path: Path, lines, count, problem):
    out = tmp_path / "stdout"
    out.write_text("".join(json.dumps(x) + "\n" for x in lines))
    found = run.all_ok(count)(out)
    assert found == problem if problem is None else found.startswith(problem)


def test_render_writes_every_area_and_the_goal_summary(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(run, "machine", lambda server: [["cores", "2"], ["server", server]])
    areas = [
        run.Area(
            "http",
            "Direct HTTP",
            "intro",
            measures=[measure("xdl", 1.0), measure("curl", 1.0)],
            goals=[Goal("http", "xdl / curl", "1.00×", "≤ 1.0×", True)],
            plots={"p.svg": "<svg/>"},
        ),
        run.Area("queue", "Queue", "intro", skipped="`xdl queue add` not available yet"),
    ]
    text = run.render(areas, quick=True, server="nginx", took=60, plots_rel="plots")
    assert text.startswith("# Benchmarks\n")
    assert "`make bench QUICK=1`" in text
    assert "| http | xdl / curl | 1.00× | ≤ 1.0× | met |" in text
    assert "Skipped: `xdl queue add` not available yet." in text
    assert "![p.svg](plots/p.svg)" in text


@pytest.mark.parametrize(
    ("printed", "problem"),
    [
        ('{"seconds": 1.5, "tasks": 100, "per_process": [25, 25, 25, 25]}', None),
        ('{"seconds": 1.5, "tasks": 99, "per_process": [25, 25, 25, 24]}', "99 tasks completed"),
        ("", "no drain line"),
        ('{"seconds": 1.5}', "no drain line"),
    ],
)
def test_drained_wants_every_task_completed(tmp_path: Path, printed: str, problem: str | None):
    out = tmp_path / "stdout"
    out.write_text(printed + "\n")
    found = run.drained(100)(out)
    assert found == problem if problem is None else found.startswith(problem)


def test_queue_pg_is_skipped_without_the_server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    import pg_server

    monkeypatch.setattr(pg_server, "bindir", lambda: None)
    bench = run.Bench(tmp_path, quick=True, runs=1)
    area = run.case_queue_pg(bench, "http://127.0.0.1:1", add=1, summary=1, drain=1, files=1)
    assert area.skipped and "PostgreSQL server binaries not found" in area.skipped
    assert not area.measures and not area.goals


def test_pg_fill_makes_the_mix_it_describes(pg_url: str):
    """The bench's 1M-task table is filled by SQL into the store's own schema: the
    summary counts what the bench says it holds."""
    import psycopg

    from xdl.core.queue import open_store

    store = open_store(pg_url)
    try:
        store.summary()  # the schema, created on first use
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(run.PG_FILL, {"count": 800})
        summary = store.summary().to_dict()
    finally:
        store.close()
    assert summary["total"] == 800
    assert (summary["done"], summary["queued"], summary["failed"], summary["cancelled"]) == (
        400,
        200,
        100,
        100,
    )
    assert summary["bytes_done"] == 400 * 14
    assert len(summary["domains"]) == 20  # the 20 largest of the 50 hosts


def test_queue_drain_completes_every_task_once(tmp_path: Path, xdl_cmd):
    queue = tmp_path / "queue.json"
    urls = tmp_path / "urls.txt"
    urls.write_text("".join(f"http://127.0.0.1:1/t/{i}.txt\n" for i in range(60)))
    assert xdl_cmd("queue", "add", "-q", "--queue", str(queue), "-a", str(urls)).exit_code == 0
    import subprocess

    proc = subprocess.run(
        [sys.executable, str(BENCH / "queue_drain.py"), str(queue), "2", "3"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    said = json.loads(proc.stdout.splitlines()[-1])
    assert said["tasks"] == 60 and sum(said["per_process"]) == 60 and said["seconds"] > 0
    done = xdl_cmd("queue", "status", "--summary", "--json", "--queue", str(queue))
    assert json.loads(done.stdout)["done"] == 60


@pytest.mark.parametrize(
    ("seconds", "shown"), [(None, "–"), (1.0, "1.000 s"), (1.004, "1.004 s"), (0.9996, "1.000 s")]
)
def test_exact_seconds_keeps_the_digits_a_verdict_turns_on(seconds: float | None, shown: str):
    assert run.exact_seconds(seconds) == shown


def test_a_command_with_a_runs_limit_runs_that_often_without_warm_up(tmp_path: Path):
    """webvtt-py on the 200 MB file runs once (about 50 s each time), the rest as asked."""
    bench = run.Bench(tmp_path, quick=True, runs=3)
    counted = {"slow": 0, "fast": 0}

    def count(label: str) -> run.Cmd:
        def setup() -> None:
            counted[label] += 1

        return run.Cmd(
            label, [sys.executable, "-c", "pass"], setup=setup, runs=1 if label == "slow" else None
        )

    slow, fast = bench.measure([count("slow"), count("fast")], bench.runs(3, 3), warmup=1)
    assert counted == {"slow": 1, "fast": 4}
    assert (len(slow.runs), len(fast.runs)) == (1, 3)


def test_politeness_judges_what_the_site_counted(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """The politeness area from its runs (faked here: nothing is started but the site):
    a banned run fails the bans goal, a setup not available yet is not measured, and
    throughput is judged on complete runs only."""
    import pg_server

    monkeypatch.setattr(pg_server, "bindir", lambda: None)
    monkeypatch.setattr(
        run,
        "unavailable",
        lambda bench, words, options=(): "no --per-host yet" if "--per-host" in options else None,
    )
    runs = {
        "fetch": run.PoliteRun(12.0, 90, 12, 1, 40, 8, "banned: stopped 3 s after the ban"),
    }
    monkeypatch.setattr(run, "run_polite", lambda bench, setup, *a: runs[setup.label])
    area = run.case_politeness(run.Bench(tmp_path, quick=True, runs=1), rate=10, files=100)
    goals = {g.what: g for g in area.goals}
    assert goals["bans, fetch"].met is False and goals["refusals, fetch"].met is False
    assert goals["throughput, fetch"].met is None  # no complete run
    assert goals["bans, fetch --per-host"].met is None
    assert goals["refusals, 3 × queue run, PostgreSQL"].met is None
    assert "skipped: no --per-host yet" in area.extra[0]
    assert "PostgreSQL server binaries not found" in area.extra[0]


def test_politeness_throughput_is_a_fraction_of_the_rate():
    setup = run.PoliteSetup("s", "s", [], refusals_goal=1)
    setup.runs = [run.PoliteRun(wall, 100, 0, 0, 0, 2) for wall in (10.0, 12.5, 20.0)]
    assert run.polite_throughput(setup, 100, 10) == pytest.approx(0.8)
    setup.runs = [run.PoliteRun(5.0, 3, 12, 1, 9, 8, "banned")]
    assert run.polite_throughput(setup, 100, 10) is None
