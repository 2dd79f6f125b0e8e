"""Length-bucketed dynamic batches: which examples train together, under a budget of positions.

Padding is the classic waste of speech training: a 2 s clip batched with a 20 s one costs 20 s.
`plan_batches` shuffles the examples, sorts them by length inside windows of `window` examples (so
batches hold similar lengths yet the order stays random), cuts each window into batches whose
padded size `len(batch) × longest` fits `max_positions` (and at most `max_samples` examples), and
shuffles the batches. It is a pure function of its arguments and the seed, so a run's data order
can be rebuilt from the seed and a position alone (`--resume`). `padded_fraction` is the share of
a batch's positions that are padding, what the trainer logs.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class BucketSettings:
    """`max_positions`: padded positions per batch (batch size × longest sequence); `max_samples`:
    examples per batch; `window`: how many examples are sorted together (larger pads less but
    makes batches of one length range follow each other less randomly)."""

    max_positions: int = 4096
    max_samples: int = 64
    window: int = 1000

    def __post_init__(self):
        for name in ("max_positions", "max_samples", "window"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")


def plan_batches(lengths: Sequence[int], settings: BucketSettings, seed: int | str) -> list[list[int]]:
    """Every example index exactly once, in batches of similar lengths, in a seeded random order.

    An example longer than `max_positions` forms a batch alone (the caller filters those it
    cannot afford)."""
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    batches: list[list[int]] = []
    for start in range(0, len(order), settings.window):
        window = sorted(order[start : start + settings.window], key=lambda index: lengths[index])
        batch: list[int] = []
        for index in window:
            # sorted ascending, so this example is the longest so far in its batch
            if batch and (
                (len(batch) + 1) * lengths[index] > settings.max_positions
                or len(batch) == settings.max_samples
            ):
                batches.append(batch)
                batch = []
            batch.append(index)
        if batch:
            batches.append(batch)
    rng.shuffle(batches)
    return batches


def padded_fraction(lengths: Sequence[int]) -> float:
    """The share of a batch's `len × max` positions that are padding."""
    if not lengths:
        return 0.0
    return 1.0 - sum(lengths) / (len(lengths) * max(lengths))
