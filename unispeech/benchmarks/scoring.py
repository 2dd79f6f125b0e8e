"""Error counting for the benchmarks: per-utterance counts that add up to the corpus error rate.

`unispeech.evaluation.metrics` defines how wrong a transcript is (Whisper's normalisers, then jiwer;
CER for ja/ko/zh). A benchmark also needs the rate of every group it reports (a language, a
manifest, a speaker) and of every single utterance, so this module keeps the counts behind the rate:
errors (substitutions + deletions + insertions) and reference units (words, or characters). A
group's rate is the sum of its errors over the sum of its reference units, which is exactly jiwer's
corpus rate (and `evaluation.metrics.word_error_rate`'s) for one language, and stays meaningful for
a group that mixes languages. A reference that normalises to nothing has no units and does not
count, as in `word_error_rate`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import jiwer

from unispeech.evaluation.metrics import CHARACTER_LANGUAGES, normalize

Item = TypeVar("Item")


@dataclass(frozen=True)
class ErrorCount:
    """Errors made against a reference of `units` words (or characters); `rate` is None when the
    reference holds nothing to score."""

    errors: int = 0
    units: int = 0

    def __add__(self, other: ErrorCount) -> ErrorCount:
        return ErrorCount(self.errors + other.errors, self.units + other.units)

    @property
    def rate(self) -> float | None:
        return self.errors / self.units if self.units else None


def metric_name(language: str) -> str:
    """What a language is scored by: "CER" for languages written without spaces, else "WER"."""
    return "CER" if language in CHARACTER_LANGUAGES else "WER"


def count_errors(reference: str, hypothesis: str, language: str = "en") -> ErrorCount:
    """Errors of `hypothesis` against `reference`, both normalised as `word_error_rate` does."""
    reference, hypothesis = normalize(reference, language), normalize(hypothesis, language)
    if not reference.strip():
        return ErrorCount()
    if language in CHARACTER_LANGUAGES:
        output = jiwer.process_characters(reference, hypothesis)
    else:
        output = jiwer.process_words(reference, hypothesis)
    errors = output.substitutions + output.deletions + output.insertions
    return ErrorCount(errors, output.hits + output.substitutions + output.deletions)


def total(counts: Iterable[ErrorCount]) -> ErrorCount:
    return sum(counts, ErrorCount())


def group_by(items: Sequence[Item], key: Callable[[Item], str | None]) -> dict[str, list[Item]]:
    """Items grouped by `key` (None becomes "-"), groups in order of first appearance."""
    groups: dict[str, list[Item]] = {}
    for item in items:
        name = key(item)
        groups.setdefault("-" if name is None else name, []).append(item)
    return groups
