"""The ASR benchmark: word error rate (CER for ja/ko/zh) and real-time factor of a transcriber on
manifests, per language, per source (manifest) and per speaker, with the worst utterances listed.

A system is any `Transcriber`: 16 kHz clips and their manifest languages in, one transcript each
out. Two come with the package: `UnispeechTranscriber` (a loaded `Unispeech`, with whatever
adapters it carries) and `WhisperTranscriber` (openai-whisper base, greedy at temperature 0, the
language taken from the manifest: the baseline everything is compared with). Tests inject their
own. Audio is loaded (and resampled) before the clock starts, so the real-time factor counts the
system's compute only: seconds of compute per second of audio (below 1 is faster than real time;
RTFx is its inverse). Error rates are corpus rates, summed errors over summed reference words, as
`scoring.py` explains. For a unispeech model the report can also say whether it listens:
`score_reliance` scores the references with their own speech, another clip's and none
(`evaluation/reliance.py`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Protocol

import numpy as np
from tqdm.auto import tqdm

from unispeech.audio.features import WHISPER_SAMPLE_RATE
from unispeech.benchmarks.clips import Clip, Skipped, load_usable, require_some
from unispeech.benchmarks.report import (
    BarChart,
    Report,
    clip_text,
    markdown_table,
    number,
    percent,
    skipped_section,
)
from unispeech.benchmarks.scoring import ErrorCount, count_errors, group_by, metric_name, total
from unispeech.evaluation.reliance import AudioReliance, audio_reliance
from unispeech.model.cpu_weights import DEFAULT_WEIGHT_FORMAT
from unispeech.model.sequences import ASR
from unispeech.tasks.decoding import DecodingOptions
from unispeech.tasks.transcription import TranscriptionOptions

if TYPE_CHECKING:
    from whisper.model import Whisper

    from unispeech.api import Unispeech

WHISPER_BASE = "whisper-base"  # the --model name of openai-whisper base decoding
ALL = "all"


class Transcriber(Protocol):
    """A speech recogniser under test."""

    name: str

    def transcribe(self, audios: Sequence[np.ndarray], languages: Sequence[str]) -> list[str]:
        """One transcript per clip: mono float32 `(T,)` at 16 kHz, in the given language."""
        ...


@dataclass
class WhisperTranscriber:
    """openai-whisper's own `transcribe`: greedy (temperature 0, no fallback), one clip at a time,
    the language given rather than detected."""

    model: Whisper
    name: str = WHISPER_BASE

    def transcribe(self, audios: Sequence[np.ndarray], languages: Sequence[str]) -> list[str]:
        fp16 = self.model.device.type == "cuda"
        return [
            self.model.transcribe(audio, language=language, temperature=0.0, fp16=fp16, verbose=None)[
                "text"
            ].strip()
            for audio, language in zip(audios, languages, strict=True)
        ]


@dataclass
class UnispeechTranscriber:
    """A `Unispeech` model's ASR. With `language_hint`, each clip's manifest language is given to
    the model (`TranscriptionOptions.language`): only for adapters trained with the hint (recipes'
    `language_hint`, off by default), as a prompt they never saw would mislead the others. Clips of
    one language are decoded as one batch."""

    speech: Unispeech
    options: TranscriptionOptions = field(default_factory=TranscriptionOptions)
    language_hint: bool = False
    name: str = "unispeech"

    def transcribe(self, audios: Sequence[np.ndarray], languages: Sequence[str]) -> list[str]:
        texts = [""] * len(audios)
        by_language = group_by(list(range(len(audios))), lambda i: languages[i])
        for language, indices in by_language.items():
            options = replace(self.options, language=language if self.language_hint else None)
            results = self.speech.transcribe(
                [audios[i] for i in indices], options, sampling_rate=WHISPER_SAMPLE_RATE
            )
            for i, result in zip(indices, results, strict=True):
                texts[i] = result.text
        return texts


def load_transcriber(
    model: str,
    adapters: str | None = "shipped",
    whisper_weights: str = "smol",
    language_hint: bool = False,
    batch_size: int = TranscriptionOptions().batch_size,
    decoding: DecodingOptions = DecodingOptions(),
    weight_format: str = DEFAULT_WEIGHT_FORMAT,
    languages: Sequence[str] = (),
) -> Transcriber:
    """`"whisper-base"` (openai-whisper base from the `whisper_weights` cache name or file), or a
    unispeech model by name or folder with its adapters in English and `languages` and `weight_format` (see
    `unispeech.load`), decoding as `decoding` says (its CTC options, `ctc_weight` and `speculative`,
    among others)."""
    if model == WHISPER_BASE:
        if decoding != DecodingOptions():
            raise ValueError(
                f"decoding options are for a unispeech model; {WHISPER_BASE} decodes as openai-whisper "
                f"does (greedy, no CTC head), got {decoding}"
            )
        from unispeech.weights.pretrained import load_whisper

        return WhisperTranscriber(load_whisper(whisper_weights))
    from unispeech.api import load

    options = TranscriptionOptions(decoding=decoding, batch_size=batch_size)
    speech = load(model, adapters=adapters, languages=languages, weight_format=weight_format)
    return UnispeechTranscriber(speech, options, language_hint, name=model)


def score_reliance(speech: Unispeech, clips: Sequence[Clip], batch_size: int = 8) -> AudioReliance:
    """Mean loss per reference token of the ASR adapter on `clips` with their own speech, another
    clip's and none: what the audio is worth to the model."""
    speech.set_task(ASR)
    texts = [clip.utterance.text for clip in clips]
    return audio_reliance(speech.model, speech.processor, [clip.path for clip in clips], texts, batch_size)


