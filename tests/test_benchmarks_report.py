import json

import pytest

from unispeech.benchmarks.clips import Skipped
from unispeech.benchmarks.report import (
    BarChart,
    Report,
    clip_text,
    markdown_table,
    percent,
    render_chart,
    skipped_section,
    write_report,
)


def _report() -> Report:
    chart = BarChart("t", "y", ["a", "b"], {"one": [1.0, None], "two": [2.0, 3.0]})
    data = {"rate": 0.25, "undefined": float("nan"), "nested": [{"x": float("inf")}]}
    return Report("My benchmark", "body text\n\n| table |", data, chart, notes=["- command: `x`"])


def test_write_report_writes_markdown_json_and_a_png(tmp_path):
    out = tmp_path / "deep" / "folder"
    files = write_report(_report(), out)
    assert [p.name for p in (files.markdown, files.json, files.plot)] == [
        "report.md",
        "report.json",
        "report.png",
    ]
    markdown = files.markdown.read_text()
    assert markdown.startswith("# My benchmark\n\n- command: `x`\n") and "body text" in markdown
    data = json.loads(files.json.read_text())  # strict JSON: NaN and infinities become null
    assert data == {"rate": 0.25, "undefined": None, "nested": [{"x": None}]}
    import matplotlib.image

    image = matplotlib.image.imread(files.plot)
    assert image.shape[0] > 100 and image.shape[1] > 100
    assert sorted(p.name for p in out.iterdir()) == ["report.json", "report.md", "report.png"], (
        "no temp files"
    )


def test_chart_values_must_match_categories():
    with pytest.raises(ValueError, match="series 'one' has 1 values for 2 categories"):
        BarChart("t", "y", ["a", "b"], {"one": [1.0]})


def test_a_chart_with_only_missing_values_still_renders():
    png = render_chart(BarChart("t", "y", ["a"], {"one": [None]}))
    assert png[:4] == b"\x89PNG"


def test_markdown_cells_cannot_break_the_table():
    table = markdown_table(("a", "b"), [("x | y", "line\nbreak"), (None, 1)])
    lines = table.splitlines()
    assert lines[0] == "| a | b |" and lines[1] == "|---|---|"
    assert lines[2] == "| x \\| y | line break |" and lines[3] == "| – | 1 |"


def test_formats():
    assert percent(0.12345) == "12.35 %" and percent(None) == "–"
    assert clip_text("abcdef", 4) == "abc…" and clip_text("abc", 4) == "abc"


def test_skipped_section_lists_every_skip():
    assert "None: every utterance was scored" in skipped_section([])
    section = skipped_section(
        [Skipped("dev", 3, "a.wav", "no such audio file"), Skipped("dev", 5, "b.wav", "x")]
    )
    assert (
        "2 utterance(s) could not be used" in section and "| dev:3 | a.wav | no such audio file |" in section
    )
