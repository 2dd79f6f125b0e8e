"""How much speaker similarity can a mel of each kind keep? A ceiling for the TTS adapter's SIM.

    python eval/similarity_ceiling.py --manifest ../data/kathleen.dev.jsonl --limit 10 \
        --durations ../data/alignment/durations.jsonl

For the pairs `unispeech eval tts` scores (each dev clip with the next clip of its speaker as the
prompt), resemblyzer's similarity of the prompt to the target's real recording, and to the
target's real mel voiced by HiFi-GAN after three changes:

- vocoded: the mel as it is (what the vocoder alone costs);
- unit mean: each phoneme unit's frames replaced by their mean (the aligner's durations): the
  best a mel that is flat within each unit can do in the speaker's own voice, which is what a
  phoneme prior trained by mean squared error tends towards;
- smoothed: a moving average over `--smooth` frames (detail lost in time, not per unit).

The gap between "vocoded" and "unit mean" is what the flow (or any detail the prior lacks) must
bring back for the synthesis to sound like the speaker.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np
import soxr
import torch
from tqdm.auto import tqdm

from unispeech.audio.features import load_audio, vocoder_log_mel
from unispeech.benchmarks.clips import read_clips
from unispeech.benchmarks.tts import SPEAKER_SAMPLE_RATE, ResemblyzerEncoder, cosine, pair_by_speaker
from unispeech.data.phoneme_durations import read_durations
from unispeech.weights.pretrained import load_parts

KINDS = ("real", "vocoded", "unit mean", "smoothed")


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--durations", type=Path, required=True, help="`unispeech data align` output")
    parser.add_argument("--limit", type=int, default=10)
    parser.add_argument("--smooth", type=int, default=5, help="frames of the moving average (odd)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    pairs = pair_by_speaker(read_clips([args.manifest], args.limit, None), None, [])
    aligned = read_durations(args.durations)
    vocoder = load_parts("smol").vocoder
    rate = vocoder.sample_rate
    encoder = ResemblyzerEncoder.load()

    def embed(audio: np.ndarray) -> np.ndarray:
        return encoder.embed(soxr.resample(audio, rate, SPEAKER_SAMPLE_RATE).astype(np.float32))

    scores: dict[str, list[float]] = {kind: [] for kind in KINDS}
    for pair in tqdm(pairs, desc="pairs"):
        target, prompt = load_audio(pair.target.path, rate), load_audio(pair.prompt.path, rate)
        voice = embed(prompt)
        mel = vocoder_log_mel(target, vocoder.mel_settings)  # (M, F)
        durations = aligned[pair.target.path.resolve()].durations
        mels = {
            "vocoded": mel,
            "unit mean": unit_mean(mel, durations),
            "smoothed": smoothed(mel, args.smooth),
        }
        scores["real"].append(cosine(embed(target), voice))
        with torch.inference_mode():
            for kind, changed in mels.items():
                scores[kind].append(cosine(embed(vocoder(changed[None])[0].numpy()), voice))
    print(f"{len(pairs)} pairs of {args.manifest}: SIM to the prompt, mean over pairs")
    for kind in KINDS:
        print(f"  {kind:10s} {np.mean(scores[kind]):.3f}")


if __name__ == "__main__":
    main()