@dataclass(frozen=True)
class AsrBenchmarkOptions:
    """`batch_size` clips are handed to the transcriber at a time; the `worst` utterances and up to
    `speakers_listed` speakers are listed in the Markdown (all of them in the JSON)."""

    batch_size: int = 8
    worst: int = 10
    speakers_listed: int = 20

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.worst < 0 or self.speakers_listed < 0:
            raise ValueError(
                f"need batch_size >= 1, worst >= 0 and speakers_listed >= 0, got {self.batch_size}, "
                f"{self.worst}, {self.speakers_listed}"
            )


@dataclass(frozen=True)
class AsrUtterance:
    clip: Clip
    seconds: float
    hypothesis: str
    count: ErrorCount

    def to_dict(self) -> dict[str, object]:
        utterance = self.clip.utterance
        return {
            "source": self.clip.source,
            "number": self.clip.number,
            "audio": utterance.audio,
            "speaker": utterance.speaker,
            "lang": utterance.lang,
            "seconds": self.seconds,
            "reference": utterance.text,
            "hypothesis": self.hypothesis,
            "errors": self.count.errors,
            "reference_units": self.count.units,
            "error_rate": self.count.rate,
        }


@dataclass(frozen=True)
class GroupScore:
    """The scores of a group of utterances (a language, a source, a speaker, or all)."""

    name: str
    metric: str  # "WER", "CER", or "WER/CER" for a group mixing both
    utterances: int
    audio_seconds: float
    count: ErrorCount

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "metric": self.metric,
            "utterances": self.utterances,
            "audio_seconds": self.audio_seconds,
            "errors": self.count.errors,
            "reference_units": self.count.units,
            "error_rate": self.count.rate,
        }


