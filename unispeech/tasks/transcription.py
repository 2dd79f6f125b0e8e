"""Speech recognition: recordings of any length in, transcripts and N-best lists out.

A recording longer than the encoder's 30 s is cut into windows at its quietest moment near each
window's end (so words are not cut in half), windows of all recordings are decoded together in
batches of similar length (less padding), and each recording's windows are joined back, with their
timestamps. A window that holds no speech — digital silence, a window under 0.1 s, or what the
speech presence check (`audio/speech_presence.py`) hears as noise, hum, tones — is not decoded at
all: it transcribes to "". Every window gets a token budget proportional to its duration: the length
guard that stops a bad clip from looping.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence as SequenceOf
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from unispeech.audio.features import WHISPER_CHUNK_SAMPLES, WHISPER_SAMPLE_RATE, AudioSource, load_audio
from unispeech.audio.speech_presence import SpeechPresence
from unispeech.model.modeling import UnispeechLMModel
from unispeech.model.processor import AsrSample, UnispeechLMProcessor
from unispeech.tasks.decoding import DecodingOptions, Hypothesis, decode_samples, require_ctc_head

logger = logging.getLogger(__name__)

ENERGY_FRAME_SECONDS = 0.02  # frames in which loudness is measured to find quiet cut points
MIN_SPEECH_SECONDS = 0.1  # shorter windows (a recording's last few samples) hold no words


@dataclass(frozen=True)
class TranscriptionOptions:
    """How to transcribe. Windows are at most `window_seconds` (≤ 30); a cut is placed at the
    quietest 20 ms in the last `search_seconds` of a window. A window may produce up to
    `min_tokens + tokens_per_second · seconds` tokens. Windows whose peak is below
    `silence_peak` are silence; with `speech_presence` (None: off), so are windows in which it
    hears no speech."""

    decoding: DecodingOptions = field(default_factory=DecodingOptions)
    language: str | None = None
    batch_size: int = 8
    window_seconds: float = WHISPER_CHUNK_SAMPLES / WHISPER_SAMPLE_RATE
    search_seconds: float = 5.0
    tokens_per_second: float = 10.0
    min_tokens: int = 8
    silence_peak: float = 1e-4
    speech_presence: SpeechPresence | None = field(default_factory=SpeechPresence)

    def __post_init__(self) -> None:
        longest = WHISPER_CHUNK_SAMPLES / WHISPER_SAMPLE_RATE
        if not 0 < self.window_seconds <= longest:
            raise ValueError(f"window_seconds must be in (0, {longest:g}], got {self.window_seconds}")
        if not 0 <= self.search_seconds < self.window_seconds:
            raise ValueError(f"search_seconds must be in [0, window_seconds), got {self.search_seconds}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.tokens_per_second <= 0 or self.min_tokens < 1:
            raise ValueError(
                "need tokens_per_second > 0 and min_tokens >= 1, "
                f"got {self.tokens_per_second} and {self.min_tokens}"
            )

    def worth_decoding(self, window: np.ndarray) -> bool:
        """Whether a window of 16 kHz audio may hold words: long enough, not digital silence, and
        (with `speech_presence`) heard as speech."""
        if len(window) < MIN_SPEECH_SECONDS * WHISPER_SAMPLE_RATE or np.abs(window).max() < self.silence_peak:
            return False
        return self.speech_presence is None or self.speech_presence.holds_speech(window, WHISPER_SAMPLE_RATE)


@dataclass
class Chunk:
    """One window of a recording: its text, `(start, end)` in seconds, and its N-best list."""

    text: str
    timestamp: tuple[float, float]
    hypotheses: list[Hypothesis] = field(default_factory=list)


@dataclass
class Transcription:
    """A recording's transcript, its windows, and its N-best list when it fits in one window."""

    text: str
    chunks: list[Chunk]

    @property
    def hypotheses(self) -> list[Hypothesis]:
        return self.chunks[0].hypotheses if len(self.chunks) == 1 else []


def split_windows(
    audio: np.ndarray, sample_rate: int, window_seconds: float, search_seconds: float
) -> list[tuple[int, int]]:
    """`(start, end)` sample ranges covering `audio`, each at most `window_seconds` long, cut at the
    quietest frame of the last `search_seconds` before each limit."""
    window = int(window_seconds * sample_rate)
    search = int(search_seconds * sample_rate)
    frame = max(1, int(ENERGY_FRAME_SECONDS * sample_rate))
    ranges, start = [], 0
    while len(audio) - start > window:
        end = start + window
        region = audio[end - search : end] if search else audio[end - frame : end]
        frames = len(region) // frame
        energy = (region[: frames * frame].reshape(frames, frame) ** 2).mean(axis=1)  # (frames,)
        cut = end - len(region) + (int(energy.argmin()) + 1) * frame if frames else end
        ranges.append((start, cut))
        start = cut
    ranges.append((start, len(audio)))
    return ranges


@torch.inference_mode()
def transcribe(
    model: UnispeechLMModel,
    processor: UnispeechLMProcessor,
    audios: SequenceOf[AudioSource],
    options: TranscriptionOptions = TranscriptionOptions(),
    sampling_rate: int | None = None,
    progress: bool = False,
) -> list[Transcription]:
    """Transcribe recordings (paths, or arrays at `sampling_rate`), one `Transcription` each."""
    require_ctc_head(model, options.decoding)
    windows: list[tuple[int, float, float, np.ndarray]] = []  # (recording, start s, end s, audio)
    for index, source in enumerate(audios):
        audio = load_audio(source, WHISPER_SAMPLE_RATE, sampling_rate)
        for start, end in split_windows(
            audio, WHISPER_SAMPLE_RATE, options.window_seconds, options.search_seconds
        ):
            windows.append((index, start / WHISPER_SAMPLE_RATE, end / WHISPER_SAMPLE_RATE, audio[start:end]))

    results: list[list[Hypothesis]] = [[] for _ in windows]
    speaking = [i for i, (*_, clip) in enumerate(windows) if options.worth_decoding(clip)]
    speaking.sort(key=lambda i: len(windows[i][3]))  # similar lengths share a batch
    batches = [speaking[i : i + options.batch_size] for i in range(0, len(speaking), options.batch_size)]
    for batch in tqdm(batches, desc="transcribing", unit="batch", disable=not progress):
        clips = [windows[i][3] for i in batch]
        samples = [AsrSample(clip, None, WHISPER_SAMPLE_RATE, options.language) for clip in clips]
        budgets = [
            options.min_tokens + math.ceil(options.tokens_per_second * len(clip) / WHISPER_SAMPLE_RATE)
            for clip in clips
        ]
        decoded = decode_samples(model, processor, samples, options.decoding, budgets)
        for i, hypotheses in zip(batch, decoded, strict=True):
            results[i] = hypotheses

    transcriptions = [Transcription("", []) for _ in audios]
    for (index, start, end, _), hypotheses in zip(windows, results, strict=True):
        text = hypotheses[0].text if hypotheses else ""
        transcriptions[index].chunks.append(Chunk(text, (start, end), hypotheses))
    for transcription in transcriptions:
        transcription.text = " ".join(chunk.text for chunk in transcription.chunks if chunk.text)
    return transcriptions
