"""train/plot_run.py: a run's metrics.jsonl into curves, and a PNG of them."""

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "train" / "plot_run.py"
spec = importlib.util.spec_from_file_location("plot_run", SCRIPT)
plot_run = importlib.util.module_from_spec(spec)
spec.loader.exec_module(plot_run)


def _write(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


def test_losses_per_task_and_dev_wer_per_decoder(tmp_path):
    metrics = _write(
        tmp_path / "metrics.jsonl",
        [
            {"step": 10, "ctc_loss/asr": 9.0, "loss": 9.0, "lr": 1e-4},
            {"step": 20, "ctc_loss/asr": 7.0, "text_loss/asr": 3.0, "loss": 5.1},
            {"step": 20, "dev_wer": 0.5, "dev_decoder": "ctc"},
            {"step": 30, "dev_wer": 0.25, "dev_decoder": "llm", "dev_loss": {"matched": 1.0}},
        ],
    )
    losses, dev = plot_run.read_metrics(metrics)
    assert losses == {"ctc_loss/asr": [(10, 9.0), (20, 7.0)], "text_loss/asr": [(20, 3.0)]}
    assert dev == {"dev WER (ctc)": [(20, 50.0)], "dev WER (llm)": [(30, 25.0)]}
    pytest.importorskip("matplotlib")
    plot_run.plot(losses, dev, "a run", tmp_path / "out" / "curves.png")
    assert (tmp_path / "out" / "curves.png").read_bytes().startswith(b"\x89PNG")


def test_bad_logs_are_named_errors(tmp_path):
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"step": 1, "text_loss/asr": 2.0}\n{"step": 2,\n')
    with pytest.raises(ValueError, match=r"broken.jsonl:2: not JSON"):
        plot_run.read_metrics(broken)
    stepless = _write(tmp_path / "stepless.jsonl", [{"text_loss/asr": 2.0}])
    with pytest.raises(ValueError, match=r"stepless.jsonl:1: not a metrics record"):
        plot_run.read_metrics(stepless)
    empty = _write(tmp_path / "empty.jsonl", [{"step": 1, "lr": 0.1}])
    with pytest.raises(ValueError, match="holds no losses or dev figures"):
        plot_run.read_metrics(empty)


def test_stages_continue_each_others_steps(tmp_path):
    first = _write(
        tmp_path / "first.jsonl", [{"step": 10, "text_loss/ger": 3.0}, {"step": 300, "text_loss/ger": 1.0}]
    )
    second = _write(
        tmp_path / "second.jsonl", [{"step": 5, "text_loss/ger": 0.9}, {"step": 60, "text_loss/ger": 0.8}]
    )
    losses, dev, starts = plot_run.read_stages([first, second])
    assert losses == {"text_loss/ger": [(10, 3.0), (300, 1.0), (305, 0.9), (360, 0.8)]}
    assert dev == {} and starts == [300]
    pytest.importorskip("matplotlib")
    plot_run.plot(losses, dev, "two stages", tmp_path / "stages.png", starts)  # no dev: one panel
    assert (tmp_path / "stages.png").read_bytes().startswith(b"\x89PNG")
