"""Speech presence: whether a stretch of audio holds any speech at all.

An attention decoder writes a sentence for anything it hears: white noise and a clipped square wave
came back from the ASR adapter as invented sentences. So transcription first asks whether a window
holds speech and decodes only the windows that do; the others transcribe to "". The judge is Silero
VAD (`silero-vad`, whose small recurrent network ships inside its wheel and so needs no download): a
speech probability for every 32 ms frame, turned into speech segments by the package's own
hysteresis (`get_speech_timestamps`). A recording holds speech when one segment lasts at least
`min_speech_seconds`.

The network settles its recurrent state on the first frames it hears, and missed 13 of 300 FSDD
digits that start at the recording's first sample; a quarter second of silence put in front of the
audio lets it hear all but one (`lead_silence_seconds`). The defaults were chosen on training-side
clips only (450 non-speech clips of `unispeech data nonspeech`, 560 clips of FSDD, Kathleen,
LibriSpeech speakers and LJSpeech train); `python eval/speech_presence.py` measures any setting, and
the ASR card gives the dev figures. What it does not catch is music-like note sequences, which it
hears as song: that is left to ASR training, on non-speech clips with empty transcripts.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import soxr
import torch

VAD_SAMPLE_RATE = 16_000  # the rate silero's network runs at


@dataclass(frozen=True)
class SpeechPresence:
    """How to decide that audio holds speech: a segment of frames whose speech probability rises above
    `threshold` lasting at least `min_speech_seconds`, with `lead_silence_seconds` of silence put
    before the audio so the network has settled when the first word starts."""

    threshold: float = 0.5  # silero's own default
    min_speech_seconds: float = 0.1
    lead_silence_seconds: float = 0.25

    def __post_init__(self) -> None:
        if not 0 < self.threshold < 1:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold}")
        if self.min_speech_seconds < 0 or self.lead_silence_seconds < 0:
            raise ValueError(
                "min_speech_seconds and lead_silence_seconds must be >= 0, "
                f"got {self.min_speech_seconds} and {self.lead_silence_seconds}"
            )

    def speech_segments(self, audio: np.ndarray, sample_rate: int) -> list[tuple[float, float]]:
        """The `(start, end)` seconds of each stretch of speech in mono `audio` of shape (samples,)."""
        if audio.ndim != 1:
            raise ValueError(f"speech presence needs mono audio of shape (samples,), got {audio.shape}")
        audio = audio.astype(np.float32, copy=False)
        if sample_rate != VAD_SAMPLE_RATE:
            audio = soxr.resample(audio, sample_rate, VAD_SAMPLE_RATE)
        lead = int(self.lead_silence_seconds * VAD_SAMPLE_RATE)
        padded = np.concatenate([np.zeros(lead, np.float32), audio])
        vad = _silero()
        with vad.lock:  # the network keeps its recurrent state between calls: one caller at a time
            segments = vad.timestamps(
                torch.from_numpy(padded),
                vad.model,
                threshold=self.threshold,
                sampling_rate=VAD_SAMPLE_RATE,
                min_speech_duration_ms=int(self.min_speech_seconds * 1000),
            )  # [{"start": sample, "end": sample}, ...] in the padded audio
        return [
            (max(0, s["start"] - lead) / VAD_SAMPLE_RATE, max(0, s["end"] - lead) / VAD_SAMPLE_RATE)
            for s in segments
        ]

    def holds_speech(self, audio: np.ndarray, sample_rate: int) -> bool:
        """Whether mono `audio` of shape (samples,) holds at least one stretch of speech."""
        return bool(self.speech_segments(audio, sample_rate))


@dataclass
class _Silero:
    model: Any  # silero's TorchScript network
    timestamps: Any  # silero_vad.get_speech_timestamps
    lock: threading.Lock


@functools.cache
def _silero() -> _Silero:
    """Silero's network, loaded once per process (a few milliseconds; it lies in the installed wheel)."""
    threads = torch.get_num_threads()
    import silero_vad  # its import sets torch's threads to 1 for the whole process: put them back

    torch.set_num_threads(threads)
    return _Silero(silero_vad.load_silero_vad(), silero_vad.get_speech_timestamps, threading.Lock())
