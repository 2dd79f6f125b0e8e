"""Speech manifests: the JSON-lines files every tool that reads speech reads.

One utterance a line: `{"audio": path relative to the manifest, "text": str, "lang": "en",
"speaker": str (optional), "dur": seconds (optional)}`. Paths are relative to the manifest's own
folder, so a manifest and its audio move together; `Utterance.path(manifest)` resolves them. A
manifest is written atomically (to a temporary file renamed into place), so a crash never leaves
half a manifest behind.

`validate_manifest` lists what is wrong with a manifest's utterances (missing or unreadable audio,
empty text, a `dur` the file disagrees with, audio used twice) without stopping at the first;
`with_durations` fills missing `dur` fields; `split_manifest` splits utterances into train and dev
deterministically, by speaker or by utterance. Audio is only probed with `soundfile.info`, which
reads the file's header and decodes nothing, so checking thousands of files takes seconds.
"""

from __future__ import annotations

import enum
import hashlib
import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal

import soundfile

from unispeech.files import atomic_write_text

DEFAULT_LANGUAGE = "en"
DURATION_DECIMALS = 3  # durations are stored to the millisecond
DURATION_TOLERANCE_SECONDS = 0.05  # how far a manifest's `dur` may be from the file's own length
HASH_FRACTION_BYTES = 8  # the leading bytes of a sha256 read as a fraction in [0, 1)

SplitBy = Literal["speaker", "utterance"]


class ManifestError(ValueError):
    """A manifest line that cannot be read: the message names the file and the line."""


class AudioFileError(ValueError):
    """An audio file that is missing or that soundfile cannot read: the message names it and why."""


class ProblemKind(str, enum.Enum):
    """What is wrong with one utterance (of a manifest, or of a corpus being imported)."""

    MISSING_AUDIO = "missing-audio"
    UNREADABLE_AUDIO = "unreadable-audio"
    EMPTY_AUDIO = "empty-audio"
    EMPTY_TEXT = "empty-text"
    DURATION_MISMATCH = "duration-mismatch"
    DUPLICATE_AUDIO = "duplicate-audio"
    # Only importers report these: the corpus on disk does not parse.
    MISSING_TRANSCRIPT = "missing-transcript"
    UNREADABLE_TRANSCRIPT = "unreadable-transcript"
    MALFORMED_NAME = "malformed-name"
    MALFORMED_LINE = "malformed-line"


@dataclass(frozen=True)
class Problem:
    """One problem found: `line` is the 1-based line of the manifest (or of an importer's metadata
    file; None where there is no line), `audio` the audio path as that file or folder names it."""

    line: int | None
    audio: str
    kind: ProblemKind
    message: str

    def __str__(self) -> str:
        where = self.audio if self.line is None else f"line {self.line}: {self.audio}"
        return f"{where}: {self.kind.value}: {self.message}"


@dataclass(frozen=True)
class Utterance:
    audio: str  # relative to the manifest's folder (or absolute)
    text: str
    lang: str = DEFAULT_LANGUAGE
    speaker: str | None = None
    dur: float | None = None

    def path(self, manifest: str | Path) -> Path:
        """The audio file, resolved against the manifest's folder."""
        return Path(manifest).parent / self.audio

    def to_json(self) -> str:
        record = {key: value for key, value in asdict(self).items() if value is not None}
        return json.dumps(record, ensure_ascii=False)


def read_manifest(path: str | Path) -> list[Utterance]:
    """All utterances of a manifest; a malformed line raises `ManifestError` naming it."""
    return [utterance for _, utterance in _read_numbered(path)]


