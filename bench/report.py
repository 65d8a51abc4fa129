"""Pure helpers of the benchmark harness: statistics, goals, Markdown tables, SVG plots.

Nothing here runs a process or touches the network, so tests/test_bench.py can check it
without timing anything.
"""

from __future__ import annotations

import html
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Run:
    """One timed run of one command: wall seconds, CPU seconds (user+sys), peak RSS."""

    wall: float
    cpu: float = 0.0  # user + system
    rss_kib: int = 0
    code: int = 0
    warm: float | None = None  # an in-process probe's second, warm operation
    user: float = 0.0  # the user part of `cpu`


@dataclass
class Measure:
    """Every kept run of one command (warm-up runs are not kept), or why there are none."""

    label: str
    shown: str = ""
    runs: list[Run] = field(default_factory=list)
    skipped: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return bool(self.runs) and not self.skipped and not self.error

    @property
    def walls(self) -> list[float]:
        return [r.wall for r in self.runs]

    @property
    def median(self) -> float | None:
        return statistics.median(self.walls) if self.ok else None

    @property
    def minimum(self) -> float | None:
        return min(self.walls) if self.ok else None

    @property
    def maximum(self) -> float | None:
        return max(self.walls) if self.ok else None

    @property
    def cpu_median(self) -> float | None:
        return statistics.median(r.cpu for r in self.runs) if self.ok else None

    @property
    def user_median(self) -> float | None:
        return statistics.median(r.user for r in self.runs) if self.ok else None

    @property
    def system_median(self) -> float | None:
        return statistics.median(r.cpu - r.user for r in self.runs) if self.ok else None

    @property
    def warm_median(self) -> float | None:
        warm = [r.warm for r in self.runs if r.warm is not None]
        return statistics.median(warm) if self.ok and warm else None

    @property
    def peak_rss_mb(self) -> float | None:
        """The largest peak RSS over the kept runs, in MB (10^6 bytes)."""
        return max(r.rss_kib for r in self.runs) * 1024 / 1e6 if self.ok else None

    @property
    def status(self) -> str:
        if self.skipped:
            return f"skipped: {self.skipped}"
        if self.error:
            return f"failed: {self.error}"
        return "ok"


def ratio(a: Measure, b: Measure) -> float | None:
    """a / b in wall time: the median of the ratios of the runs taken in the same round,
    as pairs (the machine's speed drifts from round to round, and a pair shares it:
    medians taken apart moved a ratio by a fifth); median(a) / median(b) when the runs
    were not taken in pairs. None when either has no result."""
    ma, mb = a.median, b.median
    if ma is None or mb is None or mb <= 0:
        return None
    if len(a.runs) == len(b.runs) and all(y.wall > 0 for y in b.runs):
        return statistics.median(x.wall / y.wall for x, y in zip(a.runs, b.runs, strict=True))
    return ma / mb


@dataclass(frozen=True)
class Goal:
    """One goal from the issues and whether this run met it (None: could not be measured)."""

    area: str
    what: str
    measured: str
    target: str
    met: bool | None
    note: str = ""


def at_most(value: float | None, limit: float) -> bool | None:
    return None if value is None else value <= limit


def at_least(value: float | None, limit: float) -> bool | None:
    return None if value is None else value >= limit


def verdict(met: bool | None) -> str:
    return {True: "met", False: "**not met**", None: "not measured"}[met]


def fmt_seconds(s: float | None) -> str:
    """Wall or CPU time for a table: 3 significant figures, ms below one second."""
    if s is None:
        return "–"
    if s < 0.001:
        return f"{s * 1e6:.0f} µs"
    if s < 1:
        return f"{s * 1000:.3g} ms" if s * 1000 >= 100 else f"{s * 1000:.2g} ms"
    return f"{s:.3g} s" if s < 100 else f"{s:.0f} s"


def fmt_ratio(r: float | None) -> str:
    if r is None:
        return "–"
    return f"{r:.2f}×" if r < 10 else f"{r:.1f}×"


def fmt_mb(mb: float | None) -> str:
    if mb is None:
        return "–"
    return f"{mb:.0f} MB" if mb >= 10 else f"{mb:.1f} MB"


def fmt_rate(mb_per_s: float | None) -> str:
    return "–" if mb_per_s is None else f"{mb_per_s:.1f} MB/s"


def md_escape(text: str) -> str:
    """A table cell: pipes escaped, newlines flattened."""
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], align: str | None = None
) -> str:
    """A GitHub Markdown table; `align` is one letter a column ("l" or "r"), by default
    the first column left-aligned and the others right-aligned."""
    align = align or "l" + "r" * (len(headers) - 1)
    out = ["| " + " | ".join(md_escape(h) for h in headers) + " |"]
    out.append("|" + "|".join(":---" if a == "l" else "---:" for a in align) + "|")
    for row in rows:
        cells = [md_escape(c) for c in row]
        cells += [""] * (len(headers) - len(cells))
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def measures_table(measures: Sequence[Measure]) -> str:
    """The per-area table: one row per command with wall median/min/max, CPU and RSS."""
    rows = []
    for m in measures:
        if m.ok:
            rows.append(
                [
                    f"`{m.shown or m.label}`",
                    str(len(m.runs)),
                    fmt_seconds(m.median),
                    fmt_seconds(m.minimum),
                    fmt_seconds(m.maximum),
                    fmt_seconds(m.cpu_median),
                    fmt_mb(m.peak_rss_mb),
                ]
            )
        else:
            rows.append([f"`{m.shown or m.label}`", "0", m.status, "", "", "", ""])
    headers = ["command", "runs", "median", "min", "max", "CPU (median)", "peak RSS"]
    return markdown_table(headers, rows)


