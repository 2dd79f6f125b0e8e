"""Phoneme durations of a corpus: train the aligner on its clips, then write frames per phoneme.

`unispeech data align` runs this once per corpus, before TTS training: every clip of the given
manifests is phonemized (`model/phonemes.py`) and turned into the vocoder's normalised log-mel, the
forward-sum aligner (`aligner.py`) is trained on all of them (alignment is learned without
labels, so dev clips may take part: no text or speech of theirs reaches the TTS model this way),
and each clip's MAS path becomes its durations. The result is a JSON-lines file beside the
aligner's weights, one `AlignedClip` a line — the audio path (relative to the file, as manifests
store it), the phoneme string and the frames of each of its ids, `<sil>` first and last — which
TTS sources name as `durations:`. `duration_statistics` summarises them per unit class (`data
align` writes them to `statistics.json`); `eval/alignment.py` checks word ends against whisper's
and plots one clip's alignment over its mel.

Shapes: `B` clips, `N` phonemes, `F` vocoder mel frames, `M` mel bins.
"""

from __future__ import annotations

import itertools
import json
import logging
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from unispeech.audio.features import MelSettings, load_audio, vocoder_log_mel
from unispeech.data.aligner import AlignerConfig, PhonemeAligner, durations, hard_alignment
from unispeech.data.manifest import read_manifest, relative_audio
from unispeech.files import atomic_write_text
from unispeech.model.configuration import UnispeechLMConfig
from unispeech.model.phonemes import (
    PAD_ID,
    PAUSE_SYMBOLS,
    UNIT_WIDTH,
    Phonemizer,
    phoneme_units,
    unit_sound,
    unit_tensor,
)

logger = logging.getLogger(__name__)

DURATIONS_FILE = "durations.jsonl"
ALIGNER_FILE = "aligner.pt"
VOWELS = frozenset("aeiouyæɑɐɒɔəɘɚɛɜɝɞɤɨɪɯɵøœɶʉʊʌʏᵻ")


@dataclass(frozen=True)
class AlignerTraining:
    """Adam on batches of about `batch_frames` mel frames; the binarisation loss joins at
    `binarization_start` (RAD-TTS: once the soft alignment has found the diagonal)."""

    steps: int = 1500
    batch_frames: int = 12_000
    lr: float = 1e-3
    binarization_start: int = 500
    binarization_weight: float = 1.0
    seed: int = 0


@dataclass(frozen=True)
class AlignedClip:
    audio: str  # relative to the durations file
    phonemes: str
    durations: tuple[int, ...]  # frames of each unit of phoneme_units(phonemes)

    @property
    def frames(self) -> int:
        return sum(self.durations)


@dataclass
class _Clip:
    audio: Path
    phonemes: str
    units: torch.Tensor  # (N, W)
    mel: torch.Tensor  # (F, M), normalised


def load_clips(
    manifests: Sequence[str | Path], config: UnispeechLMConfig, show_progress: bool = True
) -> list[_Clip]:
    """Every utterance of `manifests`, phonemized (per language, batched) and as normalised mel."""
    settings: MelSettings = config.mel_settings
    utterances = [(u, Path(m)) for m in manifests for u in read_manifest(m)]
    phonemizer, phonemes = Phonemizer(), {}
    for language in sorted({u.lang for u, _ in utterances}):
        chosen = [u for u, _ in utterances if u.lang == language]
        phonemes.update(
            zip((id(u) for u in chosen), phonemizer.phonemes([u.text for u in chosen], language), strict=True)
        )
    clips = []
    for utterance, manifest in tqdm(utterances, desc="mel", unit="clip", disable=not show_progress):
        audio = utterance.path(manifest).resolve()
        mel = vocoder_log_mel(load_audio(audio, settings.sample_rate), settings).T  # (F, M)
        ipa = phonemes[id(utterance)]
        clips.append(
            _Clip(audio, ipa, unit_tensor(phoneme_units(ipa)), (mel - config.mel_mean) / config.mel_std)
        )
    return clips


def _batches(clips: list[_Clip], batch_frames: int, rng: random.Random) -> list[list[int]]:
    """Clips sorted by length, cut into runs of about `batch_frames` padded frames, shuffled."""
    order = sorted(range(len(clips)), key=lambda i: len(clips[i].mel))
    batches, current = [], []
    for index in order:
        if current and len(clips[index].mel) * (len(current) + 1) > batch_frames:
            batches.append(current)
            current = []
        current.append(index)
    batches.append(current)
    rng.shuffle(batches)
    return batches


def _collate(clips: list[_Clip]) -> tuple[torch.Tensor, ...]:
    phoneme_lengths = torch.tensor([len(c.units) for c in clips])
    mel_lengths = torch.tensor([len(c.mel) for c in clips])
    phonemes = torch.full((len(clips), int(phoneme_lengths.max()), UNIT_WIDTH), PAD_ID)
    mel = torch.zeros(len(clips), int(mel_lengths.max()), clips[0].mel.shape[1])
    for row, clip in enumerate(clips):
        phonemes[row, : len(clip.units)] = clip.units
        mel[row, : len(clip.mel)] = clip.mel
    return phonemes, phoneme_lengths, mel, mel_lengths


