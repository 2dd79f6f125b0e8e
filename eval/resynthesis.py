"""Vocoder round trip on real recordings: whisper-base's WER on the originals and on their
resynthesis through our TTS mel and HiFi-GAN (the proof that the mel matches the vocoder's).

    .venv/bin/python eval/resynthesis.py --ljspeech ../shared/data/ljspeech --clips 20
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from tqdm import tqdm

from unispeech.audio.features import WHISPER_SAMPLE_RATE, MelSettings, load_audio
from unispeech.evaluation.metrics import word_error_rate
from unispeech.weights.pretrained import load_vocoder, load_whisper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ljspeech", type=Path, required=True, help="a folder with wavs/ and metadata.csv")
    parser.add_argument("--clips", type=int, default=20, help="the first N clips that have audio")
    parser.add_argument("--model", default="smol", help="where whisper-base and the vocoder come from")
    args = parser.parse_args()

    rows = [line.split("|") for line in (args.ljspeech / "metadata.csv").read_text().splitlines()]
    clips = [(args.ljspeech / "wavs" / f"{row[0]}.wav", row[2]) for row in rows]
    clips = [(path, text) for path, text in clips if path.is_file()][: args.clips]
    settings = MelSettings()
    vocoder = load_vocoder(args.model, settings)
    judge = load_whisper(args.model)

    def transcribe(audio_16k) -> str:
        return judge.transcribe(audio_16k, language="en", fp16=False, temperature=0.0)["text"]

    references, originals, resyntheses = [], [], []
    audio_seconds = vocoder_seconds = 0.0
    for path, text in tqdm(clips, desc="clips"):
        audio = load_audio(path, settings.sample_rate)
        start = time.perf_counter()
        resynthesis = vocoder.resynthesize(audio)
        vocoder_seconds += time.perf_counter() - start
        audio_seconds += len(audio) / settings.sample_rate
        references.append(text)
        originals.append(transcribe(load_audio(path, WHISPER_SAMPLE_RATE)))
        resyntheses.append(transcribe(load_audio(resynthesis, WHISPER_SAMPLE_RATE, settings.sample_rate)))

    print(f"{len(clips)} clips, {audio_seconds:.1f} s of audio from {args.ljspeech}")
    print("| audio | whisper-base WER |")
    print("|---|---|")
    print(f"| original recordings | {100 * word_error_rate(references, originals):.2f} % |")
    print(f"| our mel → {type(vocoder).__name__} | {100 * word_error_rate(references, resyntheses):.2f} % |")
    print(f"vocoder real-time factor {vocoder_seconds / audio_seconds:.3f} (compute s per audio s)")


if __name__ == "__main__":
    main()
