"""Length arithmetic: how many frames, tokens and patches a clip becomes at every stage.

A 16 kHz clip of `T` samples becomes `T // 160` Whisper mel frames, then `ceil(frames / 2)` encoder
frames (the second convolution has stride 2), then `ceil(frames / k)` projector tokens (k frames
stacked per token). A 22.05 kHz clip becomes `T // hop` vocoder mel frames, then `ceil(frames / p)`
mel patches (p frames per TTS position). These functions are the only place that arithmetic is
written: the processor lays sequences out with them and the model checks its tensors against them.
They take ints or integer tensors alike.
"""

from __future__ import annotations

from typing import TypeVar

import torch

from unispeech.audio.features import WHISPER_HOP_LENGTH

Length = TypeVar("Length", int, torch.Tensor)

ENCODER_STRIDE = 2  # Whisper's conv2 (kernel 3, padding 1) halves the frame rate: 100 Hz → 50 Hz


def ceil_div(numerator: Length, denominator: int) -> Length:
    return -(-numerator // denominator)


def whisper_mel_frames(num_samples: Length) -> Length:
    """Whisper log-mel frames of `num_samples` 16 kHz samples (one per 10 ms)."""
    return num_samples // WHISPER_HOP_LENGTH


def encoder_frames(mel_frames: Length) -> Length:
    """Whisper encoder output frames for `mel_frames` input frames (one per 20 ms)."""
    return ceil_div(mel_frames, ENCODER_STRIDE)


def projector_tokens(encoder_frames: Length, stack: int) -> Length:
    """Speech embeddings the projector makes of `encoder_frames`, stacking `stack` frames each."""
    return ceil_div(encoder_frames, stack)


def speech_tokens(mel_frames: Length, stack: int) -> Length:
    """Speech embeddings of `mel_frames` Whisper mel frames: → encoder frames → projector tokens."""
    return projector_tokens(encoder_frames(mel_frames), stack)


def vocoder_mel_frames(num_samples: Length, hop_length: int) -> Length:
    """Vocoder mel frames of `num_samples` samples (HiFi-GAN's padding makes it exactly T // hop)."""
    return num_samples // hop_length


def mel_patches(mel_frames: Length, patch_size: int) -> Length:
    """TTS positions for `mel_frames` frames, `patch_size` frames each (the last one zero-padded)."""
    return ceil_div(mel_frames, patch_size)
