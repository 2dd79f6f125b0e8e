"""How many backbone passes does speculative ASR decoding save, and how much drafted work does it waste?

    python eval/speculative_passes.py --manifest ../data/ljspeech.dev.jsonl --limit 10
    python eval/speculative_passes.py --manifest ../data/libri251.dev.jsonl --limit 10

Wall-clock RTF on this shared 2-core machine moves by a third from one run to the next, so this
counts instead: each clip is transcribed alone (as `unispeech transcribe FILE` does) three ways,
step by step (`speculative=False`), speculatively with a fixed draft of `MAX_DRAFT_TOKENS`, and
speculatively with the shipped schedule (`DRAFT_GROWTH`), and every backbone pass after the prompt's
is counted with the positions it fed. A pass costs about as much as one decoding step plus a
little per extra position (memory-bound: the weights are read once per pass), so fewer passes
with few wasted positions is faster. It checks, too, that all three write the same transcripts.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from tqdm.auto import tqdm

import unispeech
from unispeech.audio.features import WHISPER_SAMPLE_RATE, load_audio
from unispeech.benchmarks.clips import read_clips
from unispeech.tasks import decoding
from unispeech.tasks.decoding import DecodingOptions
from unispeech.tasks.transcription import TranscriptionOptions


def count_passes(speech: unispeech.Unispeech, audios: list[np.ndarray], draft_growth: int | None) -> dict:
    """Transcribe each clip alone; `draft_growth` None decodes step by step, 1 drafts a fixed
    `MAX_DRAFT_TOKENS`, 2 is the shipped schedule. Returns transcripts, passes and positions fed."""
    fed: list[int] = []
    model = speech.model
    original = model.run_backbone

    def counted(inputs_embeds: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        fed.append(inputs_embeds.shape[1])
        return original(inputs_embeds, *args, **kwargs)

    shipped = decoding.DRAFT_GROWTH
    options = TranscriptionOptions(decoding=DecodingOptions(speculative=draft_growth is not None))
    model.run_backbone = counted
    decoding.DRAFT_GROWTH = draft_growth or shipped
    texts, passes, positions = [], 0, 0
    try:
        for audio in audios:
            fed.clear()
            texts.append(speech.transcribe(audio, options, sampling_rate=WHISPER_SAMPLE_RATE).text)
            passes += len(fed) - 1  # the prompt's pass is the same for all three
            positions += sum(fed[1:])
    finally:
        model.run_backbone = original
        decoding.DRAFT_GROWTH = shipped
    return {"texts": texts, "passes": passes, "positions": positions}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--limit", type=int, default=10)
    parser.add_argument("--model", default="smol")
    args = parser.parse_args()
    clips = read_clips([args.manifest])[: args.limit]
    audios = [load_audio(clip.path, WHISPER_SAMPLE_RATE) for clip in tqdm(clips, desc="reading")]
    speech = unispeech.load(args.model)
    ways = {
        "step by step": None,
        f"fixed {decoding.MAX_DRAFT_TOKENS}": 1,
        "shipped schedule": decoding.DRAFT_GROWTH,
    }
    results = {name: count_passes(speech, audios, growth) for name, growth in tqdm(ways.items(), desc="ways")}
    reference = results["step by step"]
    print(f"{len(audios)} clips of {args.manifest}, each transcribed alone:")
    print("| decoding | backbone passes | positions fed | drafted positions rejected | same transcripts |")
    print("|---|---|---|---|---|")
    tokens = reference["positions"]  # step by step feeds each written token once
    for name, result in results.items():
        wasted = result["positions"] - tokens
        same = "yes" if result["texts"] == reference["texts"] else "NO"
        print(f"| {name} | {result['passes']} | {result['positions']} | {wasted} | {same} |")


if __name__ == "__main__":
    main()
