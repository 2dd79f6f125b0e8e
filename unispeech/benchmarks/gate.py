"""Calibrating the no-harm gate of N-best correction on training-side lists.

The gate (`unispeech.tasks.correction.NoHarmGate`) has three thresholds. Calibration runs the
corrector once over lists with references (the generated correction and the scores of every
candidate, as `correction_cases` gives them), then tries every setting of a grid on those cases
without running the model again, and keeps the one with the fewest word errors; among equals, the
most cautious (largest margins, smallest distance). The margin for one-item lists is calibrated on
the same lists cut to their first hypothesis, which is how a one-item list reaches the corrector.
Calibrate on lists the adapter never trained on and never on the dev lists you report
(`train/split_hyporadise.py` keeps a calibration slice apart):

    python train/calibrate_gate.py --nbest ../data/nbest/hyporadise.calibration.jsonl --adapters DIR
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from unispeech.benchmarks.scoring import ErrorCount, count_errors, total
from unispeech.tasks.correction import GateCase, NoHarmGate

MARGINS = (0.0, 0.5, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0)
DISTANCES = (0.0, 0.2, 0.35, 0.5, 0.75, 1.0)
NEVER = float("inf")  # a margin no correction reaches: the 1-best always stays
KEEP_FIRST = NoHarmGate(NEVER, NEVER)


@dataclass(frozen=True)
class Calibration:
    """The chosen gate and the word errors on the calibration lists: of the 1-best, of the
    ungated corrections, and with the gate (on the full lists and on the one-item ones)."""

    gate: NoHarmGate
    first: ErrorCount
    ungated: ErrorCount
    gated: ErrorCount
    single_first: ErrorCount
    single_gated: ErrorCount

    def summary(self) -> str:
        def rate(count: ErrorCount) -> str:
            return f"{100 * (count.rate or 0):.2f} %"

        return (
            f"margin {self.gate.margin:g}, single_margin {self.gate.single_margin:g}, "
            f"max_distance {self.gate.max_distance:g}: WER 1-best {rate(self.first)}, "
            f"ungated {rate(self.ungated)}, gated {rate(self.gated)}; one-item lists: 1-best "
            f"{rate(self.single_first)}, gated {rate(self.single_gated)}"
        )


def errors(gate: NoHarmGate, cases: Sequence[GateCase], references: Sequence[str]) -> ErrorCount:
    return total(count_errors(r, gate.choose(c)) for c, r in zip(cases, references, strict=True))


def calibrate_gate(
    cases: Sequence[GateCase],
    single_cases: Sequence[GateCase],
    references: Sequence[str],
    margins: Sequence[float] = MARGINS,
    distances: Sequence[float] = DISTANCES,
) -> Calibration:
    """The gate with the fewest word errors on `cases` (full lists) and, for its one-item margin,
    on `single_cases` (the same lists cut to their first hypothesis), `references` theirs."""
    if not cases or len(cases) != len(references) or len(single_cases) != len(references):
        raise ValueError(
            f"need as many cases, one-item cases and references, got {len(cases)}, "
            f"{len(single_cases)} and {len(references)}"
        )
    # most cautious first, so that the first setting with the fewest errors wins ties
    settings = [(m, d) for m in sorted(margins, reverse=True) for d in sorted(distances)]
    margin, distance = min(
        settings, key=lambda s: errors(NoHarmGate(s[0], NEVER, s[1]), cases, references).errors
    )
    single_margin = min(
        sorted(margins, reverse=True),
        key=lambda m: errors(NoHarmGate(margin, m, distance), single_cases, references).errors,
    )
    gate = NoHarmGate(margin, single_margin, distance)
    return Calibration(
        gate=gate,
        first=errors(KEEP_FIRST, cases, references),
        ungated=total(count_errors(r, c.correction) for c, r in zip(cases, references, strict=True)),
        gated=errors(gate, cases, references),
        single_first=errors(KEEP_FIRST, single_cases, references),
        single_gated=errors(gate, single_cases, references),
    )
