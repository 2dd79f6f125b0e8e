"""Evaluation clips: the utterances of one or more manifests, each named by its source, with their
audio loaded on demand, and every utterance that cannot be used skipped and counted.

A benchmark must run on a manifest it has never seen, so the policy for bad input is fixed here,
once: a manifest that is missing, empty or malformed (a line that is not a JSON object with
`audio` and `text`) stops the run with one clear error naming the file and line, before any model
loads; an utterance whose text is empty, or whose audio is missing, unreadable, empty or not
finite, is skipped and recorded as a `Skipped` (manifest, line number, audio, reason), and every
report lists those. A run in which nothing is left to score is an error too.

A clip's *source* is its manifest's file name without `.jsonl` (`ljspeech.dev`); two manifests
with the same name are told apart by their folders.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from unispeech.audio.features import AudioError, load_audio
from unispeech.data.manifest import ManifestError, Utterance, read_manifest


@dataclass(frozen=True)
class Clip:
    """One utterance of a manifest: `source` names the manifest, `number` is its 1-based position
    among the manifest's utterances, `path` the resolved audio file."""

    source: str
    number: int
    utterance: Utterance
    path: Path

    @property
    def where(self) -> str:
        return f"{self.source}:{self.number}"

    def load(self, sample_rate: int) -> np.ndarray:
        """The audio, mono float32 `(T,)` at `sample_rate`; raises `AudioError` when unusable."""
        return load_audio(self.path, sample_rate)


@dataclass(frozen=True)
class Skipped:
    """An utterance left out of a benchmark, and why."""

    source: str
    number: int
    audio: str
    reason: str

    def to_dict(self) -> dict[str, object]:
        return {"source": self.source, "number": self.number, "audio": self.audio, "reason": self.reason}

    @classmethod
    def of(cls, clip: Clip, reason: str) -> Skipped:
        return cls(clip.source, clip.number, clip.utterance.audio, reason)


def source_names(manifests: Sequence[str | Path]) -> list[str]:
    """A short, distinct name for each manifest: its stem, then its folder and stem, then its path."""
    paths = [Path(manifest) for manifest in manifests]
    for name_of in (lambda p: p.stem, lambda p: f"{p.parent.name}/{p.stem}", lambda p: str(p)):
        names = [name_of(path) for path in paths]
        if len(set(names)) == len(names):
            return names
    raise ValueError(f"a manifest is given twice: {', '.join(map(str, manifests))}")


def read_clips(
    manifests: Sequence[str | Path], limit: int | None = None, sample: int | None = None
) -> list[Clip]:
    """The clips of `manifests`, in order: of each manifest the first `limit`, or `sample` spread
    evenly over it (every k-th, for manifests sorted by label or speaker), or all when both are None.

    A missing, empty or malformed manifest raises `ManifestError`; audio is not opened here."""
    if not manifests:
        raise ManifestError("no manifest given")
    for name, count in (("limit", limit), ("sample", sample)):
        if count is not None and count < 1:
            raise ValueError(f"{name} must be at least 1 utterance, got {count}")
    if limit is not None and sample is not None:
        raise ValueError("give limit or sample, not both")
    clips = []
    for manifest, source in zip(manifests, source_names(manifests), strict=True):
        utterances = read_manifest(manifest)
        if not utterances:
            raise ManifestError(f"{manifest} holds no utterances")
        numbered = list(enumerate(utterances, start=1))
        if sample is not None and sample < len(numbered):
            numbered = [numbered[i * len(numbered) // sample] for i in range(sample)]
        clips += [
            Clip(source, number, utterance, utterance.path(manifest))
            for number, utterance in numbered[:limit]
        ]
    return clips


def load_usable(
    clips: Sequence[Clip], sample_rate: int, skipped: list[Skipped]
) -> list[tuple[Clip, np.ndarray]]:
    """Each clip with its audio at `sample_rate`; clips with empty text or unusable audio are left
    out and appended to `skipped`."""
    usable = []
    for clip in clips:
        if not clip.utterance.text.strip():
            skipped.append(Skipped.of(clip, "empty text"))
            continue
        try:
            usable.append((clip, clip.load(sample_rate)))
        except AudioError as error:
            skipped.append(Skipped.of(clip, str(error)))
    return usable


def require_some(scored: int, skipped: Sequence[Skipped], what: str = "utterance") -> None:
    """Raise a clear error when nothing was left to score."""
    if scored == 0:
        first = (
            f"; the first: {skipped[0].source}:{skipped[0].number}: {skipped[0].reason}" if skipped else ""
        )
        raise ValueError(f"no {what} could be scored: {len(skipped)} skipped{first}")
