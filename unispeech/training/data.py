"""Training data: a recipe's sources → examples with lengths → a seeded stream of batches.

`TrainingData` reads every source once (manifests for ASR and TTS, N-best files for GER), drops
what a run cannot use (clips longer than the source's `max_seconds`, examples longer than a whole
batch) and counts it, and estimates each example's sequence length in positions from its duration
and token counts. `BatchStream` turns those lengths into an endless stream of single-source
batches: at each position a source is drawn by weight, and its next length-bucketed batch
(`buckets.py`) is taken, epoch after epoch. The stream is a pure function of the seed and the
position, so a resumed run seeks to where it stopped without reading any data. `samples` makes
the processor's samples of a batch, with cached encoder states in place of audio when a
`FeatureCache` is given.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

from unispeech.audio.features import WHISPER_SAMPLE_RATE
from unispeech.data.manifest import audio_duration, read_manifest, with_durations
from unispeech.data.nbest import read_nbest
from unispeech.data.phoneme_durations import read_durations
from unispeech.model.lengths import mel_patches, speech_tokens, vocoder_mel_frames, whisper_mel_frames
from unispeech.model.phonemes import phoneme_units
from unispeech.model.processor import AsrSample, GerSample, TtsSample, UnispeechLMProcessor
from unispeech.model.sequences import ASR, GER, TASKS, TTS, language_prompt
from unispeech.training.buckets import BucketSettings, plan_batches
from unispeech.training.feature_cache import FeatureCache
from unispeech.training.recipes import Recipe, Source

logger = logging.getLogger(__name__)

SEQUENCE_OVERHEAD = 4  # bos, markers and eos around a sample's text and speech


@dataclass(frozen=True)
class Example:
    task: str
    text: str
    audio: str | None = None
    hypotheses: tuple[str, ...] = ()
    language: str | None = None
    length: int = 0  # estimated positions of its sequence
    units: tuple[tuple[int, ...], ...] = ()  # TTS: the clip's phoneme units and their frames
    durations: tuple[int, ...] = ()


class TrainingData:
    def __init__(self, recipe: Recipe, processor: UnispeechLMProcessor):
        self.recipe, self.processor = recipe, processor
        self.sources: list[list[Example]] = []
        self.dropped: Counter[str] = Counter()
        for source in recipe.sources:
            examples = self._read(source)
            if not examples:
                raise ValueError(
                    f"source {source.label} has no usable examples (dropped: {dict(self.dropped)})"
                )
            self.sources.append(examples)
        if self.dropped:
            logger.warning("left out of training: %s", dict(self.dropped))

    def _read(self, source: Source) -> list[Example]:
        if source.task == GER:
            items = read_nbest(source.nbest)
            folder = Path(source.nbest).parent  # N-best files name their audio relative to themselves
            listen = source.with_audio
            audios = [
                str(folder / item.heard_audio) if listen and item.heard_audio else None for item in items
            ]
            raw = [
                (
                    Example(GER, item.output, audio, tuple(item.input)),
                    audio_duration(audio) if audio is not None else 0.0,
                )
                for item, audio in zip(items, audios, strict=True)
            ]
        else:
            utterances = with_durations(read_manifest(source.manifest), source.manifest)
            raw = [
                (
                    Example(
                        source.task,
                        utterance.text,
                        str(utterance.path(source.manifest)),
                        language=utterance.lang if source.language_hint else None,
                    ),
                    utterance.dur,
                )
                for utterance in utterances
            ]
            if source.task == TTS:
                raw = self._with_units(raw, source)
        examples = []
        for example, seconds in raw:
            if seconds > source.max_seconds:
                self.dropped[f"{source.label}: longer than {source.max_seconds:g} s"] += 1
                continue
            length = self._length(example, seconds)
            if length > self.recipe.batch.max_positions:
                self.dropped[f"{source.label}: longer than batch.max_positions"] += 1
                continue
            examples.append(replace(example, length=length))
        return examples

    def _with_units(self, raw: list[tuple[Example, float]], source: Source) -> list[tuple[Example, float]]:
        """TTS examples with their clips' units and durations; clips the durations file lacks are
        left out and counted."""
        aligned = read_durations(source.durations)
        kept = []
        for example, seconds in raw:
            clip = aligned.get(Path(example.audio).resolve())
            if clip is None:
                self.dropped[f"{source.label}: no durations in {source.durations}"] += 1
                continue
            units = tuple(phoneme_units(clip.phonemes))
            kept.append((replace(example, units=units, durations=clip.durations), seconds))
        return kept

    def _length(self, example: Example, seconds: float) -> int:
        config = self.processor.config
        text = len(self.processor.tokenize(example.text))
        if example.task == TTS:  # the prompt's patches and the generated ones: at most one more
            frames = vocoder_mel_frames(round(seconds * config.mel_sample_rate), config.mel_hop_length)
            return SEQUENCE_OVERHEAD + text + mel_patches(frames, config.mel_patch_size) + 1
        speech = 0
        if example.audio is not None:
            speech = speech_tokens(
                whisper_mel_frames(round(seconds * WHISPER_SAMPLE_RATE)), config.projector_stack
            )
        prompt = 0
        if example.task == GER:
            prompt = len(self.processor.ger_prompt_ids(example.hypotheses))
        elif example.language is not None:  # the ASR language hint, written before the transcript
            prompt = len(self.processor.tokenize(language_prompt(example.language)))
        return SEQUENCE_OVERHEAD + text + speech + prompt

    def audio_files(self) -> list[str]:
        """The recordings the encoder reads (ASR, and GER with audio): what the feature cache holds."""
        return sorted(
            {
                e.audio
                for examples in self.sources
                for e in examples
                if e.audio is not None and TASKS[e.task].hears_audio
            }
        )

    def transcripts(self) -> list[str]:
        return [e.text for examples in self.sources for e in examples if e.task == ASR]

    def stream(self) -> BatchStream:
        lengths = [[example.length for example in examples] for examples in self.sources]
        weights = [source.weight for source in self.recipe.sources]
        return BatchStream(lengths, weights, self.recipe.batch, self.recipe.seed)

    def samples(
        self, source: int, indices: list[int], cache: FeatureCache | None = None
    ) -> tuple[list[Example], list[AsrSample | TtsSample | GerSample]]:
        """The examples of a batch and the processor samples made of them. A TTS clip's prompt is a
        leading 0–`prompt_max_fraction` of it, drawn from a seed of the run's and the batch's, so a
        resumed run draws what the uninterrupted one did."""
        examples = [self.sources[source][index] for index in indices]
        draw = random.Random(f"{self.recipe.seed}:{source}:{indices}")
        samples = []
        for example in examples:
            audio = example.audio
            if cache is not None and audio is not None and TASKS[example.task].hears_audio:
                audio = cache.get(audio)
                if audio is None:
                    raise RuntimeError(f"no cached encoder states for {example.audio}: fill the cache first")
            if example.task == ASR:
                samples.append(AsrSample(audio, example.text, language=example.language))
            elif example.task == TTS:
                frames = sum(example.durations)
                prompt = int(draw.random() * self.processor.config.prompt_max_fraction * frames)
                samples.append(TtsSample(audio, example.text, example.units, example.durations, prompt))
            else:
                samples.append(GerSample(example.hypotheses, example.text, audio))
        return examples, samples


class BatchStream:
    """Endless single-source batches: `(source, example indices)` at each position, seeded."""

    def __init__(self, lengths: list[list[int]], weights: list[float], settings: BucketSettings, seed: int):
        self.lengths, self.weights, self.settings, self.seed = lengths, weights, settings, seed
        self.seek(0)

    def seek(self, position: int) -> None:
        """Continue from `position` (batches already taken), as if the stream had run to there."""
        self._chooser = random.Random(self.seed)
        self._cursors = [(0, 0)] * len(self.lengths)  # per source: (epoch, next batch of its plan)
        self._plans: dict[int, tuple[int, list[list[int]]]] = {}  # per source: (epoch, its plan)
        self.position = 0
        for _ in range(position):
            next(self)

    def _plan(self, source: int, epoch: int) -> list[list[int]]:
        if self._plans.get(source, (None,))[0] != epoch:
            seed = f"{self.seed}/{source}/{epoch}"
            self._plans[source] = (epoch, plan_batches(self.lengths[source], self.settings, seed))
        return self._plans[source][1]

    def __iter__(self) -> BatchStream:
        return self

    def __next__(self) -> tuple[int, list[int]]:
        source = self._chooser.choices(range(len(self.lengths)), weights=self.weights)[0]
        epoch, index = self._cursors[source]
        if index == len(self._plan(source, epoch)):
            epoch, index = epoch + 1, 0
        self._cursors[source] = (epoch, index + 1)
        self.position += 1
        return source, self._plan(source, epoch)[index]
