import json

import pytest

from tests.benchmark_helpers import write_corpus
from unispeech.benchmarks import durations, tts
from unispeech.benchmarks.clips import read_clips
from unispeech.interfaces.cli import main
from unispeech.tasks.synthesis import TextRatioDuration

ROWS = [
    {"samples": 16000, "text": "the cat sat on the mat", "speaker": "a"},
    {"samples": 32000, "text": "the cat sat on the mat twice over", "speaker": "a"},
]


def test_each_pair_is_timed_by_the_predictor_and_the_rule(tiny, tmp_path):
    model, _ = tiny
    pairs = tts.pair_by_speaker(read_clips([write_corpus(tmp_path, ROWS)]), None, [])
    items = durations.score_durations(model, pairs)
    rate = 22050 / 256
    assert [item.real for item in items] == pytest.approx([86 / rate, 172 / rate])  # 1 s and 2 s at 16 kHz
    first = pairs[0]
    expected_rule = TextRatioDuration()(172 / rate, first.prompt.utterance.text, first.target.utterance.text)
    assert items[0].rule == pytest.approx(expected_rule)
    assert all(item.predicted > 0 for item in items)
    assert items[0].rule_error == pytest.approx(abs(items[0].rule - items[0].real) / items[0].real)


def test_the_cli_writes_a_report(tiny_dir, tmp_path, capsys):
    manifest = write_corpus(tmp_path / "data", ROWS)
    out = tmp_path / "out"
    assert (
        main(["eval", "durations", "--manifest", str(manifest), "--out", str(out), "--model", str(tiny_dir)])
        == 0
    )
    data = json.loads((out / "report.json").read_text())
    assert len(data["items"]) == 2 and data["rule_error"] >= 0 and data["predicted_error"] >= 0
    assert (out / "report.png").is_file() and "2 pairs (0 unpaired)" in capsys.readouterr().out
