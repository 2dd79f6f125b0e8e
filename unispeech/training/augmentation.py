"""Augmentation of cached speech for training: SpecAugment-style time masks on encoder states.

Few speakers make an ASR adapter memorise voices; masking spans of what it hears makes it lean on
context and on the rest of the clip (SpecAugment, Park et al. 2019). The encoder is frozen and its
outputs are cached (`feature_cache.py`), so the masks fall on the cached `(T, E)` states, not on
the log-mel: the cache stays valid and masking costs nothing. A masked frame is set to zero, the
value the projector already gives padding. Frequency masks have no counterpart here (encoder
channels are not frequency bands), and speed or noise perturbation changes the audio itself, so
those belong to the data (`unispeech data nbest --augment` style copies), not to this module.

Shapes: `B` clips, `T` encoder frames (50 a second for Whisper), `E` encoder width.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class TimeMasking:
    """`masks` spans per clip, each up to `max_frames` long and never more than `max_fraction`
    of the clip (so a 0.4 s digit keeps most of itself). `masks: 0` turns masking off."""

    masks: int = 0
    max_frames: int = 20  # 0.4 s of Whisper encoder frames, SpecAugment's LibriSpeech width
    max_fraction: float = 0.1

    def __post_init__(self):
        if self.masks < 0 or self.max_frames < 0:
            raise ValueError(f"time masks need masks >= 0 and max_frames >= 0, got {self}")
        if not 0 <= self.max_fraction <= 1:
            raise ValueError(f"max_fraction must lie in [0, 1], got {self.max_fraction}")


def mask_time(
    states: torch.Tensor, lengths: torch.Tensor, settings: TimeMasking, generator: torch.Generator
) -> torch.Tensor:
    """`states` (B, T, E) with `settings.masks` random spans of each clip's real frames set to zero.

    Widths are uniform in [0, limit], starts uniform over the clip, drawn from `generator` (on the
    CPU) so a resumed run masks as the uninterrupted one would."""
    if settings.masks == 0:
        return states
    batch, frames, _ = states.shape
    draws = torch.rand(batch, settings.masks, 2, generator=generator)  # (B, masks, [width, start])
    limits = torch.minimum(
        torch.full((batch,), float(settings.max_frames)), (lengths.cpu() * settings.max_fraction).floor()
    )  # (B,) whole frames
    widths = (draws[..., 0] * (limits[:, None] + 1)).floor()  # (B, masks)
    starts = (draws[..., 1] * (lengths.cpu()[:, None] - widths + 1).clamp(min=1)).floor()
    positions = torch.arange(frames)[None, None]  # (1, 1, T)
    covered = (positions >= starts[..., None]) & (positions < (starts + widths)[..., None])  # (B, masks, T)
    keep = ~covered.any(dim=1)  # (B, T)
    return states * keep[..., None].to(device=states.device, dtype=states.dtype)
