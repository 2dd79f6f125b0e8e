"""The duration benchmark: how long TTS would make each utterance, against its real recording.

Wrong durations are the most reported failure of F5-TTS-style models, and durations can be scored
without synthesising anything. For each pair of the TTS benchmark (`tts.py`: a target utterance,
prompted by another recording of its speaker), the length `speak` would give the target's text —
the duration predictor's frames of its phoneme units, scaled to the prompt's speaking rate
(`synthesis.sentence_durations`) — and the length F5-TTS's rule gives it (the prompt's seconds per
UTF-8 byte, `synthesis.TextRatioDuration`) are compared with the target's real length, as
|estimated − real| / real, averaged over pairs. Only the duration predictor runs: seconds for a dev set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from unispeech.audio.features import load_audio
from unispeech.benchmarks.report import BarChart, Report, markdown_table, percent
from unispeech.benchmarks.tts import TtsPair
from unispeech.model.lengths import vocoder_mel_frames
from unispeech.model.modeling import UnispeechLMModel
from unispeech.model.phonemes import Phonemizer
from unispeech.tasks.synthesis import SynthesisOptions, TextRatioDuration, sentence_durations, split_sentences


@dataclass(frozen=True)
class DurationItem:
    target: str  # where the target utterance is (manifest:line)
    real: float  # seconds
    predicted: float
    rule: float

    @property
    def predicted_error(self) -> float:
        return abs(self.predicted - self.real) / self.real

    @property
    def rule_error(self) -> float:
        return abs(self.rule - self.real) / self.real


def score_durations(
    model: UnispeechLMModel, pairs: Sequence[TtsPair], language: str = "en"
) -> list[DurationItem]:
    """Each pair's real, predicted and rule durations of the target (seconds)."""
    settings = model.config.mel_settings
    frame_rate = settings.sample_rate / settings.hop_length
    options = SynthesisOptions(cross_fade=0, language=language)
    phonemizer, rule, items = Phonemizer(), TextRatioDuration(), []
    for pair in pairs:
        real, prompt = (
            vocoder_mel_frames(len(load_audio(clip.path, settings.sample_rate)), settings.hop_length)
            for clip in (pair.target, pair.prompt)
        )
        sentences = split_sentences(pair.target.utterance.text)
        *units, prompt_units = phonemizer.units([*sentences, pair.prompt.utterance.text], language)
        frames = sentence_durations(model, units, prompt_units, prompt, options, frame_rate, 0)
        estimated = rule(prompt / frame_rate, pair.prompt.utterance.text, pair.target.utterance.text)
        items.append(
            DurationItem(pair.target.where, real / frame_rate, sum(map(sum, frames)) / frame_rate, estimated)
        )
    return items


def durations_report(items: Sequence[DurationItem], manifests: Sequence[str], command: str) -> Report:
    predicted = float(np.mean([item.predicted_error for item in items]))
    rule = float(np.mean([item.rule_error for item in items]))
    body = "\n".join(
        [
            f"{len(items)} pairs from {', '.join(manifests)}; |estimated − real| / real, averaged.",
            "",
            markdown_table(
                ["estimate", "mean error", "mean estimated / real"],
                [
                    ["duration predictor (prompt rate)", percent(predicted), _ratio(items, "predicted")],
                    ["F5-TTS's text-ratio rule", percent(rule), _ratio(items, "rule")],
                ],
            ),
        ]
    )
    chart = BarChart(
        title="Duration error against real recordings",
        ylabel="mean |estimated − real| / real (%)",
        categories=["duration predictor", "F5 rule"],
        series={"error": [100 * predicted, 100 * rule]},
    )
    data = {"predicted_error": predicted, "rule_error": rule, "items": [asdict(item) for item in items]}
    return Report("Duration benchmark", body, data, chart, notes=(f"Command: `{command}`",))


def _ratio(items: Sequence[DurationItem], field: str) -> str:
    return f"{np.mean([getattr(item, field) / item.real for item in items]):.3f}"
