"""Does the TTS flow listen to its prompt? Its loss with the speaker's prompt, another's, and none.

    python eval/prompt_reliance.py --manifest ../data/kathleen.dev.jsonl \
        --other ../data/ljspeech.dev.jsonl --durations ../data/alignment/durations.jsonl \
        --adapters adapters/smol --limit 8

Each target clip of `--manifest` is scored as a training example is: a prompt, then the clip to
generate, with the aligner's units over both. The prompt is another clip of the same speaker, a
clip of `--other` (another voice), or hidden (the condition guidance drops). The flow-matching
loss is taken at fixed times and noise, so the three differ only in the prompt. A flow that uses
its prompt has a lower loss with the speaker's own voice than with another's; the same loss for
all three means it speaks the training voices' average whatever it hears (what the ASR side's
`evaluation/reliance.py` asks of speech).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from unispeech.api import load
from unispeech.audio.features import load_audio
from unispeech.data.manifest import read_manifest
from unispeech.data.phoneme_durations import read_durations
from unispeech.model.flow import FlowMatchingExample
from unispeech.model.phonemes import phoneme_units
from unispeech.model.processor import TtsSample
from unispeech.model.sequences import TTS

TIMES = (0.5, 0.8, 0.95)  # flow times scored: 0.8 and above is where a start time of 0.8 runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--manifest", type=Path, required=True, help="targets of one voice; each next clip is its prompt"
    )
    parser.add_argument("--other", type=Path, required=True, help="prompts of another voice")
    parser.add_argument("--durations", type=Path, required=True, help="`unispeech data align` output")
    parser.add_argument("--adapters", default="shipped")
    parser.add_argument("--limit", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(1)
    speech = load("smol", adapters=args.adapters)
    speech.set_task(TTS)
    model, processor = speech.model, speech.processor
    rate = speech.sample_rate
    aligned = read_durations(args.durations)

    manifests = {path: read_manifest(path) for path in (args.manifest, args.other)}

    def clip(manifest: Path, index: int) -> tuple[np.ndarray, str, list, list[int]]:
        utterance = manifests[manifest][index]
        path = utterance.path(manifest).resolve()
        found = aligned[path]
        return load_audio(path, rate), utterance.text, phoneme_units(found.phonemes), list(found.durations)

    def batch_of(prompt, target) -> dict:
        """The processor batch of `target` generated after `prompt`, as training lays a clip out."""
        audio = np.concatenate([prompt[0], target[0]])
        durations = prompt[3] + target[3]
        frames = len(processor.vocoder_features(audio, rate))
        durations[-1] += frames - sum(durations)  # the join may add or lose a frame
        sample = TtsSample(
            audio,
            f"{prompt[1]} {target[1]}",
            tuple(prompt[2] + target[2]),
            tuple(durations),
            prompt_frames=sum(prompt[3]),
            sampling_rate=rate,
        )
        return processor([sample])

    def loss(batch: dict, time: float, hide_prompt: bool) -> float:
        mel = model.flow.normalize(batch["mel"])  # (1, F, M)
        noise = torch.randn(mel.shape, generator=torch.Generator().manual_seed(0))
        t = torch.tensor([time])
        real = torch.arange(mel.shape[1])[None] < batch["mel_lengths"][:, None]
        example = FlowMatchingExample(
            t,
            (1 - t) * noise + t * mel,
            mel - noise,
            real,
            torch.tensor([False]),
            torch.tensor([hide_prompt]),
        )
        return float(model(**batch, flow_example=example).tts_loss)

    count = min(args.limit, len(manifests[args.manifest]) - 1, len(manifests[args.other]))
    kinds = ("own voice", "another voice", "no prompt")
    scores = {(kind, time): [] for kind in kinds for time in TIMES}
    with torch.inference_mode():
        for index in tqdm(range(count), desc="targets"):
            target = clip(args.manifest, index)
            own = batch_of(clip(args.manifest, index + 1), target)
            other = batch_of(clip(args.other, index), target)
            for time in TIMES:
                scores["own voice", time].append(loss(own, time, hide_prompt=False))
                scores["another voice", time].append(loss(other, time, hide_prompt=False))
                scores["no prompt", time].append(loss(own, time, hide_prompt=True))
    print(f"flow-matching loss of {count} targets of {args.manifest} (lower is better)")
    print("time  " + "  ".join(f"{kind:>13s}" for kind in kinds))
    for time in TIMES:
        print(f"{time:4.2f}  " + "  ".join(f"{np.mean(scores[kind, time]):13.4f}" for kind in kinds))


if __name__ == "__main__":
    main()
