"""Audio in: loading and the two spectrograms the model reads.

This module owns every conversion from "some audio" to the float arrays the model sees: a file or
array in any sample rate, channel count or dtype becomes mono float32 at the rate asked
(`load_audio`); 16 kHz audio becomes Whisper's log-mel (`whisper_log_mel`, what the speech encoder
reads); 22.05 kHz audio becomes the vocoder's log-mel (`vocoder_log_mel`, what TTS generates and
HiFi-GAN turns back into sound). Bad input raises `AudioError` with the reason, never a traceback
from deep inside a decoder.

Shapes: `T` samples, `F` frames, `M` mel bins. Spectrograms are `(M, F)`, as in every audio library.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import librosa
import numpy as np
import soundfile
import soxr
import torch
import whisper.audio

WHISPER_SAMPLE_RATE = whisper.audio.SAMPLE_RATE  # 16 000 Hz
WHISPER_HOP_LENGTH = whisper.audio.HOP_LENGTH  # 160 samples = 10 ms
WHISPER_CHUNK_SAMPLES = whisper.audio.N_SAMPLES  # 30 s, the encoder's whole context

AudioSource = str | Path | np.ndarray | torch.Tensor


class AudioError(ValueError):
    """Audio that cannot be used: unreadable, empty, non-finite or of an unusable shape."""


@dataclass(frozen=True)
class MelSettings:
    """The vocoder's mel spectrogram (HiFi-GAN V1: 22.05 kHz, 80 bins, n_fft/win 1024, hop 256)."""

    sample_rate: int = 22050
    n_mels: int = 80
    n_fft: int = 1024
    hop_length: int = 256
    win_length: int = 1024
    fmin: float = 0.0
    fmax: float = 8000.0
    log_floor: float = 1e-5

    def __post_init__(self) -> None:
        if self.win_length > self.n_fft:
            raise ValueError(f"win_length {self.win_length} exceeds n_fft {self.n_fft}")
        if not 0 <= self.fmin < self.fmax <= self.sample_rate / 2:
            raise ValueError(
                f"need 0 <= fmin < fmax <= sample_rate/2, got fmin={self.fmin}, fmax={self.fmax}, "
                f"sample_rate={self.sample_rate}"
            )
        if (self.n_fft - self.hop_length) % 2:
            raise ValueError(f"n_fft - hop_length must be even, got {self.n_fft} - {self.hop_length}")


def load_audio(source: AudioSource, sample_rate: int, source_rate: int | None = None) -> np.ndarray:
    """Audio as mono float32 at `sample_rate`, shape `(T,)`.

    `source` is a path to anything libsndfile reads (wav, flac, ogg, mp3 …) or an array: 1-D, or 2-D
    with channels along the shorter axis. Arrays need `source_rate`. Integer samples are scaled to
    [-1, 1); channels are averaged; other rates are resampled with soxr.
    """
    if isinstance(source, (str, Path)):
        audio, source_rate = _read_file(Path(source))
    else:
        if source_rate is None:
            raise AudioError("an audio array needs its sample rate: pass source_rate=")
        audio = source.detach().cpu().numpy() if isinstance(source, torch.Tensor) else np.asarray(source)
        audio = _to_mono(_to_float(audio))
    if source_rate <= 0:
        raise AudioError(f"sample rate must be positive, got {source_rate}")
    if audio.size == 0:
        raise AudioError("audio is empty (0 samples)")
    if not np.isfinite(audio).all():
        raise AudioError(f"audio contains {np.count_nonzero(~np.isfinite(audio))} NaN or infinite samples")
    if source_rate != sample_rate:
        audio = soxr.resample(audio, source_rate, sample_rate)
    return np.ascontiguousarray(audio, dtype=np.float32)


def _read_file(path: Path) -> tuple[np.ndarray, int]:
    if not path.is_file():
        raise AudioError(f"no such audio file: {path}")
    try:
        audio, rate = soundfile.read(path, dtype="float32", always_2d=True)  # (T, C)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as error:
        raise AudioError(f"cannot read audio file {path}: {error}") from None
    return audio.mean(axis=1), rate