def _read_numbered(path: str | Path) -> list[tuple[int, Utterance]]:
    """Each utterance with its 1-based line number (blank lines are skipped but counted)."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"no such manifest: {path}")
    utterances = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            utterances.append((number, _utterance(record)))
        except (json.JSONDecodeError, TypeError, ValueError) as error:
            raise ManifestError(f"{path}:{number}: {error}") from None
    return utterances


def _utterance(record: object) -> Utterance:
    if not isinstance(record, dict):
        raise ValueError(f"a manifest line must be a JSON object, got {type(record).__name__}")
    missing = [key for key in ("audio", "text") if key not in record]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    if not isinstance(record["audio"], str) or not isinstance(record["text"], str):
        raise ValueError("'audio' and 'text' must be strings")
    dur = record.get("dur")
    if dur is not None and (not isinstance(dur, (int, float)) or dur < 0):
        raise ValueError(f"'dur' must be a non-negative number of seconds, got {dur!r}")
    return Utterance(
        audio=record["audio"],
        text=record["text"],
        lang=str(record.get("lang") or DEFAULT_LANGUAGE),
        speaker=None if record.get("speaker") is None else str(record["speaker"]),
        dur=None if dur is None else float(dur),
    )


def write_manifest(path: str | Path, utterances: Iterable[Utterance]) -> Path:
    """Write utterances as JSON lines, atomically."""
    return atomic_write_text(path, "".join(utterance.to_json() + "\n" for utterance in utterances))


def relative_audio(audio: Path, manifest: str | Path) -> str:
    """`audio`'s path as a manifest beside `manifest` stores it: relative to its folder."""
    return os.path.relpath(Path(audio).resolve(), Path(manifest).resolve().parent)


def audio_duration(path: str | Path) -> float:
    """Seconds of audio in `path` (to the millisecond), from its header: nothing is decoded.

    A missing or unreadable file raises `AudioFileError` naming it."""
    path = Path(path)
    if not path.is_file():
        raise AudioFileError(f"no such audio file: {path}")
    try:
        info = soundfile.info(str(path))
    except (soundfile.SoundFileError, RuntimeError, TypeError) as error:
        raise AudioFileError(f"cannot read audio file {path}: {error}") from None
    if info.samplerate <= 0:
        raise AudioFileError(f"cannot read audio file {path}: sample rate {info.samplerate}")
    return round(info.frames / info.samplerate, DURATION_DECIMALS)


def with_durations(utterances: Iterable[Utterance], manifest: str | Path) -> list[Utterance]:
    """The utterances with each missing `dur` read from its file's header (paths resolved against
    `manifest`); a `dur` already there is kept. An unreadable file raises `AudioFileError`:
    `validate_manifest` lists every such file at once."""
    return [
        utterance
        if utterance.dur is not None
        else replace(utterance, dur=audio_duration(utterance.path(manifest)))
        for utterance in utterances
    ]


def validate_manifest(
    path: str | Path, check_audio: bool = True, duration_tolerance: float = DURATION_TOLERANCE_SECONDS
) -> list[Problem]:
    """Every problem of a manifest's utterances, in line order; an empty list means none.

    Always checked: empty (or whitespace-only) text, and audio that an earlier line already uses
    (reported on each later line, naming the first). With `check_audio`, each file is also probed
    with `soundfile.info`: missing, unreadable, holding no samples, or lasting more than
    `duration_tolerance` seconds more or less than the line's `dur` (when it has one). A bad
    utterance never raises; a manifest that cannot be read at all raises `ManifestError`.
    """
    if duration_tolerance < 0:
        raise ValueError(f"duration_tolerance must be >= 0 seconds, got {duration_tolerance}")
    problems = []
    first_lines: dict[str, int] = {}  # absolute audio path -> the line that first names it
    for line, utterance in _read_numbered(path):
        audio = utterance.path(path)
        if not utterance.text.strip():
            problems.append(Problem(line, utterance.audio, ProblemKind.EMPTY_TEXT, "text is empty"))
        first_line = first_lines.setdefault(os.path.abspath(audio), line)
        if first_line != line:
            message = f"line {first_line} already uses this audio file"
            problems.append(Problem(line, utterance.audio, ProblemKind.DUPLICATE_AUDIO, message))
        if check_audio:
            problems.extend(_audio_problems(line, utterance, audio, duration_tolerance))
    return problems


