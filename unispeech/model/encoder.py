"""The speech encoder: openai-whisper's audio encoder, run on the clip's true length.

Whisper pads every input to 30 s; a 3 s clip would pay for 30. `SpeechEncoder` holds the
unchanged `whisper.model.AudioEncoder` (so any Whisper checkpoint loads into it) and runs its
layers with its own forward: the positional table is sliced to the clip's length, and a batch of
clips of different lengths is padded with a key mask, so every clip's frames equal what it gets
alone. openai-whisper's own attention takes no padding mask (its `mask` argument only switches
causal attention on), which is why the attention is written here, over the same weights.
`full_context=True` instead reproduces Whisper exactly: 30 s inputs, no mask, and only each
clip's first frames kept.

Shapes: `B` batch, `M` mel bins, `F` mel frames (100 Hz), `T` encoder frames (50 Hz), `E` width.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn
from whisper.model import AudioEncoder, ResidualAttentionBlock

from unispeech.model.configuration import WhisperEncoderConfig
from unispeech.model.lengths import ENCODER_STRIDE, encoder_frames

ENCODER_PREFIX = "encoder."  # openai-whisper checkpoints hold encoder and decoder in one state dict


@dataclass(frozen=True)
class EncodedSpeech:
    """One clip already through the frozen encoder: its `(T, E)` output states. Training caches
    these once (`training/feature_cache.py`) and passes them where audio would go, skipping the
    encoder."""

    states: torch.Tensor  # (T, E)


class SpeechEncoder(nn.Module):
    def __init__(self, config: WhisperEncoderConfig, full_context: bool = False, frozen: bool = True):
        super().__init__()
        self.full_context = full_context
        self.whisper = AudioEncoder(
            config.n_mels, config.n_audio_ctx, config.n_audio_state, config.n_audio_head, config.n_audio_layer
        )
        if frozen:
            self.requires_grad_(False)

    @property
    def max_frames(self) -> int:
        """Mel frames the positional table covers: 3000 (30 s) for every Whisper checkpoint."""
        return self.whisper.positional_embedding.shape[0] * ENCODER_STRIDE

    def forward(
        self, input_features: torch.Tensor, feature_lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`(B, M, F)` log-mel with `(B,)` real frame counts → `(B, T, E)` states and `(B,)` lengths."""
        frames = input_features.shape[-1]
        if self.full_context and frames != self.max_frames:
            raise ValueError(f"full-context encoding needs {self.max_frames} mel frames (30 s), got {frames}")
        if frames > self.max_frames:
            raise ValueError(
                f"{frames} mel frames ({frames / 100:.1f} s) exceed the encoder's {self.max_frames} "
                f"({self.max_frames / 100:.0f} s): split long audio into windows first"
            )
        lengths = encoder_frames(feature_lengths)
        if self.full_context:
            states = self._run(input_features, None, None)
        else:
            mel_real = torch.arange(frames, device=input_features.device)[None] < feature_lengths[:, None]
            real = torch.arange(encoder_frames(frames), device=input_features.device)[None] < lengths[:, None]
            states = self._run(input_features * mel_real[:, None], mel_real, real)
        return states, lengths

    def _run(
        self, mel: torch.Tensor, mel_real: torch.Tensor | None, real: torch.Tensor | None
    ) -> torch.Tensor:
        encoder = self.whisper
        x = nn.functional.gelu(encoder.conv1(mel))  # (B, E, F)
        if mel_real is not None:  # what conv2 sees past the end must be the zeros of its own padding
            x = x * mel_real[:, None]
        x = nn.functional.gelu(encoder.conv2(x)).transpose(1, 2)  # (B, T, E)
        x = x + encoder.positional_embedding[: x.shape[1]].to(x.dtype)
        key_mask = None if real is None else real[:, None, None, :]  # (B, 1, 1, T), True = attend
        for block in encoder.blocks:
            x = x + _self_attention(block, block.attn_ln(x), key_mask)
            x = x + block.mlp(block.mlp_ln(x))
        return encoder.ln_post(x)

    def load_whisper_state_dict(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Load the encoder part of an openai-whisper state dict (keys `encoder.*`)."""
        encoder_state = {
            key.removeprefix(ENCODER_PREFIX): value
            for key, value in state_dict.items()
            if key.startswith(ENCODER_PREFIX)
        }
        if not encoder_state:
            raise ValueError("the state dict holds no 'encoder.*' weights: not an openai-whisper checkpoint")
        self.whisper.load_state_dict(encoder_state)

    @classmethod
    def from_whisper_checkpoint(cls, path: str | Path, full_context: bool = False) -> SpeechEncoder:
        """The encoder of an openai-whisper checkpoint: a `.pt` (`dims` + `model_state_dict`, read with
        `weights_only=True`) or a `.safetensors` file with a `config.json` of dimensions beside it."""
        path = Path(path)
        if path.suffix == ".safetensors":
            config = WhisperEncoderConfig.from_pretrained(path.parent)
            state_dict = load_file(path)
        else:
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
            dims = checkpoint["dims"]
            config = WhisperEncoderConfig(**{key: dims[key] for key in _ENCODER_DIMS})
            state_dict = checkpoint["model_state_dict"]
        encoder = cls(config, full_context=full_context)
        encoder.load_whisper_state_dict({key: value.float() for key, value in state_dict.items()})
        return encoder


_ENCODER_DIMS = ("n_mels", "n_audio_ctx", "n_audio_state", "n_audio_head", "n_audio_layer")


def _self_attention(
    block: ResidualAttentionBlock, x: torch.Tensor, key_mask: torch.Tensor | None
) -> torch.Tensor:
    """Whisper's multi-head self-attention with an optional `(B, 1, 1, T)` boolean key mask."""
    attention = block.attn
    batch, frames, width = x.shape
    heads = attention.n_head

    def split(projection: torch.Tensor) -> torch.Tensor:  # (B, T, E) → (B, heads, T, E/heads)
        return projection.view(batch, frames, heads, width // heads).transpose(1, 2)

    query, key, value = split(attention.query(x)), split(attention.key(x)), split(attention.value(x))
    out = nn.functional.scaled_dot_product_attention(query, key, value, attn_mask=key_mask)
    return attention.out(out.transpose(1, 2).reshape(batch, frames, width))