def train_aligner(
    clips: list[_Clip], training: AlignerTraining = AlignerTraining(), show_progress: bool = True
) -> tuple[PhonemeAligner, list[dict[str, float]]]:
    """A `PhonemeAligner` trained on `clips`, and its loss per step."""
    torch.manual_seed(training.seed)
    rng = random.Random(training.seed)
    aligner = PhonemeAligner(AlignerConfig(mel_bins=clips[0].mel.shape[1]))
    optimizer = torch.optim.Adam(aligner.parameters(), lr=training.lr)
    history, batches = [], []
    for step in tqdm(range(training.steps), desc="aligner", unit="step", disable=not show_progress):
        if not batches:
            batches = _batches(clips, training.batch_frames, rng)
        phonemes, phoneme_lengths, mel, mel_lengths = _collate([clips[i] for i in batches.pop()])
        log_probs = aligner(phonemes, phoneme_lengths, mel, mel_lengths)
        forward_sum = aligner.forward_sum_loss(log_probs, phoneme_lengths, mel_lengths)
        loss, record = forward_sum, {"step": step + 1, "forward_sum": forward_sum.item()}
        if step >= training.binarization_start:
            hard = hard_alignment(log_probs, phoneme_lengths, mel_lengths)
            binarization = aligner.binarization_loss(log_probs, hard)
            loss = loss + training.binarization_weight * binarization
            record["binarization"] = binarization.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append(record)
    return aligner.eval(), history


@torch.no_grad()
def align_clips(
    aligner: PhonemeAligner, clips: list[_Clip], folder: Path, batch_frames: int = 12_000
) -> list[AlignedClip]:
    """Each clip's durations by MAS over the aligner's log-probabilities, paths relative to `folder`."""
    aligned = {}
    for indices in _batches(clips, batch_frames, random.Random(0)):
        phonemes, phoneme_lengths, mel, mel_lengths = _collate([clips[i] for i in indices])
        log_probs = aligner(phonemes, phoneme_lengths, mel, mel_lengths)
        found = durations(hard_alignment(log_probs, phoneme_lengths, mel_lengths), phoneme_lengths)
        for index, counts in zip(indices, found, strict=True):
            clip = clips[index]
            aligned[index] = AlignedClip(
                relative_audio(clip.audio, folder / DURATIONS_FILE), clip.phonemes, tuple(counts)
            )
    return [aligned[index] for index in range(len(clips))]


def even_durations(units: int, frames: int) -> tuple[int, ...]:
    """`frames` spread as evenly as whole frames allow over `units` (≥ 1 each): a stand-in for
    the aligner where only the shapes matter (tests, `unispeech check`)."""
    if frames < units:
        raise ValueError(f"{frames} frames cannot give each of {units} units one")
    return tuple(int(b - a) for a, b in itertools.pairwise(np.linspace(0, frames, units + 1).round()))


def write_durations(path: str | Path, clips: Sequence[AlignedClip]) -> Path:
    lines = (
        json.dumps({**asdict(clip), "durations": list(clip.durations)}, ensure_ascii=False) for clip in clips
    )
    return atomic_write_text(Path(path), "".join(line + "\n" for line in lines))


def read_durations(path: str | Path) -> dict[Path, AlignedClip]:
    """A durations file as {resolved audio path: clip}; a line whose durations do not fit its
    phonemes is an error naming the line."""
    path = Path(path)
    found = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        record = json.loads(line)
        clip = AlignedClip(record["audio"], record["phonemes"], tuple(record["durations"]))
        if len(clip.durations) != len(phoneme_units(clip.phonemes)) or min(clip.durations) < 1:
            raise ValueError(f"{path}:{number}: {len(clip.durations)} durations for {clip.phonemes!r}")
        found[(path.parent / clip.audio).resolve()] = clip
    return found


def phone_class(sound: str) -> str:
    """'pause' (silence, word boundary, punctuation), 'vowel' or 'consonant'."""
    if sound in PAUSE_SYMBOLS:
        return "pause"
    return "vowel" if sound in VOWELS else "consonant"


def duration_statistics(clips: Sequence[AlignedClip], hop_seconds: float) -> dict[str, dict[str, float]]:
    """Per phone class: count, mean and median milliseconds, and the share of one-frame units."""
    by_class: dict[str, list[int]] = {}
    for clip in clips:
        sounds = [unit_sound(unit) for unit in phoneme_units(clip.phonemes)]
        for sound, frames in zip(sounds, clip.durations, strict=True):
            by_class.setdefault(phone_class(sound), []).append(frames)
    return {
        name: {
            "units": len(frames),
            "mean_ms": round(1000 * hop_seconds * float(np.mean(frames)), 1),
            "median_ms": round(1000 * hop_seconds * float(np.median(frames)), 1),
            "one_frame_share": round(float(np.mean(np.asarray(frames) == 1)), 3),
        }
        for name, frames in sorted(by_class.items())
    }