def _to_float(audio: np.ndarray) -> np.ndarray:
    if np.issubdtype(audio.dtype, np.floating):
        return audio.astype(np.float32)
    if np.issubdtype(audio.dtype, np.signedinteger):
        return audio.astype(np.float32) / -float(np.iinfo(audio.dtype).min)
    if np.issubdtype(audio.dtype, np.unsignedinteger):  # unsigned PCM is offset by half the range
        half = float(np.iinfo(audio.dtype).max // 2 + 1)
        return (audio.astype(np.float32) - half) / half
    raise AudioError(f"audio samples must be integers or floats, got dtype {audio.dtype}")


def _to_mono(audio: np.ndarray) -> np.ndarray:
    if audio.ndim == 1:
        return audio
    if audio.ndim != 2:
        raise AudioError(f"audio must be 1-D or 2-D (samples and channels), got shape {audio.shape}")
    return audio.mean(axis=int(np.argmin(audio.shape)))


def whisper_log_mel(audio: np.ndarray | torch.Tensor, n_mels: int = 80, padding: int = 0) -> torch.Tensor:
    """Whisper's log-mel of 16 kHz audio, `(n_mels, T // 160)` frames (plus `padding` zeros' worth).

    `padding` appends that many zero samples first, as Whisper does to reach 30 s."""
    audio = torch.as_tensor(audio, dtype=torch.float32)
    shortest = whisper.audio.N_FFT // 2 + 1  # the centred STFT reflects half a window at each end
    if audio.shape[-1] + padding < shortest:
        raise AudioError(
            f"audio of {audio.shape[-1]} samples is too short for a Whisper frame (needs {shortest})"
        )
    return whisper.audio.log_mel_spectrogram(audio, n_mels=n_mels, padding=padding)


@functools.lru_cache(maxsize=8)
def mel_filters(settings: MelSettings) -> torch.Tensor:
    """Slaney-normalised mel filters `(M, n_fft/2 + 1)`, as HiFi-GAN's training code computes them."""
    filters = librosa.filters.mel(
        sr=settings.sample_rate,
        n_fft=settings.n_fft,
        n_mels=settings.n_mels,
        fmin=settings.fmin,
        fmax=settings.fmax,
    )
    return torch.from_numpy(filters)


def vocoder_log_mel(audio: np.ndarray | torch.Tensor, settings: MelSettings = MelSettings()) -> torch.Tensor:
    """The vocoder's log-mel of audio at `settings.sample_rate`: `(M, T // hop)` frames.

    Exactly HiFi-GAN's `mel_spectrogram`: reflect-pad by (n_fft - hop)/2 on each side, STFT with a
    Hann window and `center=False`, magnitude `sqrt(re² + im² + 1e-9)`, mel filters, natural log
    of the magnitude clamped at `log_floor`. Accepts `(T,)` or a batch `(B, T)`.
    """
    audio = torch.as_tensor(audio, dtype=torch.float32)
    batched = audio.dim() == 2
    audio = audio if batched else audio[None]
    pad = (settings.n_fft - settings.hop_length) // 2
    if audio.shape[-1] <= pad:
        raise AudioError(f"audio of {audio.shape[-1]} samples is too short for a mel frame (needs > {pad})")
    audio = torch.nn.functional.pad(audio[:, None], (pad, pad), mode="reflect")[:, 0]
    spectrum = torch.stft(
        audio,
        settings.n_fft,
        hop_length=settings.hop_length,
        win_length=settings.win_length,
        window=torch.hann_window(settings.win_length, device=audio.device),
        center=False,
        return_complex=True,
    )
    magnitude = torch.sqrt(spectrum.real**2 + spectrum.imag**2 + 1e-9)  # (B, n_fft/2 + 1, F)
    mel = mel_filters(settings).to(audio.device) @ magnitude  # (B, M, F)
    log_mel = torch.log(torch.clamp(mel, min=settings.log_floor))
    return log_mel if batched else log_mel[0]
