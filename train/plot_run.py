"""Plot a training run's curves from its `metrics.jsonl`: the losses per task and the dev figures.

The trainer logs one JSON object per line (`unispeech/training/trainer.py`): losses every
`log_every` steps, and `dev_wer` (with the decoder that made it: greedy CTC during the warm-up, the
LLM after) every `dev.every` steps. A resumed run's log holds each step once (the trainer truncates
what a resume replays). Several files are the stages of one training (a run, then one that started
from its adapter with `init_from`): each stage's steps continue the previous one's, and a dotted
line marks where each stage begins. Needs matplotlib (the `eval` extra).

    python train/plot_run.py ../runs/smol-asr/metrics.jsonl -o adapters/smol/asr/training.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

LOSS_KEYS = ("text_loss/", "ctc_loss/", "tts_loss/", "prior_loss/", "duration_loss/")  # per-task losses


def read_metrics(path: Path) -> tuple[dict[str, list[tuple[int, float]]], dict[str, list[tuple[int, float]]]]:
    """`(losses, dev)`: each named curve as (step, value) pairs; dev WER keyed by its decoder."""
    losses: dict[str, list[tuple[int, float]]] = {}
    dev: dict[str, list[tuple[int, float]]] = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}:{number}: not JSON ({error.msg})") from None
        step = record.get("step") if isinstance(record, dict) else None
        if not isinstance(step, int):
            raise ValueError(f"{path}:{number}: not a metrics record (no integer step)")
        for key, value in record.items():
            if key.startswith(LOSS_KEYS):
                losses.setdefault(key, []).append((step, value))
        if "dev_wer" in record:
            dev.setdefault(f"dev WER ({record.get('dev_decoder', '?')})", []).append(
                (step, 100 * record["dev_wer"])
            )
    if not losses and not dev:
        raise ValueError(f"{path} holds no losses or dev figures")
    return losses, dev


def read_stages(paths: list[Path]) -> tuple[dict, dict, list[int]]:
    """The curves of consecutive stages, steps offset by the previous stages' last steps, and the
    step each later stage starts after."""
    losses: dict[str, list[tuple[int, float]]] = {}
    dev: dict[str, list[tuple[int, float]]] = {}
    starts, offset = [], 0
    for path in paths:
        stage_losses, stage_dev = read_metrics(path)
        if offset:
            starts.append(offset)
        for into, curves in ((losses, stage_losses), (dev, stage_dev)):
            for name, points in curves.items():
                into.setdefault(name, []).extend((offset + step, value) for step, value in points)
        offset += max(step for points in (*stage_losses.values(), *stage_dev.values()) for step, _ in points)
    return losses, dev, starts


def plot(losses: dict, dev: dict, title: str, output: Path, starts: list[int] = ()) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10 if dev else 6, 4), layout="constrained")
    left, *others = figure.subplots(1, 2 if dev else 1, squeeze=False)[0]
    for name, points in losses.items():
        steps, values = zip(*points, strict=True)
        left.plot(steps, values, label=name, linewidth=1)
    left.set(xlabel="step", ylabel="loss (nats per token; per mel value; log frames)", yscale="log")
    left.set_title("training losses")
    for step in starts:
        left.axvline(step, color="grey", linestyle=":")
    left.legend()
    figure.suptitle(title)
    output.parent.mkdir(parents=True, exist_ok=True)
    if not dev:
        FigureCanvasAgg(figure).print_png(str(output))
        return
    (right,) = others
    for name, points in dev.items():
        steps, values = zip(*points, strict=True)
        right.plot(steps, values, marker="o", label=name)
        for step, value in points:
            right.annotate(
                f"{value:.0f}", (step, value), textcoords="offset points", xytext=(0, 6), ha="center"
            )
    right.set(xlabel="step", ylabel="WER (%)", title="dev", ylim=(0, None))
    right.legend()
    FigureCanvasAgg(figure).print_png(str(output))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "metrics", type=Path, nargs="+", help="a run's metrics.jsonl (several: stages, in order)"
    )
    parser.add_argument("-o", "--output", type=Path, required=True, help="the PNG to write")
    parser.add_argument("--title", help="the figure's title (default: the run folder's name)")
    args = parser.parse_args()
    try:
        losses, dev, starts = read_stages(args.metrics)
    except (OSError, ValueError) as error:
        parser.error(str(error))  # one line and exit code 2, not a traceback
    plot(losses, dev, args.title or args.metrics[-1].parent.name, args.output, starts)
    points = sum(map(len, losses.values())), sum(map(len, dev.values()))
    print(f"{args.output}: {points[0]} loss points, {points[1]} dev points")


if __name__ == "__main__":
    main()