@dataclass
class AsrResult:
    system: str
    utterances: list[AsrUtterance]
    skipped: list[Skipped]
    compute_seconds: float

    @property
    def audio_seconds(self) -> float:
        return sum(u.seconds for u in self.utterances)

    @property
    def real_time_factor(self) -> float:
        """Compute seconds per audio second."""
        return self.compute_seconds / self.audio_seconds if self.audio_seconds else float("nan")

    @property
    def rtfx(self) -> float:
        """Audio seconds per compute second: how many times faster than real time."""
        return self.audio_seconds / self.compute_seconds if self.compute_seconds else float("inf")

    def overall(self) -> GroupScore:
        return _group_score(ALL, self.utterances)

    def groups(self, key: Callable[[AsrUtterance], str | None]) -> list[GroupScore]:
        return [_group_score(name, items) for name, items in group_by(self.utterances, key).items()]

    def by_language(self) -> list[GroupScore]:
        return self.groups(lambda u: u.clip.utterance.lang)

    def by_source(self) -> list[GroupScore]:
        return self.groups(lambda u: u.clip.source)

    def by_speaker(self) -> list[GroupScore]:
        return self.groups(lambda u: u.clip.utterance.speaker)

    def worst(self, count: int) -> list[AsrUtterance]:
        """The `count` utterances with the highest error rate (ties: more errors first), wrong ones only."""
        wrong = [u for u in self.utterances if u.count.errors]
        return sorted(wrong, key=lambda u: (-(u.count.rate or 0.0), -u.count.errors))[:count]


def _group_score(name: str, utterances: Sequence[AsrUtterance]) -> GroupScore:
    metrics = sorted({metric_name(u.clip.utterance.lang) for u in utterances})
    return GroupScore(
        name,
        "/".join(metrics),
        len(utterances),
        sum(u.seconds for u in utterances),
        total(u.count for u in utterances),
    )


def score_asr(
    clips: Sequence[Clip],
    transcriber: Transcriber,
    options: AsrBenchmarkOptions = AsrBenchmarkOptions(),
    progress: bool = True,
) -> AsrResult:
    """Transcribe every usable clip with `transcriber` and count its errors; unusable clips are
    skipped and counted (`clips.py`). Only the transcriber's calls are timed."""
    skipped: list[Skipped] = []
    utterances: list[AsrUtterance] = []
    compute_seconds = 0.0
    with tqdm(total=len(clips), desc=f"asr {transcriber.name}", unit="clip", disable=not progress) as bar:
        for start in range(0, len(clips), options.batch_size):
            batch = clips[start : start + options.batch_size]
            usable = load_usable(batch, WHISPER_SAMPLE_RATE, skipped)
            if usable:
                audios = [audio for _, audio in usable]
                languages = [clip.utterance.lang for clip, _ in usable]
                began = time.perf_counter()
                hypotheses = transcriber.transcribe(audios, languages)
                compute_seconds += time.perf_counter() - began
                if len(hypotheses) != len(usable):
                    raise RuntimeError(
                        f"{transcriber.name} returned {len(hypotheses)} transcripts for {len(usable)} clips"
                    )
                for (clip, audio), hypothesis in zip(usable, hypotheses, strict=True):
                    count = count_errors(clip.utterance.text, hypothesis, clip.utterance.lang)
                    utterances.append(AsrUtterance(clip, len(audio) / WHISPER_SAMPLE_RATE, hypothesis, count))
            bar.update(len(batch))
    require_some(len(utterances), skipped)
    return AsrResult(transcriber.name, utterances, skipped, compute_seconds)


def _group_rows(groups: Sequence[GroupScore]) -> list[tuple[object, ...]]:
    return [
        (
            g.name,
            g.metric,
            g.utterances,
            f"{g.audio_seconds:.1f}",
            g.count.errors,
            g.count.units,
            percent(g.count.rate),
        )
        for g in groups
    ]


GROUP_HEADER = ("group", "metric", "utterances", "audio s", "errors", "reference units", "error rate")


