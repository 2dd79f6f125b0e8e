"""N-best generative error correction (GER): any recogniser's hypotheses in, one transcript out.

The hypotheses (best first, HyPoradise style) are written into the correction prompt
(`sequences.ger_prompt`) and the model writes the corrected transcript after it. With the
recording as well, its speech embeddings go in front of the prompt, so the unified model can
listen where the hypotheses disagree, which a text-only corrector cannot. A correction may be at
most `max_length_ratio` times as long as the longest hypothesis: the length guard. By default it
may not write any token 3-gram twice: the loop guard. On smol's first GER adapter the loop guard
took the dev WER from 28.85 % to 26.92 % (whisper-base 1-best 29.99 %, 158 lists), all of it by
stopping loops such as "a five and eight or a five and eight or …" (`train/RUNS.md`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence as SequenceOf
from dataclasses import dataclass, field

import torch

from unispeech.audio import AudioSource
from unispeech.decoding import DecodingOptions, decode
from unispeech.modeling import UnispeechLMModel
from unispeech.processor import GerSample, UnispeechLMProcessor

LOOP_GUARD_NGRAM_SIZE = 3


@dataclass(frozen=True)
class CorrectionOptions:
    """How to correct: the decoding strategy (greedy, with the loop guard), and the length guard
    (`min_tokens` plus `max_length_ratio` times the tokens of the longest hypothesis)."""

    decoding: DecodingOptions = field(
        default_factory=lambda: DecodingOptions(no_repeat_ngram_size=LOOP_GUARD_NGRAM_SIZE)
    )
    max_length_ratio: float = 2.0
    min_tokens: int = 8

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


@torch.inference_mode()
def correct(
    model: UnispeechLMModel,
    processor: UnispeechLMProcessor,
    nbest_lists: SequenceOf[SequenceOf[str]],
    audios: SequenceOf[AudioSource | None] | None = None,
    options: CorrectionOptions = CorrectionOptions(),
    sampling_rate: int | None = None,
) -> list[str]:
    """One corrected transcript per N-best list; `audios` (or None entries) lets the model listen."""
    audios = list(audios) if audios is not None else [None] * len(nbest_lists)
    if len(audios) != len(nbest_lists):
        raise ValueError(f"{len(nbest_lists)} N-best lists but {len(audios)} recordings")
    corrections = [""] * len(nbest_lists)
    cleaned = [clean_hypotheses(hypotheses) for hypotheses in nbest_lists]
    todo = [i for i, hypotheses in enumerate(cleaned) if hypotheses]  # all-empty lists correct to ""
    if not todo:
        return corrections
    samples = [GerSample(cleaned[i], None, audios[i], sampling_rate) for i in todo]
    inputs = processor(samples, padding_side="left")
    speech = None
    if "input_features" in inputs:
        speech = model.encode_speech(inputs["input_features"], inputs["feature_lengths"])
    embeddings = model.embed_inputs(inputs["input_ids"], inputs["marker_ids"], inputs["speech_mask"], speech)
    budgets = [
        options.min_tokens
        + math.ceil(options.max_length_ratio * max(len(processor.tokenize(text)) for text in cleaned[i]))
        for i in todo
    ]
    decoded = decode(
        model, embeddings, inputs["attention_mask"], processor.token_ids.eos, options.decoding, budgets
    )
    for i, (best, *_) in zip(todo, decoded, strict=True):
        corrections[i] = processor.tokenizer.decode(best.tokens, skip_special_tokens=True).strip()
    return corrections
