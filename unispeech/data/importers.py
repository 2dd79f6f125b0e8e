"""Importers: a speech corpus on disk becomes a manifest.

Each importer reads one layout — LJSpeech (`metadata.csv` of `id|raw|normalised` and
`wavs/{id}.wav`), the Free Spoken Digit Dataset (`recordings/{digit}_{speaker}_{index}.wav`), or any
folder of audio files with a same-named `.txt` transcript beside each — and writes a manifest at the
path given, its audio paths relative to that manifest, `dur` read from each file's header and
`lang` from the caller. Nothing is dropped silently: every item left out (audio missing, unreadable
or empty, text empty, a file name or metadata line that does not parse, audio without a transcript)
becomes a `Problem` in the returned `ImportResult`, beside the utterances, so a command line can say
how many were imported, how many were skipped and why. A folder that is not laid out as the
importer expects at all raises `DatasetError`.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from unispeech.data.manifest import (
    DEFAULT_LANGUAGE,
    AudioFileError,
    Problem,
    ProblemKind,
    Utterance,
    audio_duration,
    relative_audio,
    write_manifest,
)

logger = logging.getLogger(__name__)

LJSPEECH_METADATA = "metadata.csv"
LJSPEECH_AUDIO_FOLDER = "wavs"
LJSPEECH_SPEAKER = "ljspeech"
LJSPEECH_SEPARATOR = "|"

FSDD_AUDIO_FOLDER = "recordings"
FSDD_NAME = re.compile(r"(?P<digit>[0-9])_(?P<speaker>[^_]+)_(?P<index>[0-9]+)")  # the file's stem
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

AUDIO_SUFFIXES = frozenset({".wav", ".flac", ".ogg", ".opus", ".mp3", ".aiff", ".aif", ".au", ".w64", ".caf"})
TRANSCRIPT_SUFFIX = ".txt"
SPEAKER_RULES = ("folder", "name")  # a file's speaker: its folder's name, or its own name's first field
NAME_FIELD = re.compile(r"[^-_.]+")  # "103-1240-0000" → "103" (LibriSpeech), "anna_01" → "anna"


class DatasetError(ValueError):
    """A folder that is not laid out as the importer expects: the message names what is missing."""


@dataclass(frozen=True)
class ImportResult:
    """What an importer wrote: the manifest's path, its utterances, and every item left out."""

    manifest: Path
    utterances: list[Utterance]
    problems: list[Problem]

    @property
    def skipped(self) -> Counter[str]:
        """How many items were left out, by problem kind."""
        return Counter(problem.kind.value for problem in self.problems)

    def summary(self) -> str:
        """One line for a log or a command line: counts written and skipped."""
        written = f"{len(self.utterances)} utterances written to {self.manifest}"
        if not self.problems:
            return written
        skipped = ", ".join(f"{count} {kind}" for kind, count in sorted(self.skipped.items()))
        return f"{written}; {len(self.problems)} skipped ({skipped})"


@dataclass(frozen=True)
class _Candidate:
    """An item a layout names, before its audio and text are checked."""

    audio: Path
    text: str
    speaker: str | None
    line: int | None = None  # in the corpus's metadata file, where it has one


