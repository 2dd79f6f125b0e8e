"""Non-speech audio: the clips a recogniser must answer with nothing.

An attention decoder trained only on speech writes a sentence for anything it hears; white noise
and a clipped square wave came back as invented sentences. This module makes the counter-examples
— white, pink and brown noise, hum, near-silence, steady and warbling tones, chords, clipped square
waves and note sequences (music-like) — each a seeded function of its index, at a random level,
and writes them as a corpus whose transcripts are empty (`unispeech data nonspeech`). The same
kinds, with other seeds, are the dev clips that check "non-speech → ''" on every surface.

Everything is synthesised with numpy: there is no well-kept library of test signals to take them
from, and each kind is a few lines.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile
from tqdm.auto import tqdm

from unispeech.audio.features import WHISPER_SAMPLE_RATE
from unispeech.data.manifest import Utterance, relative_audio, write_manifest

SECONDS_RANGE = (0.5, 12.0)  # drawn per clip, log-uniform
LEVEL_RANGE_DB = (-40.0, -3.0)  # peak level below full scale, uniform
TONE_RANGE_HZ = (60.0, 4000.0)
CORPUS_SPEAKER = "nonspeech"
SEEDS_PER_CORPUS = 1_000_003  # clip seeds of corpus seed s: s·this + index, so corpora never share a clip


def _white(rng: np.random.Generator, n: int, rate: int) -> np.ndarray:
    return rng.standard_normal(n)


def _coloured(rng: np.random.Generator, n: int, rate: int, exponent: float) -> np.ndarray:
    """Noise whose power falls as 1/f^exponent (1: pink, 2: brown), shaped in the frequency domain."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    frequencies = np.fft.rfftfreq(n, 1 / rate)
    spectrum[1:] /= frequencies[1:] ** (exponent / 2)
    spectrum[0] = 0
    return np.fft.irfft(spectrum, n)


def _pink(rng: np.random.Generator, n: int, rate: int) -> np.ndarray:
    return _coloured(rng, n, rate, 1.0)


def _brown(rng: np.random.Generator, n: int, rate: int) -> np.ndarray:
    return _coloured(rng, n, rate, 2.0)


def _silence(rng: np.random.Generator, n: int, rate: int) -> np.ndarray:
    """Digital silence or a faint hiss (a muted microphone), chosen at random."""
    return rng.standard_normal(n) * (1e-3 if rng.random() < 0.5 else 0.0)


def _hum(rng: np.random.Generator, n: int, rate: int) -> np.ndarray:
    """Mains hum (50 or 60 Hz) with its odd harmonics."""
    base, t = rng.choice([50.0, 60.0]), np.arange(n) / rate
    return sum(np.sin(2 * np.pi * base * k * t) / k for k in (1, 3, 5, 7))


def _tone(rng: np.random.Generator, n: int, rate: int) -> np.ndarray:
    """A steady sine or one that warbles (vibrato), at a log-uniform pitch."""
    t = np.arange(n) / rate
    frequency = np.exp(rng.uniform(*np.log(TONE_RANGE_HZ)))
    vibrato = rng.uniform(0, 0.05) * frequency * np.sin(2 * np.pi * rng.uniform(2, 8) * t)
    return np.sin(2 * np.pi * np.cumsum(frequency + vibrato) / rate)


def _chord(rng: np.random.Generator, n: int, rate: int) -> np.ndarray:
    t, root = np.arange(n) / rate, rng.uniform(110, 440)
    return sum(np.sin(2 * np.pi * root * ratio * t) for ratio in (1.0, 1.25, 1.5))


def _square(rng: np.random.Generator, n: int, rate: int) -> np.ndarray:
    """A square wave driven into clipping: what a broken input stage sends."""
    t = np.arange(n) / rate
    return np.clip(3 * np.sign(np.sin(2 * np.pi * rng.uniform(50, 1000) * t)), -1, 1)


def _notes(rng: np.random.Generator, n: int, rate: int) -> np.ndarray:
    """Music-like: a sequence of harmonic notes of random length, with a soft attack and decay."""
    out, start = np.zeros(n), 0
    while start < n:
        length = min(n - start, int(rng.uniform(0.1, 0.6) * rate))
        t = np.arange(length) / rate
        pitch = 220 * 2 ** (rng.integers(-12, 13) / 12)
        note = sum(np.sin(2 * np.pi * pitch * k * t) / k**1.5 for k in range(1, 6))
        out[start : start + length] = note * np.exp(-3 * t) * np.minimum(1, t * 200)
        start += length
    return out


KINDS: dict[str, Callable[[np.random.Generator, int, int], np.ndarray]] = {
    "white": _white,
    "pink": _pink,
    "brown": _brown,
    "silence": _silence,
    "hum": _hum,
    "tone": _tone,
    "chord": _chord,
    "square": _square,
    "notes": _notes,
}


def nonspeech_clip(
    kind: str, seed: int, seconds: float | None = None, sample_rate: int = WHISPER_SAMPLE_RATE
) -> np.ndarray:
    """One clip of `kind` (a key of `KINDS`), float32 mono in [-1, 1], a pure function of its seed.

    Its length is `seconds` or drawn log-uniformly from `SECONDS_RANGE`; its peak level is drawn
    from `LEVEL_RANGE_DB` (silence stays silent)."""
    if kind not in KINDS:
        raise ValueError(f"unknown non-speech kind {kind!r}; known: {', '.join(KINDS)}")
    rng = np.random.default_rng([seed, list(KINDS).index(kind)])
    if seconds is None:
        seconds = float(np.exp(rng.uniform(*np.log(SECONDS_RANGE))))
    signal = np.asarray(KINDS[kind](rng, max(1, round(seconds * sample_rate)), sample_rate), dtype=np.float64)
    peak = np.abs(signal).max()
    if kind != "silence" and peak > 0:
        signal *= 10 ** (rng.uniform(*LEVEL_RANGE_DB) / 20) / peak
    return signal.astype(np.float32)


def write_nonspeech_corpus(folder: str | Path, count: int, seed: int = 0, show_progress: bool = True) -> Path:
    """`count` clips, the kinds in turn, as `folder/{kind}-{index}.flac` and `folder/manifest.jsonl`
    with empty transcripts; clips already written are kept (a re-run redoes nothing)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / "manifest.jsonl"
    utterances = []
    for index in tqdm(range(count), desc="non-speech", unit="clip", disable=not show_progress):
        kind = list(KINDS)[index % len(KINDS)]
        path = folder / f"{kind}-{index:05d}.flac"
        if not path.is_file():
            soundfile.write(path, nonspeech_clip(kind, seed * SEEDS_PER_CORPUS + index), WHISPER_SAMPLE_RATE)
        seconds = soundfile.info(path).duration
        utterances.append(Utterance(relative_audio(path, manifest), "", speaker=CORPUS_SPEAKER, dur=seconds))
    write_manifest(manifest, utterances)
    return manifest
