"""How intelligible, and how like the speaker, can a mel of each kind be? A ceiling for TTS.

    python eval/mel_ceiling.py --manifest ../data/kathleen.dev.jsonl --limit 10 \
        --durations ../data/alignment/durations.jsonl

For the pairs `unispeech eval tts` scores (each dev clip with the next clip of its speaker as the
prompt), the round-trip WER (the same judge, whisper-base in the clip's language) and
resemblyzer's similarity to the prompt of the target's real mel voiced by HiFi-GAN after a change:

- vocoded: the mel as it is (what the vocoder alone costs);
- unit mean: each phoneme unit's frames replaced by their mean (the aligner's durations): the
  best a mel that is flat within each unit can do in the speaker's own voice, which is what a
  phoneme prior trained by mean squared error tends towards;
- smoothed: a moving average over `--smooth` frames (detail lost in time, not per unit).

The real recording's own figures are the report's floor and ceiling columns. The gap between
"vocoded" and "unit mean" is what the flow (or a prior that models the movement within each unit)
must bring back for the synthesis to be understood and to sound like the speaker.
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from unispeech.audio.features import load_audio, vocoder_log_mel
from unispeech.audio.vocoder import Vocoder
from unispeech.benchmarks import asr
from unispeech.benchmarks.clips import read_clips
from unispeech.benchmarks.report import percent
from unispeech.benchmarks.tts import ResemblyzerEncoder, TtsPair, pair_by_speaker, score_tts
from unispeech.data.phoneme_durations import read_durations
from unispeech.weights.pretrained import load_parts

MelChange = Callable[[torch.Tensor, list[int]], torch.Tensor]  # (M, F) mel, unit durations → (M, F)


def unit_mean(mel: torch.Tensor, durations: list[int]) -> torch.Tensor:
    """`mel` `(M, F)` with each unit's frames (`durations`, summing to F) set to their mean."""
    flat = mel.clone()
    bounds = np.cumsum([0, *durations])
    for start, end in itertools.pairwise(bounds):
        if end > start:
            flat[:, start:end] = mel[:, start:end].mean(dim=1, keepdim=True)
    return flat


def smoothed(mel: torch.Tensor, frames: int) -> torch.Tensor:
    """`mel` `(M, F)` averaged over a centred window of `frames` (odd) frames."""
    kernel = torch.full((1, 1, frames), 1 / frames)
    return torch.nn.functional.conv1d(mel[:, None], kernel, padding=frames // 2)[:, 0]


@dataclass
class ChangedRecording:
    """A `Synthesizer` that "speaks" a pair's text by vocoding its target's real mel, changed."""

    name: str
    change: MelChange
    vocoder: Vocoder
    targets: dict[str, tuple[Path, list[int]]]  # text → the target's audio file and unit durations

    @property
    def sample_rate(self) -> int:
        return self.vocoder.sample_rate

    def synthesize(self, text: str, prompt: np.ndarray, prompt_text: str, language: str) -> np.ndarray:
        path, durations = self.targets[text]
        mel = vocoder_log_mel(load_audio(path, self.sample_rate), self.vocoder.mel_settings)  # (M, F)
        with torch.inference_mode():
            return self.vocoder(self.change(mel, durations)[None])[0].numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--durations", type=Path, required=True, help="`unispeech data align` output")
    parser.add_argument("--limit", type=int, default=10)
    parser.add_argument("--smooth", type=int, default=5, help="frames of the moving average (odd)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    pairs: list[TtsPair] = pair_by_speaker(read_clips([args.manifest]), None, [])[: args.limit]
    aligned = read_durations(args.durations)
    targets = {
        pair.target.utterance.text: (pair.target.path, aligned[pair.target.path.resolve()].durations)
        for pair in pairs
    }
    vocoder = load_parts("smol").vocoder
    judge = asr.load_transcriber("whisper-base")
    encoder = ResemblyzerEncoder.load()
    changes: dict[str, MelChange] = {
        "vocoded": lambda mel, durations: mel,
        "unit mean": unit_mean,
        f"smoothed over {args.smooth}": lambda mel, durations: smoothed(mel, args.smooth),
    }
    print(f"{len(pairs)} pairs of {args.manifest} (judge whisper-base; SIM to the prompt, mean over pairs)")
    for name, change in changes.items():
        result = score_tts(pairs, ChangedRecording(name, change, vocoder, targets), judge, encoder)
        overall = result.overall()
        if name == "vocoded":
            real = overall.real_count.rate
            print(f"  {'real recording':16s} WER {percent(real)}  SIM {overall.real_similarity:.3f}")
        print(f"  {name:16s} WER {percent(overall.count.rate)}  SIM {overall.similarity:.3f}")


if __name__ == "__main__":
    main()
