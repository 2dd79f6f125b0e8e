"""Does the speech presence check hear speech where there is some, and only there?

    python eval/speech_presence.py --manifest ../data/nonspeech-dev/manifest.jsonl \
        --manifest ../data/fsdd.dev.jsonl --manifest ../data/kathleen.dev.jsonl \
        --manifest ../data/libri251.dev.jsonl --manifest ../data/ljspeech.dev.jsonl [--transcribe]

For every clip of the manifests, whether `SpeechPresence` (with the thresholds given, its defaults
otherwise) hears speech in it; a table per group: each speech manifest is one group, the clips with
empty transcripts are grouped by kind (the part of the file name before '-', as `unispeech data
nonspeech` names them). `--transcribe` also runs the default model's transcription of the empty-
transcript clips, and counts the transcripts that are not empty (what a user would see).
"""

from __future__ import annotations

import argparse
import random
from collections import defaultdict
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from unispeech.audio.features import WHISPER_SAMPLE_RATE, load_audio
from unispeech.audio.speech_presence import SpeechPresence
from unispeech.data.manifest import read_manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", type=Path, action="append", required=True)
    parser.add_argument("--limit", type=int, help="at most this many clips per manifest (a seeded draw)")
    parser.add_argument("--threshold", type=float, default=SpeechPresence.threshold)
    parser.add_argument("--min-speech-seconds", type=float, default=SpeechPresence.min_speech_seconds)
    parser.add_argument("--lead-silence-seconds", type=float, default=SpeechPresence.lead_silence_seconds)
    parser.add_argument("--transcribe", action="store_true", help="transcribe the non-speech clips too")
    args = parser.parse_args()
    detector = SpeechPresence(args.threshold, args.min_speech_seconds, args.lead_silence_seconds)
    print(detector)

    clips: list[tuple[str, Path]] = []  # (group, audio path)
    for manifest in args.manifest:
        utterances = read_manifest(manifest)
        random.Random(0).shuffle(utterances)
        for utterance in utterances[: args.limit]:
            if utterance.text:
                group = "speech: " + manifest.stem.split(".")[0]
            else:
                group = "non-speech: " + Path(utterance.audio).stem.split("-")[0]
            clips.append((group, utterance.path(manifest)))

    heard: dict[str, list[bool]] = defaultdict(list)
    nonspeech: list[tuple[str, np.ndarray]] = []  # (group, 16 kHz audio), kept for --transcribe
    for group, path in tqdm(clips, desc="speech presence", unit="clip"):
        audio = load_audio(path, WHISPER_SAMPLE_RATE)
        heard[group].append(detector.holds_speech(audio, WHISPER_SAMPLE_RATE))
        if args.transcribe and group.startswith("non-speech"):
            nonspeech.append((group, audio))

    written: dict[str, int] = defaultdict(int)
    if nonspeech:
        import unispeech
        from unispeech.tasks.transcription import TranscriptionOptions

        model = unispeech.load("smol")
        options = TranscriptionOptions(speech_presence=detector)
        audios = [audio for _, audio in nonspeech]
        texts = model.transcribe(audios, options, WHISPER_SAMPLE_RATE, progress=True)
        for (group, _), result in zip(nonspeech, texts, strict=True):
            written[group] += bool(result.text)

    print("| group | clips | heard as speech |" + (" transcript not empty |" if args.transcribe else ""))
    print("|---|---|---|" + ("---|" if args.transcribe else ""))
    for group, flags in sorted(heard.items()):
        row = f"| {group} | {len(flags)} | {sum(flags)} ({100 * sum(flags) / len(flags):.1f} %) |"
        if args.transcribe and group.startswith("non-speech"):
            row += f" {written[group]} |"
        elif args.transcribe:
            row += " |"
        print(row)


if __name__ == "__main__":
    main()