def _audio_problems(line: int, utterance: Utterance, audio: Path, tolerance: float) -> list[Problem]:
    if not audio.is_file():
        return [Problem(line, utterance.audio, ProblemKind.MISSING_AUDIO, f"no such audio file: {audio}")]
    try:
        duration = audio_duration(audio)
    except AudioFileError as error:
        return [Problem(line, utterance.audio, ProblemKind.UNREADABLE_AUDIO, str(error))]
    if duration == 0:
        return [Problem(line, utterance.audio, ProblemKind.EMPTY_AUDIO, f"{audio} holds no samples")]
    if utterance.dur is not None and abs(utterance.dur - duration) > tolerance:
        message = (
            f"'dur' is {utterance.dur:.3f} s but the file lasts {duration:.3f} s (tolerance {tolerance} s)"
        )
        return [Problem(line, utterance.audio, ProblemKind.DURATION_MISMATCH, message)]
    return []


def _speaker_group(utterance: Utterance) -> str:
    # An utterance without a speaker is a group of its own, which no speaker's name can collide with.
    return _utterance_group(utterance) if utterance.speaker is None else f"speaker\0{utterance.speaker}"


def _utterance_group(utterance: Utterance) -> str:
    return f"audio\0{utterance.audio}"


_GROUPS: dict[str, Callable[[Utterance], str]] = {"speaker": _speaker_group, "utterance": _utterance_group}


def _hash_fraction(seed: int, group: str) -> float:
    """A fraction in [0, 1) that depends on `seed` and `group` alone."""
    digest = hashlib.sha256(f"{seed}\0{group}".encode()).digest()
    return int.from_bytes(digest[:HASH_FRACTION_BYTES], "big") / 2 ** (8 * HASH_FRACTION_BYTES)


def split_manifest(
    utterances: Sequence[Utterance], dev_fraction: float, by: SplitBy = "speaker", seed: int = 0
) -> tuple[list[Utterance], list[Utterance]]:
    """`(train, dev)`: the utterances split into two sides, each keeping the input's order.

    Utterances are put in groups — by speaker (an utterance without a speaker is its own group), or
    each utterance alone (utterances naming the same audio file share a group) — and a group goes
    to dev when the sha256 of `seed` and its name, read as a fraction in [0, 1), falls below
    `dev_fraction`. So a split is the same whatever the input's order, a group never straddles the
    two sides, adding groups never moves the others, and `dev_fraction` is the expected fraction
    of groups (speakers), not of utterances. Should hashing leave a side empty, the one group whose
    hash lies nearest the cut moves over, so both sides are non-empty; fewer than two groups (one
    speaker, by speaker) cannot be split and raise `ValueError`.
    """
    if not 0 < dev_fraction < 1:
        raise ValueError(f"dev_fraction must lie strictly between 0 and 1, got {dev_fraction}")
    if by not in _GROUPS:
        raise ValueError(f"by must be one of {sorted(_GROUPS)}, got {by!r}")
    group_of = _GROUPS[by]
    fractions = {group: _hash_fraction(seed, group) for group in map(group_of, utterances)}
    if len(fractions) < 2:
        hint = " (all one speaker: split by='utterance')" if by == "speaker" and fractions else ""
        raise ValueError(f"cannot split {len(fractions)} {by} group(s) into train and dev{hint}")
    dev_groups = {group for group, fraction in fractions.items() if fraction < dev_fraction}
    by_fraction = sorted(fractions, key=lambda group: (fractions[group], group))
    if not dev_groups:
        dev_groups = {by_fraction[0]}
    elif len(dev_groups) == len(fractions):
        dev_groups.discard(by_fraction[-1])
    train = [utterance for utterance in utterances if group_of(utterance) not in dev_groups]
    dev = [utterance for utterance in utterances if group_of(utterance) in dev_groups]
    return train, dev
