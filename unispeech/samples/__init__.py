"""Bundled sample audio: one short real recording for examples, the CLI and real-weight tests.

`LJ001-0174.wav` is from LJSpeech 1.1 (Keith Ito and Linda Johnson, 2017; public domain): one
female speaker, 22.05 kHz, 16-bit mono, 2.5 s. `manifest.jsonl` lists it with its transcript: the
data `train/configs/tiny.yaml` trains on as shipped. `durations.jsonl` holds its phoneme units'
frames, as `unispeech data align` found them (the aligner of `train/RUNS.md`, over all real clips).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path


@dataclass(frozen=True)
class Sample:
    path: Path
    text: str
    durations: Path  # its phoneme durations (`phoneme_durations.read_durations`)


LJSPEECH_SAMPLE = Sample(
    path=Path(str(files(__package__) / "LJ001-0174.wav")),
    text="should be a part of the whole scheme of the book.",
    durations=Path(str(files(__package__) / "durations.jsonl")),
)