def asr_report(
    result: AsrResult,
    manifests: Sequence[str],
    options: AsrBenchmarkOptions = AsrBenchmarkOptions(),
    command: str | None = None,
    reliance: AudioReliance | None = None,
) -> Report:
    """The report of an ASR benchmark: Markdown tables, all figures in JSON, error rate by source,
    and `score_reliance`'s figures when given."""
    overall = result.overall()
    sources, languages, speakers = result.by_source(), result.by_language(), result.by_speaker()
    worst = result.worst(options.worst)
    notes = [
        f"- system: `{result.system}`",
        f"- manifests: {', '.join(f'`{m}`' for m in manifests)}",
        *([f"- command: `{command}`"] if command else []),
    ]
    summary = (
        f"{overall.utterances} utterances ({result.audio_seconds:.1f} s of audio) scored, "
        f"{len(result.skipped)} skipped. **{overall.metric} {percent(overall.count.rate)}** "
        f"({overall.count.errors} errors in {overall.count.units} reference units, after Whisper's "
        f"text normalisers). Real-time factor **{number(result.real_time_factor)}** "
        f"(compute seconds per audio second; RTFx {number(result.rtfx, 1)}), "
        f"{result.compute_seconds:.1f} s of compute."
    )
    speaker_note = (
        f"\n\nThe {options.speakers_listed} of {len(speakers)} speakers listed first; all are in report.json."
        if len(speakers) > options.speakers_listed
        else ""
    )
    worst_rows = [
        (u.clip.where, percent(u.count.rate), clip_text(u.clip.utterance.text), clip_text(u.hypothesis))
        for u in worst
    ]
    body = "\n\n".join(
        [
            summary,
            "## By language\n\n" + markdown_table(GROUP_HEADER, _group_rows(languages)),
            "## By source\n\n" + markdown_table(GROUP_HEADER, _group_rows(sources)),
            "## By speaker\n\n"
            + markdown_table(GROUP_HEADER, _group_rows(speakers[: options.speakers_listed]))
            + speaker_note,
            f"## Worst utterances\n\n{len(worst)} with the highest error rate.\n\n"
            + markdown_table(("line", "error rate", "reference", "hypothesis"), worst_rows),
            *([_reliance_section(reliance)] if reliance is not None else []),
            skipped_section(result.skipped),
        ]
    )
    data = {
        "task": "asr",
        "system": result.system,
        "manifests": list(manifests),
        "command": command,
        "overall": overall.to_dict(),
        "audio_seconds": result.audio_seconds,
        "compute_seconds": result.compute_seconds,
        "real_time_factor": result.real_time_factor,
        "rtfx": result.rtfx,
        "by_language": [g.to_dict() for g in languages],
        "by_source": [g.to_dict() for g in sources],
        "by_speaker": [g.to_dict() for g in speakers],
        "worst": [u.to_dict() for u in worst],
        "skipped": [s.to_dict() for s in result.skipped],
        "utterances": [u.to_dict() for u in result.utterances],
        "audio_reliance": None if reliance is None else asdict(reliance),
    }
    if len(sources) > 1:
        groups, by = [*sources, overall], "source"
    elif len(speakers) > 1:
        groups, by = speakers[: options.speakers_listed], "speaker"
    else:
        groups, by = sources, "source"
    chart = BarChart(
        title=f"ASR error rate of {result.system}, by {by}",
        ylabel="error rate (%)",
        categories=[g.name for g in groups],
        series={result.system: [None if g.count.rate is None else 100 * g.count.rate for g in groups]},
    )
    return Report(f"ASR benchmark: {result.system}", body, data, chart, notes)


def _reliance_section(reliance: AudioReliance) -> str:
    rows = [
        ("its own speech", number(reliance.matched)),
        ("another clip's speech", number(reliance.mismatched)),
        ("no speech", number(reliance.no_speech)),
    ]
    return (
        "## Does it listen?\n\nLoss of each reference, in nats per token, given:\n\n"
        + markdown_table(("speech", "nats per token"), rows)
        + f"\n\nThe right speech is worth {number(reliance.gap)} nats per token."
    )
