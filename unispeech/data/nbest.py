"""N-best lists: whisper-base's beam search, every beam kept, in the HyPoradise shape.

Generative error correction learns from a recogniser's N best hypotheses. openai-whisper's beam
search finishes up to `beam_size` candidates per clip but returns only the best; we keep them all
(a ranker that records what it is asked to rank), order them by whisper's own length-normalised
score and keep the distinct texts. Clean speech gives few errors to correct, so clips can be
augmented first (`perturbation.Augmentation`: noise at a random SNR, speed perturbation),
deterministically per utterance.
Lists are written as JSON lines `{"input": [best, …], "output": reference, "audio": …}`, with
`"heard": …` naming the perturbed copy of an augmented clip (saved beside the list), so that an
audio-aware corrector listens to what the recogniser heard; files in HyPoradise's own JSON (a list
of such objects) are read as they are. `parse_nbest` is the one reader of N-best JSON: of files
(with references) and of the lists `unispeech correct` is given (bare lists too).

Shapes: `M` mel bins, `F` 3000 frames (Whisper's 30 s).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Sequence as SequenceOf
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile
import torch
import whisper
from tqdm.auto import tqdm
from whisper.decoding import DecodingOptions as WhisperDecodingOptions
from whisper.decoding import DecodingTask, SequenceRanker
from whisper.model import Whisper

from unispeech.audio.features import WHISPER_CHUNK_SAMPLES, WHISPER_SAMPLE_RATE, load_audio, whisper_log_mel
from unispeech.data.manifest import DEFAULT_LANGUAGE, Utterance, read_manifest, relative_audio
from unispeech.data.perturbation import Augmentation
from unispeech.evaluation.metrics import normalize, oracle_hypothesis, word_error_rate
from unispeech.files import atomic_write_text

logger = logging.getLogger(__name__)

HEARD_FOLDER_SUFFIX = ".heard"  # <list>.heard/ beside <list>.jsonl holds the perturbed clips


@dataclass(frozen=True)
class NbestOptions:
    """Beam width (= at most that many hypotheses), language, how many clips are read and augmented
    at a time, the length guard (`min_tokens` + `tokens_per_second` · seconds), the augmentation."""

    beam_size: int = 5
    language: str | None = "en"
    batch_size: int = 8
    tokens_per_second: float = 6.0
    min_tokens: int = 16
    augmentation: Augmentation = field(default_factory=Augmentation)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.beam_size < 1 or self.batch_size < 1:
            raise ValueError(
                f"beam_size and batch_size must be at least 1, got {self.beam_size}, {self.batch_size}"
            )


class _KeepCandidates(SequenceRanker):
    """Ranks as the wrapped ranker does, and remembers every candidate it was shown."""

    def __init__(self, ranker: SequenceRanker):
        self.ranker = ranker
        self.candidates: tuple[list[list[torch.Tensor]], list[list[float]]] = ([], [])

    def rank(self, tokens, sum_logprobs):
        self.candidates = (tokens, sum_logprobs)
        return self.ranker.rank(tokens, sum_logprobs)


@torch.inference_mode()
def whisper_nbest(
    model: Whisper, audios: SequenceOf[np.ndarray], options: NbestOptions = NbestOptions()
) -> list[list[str]]:
    """The hypotheses of 16 kHz clips (≤ 30 s each) that differ after Whisper's text normaliser
    (not only in case or punctuation), best first by whisper's own score."""
    for audio in audios:
        if len(audio) > WHISPER_CHUNK_SAMPLES:
            raise ValueError(
                f"a clip of {len(audio) / WHISPER_SAMPLE_RATE:.1f} s is longer than whisper's 30 s"
            )
    results = []
    for audio in audios:  # one clip at a time: openai-whisper's beam search fails on batches of clips
        mel = whisper_log_mel(audio, model.dims.n_mels, padding=WHISPER_CHUNK_SAMPLES)
        mel = mel[:, : whisper.audio.N_FRAMES]  # (M, F)
        # The length guard: a beam that loops on hard audio stops here, not at whisper's 224 tokens.
        budget = options.min_tokens + math.ceil(options.tokens_per_second * len(audio) / WHISPER_SAMPLE_RATE)
        decoding = WhisperDecodingOptions(
            beam_size=options.beam_size,
            language=options.language,
            without_timestamps=True,
            fp16=False,
            sample_len=min(budget, model.dims.n_text_ctx // 2),
        )
        task = DecodingTask(model, decoding)
        keeper = _KeepCandidates(task.sequence_ranker)
        task.sequence_ranker = keeper
        task.run(mel[None].to(model.device))  # (1, M, F)
        (tokens,), (logprobs,) = keeper.candidates
        scored = sorted(
            (
                (lp / (len(t) + 1), task.tokenizer.decode(t.tolist()).strip())
                for t, lp in zip(tokens, logprobs, strict=True)
            ),
            reverse=True,
        )
        distinct: dict[str, str] = {}  # normalised text → the best-scored spelling of it
        for _, text in scored:
            distinct.setdefault(normalize(text, options.language or DEFAULT_LANGUAGE), text)
        results.append(list(distinct.values()))
    return results


@dataclass
class NbestItem:
    """One HyPoradise item: hypotheses best first, the reference, where the recording is, and
    where the perturbed copy the recogniser heard is (`heard`, for augmented clips only)."""

    input: list[str]
    output: str
    audio: str | None = None
    lang: str | None = None
    heard: str | None = None

    @property
    def heard_audio(self) -> str | None:
        """What the recogniser heard: the perturbed copy if there is one, else the recording."""
        return self.heard or self.audio

    def to_json(self) -> str:
        record = {key: value for key, value in self.__dict__.items() if value is not None}
        return json.dumps(record, ensure_ascii=False)


def read_nbest(path: str | Path) -> list[NbestItem]:
    """N-best items with their references from a file: JSON lines or HyPoradise's JSON (a list of
    objects); an empty file holds none."""
    return parse_nbest(Path(path).read_text(encoding="utf-8"), str(path))


def parse_nbest(text: str, where: str, references: bool = True) -> list[NbestItem]:
    """N-best items from JSON text: `{"input": [...], "output": ...}` objects, alone, in a JSON
    list or one per line. `where` names the text in errors. With `references`, every item needs its
    `"output"`; without (lists to correct), the lists may be bare (a list of strings, or a list of
    such lists, in JSON or one per line) and none may be empty."""
    text = text.strip()
    if not text:
        return []
    try:
        records = json.loads(text)
    except json.JSONDecodeError:
        try:
            records = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as error:
            raise ValueError(f"{where} is not JSON or JSON lines: {error}") from None
    if not isinstance(records, list) or (records and all(isinstance(h, str) for h in records)):
        records = [records]  # one list or object (or something that is neither: the check says so)
    return [
        _nbest_item(record, f"{where}, item {number}", references) for number, record in enumerate(records, 1)
    ]


def _nbest_item(record: object, where: str, references: bool) -> NbestItem:
    """One N-best item: an object, or (without `references`) a bare list of hypotheses."""
    fields = record if isinstance(record, dict) else {"input": None if references else record}
    hypotheses = fields.get("input")
    if not isinstance(hypotheses, list) or not all(isinstance(h, str) for h in hypotheses):
        shape = '{"input": [...], "output": ...}' if references else 'a list of strings or {"input": [...]}'
        raise ValueError(f"{where} is not an N-best list ({shape}), got {record!r:.80}")
    if references and "output" not in fields:
        raise ValueError(f'{where} has no "output" (the reference), got {record!r:.80}')
    if not references and not hypotheses:
        raise ValueError(f"the N-best list is empty: give at least one hypothesis ({where})")
    return NbestItem(
        hypotheses,
        str(fields.get("output", "")),
        fields.get("audio"),
        fields.get("lang"),
        fields.get("heard"),
    )


def make_nbest_lists(
    manifest: str | Path,
    output: str | Path,
    model: Whisper,
    options: NbestOptions = NbestOptions(),
    limit: int | None = None,
    progress: bool = True,
) -> list[NbestItem]:
    """N-best lists for the utterances of a manifest, as JSON lines in `output` (audio paths
    relative to it), in manifest order; augmented clips are saved in `<output stem>.heard/` beside
    it and named by `heard`. Lines are written as they are made, so a stopped run resumes where it
    stopped: utterances already in `output` are not decoded again. Clips longer than 30 s are
    skipped, with a count in the log."""
    utterances: list[Utterance] = read_manifest(manifest)[:limit]
    output = Path(output)
    keys = [relative_audio(utterance.path(manifest), output) for utterance in utterances]
    done = {item.audio: item for item in _written_items(output)}
    todo = [(key, utterance) for key, utterance in zip(keys, utterances, strict=True) if key not in done]
    too_long = 0
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("a", encoding="utf-8") as file:
        batches = range(0, len(todo), options.batch_size)
        for start in tqdm(batches, desc="n-best", unit="batch", disable=not progress):
            batch = todo[start : start + options.batch_size]
            audios, perturbed = [], []
            for _, utterance in batch:
                clip = load_audio(utterance.path(manifest), WHISPER_SAMPLE_RATE)
                audios.append(options.augmentation.apply(clip, utterance.audio, options.seed))
                perturbed.append(audios[-1] is not clip)
            keep = [i for i, audio in enumerate(audios) if len(audio) <= WHISPER_CHUNK_SAMPLES]
            too_long += len(batch) - len(keep)
            for i, nbest in zip(keep, whisper_nbest(model, [audios[i] for i in keep], options), strict=True):
                key, utterance = batch[i]
                heard = _save_heard(audios[i], utterance.audio, output) if perturbed[i] else None
                done[key] = NbestItem(nbest, utterance.text, key, utterance.lang, heard)
                file.write(done[key].to_json() + "\n")
            file.flush()
    if too_long:
        logger.warning("%d clips longer than 30 s were skipped", too_long)
    return [done[key] for key in keys if key in done]


def _save_heard(audio: np.ndarray, key: str, output: Path) -> str:
    """Write a perturbed 16 kHz clip beside the list `output`; its path relative to the list."""
    folder = output.parent / f"{output.stem}{HEARD_FOLDER_SUFFIX}"
    folder.mkdir(exist_ok=True)
    path = folder / f"{hashlib.sha256(key.encode()).hexdigest()[:16]}.wav"
    soundfile.write(path, audio, WHISPER_SAMPLE_RATE, subtype="FLOAT")
    return relative_audio(path, output)


def _written_items(output: Path) -> list[NbestItem]:
    """The items a previous run wrote; a last line cut short by a crash is removed first."""
    if not output.is_file():
        return []
    text = output.read_text(encoding="utf-8")
    if text and not text.endswith("\n"):
        atomic_write_text(output, text[: text.rfind("\n") + 1])
    return read_nbest(output)


def error_rates(items: SequenceOf[NbestItem], language: str = DEFAULT_LANGUAGE) -> tuple[float, float]:
    """Corpus WER of the first hypotheses, and of the best hypothesis of each list (the oracle)."""
    references = [item.output for item in items]
    first = [item.input[0] if item.input else "" for item in items]
    oracle = [oracle_hypothesis(item.output, item.input, language) for item in items]
    return word_error_rate(references, first, language), word_error_rate(references, oracle, language)
