"""Helpers for the benchmark tests: manifests of generated audio, systems whose outputs the test
controls (keyed by clip length in samples, so each clip is recognisable), a fake clock, and a tiny
random openai-whisper model."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import soundfile
import torch

RATE = 16000


def tone(samples: int, frequency: float = 220.0, rate: int = RATE) -> np.ndarray:
    """A quiet sine of exactly `samples` samples: exact lengths survive a 16 kHz wav round trip."""
    return (0.3 * np.sin(2 * np.pi * frequency * np.arange(samples) / rate)).astype(np.float32)


def write_corpus(folder: Path, rows: list[dict], name: str = "manifest.jsonl") -> Path:
    """A manifest in `folder` with a 16 kHz wav per row: each row gives `samples` (or `audio_bytes`
    for a broken file, or `missing: True`) and the manifest fields `text`, `lang`, `speaker`."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "wavs").mkdir(exist_ok=True)
    lines = []
    for index, row in enumerate(rows):
        audio = f"wavs/{name.split('.')[0]}-{index}.wav"
        if "audio_bytes" in row:
            (folder / audio).write_bytes(row["audio_bytes"])
        elif not row.get("missing"):
            soundfile.write(folder / audio, tone(row["samples"], 200.0 + 10 * index), RATE)
        record = {"audio": audio, "text": row["text"], "lang": row.get("lang", "en")}
        if "speaker" in row:
            record["speaker"] = row["speaker"]
        lines.append(json.dumps(record, ensure_ascii=False))
    manifest = folder / name
    manifest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return manifest


class FakeClock:
    """Stands in for the `time` module of a benchmark: `perf_counter` moves only when told."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class LookupTranscriber:
    """Transcribes a clip to `texts[len(clip)]`; each clip costs `seconds_per_clip` on `clock`."""

    texts: dict[int, str]
    clock: FakeClock | None = None
    seconds_per_clip: float = 0.0
    name: str = "fake"
    calls: list[tuple[int, str]] = field(default_factory=list)

    def transcribe(self, audios, languages) -> list[str]:
        self.calls += [(len(audio), language) for audio, language in zip(audios, languages, strict=True)]
        if self.clock is not None:
            self.clock.advance(self.seconds_per_clip * len(audios))
        return [self.texts[len(audio)] for audio in audios]


def tiny_whisper(path: Path) -> Path:
    """A random openai-whisper model of one tiny layer each side, saved as unispeech saves whisper."""
    from whisper.model import ModelDimensions, Whisper

    from unispeech.weights.pretrained import save_whisper

    dims = ModelDimensions(
        n_mels=80,
        n_audio_ctx=1500,
        n_audio_state=32,
        n_audio_head=2,
        n_audio_layer=1,
        n_vocab=51865,
        n_text_ctx=64,
        n_text_state=32,
        n_text_head=2,
        n_text_layer=1,
    )
    torch.manual_seed(0)
    save_whisper({"dims": asdict(dims), "model_state_dict": Whisper(dims).state_dict()}, path)
    return path