def import_ljspeech(
    folder: str | Path,
    manifest: str | Path,
    *,
    speaker: str | None = LJSPEECH_SPEAKER,
    lang: str = DEFAULT_LANGUAGE,
) -> ImportResult:
    """An LJSpeech-style folder as a manifest: `metadata.csv` lines `id|raw|normalised` (the text is
    the normalised column, or the raw one where that is empty), audio in `wavs/{id}.wav`.

    Lines whose audio is absent (a subset of the corpus) are skipped, each a `missing-audio` problem
    with its line number; so are lines with fewer than two columns (`malformed-line`)."""
    folder = Path(folder)
    metadata = folder / LJSPEECH_METADATA
    if not metadata.is_file():
        raise DatasetError(f"no {LJSPEECH_METADATA} in {folder}: pass the folder holding it and wavs/")
    candidates, problems = [], []
    for number, line in enumerate(metadata.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split(LJSPEECH_SEPARATOR, 2)
        identifier = fields[0].strip()
        if len(fields) < 2 or not identifier:
            message = f"expected id|raw|normalised, got {line!r}"
            problems.append(Problem(number, str(metadata), ProblemKind.MALFORMED_LINE, message))
            continue
        normalised = fields[2].strip() if len(fields) == 3 else ""
        audio = folder / LJSPEECH_AUDIO_FOLDER / f"{identifier}.wav"
        candidates.append(_Candidate(audio, normalised or fields[1].strip(), speaker, number))
    return _finish(candidates, problems, Path(manifest), lang)


def import_fsdd(folder: str | Path, manifest: str | Path, *, lang: str = DEFAULT_LANGUAGE) -> ImportResult:
    """The Free Spoken Digit Dataset as a manifest: each `recordings/{digit}_{speaker}_{index}.wav`
    says its digit as an English word ("zero" … "nine"), spoken by `speaker`. A `.wav` whose name
    does not parse is skipped as a `malformed-name` problem."""
    folder = Path(folder)
    recordings = folder / FSDD_AUDIO_FOLDER
    if not recordings.is_dir():
        raise DatasetError(f"no {FSDD_AUDIO_FOLDER}/ folder in {folder}: pass the dataset's root folder")
    candidates, problems = [], []
    for audio in sorted(recordings.glob("*.wav")):
        match = FSDD_NAME.fullmatch(audio.stem)
        if match is None:
            message = "expected {digit}_{speaker}_{index}.wav"
            problems.append(Problem(None, str(audio), ProblemKind.MALFORMED_NAME, message))
            continue
        text = DIGIT_WORDS[int(match["digit"])]
        candidates.append(_Candidate(audio, text, match["speaker"]))
    return _finish(candidates, problems, Path(manifest), lang)


def import_folder(
    folder: str | Path,
    manifest: str | Path,
    *,
    lang: str = DEFAULT_LANGUAGE,
    speaker: str | None = None,
    speaker_from: str | None = None,
) -> ImportResult:
    """Every audio file under `folder` (recursively; suffixes in `AUDIO_SUFFIXES`) with the text of
    the same-named `.txt` beside it (whitespace, newlines included, collapsed to single spaces).

    Audio without a transcript is a `missing-transcript` problem. The speaker is `speaker` for every
    file; or, with `speaker_from="folder"`, the name of the folder each file lies in; with
    `speaker_from="name"`, the first field of the file's name (LibriSpeech's `103-1240-0000` → `103`);
    otherwise utterances have no speaker."""
    if speaker_from not in (None, *SPEAKER_RULES):
        raise ValueError(f"speaker_from must be one of {SPEAKER_RULES} or None, not {speaker_from!r}")
    if speaker is not None and speaker_from is not None:
        raise ValueError("give a speaker or a rule to find it (speaker_from), not both")
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"no such folder: {folder}")
    candidates, problems = [], []
    audio_files = sorted(path for path in folder.rglob("*") if path.suffix.lower() in AUDIO_SUFFIXES)
    for audio in filter(Path.is_file, audio_files):
        transcript = audio.with_suffix(TRANSCRIPT_SUFFIX)
        if not transcript.is_file():
            message = f"no transcript {transcript.name} beside it"
            problems.append(Problem(None, str(audio), ProblemKind.MISSING_TRANSCRIPT, message))
            continue
        try:
            text = " ".join(transcript.read_text(encoding="utf-8").split())
        except UnicodeDecodeError as error:
            message = f"{transcript} is not UTF-8 text: {error}"
            problems.append(Problem(None, str(audio), ProblemKind.UNREADABLE_TRANSCRIPT, message))
            continue
        candidates.append(_Candidate(audio, text, _speaker_of(audio, speaker, speaker_from)))
    return _finish(candidates, problems, Path(manifest), lang)


def _speaker_of(audio: Path, speaker: str | None, speaker_from: str | None) -> str | None:
    if speaker_from == "folder":
        return audio.parent.name
    if speaker_from == "name":
        return NAME_FIELD.match(audio.stem)[0] if NAME_FIELD.match(audio.stem) else audio.stem
    return speaker


def _finish(
    candidates: Iterable[_Candidate], problems: list[Problem], manifest: Path, lang: str
) -> ImportResult:
    """Check each candidate's audio and text, write the manifest of those that pass, log a summary."""
    utterances = []
    for candidate in candidates:
        outcome = _duration_or_problem(candidate)
        if isinstance(outcome, Problem):
            problems.append(outcome)
            continue
        audio = relative_audio(candidate.audio, manifest)
        utterances.append(Utterance(audio, candidate.text, lang, candidate.speaker, dur=outcome))
    write_manifest(manifest, utterances)
    result = ImportResult(manifest, utterances, problems)
    logger.info("%s", result.summary())
    return result


def _duration_or_problem(candidate: _Candidate) -> float | Problem:
    """A candidate's audio duration in seconds or, where something is wrong with it, the problem."""
    audio = str(candidate.audio)
    if not candidate.audio.is_file():
        return Problem(candidate.line, audio, ProblemKind.MISSING_AUDIO, "no such audio file")
    if not candidate.text:
        return Problem(candidate.line, audio, ProblemKind.EMPTY_TEXT, "text is empty")
    try:
        duration = audio_duration(candidate.audio)
    except AudioFileError as error:
        return Problem(candidate.line, audio, ProblemKind.UNREADABLE_AUDIO, str(error))
    if duration == 0:
        return Problem(candidate.line, audio, ProblemKind.EMPTY_AUDIO, "the file holds no samples")
    return duration
