"""Does the ASR model listen? The loss of transcripts with their own speech, another's, and none.

A speech LM can lower its training loss by learning the transcripts' style alone, and write fluent
text unrelated to the audio (what a plain SLAM-ASR recipe did here, `../shared/NOTES.md`).
`audio_reliance` scores held-out transcripts three ways — with the matching speech, with another
clip's speech (the list rotated by one), and with no speech at all — in nats per transcript token.
A model that uses its audio has `matched` clearly below `mismatched`; `mismatched` near `no_speech`
means the speech is only noise to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from unispeech.audio.features import AudioSource
from unispeech.model.encoder import EncodedSpeech
from unispeech.model.modeling import UnispeechLMModel
from unispeech.model.processor import AsrSample, UnispeechLMProcessor
from unispeech.model.sequences import IGNORE_INDEX


@dataclass(frozen=True)
class AudioReliance:
    """Mean cross-entropy per transcript token (nats) under each pairing."""

    matched: float
    mismatched: float
    no_speech: float

    @property
    def gap(self) -> float:
        """What the right speech is worth, in nats per token: mismatched − matched."""
        return self.mismatched - self.matched


@torch.no_grad()
def audio_reliance(
    model: UnispeechLMModel,
    processor: UnispeechLMProcessor,
    audios: Sequence[AudioSource],
    texts: Sequence[str],
    batch_size: int = 8,
    sampling_rate: int | None = None,
) -> AudioReliance:
    """Score `texts` with their `audios` (files, or arrays at `sampling_rate`), with the audios
    rotated by one, and with no speech."""
    if len(audios) != len(texts) or len(audios) < 2:
        raise ValueError(f"need at least two clips with one text each, got {len(audios)} and {len(texts)}")
    silence = EncodedSpeech(torch.zeros(0, model.config.encoder_config.n_audio_state))
    pairings = {
        "matched": list(audios),
        "mismatched": [*audios[1:], audios[0]],
        "no_speech": [silence] * len(audios),
    }
    was_training = model.training
    model.eval()
    try:
        scores = {
            name: _loss_per_token(model, processor, speech, texts, batch_size, sampling_rate)
            for name, speech in pairings.items()
        }
    finally:
        model.train(was_training)
    return AudioReliance(**scores)


def _loss_per_token(model, processor, audios, texts, batch_size: int, sampling_rate: int | None) -> float:
    total, tokens = 0.0, 0
    for start in range(0, len(texts), batch_size):
        samples = [
            AsrSample(audio, text, None if isinstance(audio, EncodedSpeech) else sampling_rate)
            for audio, text in zip(
                audios[start : start + batch_size], texts[start : start + batch_size], strict=True
            )
        ]
        batch = processor(samples).to(model.device)
        count = int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())
        total += float(model(**batch).text_loss) * count
        tokens += count
    return total / tokens
