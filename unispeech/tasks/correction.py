"""N-best generative error correction (GER): any recogniser's hypotheses in, one transcript out.

The hypotheses (best first, HyPoradise style) are written into the correction prompt
(`sequences.ger_prompt`) and the model writes the corrected transcript after it. With the
recording as well, its speech embeddings go in front of the prompt, so the unified model can
listen where the hypotheses disagree, which a text-only corrector cannot. A correction may be at
most `max_length_ratio` times as long as the longest hypothesis: the length guard. By default it
may not write any token 3-gram twice: the loop guard. On smol's first GER adapter the loop guard
took the dev WER from 28.85 % to 26.92 % (whisper-base 1-best 29.99 %, 158 lists), all of it by
stopping loops such as "a five and eight or a five and eight or …" (`train/RUNS.md`).

A corrector must know when to leave the 1-best alone: the no-harm gate (`NoHarmGate`) scores the
generated correction and every hypothesis as continuations of the same prompt, with the same
adapter (`score_candidates`), and replaces the 1-best only when the model clearly prefers the
replacement. A generation that strays far from every hypothesis (the model writing what it
expects rather than what was heard: "seven" for "hello world") falls back to the best-scored
hypothesis. The gate's thresholds are calibrated on training-side lists, never on reported dev
lists (`unispeech.benchmarks.gate`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence as SequenceOf
from dataclasses import dataclass, field

import torch

from unispeech.audio.features import AudioSource
from unispeech.evaluation.metrics import word_error_rate
from unispeech.model.modeling import UnispeechLMModel
from unispeech.model.processor import GerSample, UnispeechLMProcessor
from unispeech.tasks.decoding import DecodingOptions, decode_samples

LOOP_GUARD_NGRAM_SIZE = 3
SCORING_BATCH = 16  # candidates scored in one forward pass


@dataclass(frozen=True)
class GateCase:
    """What the gate decides on for one list: the hypotheses (best first), the generated
    correction, and the log-probability (nats) the corrector gives each of those texts."""

    hypotheses: tuple[str, ...]
    correction: str
    scores: dict[str, float]

    def advantage(self, text: str) -> float:
        """How many nats the corrector prefers `text` to the 1-best."""
        return self.scores[text] - self.scores[self.hypotheses[0]]


@dataclass(frozen=True)
class NoHarmGate:
    """When a correction may replace the 1-best. The candidate is the generated correction, or,
    when its word distance to the nearest hypothesis (WER against it) is above `max_distance`, the
    hypothesis the corrector scores highest. The candidate replaces the 1-best only if the
    corrector scores it at least `margin` nats higher; a one-item list, with nothing to choose
    from, needs `single_margin`. The defaults are calibrated for the shipped smol adapter on
    training-side lists (its card gives the command)."""

    margin: float = 2.0
    single_margin: float = 16.0
    max_distance: float = 0.0

    def __post_init__(self) -> None:
        if self.margin < 0 or self.single_margin < 0 or self.max_distance < 0:
            raise ValueError(
                "the gate's margins and distance must be >= 0, got "
                f"{self.margin}, {self.single_margin} and {self.max_distance}"
            )

    def candidate(self, case: GateCase) -> str:
        """The generated correction, unless it strayed from every hypothesis."""
        distance = min(word_error_rate([h], [case.correction]) for h in case.hypotheses)
        if distance <= self.max_distance:
            return case.correction
        return max(case.hypotheses, key=lambda text: case.scores[text])

    def choose(self, case: GateCase) -> str:
        candidate = self.candidate(case)
        margin = self.single_margin if len(case.hypotheses) == 1 else self.margin
        return candidate if case.advantage(candidate) >= margin else case.hypotheses[0]


@dataclass(frozen=True)
class CorrectionOptions:
    """How to correct: the decoding strategy (greedy, with the loop guard), the length guard
    (`min_tokens` plus `max_length_ratio` times the tokens of the longest hypothesis), and the
    no-harm gate (`None`: the generated correction as it is)."""

    decoding: DecodingOptions = field(
        default_factory=lambda: DecodingOptions(no_repeat_ngram_size=LOOP_GUARD_NGRAM_SIZE)
    )
    max_length_ratio: float = 2.0
    min_tokens: int = 8
    gate: NoHarmGate | None = field(default_factory=NoHarmGate)

    def __post_init__(self) -> None:
        if self.max_length_ratio <= 0 or self.min_tokens < 1:
            raise ValueError(
                "need max_length_ratio > 0 and min_tokens >= 1, "
                f"got {self.max_length_ratio} and {self.min_tokens}"
            )


def clean_hypotheses(hypotheses: SequenceOf[str]) -> tuple[str, ...]:
    """The hypotheses stripped, empty ones dropped, order kept; a clear error if there is no list."""
    if isinstance(hypotheses, str):
        raise ValueError("give the N-best hypotheses as a list of strings, not one string")
    return tuple(text.strip() for text in hypotheses if text and text.strip())


def correct(
    model: UnispeechLMModel,
    processor: UnispeechLMProcessor,
    nbest_lists: SequenceOf[SequenceOf[str]],
    audios: SequenceOf[AudioSource | None] | None = None,
    options: CorrectionOptions = CorrectionOptions(),
    sampling_rate: int | None = None,
) -> list[str]:
    """One corrected transcript per N-best list; `audios` (or None entries) lets the model listen.
    With `options.gate`, each correction has passed the no-harm gate."""
    cases = correction_cases(model, processor, nbest_lists, audios, options, sampling_rate)
    if options.gate is None:
        return [case.correction if case else "" for case in cases]
    return [options.gate.choose(case) if case else "" for case in cases]


@torch.inference_mode()
def correction_cases(
    model: UnispeechLMModel,
    processor: UnispeechLMProcessor,
    nbest_lists: SequenceOf[SequenceOf[str]],
    audios: SequenceOf[AudioSource | None] | None = None,
    options: CorrectionOptions = CorrectionOptions(),
    sampling_rate: int | None = None,
) -> list[GateCase | None]:
    """Per N-best list, its generated correction and (with `options.gate`) the corrector's scores
    of the correction and of every hypothesis: what the gate decides on, and what calibrates it.
    A list with no hypothesis left after cleaning gives None."""
    audios = list(audios) if audios is not None else [None] * len(nbest_lists)
    if len(audios) != len(nbest_lists):
        raise ValueError(f"{len(nbest_lists)} N-best lists but {len(audios)} recordings")
    cases: list[GateCase | None] = [None] * len(nbest_lists)
    cleaned = [clean_hypotheses(hypotheses) for hypotheses in nbest_lists]
    todo = [i for i, hypotheses in enumerate(cleaned) if hypotheses]  # all-empty lists correct to ""
    if not todo:
        return cases
    samples = [GerSample(cleaned[i], None, audios[i], sampling_rate) for i in todo]
    budgets = [
        options.min_tokens
        + math.ceil(options.max_length_ratio * max(len(processor.tokenize(text)) for text in cleaned[i]))
        for i in todo
    ]
    decoded = decode_samples(model, processor, samples, options.decoding, budgets)
    corrections = {i: best.text for i, (best, *_) in zip(todo, decoded, strict=True)}
    scores: dict[int, dict[str, float]] = {i: {} for i in todo}
    if options.gate is not None:  # each distinct text of a list scored once: correction, hypotheses
        pairs = [(i, text) for i in todo for text in dict.fromkeys((corrections[i], *cleaned[i]))]
        values = score_candidates(
            model,
            processor,
            [cleaned[i] for i, _ in pairs],
            [text for _, text in pairs],
            [audios[i] for i, _ in pairs],
            sampling_rate,
        )
        for (i, text), value in zip(pairs, values, strict=True):
            scores[i][text] = value
    for i in todo:
        cases[i] = GateCase(cleaned[i], corrections[i], scores[i])
    return cases


@torch.inference_mode()
def score_candidates(
    model: UnispeechLMModel,
    processor: UnispeechLMProcessor,
    nbest_lists: SequenceOf[SequenceOf[str]],
    texts: SequenceOf[str],
    audios: SequenceOf[AudioSource | None],
    sampling_rate: int | None = None,
) -> list[float]:
    """The log-probability (nats, its eos included) that the active adapter gives `texts[i]` as the
    correction of `nbest_lists[i]` (heard as `audios[i]`, if not None)."""
    values: list[float] = []
    for start in range(0, len(texts), SCORING_BATCH):
        window = slice(start, start + SCORING_BATCH)
        samples = [
            GerSample(tuple(hypotheses), text, audio, sampling_rate)
            for hypotheses, text, audio in zip(
                nbest_lists[window], texts[window], audios[window], strict=True
            )
        ]
        batch = processor(samples).to(model.device)
        labels = batch.pop("labels")  # scored here, not averaged into a loss
        hidden = model(**batch).last_hidden_state
        values += model.labelled_log_probability(hidden, labels).tolist()
    return values