def goals_table(goals: Sequence[Goal], *, with_area: bool = False) -> str:
    headers = (["area"] if with_area else []) + ["what", "measured", "goal", "verdict"]
    rows = []
    for g in goals:
        what = g.what + (f" ({g.note})" if g.note else "")
        row = [g.what if with_area else what, g.measured, g.target, verdict(g.met)]
        rows.append(([g.area] if with_area else []) + row)
    return markdown_table(headers, rows, align=("l" if with_area else "") + "lrrr")


def growth(values: Sequence[float | None]) -> str:
    """How the last value compares with the first: '12.0× for 100× the work'."""
    if len(values) < 2 or values[0] is None or values[-1] is None or values[0] <= 0:
        return "–"
    return fmt_ratio(values[-1] / values[0])


def svg_plot(
    title: str,
    xs: Sequence[float],
    series: dict[str, Sequence[float | None]],
    *,
    x_label: str,
    y_label: str,
    width: int = 560,
    height: int = 320,
) -> str:
    """A small log-log line plot as a standalone SVG (no matplotlib needed).

    One line per series; a missing value (None) breaks that series' line. A dashed grey
    line through each series' first point shows what linear growth would look like.
    """
    longest = max((len(name) for name in series), default=0)
    left, right, top, bottom = 70, max(150, int(longest * 6.2) + 45), 30, 45
    pw, ph = width - left - right, height - top - bottom
    ys = [y for ys_ in series.values() for y in ys_ if y is not None and y > 0]
    if not xs or not ys:
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="60">'
            f'<text x="10" y="30">{html.escape(title)}: no data</text></svg>\n'
        )
    x0, x1 = math.log10(min(xs)), math.log10(max(xs))
    y0 = math.floor(math.log10(min(ys)))
    y1 = math.ceil(math.log10(max(ys)))
    if y1 == y0:
        y1 += 1
    if x1 == x0:
        x1 += 1

    def px(x: float) -> float:
        return left + (math.log10(x) - x0) / (x1 - x0) * pw

    def py(y: float) -> float:
        return top + ph - (math.log10(y) - y0) / (y1 - y0) * ph

    colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{left}" y="18" font-size="13">{html.escape(title)}</text>',
    ]
    for e in range(y0, y1 + 1):
        y = py(10.0**e)
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + pw}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{html.escape(_tick(10.0**e))}</text>"
        )
    for x in xs:
        X = px(x)
        out.append(f'<line x1="{X:.1f}" y1="{top}" x2="{X:.1f}" y2="{top + ph}" stroke="#eee"/>')
        out.append(f'<text x="{X:.1f}" y="{top + ph + 15}" text-anchor="middle">{_count(x)}</text>')
    out.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#888"/>')
    out.append(
        f'<text x="{left + pw / 2}" y="{height - 8}" text-anchor="middle">'
        f"{html.escape(x_label)}</text>"
    )
    out.append(
        f'<text x="14" y="{top + ph / 2}" text-anchor="middle" '
        f'transform="rotate(-90 14 {top + ph / 2})">{html.escape(y_label)}</text>'
    )
    for i, (name, values) in enumerate(series.items()):
        color = colors[i % len(colors)]
        points = [(x, y) for x, y in zip(xs, values) if y is not None and y > 0]
        if points:
            fx, fy = points[0]
            lx = xs[-1]
            ly = fy * lx / fx
            if ly > 10.0**y1:  # clip the linear guide at the top of the plot
                lx, ly = fx * 10.0**y1 / fy, 10.0**y1
            out.append(
                f'<line x1="{px(fx):.1f}" y1="{py(fy):.1f}" x2="{px(lx):.1f}" '
                f'y2="{py(ly):.1f}" stroke="{color}" stroke-opacity="0.35" '
                f'stroke-dasharray="4 3"/>'
            )
        segment: list[str] = []
        for x, y in zip(xs, values):
            if y is None or y <= 0:
                if len(segment) > 1:
                    out.append(_polyline(segment, color))
                segment = []
                continue
            segment.append(f"{px(x):.1f},{py(y):.1f}")
            out.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{color}"/>')
        if len(segment) > 1:
            out.append(_polyline(segment, color))
        ly = top + 12 + i * 16
        out.append(
            f'<line x1="{left + pw + 10}" y1="{ly - 4}" x2="{left + pw + 28}" y2="{ly - 4}" '
            f'stroke="{color}" stroke-width="2"/>'
        )
        out.append(f'<text x="{left + pw + 32}" y="{ly}">{html.escape(name)}</text>')
    legend_y = top + 12 + len(series) * 16
    out.append(f'<text x="{left + pw + 10}" y="{legend_y}" fill="#777">dashed: linear</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _polyline(points: list[str], color: str) -> str:
    return f'<polyline points="{" ".join(points)}" fill="none" stroke="{color}" stroke-width="2"/>'


def _tick(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:g} s"
    if seconds >= 0.001:
        return f"{seconds * 1000:g} ms"
    return f"{seconds * 1e6:g} µs"


def _count(n: float) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n / 1_000_000:g}M"
    if n >= 1000 and n % 1000 == 0:
        return f"{n / 1000:g}k"
    return f"{n:g}"
