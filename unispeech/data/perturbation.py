"""Perturbed copies of speech: noise at a random SNR and speed perturbation, deterministic per clip.

Few speakers make an ASR adapter memorise their voices. Resampling a clip by a factor near 1 (the
speed perturbation of Ko et al. 2015, as Kaldi does it: tempo and pitch move together) makes
voices the data lacks, and Gaussian noise at a random signal-to-noise ratio teaches it to hear
through hiss. `Augmentation` perturbs one 16 kHz clip, the same way every time for the same key
and seed, so a perturbed corpus is reproducible and N-best lists can say which copy whisper heard
(`nbest.py`). `perturb_manifest` writes `copies` perturbed copies of every utterance of a manifest
as 16 kHz wavs with a manifest of their own, a source like any other for `unispeech train` (its
encoder states are cached as the originals' are). Time masks, the perturbation that costs nothing,
fall on cached encoder states instead (`training/augmentation.py`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
import soxr
from tqdm.auto import tqdm

from unispeech.audio.features import WHISPER_SAMPLE_RATE, load_audio
from unispeech.data.manifest import Utterance, read_manifest, relative_audio, write_manifest

SEED_BYTES = 8  # of a sha256, for per-clip random generators
MANIFEST_NAME = "manifest.jsonl"


@dataclass(frozen=True)
class Augmentation:
    """Per-clip perturbations: with `probability`, Gaussian noise at an SNR drawn from `snr_db`
    and a speed factor drawn from `speed` (resampling: tempo and pitch, as Kaldi does)."""

    probability: float = 0.0
    snr_db: tuple[float, float] = (5.0, 20.0)
    speed: tuple[float, float] = (0.9, 1.1)

    def __post_init__(self) -> None:
        if not 0 <= self.probability <= 1:
            raise ValueError(f"probability must be in [0, 1], got {self.probability}")
        if self.snr_db[0] > self.snr_db[1] or self.speed[0] > self.speed[1] or self.speed[0] <= 0:
            raise ValueError(f"need low <= high and speed > 0, got snr_db={self.snr_db}, speed={self.speed}")

    def apply(self, audio: np.ndarray, key: str, seed: int = 0) -> np.ndarray:
        """`audio` (16 kHz), perturbed or not, the same way every time for the same `key`; a clip
        left alone is returned as it is (the same array)."""
        digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()[:SEED_BYTES]
        rng = np.random.default_rng(int.from_bytes(digest, "little"))
        if rng.random() >= self.probability:
            return audio
        factor = rng.uniform(*self.speed)
        audio = soxr.resample(audio, WHISPER_SAMPLE_RATE * factor, WHISPER_SAMPLE_RATE).astype(np.float32)
        power = float(np.mean(audio**2)) or 1e-10
        snr = rng.uniform(*self.snr_db)
        noise = rng.standard_normal(len(audio)).astype(np.float32) * np.sqrt(power / 10 ** (snr / 10))
        return audio + noise


def perturb_manifest(
    manifest: str | Path,
    out: str | Path,
    copies: int = 1,
    augmentation: Augmentation = Augmentation(probability=1.0),
    seed: int = 0,
    progress: bool = True,
) -> Path:
    """`copies` perturbed copies of every utterance of `manifest`, written to `out/` as 16 kHz wavs
    with `out/manifest.jsonl` (same text, language and speaker; copy k of a clip is drawn with the
    key `"<audio>#k"`). Re-running it rewrites nothing already there, so a stopped run resumes."""
    if copies < 1:
        raise ValueError(f"copies must be at least 1, got {copies}")
    if augmentation.probability != 1:
        raise ValueError(
            f"every copy is perturbed: augmentation.probability must be 1, got {augmentation.probability}"
        )
    utterances = read_manifest(manifest)
    if not utterances:
        raise ValueError(f"{manifest} has no utterances to perturb")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    target = out / MANIFEST_NAME
    written = []
    for utterance in tqdm(utterances, desc="perturb", unit="clip", disable=not progress):
        clip = None
        for copy in range(copies):
            key = f"{utterance.audio}#{copy}"
            path = out / f"{hashlib.sha256(f'{seed}:{key}'.encode()).hexdigest()[:16]}.wav"
            if not path.is_file():
                clip = load_audio(utterance.path(manifest), WHISPER_SAMPLE_RATE) if clip is None else clip
                perturbed = augmentation.apply(clip, key, seed)
                soundfile.write(path, perturbed, WHISPER_SAMPLE_RATE, subtype="FLOAT")
            audio, seconds = relative_audio(path, target), soundfile.info(path).duration
            written.append(Utterance(audio, utterance.text, utterance.lang, utterance.speaker, seconds))
    return write_manifest(target, written)
