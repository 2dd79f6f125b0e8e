"""The zero-shot TTS benchmark: each manifest line's text spoken in the voice of a *different*
recording of the same speaker, scored by round-trip WER, speaker similarity and real-time factor,
beside what real recordings score (the floor and the ceiling).

Pairs: by default each utterance (the *target*) takes its voice prompt from the next utterance of
the same speaker in manifest order (wrapping round), so no line is its own prompt; speakers with a
single utterance, or lines without a speaker, cannot be paired and are skipped and counted. A
pairs file (JSON lines `{"target": AUDIO, "prompt": AUDIO}`, both as a manifest line names its
`audio`) fixes the pairs instead. For every pair:

- round-trip WER: a judge ASR (whisper-base) transcribes the synthesised speech; its errors against
  the target text. The same judge on the target's real recording gives the floor.
- speaker similarity (SIM): cosine of speaker embeddings (resemblyzer, 16 kHz) of the synthesised
  speech and the prompt; the ceiling is the same for the real target recording and the prompt
  (two real clips of one speaker).
- real-time factor: seconds of synthesis compute per second of speech generated.
- duration error: how far the length of the synthesised speech (the duration estimator's choice)
  is from the real recording's, |generated − real| / real, averaged over pairs.

Systems are objects (`Synthesizer`, a judge `asr.Transcriber`, a `SpeakerEncoder`), so tests can
inject ones whose outputs they control. Shapes: `T` samples, `E` embedding width.
"""

from __future__ import annotations

import dataclasses
import json
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import soundfile
from tqdm.auto import tqdm

from unispeech.audio.features import WHISPER_SAMPLE_RATE, AudioError, load_audio
from unispeech.benchmarks.asr import Transcriber
from unispeech.benchmarks.clips import Clip, Skipped, require_some
from unispeech.benchmarks.report import (
    BarChart,
    Report,
    clip_text,
    markdown_table,
    number,
    percent,
    skipped_section,
)
from unispeech.benchmarks.scoring import ErrorCount, count_errors, group_by, total
from unispeech.tasks.synthesis import SynthesisOptions

if TYPE_CHECKING:
    from unispeech.api import Unispeech

SPEAKER_SAMPLE_RATE = 16000  # what resemblyzer's encoder reads
MIN_SPEAKER_SECONDS = 0.2  # a clip trimmed shorter than this by the voice detector is embedded untrimmed
AUDIO_FOLDER = "audio"  # where synthesised clips are kept, under the report folder


class Synthesizer(Protocol):
    """A zero-shot TTS system under test."""

    name: str
    sample_rate: int

    def synthesize(self, text: str, prompt: np.ndarray, prompt_text: str, language: str) -> np.ndarray:
        """`text` in `language` (an ISO code, the manifest's), in the voice of `prompt` (mono float32
        `(T,)` at `sample_rate`, saying `prompt_text`): the generated speech `(T',)` at `sample_rate`."""
        ...


class SpeakerEncoder(Protocol):
    def embed(self, audio: np.ndarray) -> np.ndarray:
        """A speaker embedding `(E,)` of unit length, of mono float32 audio at 16 kHz."""
        ...


@dataclass
class UnispeechSynthesizer:
    speech: Unispeech
    options: SynthesisOptions = field(default_factory=SynthesisOptions)
    name: str = "unispeech"

    @property
    def sample_rate(self) -> int:
        return self.speech.sample_rate

    def synthesize(self, text: str, prompt: np.ndarray, prompt_text: str, language: str) -> np.ndarray:
        options = dataclasses.replace(self.options, language=language)
        return self.speech.speak(text, prompt, prompt_text, options, prompt_sampling_rate=self.sample_rate)


@dataclass
class ResemblyzerEncoder:
    """resemblyzer's GE2E speaker encoder (its weights ship inside the wheel): volume normalised,
    long silences trimmed by its voice detector, then the mean of 1.6 s partial embeddings."""

    encoder: object  # resemblyzer.VoiceEncoder

    @classmethod
    def load(cls, device: str = "cpu") -> ResemblyzerEncoder:
        try:
            with warnings.catch_warnings():  # webrtcvad imports the deprecated pkg_resources
                warnings.simplefilter("ignore")
                from resemblyzer import VoiceEncoder
        except ImportError:
            raise RuntimeError(
                "speaker similarity needs resemblyzer: pip install 'unispeech[eval]'"
            ) from None
        return cls(VoiceEncoder(device, verbose=False))

    def embed(self, audio: np.ndarray) -> np.ndarray:
        from resemblyzer import preprocess_wav

        trimmed = preprocess_wav(audio)  # already at 16 kHz: no resampling
        if len(trimmed) < MIN_SPEAKER_SECONDS * SPEAKER_SAMPLE_RATE:
            trimmed = audio  # all "silence" to the detector (noise, a test clip): embed it all
        embedding = self.encoder.embed_utterance(trimmed.astype(np.float32))
        return embedding / max(float(np.linalg.norm(embedding)), np.finfo(np.float32).tiny)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


