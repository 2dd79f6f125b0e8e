"""Is the phoneme alignment right? Word ends against whisper's word timestamps, and one plot.

    python eval/alignment.py --durations ../data/alignment/durations.jsonl \
        --manifest ../data/kathleen.dev.jsonl --limit 20 --plot alignment.png

For each clip of the manifest the aligner's units give word ends (where each word-boundary unit
starts, and where the final silence starts); openai-whisper's `word_timestamps` give another
estimate of them. Clips where espeak-ng joined or split words (their word counts differ) are
skipped and counted. Prints the median and 90th percentile of |ours − whisper's| in ms, beside
a uniform split of the clip by unit count; `--plot` draws the first clip's mel with its units.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from unispeech.audio.features import WHISPER_SAMPLE_RATE, MelSettings, load_audio, vocoder_log_mel
from unispeech.data.manifest import read_manifest
from unispeech.data.phoneme_durations import read_durations
from unispeech.model.phonemes import SILENCE, WORD_BOUNDARY, phoneme_units, unit_symbols
from unispeech.weights.pretrained import load_whisper


def word_ends(symbols: list[str], durations: np.ndarray, hop_seconds: float) -> list[float]:
    """Seconds where each word ends: the start of each word-boundary unit and of the final silence."""
    starts = np.concatenate([[0], np.cumsum(durations)[:-1]]) * hop_seconds
    return [
        float(start) for symbol, start in zip(symbols, starts, strict=True) if symbol == WORD_BOUNDARY
    ] + [float(starts[-1])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--durations", type=Path, required=True)
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--plot", type=Path)
    args = parser.parse_args()
    settings = MelSettings()
    hop = settings.hop_length / settings.sample_rate
    aligned = read_durations(args.durations)
    whisper = load_whisper("smol")
    ours, uniform, skipped = [], [], 0
    utterances = read_manifest(args.manifest)[: args.limit]
    for index, utterance in enumerate(utterances):
        path = utterance.path(args.manifest).resolve()
        clip = aligned[path]
        units = phoneme_units(clip.phonemes)
        symbols = [unit_symbols(unit) for unit in units]
        audio = load_audio(path, WHISPER_SAMPLE_RATE)
        result = whisper.transcribe(audio, language=utterance.lang, fp16=False, word_timestamps=True)
        heard = [word["end"] for segment in result["segments"] for word in segment["words"]]
        durations = np.asarray(clip.durations)
        found = word_ends(symbols, durations, hop)
        if len(found) != len(heard):
            skipped += 1
            continue
        even = np.full(len(durations), durations.sum() / len(durations))
        ours += [abs(a - b) for a, b in zip(found, heard, strict=True)]
        uniform += [abs(a - b) for a, b in zip(word_ends(symbols, even, hop), heard, strict=True)]
        if index == 0 and args.plot:
            plot(args.plot, path, symbols, durations, settings)
    for name, errors in (("aligner", ours), ("uniform split", uniform)):
        median, p90 = (1000 * np.percentile(errors, q) for q in (50, 90))
        print(
            f"{name}: word ends vs whisper's, median {median:.0f} ms, p90 {p90:.0f} ms ({len(errors)} words)"
        )
    print(f"{len(utterances) - skipped} clips compared, {skipped} skipped (espeak-ng's word count differs)")


def plot(out: Path, audio: Path, symbols: list[str], durations: np.ndarray, settings: MelSettings) -> None:
    """The clip's log-mel with a line at each unit boundary and the unit's symbols under it."""
    from matplotlib.figure import Figure

    mel = vocoder_log_mel(load_audio(audio, settings.sample_rate), settings).numpy()
    figure = Figure(figsize=(14, 4))
    axes = figure.subplots()
    axes.imshow(mel, origin="lower", aspect="auto", cmap="magma")
    edges = np.cumsum(durations)
    for edge in edges[:-1]:
        axes.axvline(edge - 0.5, color="white", linewidth=0.5)
    for symbol, start, end in zip(symbols, np.concatenate([[0], edges[:-1]]), edges, strict=True):
        label = "sil" if symbol == SILENCE else ("␣" if symbol == WORD_BOUNDARY else symbol)
        axes.text((start + end) / 2 - 0.5, -4, label, ha="center", va="top", fontsize=7)
    axes.set_title(f"{audio.name}: the aligner's units over the vocoder mel")
    axes.set_xlabel("mel frame (11.6 ms)")
    axes.set_ylabel("mel bin")
    figure.tight_layout()
    figure.savefig(out, dpi=120)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
