"""Benchmark reports: one folder holding `report.md` (for people), `report.json` (for programs)
and `report.png` (a bar chart), written the same way by every benchmark.

A benchmark builds a `Report` (a title, Markdown body, JSON data and a `BarChart`) and calls
`write_report`; this module owns the file names, the number formats, Markdown tables, the chart's
look, and writing atomically (a crash never leaves half a report). The chart is drawn with
matplotlib's Agg canvas on a `Figure` of its own: no pyplot state, no display, no global backend
switch. Figures in the Markdown are rounded for reading; `report.json` keeps them whole.
"""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from unispeech.files import atomic_write_text

MARKDOWN_FILE = "report.md"
JSON_FILE = "report.json"
PLOT_FILE = "report.png"
PLOT_SIZE_INCHES = (7.0, 4.0)
PLOT_DPI = 120
PLOT_BAR_GROUP_WIDTH = 0.8  # of the space between two categories
TABLE_TEXT_CHARACTERS = 120  # longer transcripts are cut in Markdown tables (kept whole in the JSON)


@dataclass(frozen=True)
class BarChart:
    """Grouped bars: one group per category, one bar per series (`series[name][i]` is the value of
    category i; None draws no bar)."""

    title: str
    ylabel: str
    categories: Sequence[str]
    series: Mapping[str, Sequence[float | None]]

    def __post_init__(self) -> None:
        for name, values in self.series.items():
            if len(values) != len(self.categories):
                raise ValueError(
                    f"series {name!r} has {len(values)} values for {len(self.categories)} categories"
                )


@dataclass(frozen=True)
class Report:
    title: str
    markdown: str  # the body, below the title
    data: dict
    chart: BarChart
    notes: Sequence[str] = field(default_factory=tuple)  # lines under the title (command, system, …)


@dataclass(frozen=True)
class ReportFiles:
    markdown: Path
    json: Path
    plot: Path


def write_report(report: Report, out: str | Path) -> ReportFiles:
    """Write `report` into the folder `out` (created if needed); returns the three paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    lines = [f"# {report.title}", "", *report.notes, "", report.markdown.rstrip(), ""]
    files = ReportFiles(out / MARKDOWN_FILE, out / JSON_FILE, out / PLOT_FILE)
    atomic_write_text(files.markdown, "\n".join(lines))
    atomic_write_text(files.json, json.dumps(_finite(report.data), indent=2, ensure_ascii=False) + "\n")
    _atomic_write_bytes(files.plot, render_chart(report.chart))
    return files


def render_chart(chart: BarChart) -> bytes:
    """The chart as PNG bytes."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:  # an optional dependency: say how to get it
        raise RuntimeError("plots need matplotlib: pip install 'unispeech[eval]'") from None
    figure = Figure(figsize=PLOT_SIZE_INCHES, dpi=PLOT_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    count = max(len(chart.series), 1)
    width = PLOT_BAR_GROUP_WIDTH / count
    for index, (name, values) in enumerate(chart.series.items()):
        offset = (index - (count - 1) / 2) * width
        positions = [i + offset for i, value in enumerate(values) if value is not None]
        heights = [value for value in values if value is not None]
        bars = axes.bar(positions, heights, width, label=name)
        axes.bar_label(bars, fmt="%.3g", fontsize="small")
    axes.set_xticks(range(len(chart.categories)), chart.categories, rotation=20, ha="right")
    axes.set_ylabel(chart.ylabel)
    axes.set_title(chart.title)
    if len(chart.series) > 1:
        axes.legend()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table; `|` and line breaks in cells are escaped so a transcript cannot break it."""

    def cell(value: object) -> str:
        text = "–" if value is None else str(value)
        return text.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(map(cell, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(cell, row)) + " |" for row in rows]
    return "\n".join(lines)


def percent(rate: float | None) -> str:
    return "–" if rate is None else f"{100 * rate:.2f} %"


def number(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def clip_text(text: str, limit: int = TABLE_TEXT_CHARACTERS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def skipped_section(skipped: Sequence) -> str:
    """The Markdown list of skipped utterances (`clips.Skipped`), or a line saying there were none."""
    if not skipped:
        return "## Skipped\n\nNone: every utterance was scored.\n"
    rows = [(f"{s.source}:{s.number}", s.audio, s.reason) for s in skipped]
    table = markdown_table(("line", "audio", "reason"), rows)
    return f"## Skipped\n\n{len(skipped)} utterance(s) could not be used and are not scored:\n\n{table}\n"


def _finite(value):
    """`value` with NaN and infinities as None: JSON has no NaN."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(key): _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