@dataclass(frozen=True)
class TtsPair:
    """`target`'s text is spoken in `prompt`'s voice; `target`'s recording is the real reference."""

    target: Clip
    prompt: Clip


def pair_by_speaker(
    clips: Sequence[Clip], speakers: Sequence[str] | None, skipped: list[Skipped]
) -> list[TtsPair]:
    """Each clip (of `speakers`, or all) with the next clip of its speaker, wrapping round; clips that
    cannot be paired are appended to `skipped`."""
    wanted = None if speakers is None else set(speakers)
    by_speaker = group_by(list(clips), lambda clip: clip.utterance.speaker)
    if wanted is not None and not wanted & set(by_speaker):
        raise ValueError(
            f"no utterance of speaker(s) {', '.join(sorted(wanted))}; the manifests have "
            f"{', '.join(list(by_speaker)[:10])}{' …' if len(by_speaker) > 10 else ''}"
        )
    pairs = []
    for clip in clips:
        speaker = clip.utterance.speaker
        if wanted is not None and speaker not in wanted:
            continue
        if speaker is None:
            skipped.append(Skipped.of(clip, "no speaker: no other recording of the voice to prompt with"))
            continue
        own = by_speaker[speaker]
        others = [other for other in own if other.path != clip.path]
        if not others:
            skipped.append(Skipped.of(clip, f"the only recording of speaker {speaker!r}"))
            continue
        position = own.index(clip)
        following = [other for other in own[position + 1 :] + own[:position] if other.path != clip.path]
        pairs.append(TtsPair(clip, following[0]))
    return pairs


