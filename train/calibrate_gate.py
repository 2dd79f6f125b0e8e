"""Calibrate the no-harm gate of N-best correction for a GER adapter, on training-side lists.

Runs the corrector once over the lists (and once over the same lists cut to their first
hypothesis), then picks the gate thresholds with the fewest word errors (`unispeech.benchmarks.gate`);
calibrates the LM-rescoring baseline's weights on the same lists (`unispeech.tasks.rescoring`);
prints both with the error rates, and writes them as JSON (`--out`) for the adapter's card.

    python train/calibrate_gate.py --nbest ../data/nbest/hyporadise.calibration.jsonl \
        --adapters adapters/smol [--limit 300] [--out ../runs/reports/gate.json]
    python train/calibrate_gate.py --nbest ... --adapters none   # the rescoring baseline only
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import torch
from tqdm.auto import tqdm

import unispeech
from unispeech.benchmarks.gate import calibrate_gate
from unispeech.benchmarks.scoring import count_errors
from unispeech.data.nbest import read_nbest
from unispeech.model.adapters import set_task
from unispeech.tasks.correction import CorrectionOptions, clean_hypotheses, correction_cases
from unispeech.tasks.rescoring import calibrate_rescorer, language_model_scores

BATCH = 8  # lists corrected at a time


def gate_calibration(speech: unispeech.Unispeech, items: list) -> dict:
    """The gate with the fewest errors on `items`, as a record."""
    set_task(speech.model, "ger")
    options = CorrectionOptions()
    cases, single_cases = [], []
    for start in tqdm(range(0, len(items), BATCH), desc="scoring", unit="batch"):
        window = items[start : start + BATCH]
        full, first_only = [item.input for item in window], [item.input[:1] for item in window]
        cases += correction_cases(speech.model, speech.processor, full, options=options)
        single_cases += correction_cases(speech.model, speech.processor, first_only, options=options)
    calibration = calibrate_gate(cases, single_cases, [item.output for item in items])
    print(f"gate: {calibration.summary()}")
    rates = ("first", "ungated", "gated", "single_first", "single_gated")
    return {
        "gate": dataclasses.asdict(calibration.gate),
        "wer": {name: getattr(calibration, name).rate for name in rates},
    }


def rescorer_calibration(speech: unispeech.Unispeech, items: list) -> dict:
    """The LM-rescoring baseline's weights with the fewest errors on `items`."""
    lists = [clean_hypotheses(item.input) for item in items]
    flat = iter(language_model_scores(speech.model, speech.processor, [t for h in lists for t in h]))
    scores = [[next(flat) for _ in hypotheses] for hypotheses in lists]
    rescorer = calibrate_rescorer(lists, scores, lambda i, text: count_errors(items[i].output, text).errors)
    print(f"LM rescoring: rank weight {rescorer.rank_weight:g}, word bonus {rescorer.word_bonus:g}")
    return dataclasses.asdict(rescorer)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nbest", type=Path, required=True, help="N-best lists with references")
    parser.add_argument("--adapters", required=True, help="a folder holding ger/ (none: the baseline only)")
    parser.add_argument("--model", default="smol")
    parser.add_argument("--limit", type=int, help="the first N lists only")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--out", type=Path, help="write the chosen settings and the error rates here (JSON)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    items = [item for item in read_nbest(args.nbest) if clean_hypotheses(item.input)][: args.limit]
    if not items:
        parser.error(f"no N-best lists in {args.nbest}")
    baseline_only = args.adapters == "none"
    speech = unispeech.load(args.model, adapters=None if baseline_only else args.adapters)
    if not baseline_only and "ger" not in speech.tasks:
        parser.error(f"no ger/ adapter under {args.adapters}")
    print(f"{args.nbest}: {len(items)} lists")
    record: dict = {"nbest": str(args.nbest), "lists": len(items)}
    if not baseline_only:
        record |= gate_calibration(speech, items)
    record["rescorer"] = rescorer_calibration(speech, items)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