def read_pairs(path: str | Path, clips: Sequence[Clip]) -> list[TtsPair]:
    """Pairs from JSON lines `{"target": AUDIO, "prompt": AUDIO}`, each AUDIO as a manifest line
    names it (or its resolved path); anything else raises `ValueError` naming the line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such pairs file: {path}")
    index: dict[str, Clip] = {}
    for clip in clips:
        index.setdefault(clip.utterance.audio, clip)
        index.setdefault(str(clip.path), clip)
    pairs = []
    for line_number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}:{line_number}: {error}") from None
        if not isinstance(record, dict) or not {"target", "prompt"} <= set(record):
            raise ValueError(f'{path}:{line_number}: expected {{"target": AUDIO, "prompt": AUDIO}}')
        target, prompt = (index.get(str(record[key])) for key in ("target", "prompt"))
        unknown = [str(record[key]) for key, clip in (("target", target), ("prompt", prompt)) if clip is None]
        if unknown:
            raise ValueError(f"{path}:{line_number}: not in the manifest(s): {', '.join(unknown)}")
        if target.path == prompt.path:
            raise ValueError(f"{path}:{line_number}: the prompt is the target itself: {record['target']}")
        pairs.append(TtsPair(target, prompt))
    if not pairs:
        raise ValueError(f"{path} holds no pairs")
    return pairs


@dataclass(frozen=True)
class TtsBenchmarkOptions:
    """`listed` pairs are shown in the Markdown (all of them in the JSON)."""

    listed: int = 20

    def __post_init__(self) -> None:
        if self.listed < 0:
            raise ValueError(f"listed must be >= 0, got {self.listed}")


@dataclass(frozen=True)
class TtsItem:
    pair: TtsPair
    generated_seconds: float
    real_seconds: float  # the target's real recording
    compute_seconds: float
    hypothesis: str  # the judge's transcript of the synthesised speech
    real_hypothesis: str  # the judge's transcript of the target's real recording
    count: ErrorCount
    real_count: ErrorCount
    similarity: float  # synthesised vs prompt
    real_similarity: float  # real target vs prompt
    audio_file: str | None = None

    def to_dict(self) -> dict[str, object]:
        target, prompt = self.pair.target, self.pair.prompt
        return {
            "target": target.where,
            "target_audio": target.utterance.audio,
            "prompt": prompt.where,
            "prompt_audio": prompt.utterance.audio,
            "speaker": target.utterance.speaker,
            "lang": target.utterance.lang,
            "text": target.utterance.text,
            "hypothesis": self.hypothesis,
            "real_hypothesis": self.real_hypothesis,
            "error_rate": self.count.rate,
            "real_error_rate": self.real_count.rate,
            "similarity": self.similarity,
            "real_similarity": self.real_similarity,
            "generated_seconds": self.generated_seconds,
            "real_seconds": self.real_seconds,
            "duration_error": self.duration_error,
            "compute_seconds": self.compute_seconds,
            "audio_file": self.audio_file,
        }

    @property
    def duration_error(self) -> float:
        """|generated − real| / real seconds."""
        return abs(self.generated_seconds - self.real_seconds) / self.real_seconds


@dataclass(frozen=True)
class TtsScore:
    """Aggregates of a group of items."""

    name: str
    items: int
    count: ErrorCount  # round trip
    real_count: ErrorCount  # the floor
    similarity: float
    real_similarity: float  # the ceiling
    duration_error: float  # mean over items
    generated_seconds: float
    compute_seconds: float

    @property
    def real_time_factor(self) -> float:
        return self.compute_seconds / self.generated_seconds if self.generated_seconds else float("nan")

    @classmethod
    def of(cls, name: str, items: Sequence[TtsItem]) -> TtsScore:
        return cls(
            name,
            len(items),
            total(item.count for item in items),
            total(item.real_count for item in items),
            float(np.mean([item.similarity for item in items])),
            float(np.mean([item.real_similarity for item in items])),
            float(np.mean([item.duration_error for item in items])),
            sum(item.generated_seconds for item in items),
            sum(item.compute_seconds for item in items),
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "items": self.items,
            "round_trip_error_rate": self.count.rate,
            "round_trip_errors": self.count.errors,
            "reference_units": self.count.units,
            "real_error_rate": self.real_count.rate,
            "similarity": self.similarity,
            "real_similarity": self.real_similarity,
            "duration_error": self.duration_error,
            "generated_seconds": self.generated_seconds,
            "compute_seconds": self.compute_seconds,
            "real_time_factor": self.real_time_factor,
        }


@dataclass
class TtsResult:
    system: str
    judge: str
    items: list[TtsItem]
    skipped: list[Skipped]

    def overall(self) -> TtsScore:
        return TtsScore.of("all", self.items)

    def by_speaker(self) -> list[TtsScore]:
        groups = group_by(self.items, lambda item: item.pair.target.utterance.speaker)
        return [TtsScore.of(name, items) for name, items in groups.items()]


def score_tts(
    pairs: Sequence[TtsPair],
    synthesizer: Synthesizer,
    judge: Transcriber,
    speaker_encoder: SpeakerEncoder,
    skipped: list[Skipped] | None = None,
    audio_dir: str | Path | None = None,
    progress: bool = True,
) -> TtsResult:
    """Speak, judge and compare every pair; pairs whose text, audio or synthesis fails are skipped
    and counted. With `audio_dir`, the synthesised clips are written there as wavs."""
    skipped = [] if skipped is None else skipped
    items = []
    if audio_dir is not None:
        Path(audio_dir).mkdir(parents=True, exist_ok=True)
    rate = synthesizer.sample_rate
    for pair in tqdm(pairs, desc=f"tts {synthesizer.name}", unit="pair", disable=not progress):
        target, prompt = pair.target.utterance, pair.prompt.utterance
        if not target.text.strip() or not prompt.text.strip():
            which = "target" if not target.text.strip() else f"prompt ({pair.prompt.where})"
            skipped.append(Skipped.of(pair.target, f"empty text of the {which}"))
            continue
        try:
            real = pair.target.load(WHISPER_SAMPLE_RATE)
            prompt_audio = pair.prompt.load(rate)
            prompt_16k = load_audio(prompt_audio, SPEAKER_SAMPLE_RATE, rate)
        except AudioError as error:
            skipped.append(Skipped.of(pair.target, str(error)))
            continue
        began = time.perf_counter()
        try:
            generated = synthesizer.synthesize(target.text, prompt_audio, prompt.text, target.lang)
            compute_seconds = time.perf_counter() - began
            generated_16k = load_audio(generated, WHISPER_SAMPLE_RATE, rate)
        except ValueError as error:  # AudioError included: a synthesis that is empty or not finite
            skipped.append(Skipped.of(pair.target, f"synthesis failed: {error}"))
            continue
        hypothesis, real_hypothesis = judge.transcribe([generated_16k, real], [target.lang, target.lang])
        audio_file = None
        if audio_dir is not None:
            audio_file = f"{pair.target.source}-{pair.target.number}.wav".replace("/", "_")
            soundfile.write(Path(audio_dir) / audio_file, generated, rate)
        prompt_embedding = speaker_encoder.embed(prompt_16k)
        items.append(
            TtsItem(
                pair,
                len(generated) / rate,
                len(real) / WHISPER_SAMPLE_RATE,
                compute_seconds,
                hypothesis,
                real_hypothesis,
                count_errors(target.text, hypothesis, target.lang),
                count_errors(target.text, real_hypothesis, target.lang),
                cosine(speaker_encoder.embed(generated_16k), prompt_embedding),
                cosine(speaker_encoder.embed(real), prompt_embedding),
                audio_file,
            )
        )
    require_some(len(items), skipped, "pair")
    return TtsResult(synthesizer.name, judge.name, items, skipped)


SCORE_HEADER = (
    "group",
    "pairs",
    "round-trip WER",
    "real WER (floor)",
    "SIM",
    "real SIM (ceiling)",
    "duration error",
    "RTF",
    "speech generated s",
)


def _score_row(score: TtsScore) -> tuple[object, ...]:
    return (
        score.name,
        score.items,
        percent(score.count.rate),
        percent(score.real_count.rate),
        number(score.similarity),
        number(score.real_similarity),
        percent(score.duration_error),
        number(score.real_time_factor),
        f"{score.generated_seconds:.1f}",
    )


def tts_report(
    result: TtsResult,
    manifests: Sequence[str],
    settings: dict[str, object],
    options: TtsBenchmarkOptions = TtsBenchmarkOptions(),
    command: str | None = None,
) -> Report:
    """The report of a TTS benchmark; `settings` (steps, guidance …) are shown and kept in the JSON."""
    overall, speakers = result.overall(), result.by_speaker()
    notes = [
        f"- system: `{result.system}`; judge ASR: `{result.judge}`; speaker encoder: resemblyzer",
        f"- manifests: {', '.join(f'`{m}`' for m in manifests)}",
        f"- settings: {', '.join(f'{key}={value}' for key, value in settings.items())}",
        *([f"- command: `{command}`"] if command else []),
    ]
    summary = (
        f"{overall.items} pairs scored, {len(result.skipped)} skipped. Round-trip WER "
        f"**{percent(overall.count.rate)}** (the judge on the real recordings: "
        f"{percent(overall.real_count.rate)}), "
        f"speaker similarity **{number(overall.similarity)}** (two real clips of the speaker: "
        f"{number(overall.real_similarity)}), duration error **{percent(overall.duration_error)}** "
        f"(of the real recording's length), real-time factor **{number(overall.real_time_factor)}** "
        f"(synthesis compute seconds per second of speech generated)."
    )
    rows = [
        (
            item.pair.target.where,
            item.pair.prompt.where,
            percent(item.count.rate),
            number(item.similarity),
            clip_text(item.pair.target.utterance.text),
            clip_text(item.hypothesis),
        )
        for item in result.items[: options.listed]
    ]
    listed_note = (
        f" (the first {options.listed}; all are in report.json)" if len(result.items) > options.listed else ""
    )
    body = "\n\n".join(
        [
            summary,
            "## Overall and by speaker\n\n"
            + markdown_table(SCORE_HEADER, [_score_row(overall), *map(_score_row, speakers)]),
            f"## Pairs{listed_note}\n\n"
            + markdown_table(("target", "prompt", "round-trip WER", "SIM", "text", "judge heard"), rows),
            skipped_section(result.skipped),
        ]
    )
    data = {
        "task": "tts",
        "system": result.system,
        "judge": result.judge,
        "manifests": list(manifests),
        "settings": settings,
        "command": command,
        "overall": overall.to_dict(),
        "by_speaker": [score.to_dict() for score in speakers],
        "skipped": [s.to_dict() for s in result.skipped],
        "items": [item.to_dict() for item in result.items],
    }
    chart = BarChart(
        title=f"TTS round trip of {result.system} (judge: {result.judge})",
        ylabel="WER (%) / SIM (× 100)",
        categories=["round-trip WER", "speaker similarity"],
        series={
            "synthesised": [_hundred(overall.count.rate), 100 * overall.similarity],
            "real recordings": [_hundred(overall.real_count.rate), 100 * overall.real_similarity],
        },
    )
    return Report(f"TTS benchmark: {result.system}", body, data, chart, notes)


def _hundred(rate: float | None) -> float | None:
    return None if rate is None else 100 * rate
