"""The speech projector: Whisper encoder frames → embeddings in the backbone's space.

`stack` adjacent encoder frames are concatenated (50 Hz → 12.5 Hz for 4, SLAM-ASR style) and
mapped by Linear → GELU → Linear to the backbone width, then RMS-normalised (with a learned gain)
and scaled to `output_rms`, the RMS of the backbone's own token embeddings: speech then enters the
backbone at the magnitude its layers were trained on. Without the norm, the CTC aid (`ctc.py`)
drove the embeddings to 37× the token scale in smol's ASR run 2, where the frozen backbone read
them badly (Ultravox normalises its projector output for the same reason). Each clip keeps its
real length: frames past a clip's end are zeroed before stacking, so a clip's embeddings do not
depend on what it was batched with, and the number of embeddings is `lengths.projector_tokens`.

Shapes: `B` batch, `T` encoder frames, `N` projector tokens (ceil(T / stack)), `E` encoder width,
`D` backbone width.
"""

from __future__ import annotations

import torch
from torch import nn

from unispeech.model.lengths import projector_tokens


class SpeechProjector(nn.Module):
    def __init__(self, encoder_size: int, hidden_size: int, output_size: int, stack: int):
        super().__init__()
        self.stack = stack
        self.linear_in = nn.Linear(stack * encoder_size, hidden_size)
        self.activation = nn.GELU()
        self.linear_out = nn.Linear(hidden_size, output_size)
        self.norm = nn.RMSNorm(output_size)

    def forward(
        self, encoder_states: torch.Tensor, encoder_lengths: torch.Tensor, output_rms: torch.Tensor | float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`(B, T, E)` frames with `(B,)` real lengths → `(B, N, D)` embeddings of RMS about
        `output_rms` and their `(B,)` lengths."""
        batch, frames, width = encoder_states.shape
        real = torch.arange(frames, device=encoder_states.device)[None] < encoder_lengths[:, None]
        states = encoder_states * real[..., None]
        tokens = projector_tokens(frames, self.stack)
        states = nn.functional.pad(states, (0, 0, 0, tokens * self.stack - frames))
        stacked = states.reshape(batch, tokens, self.stack * width)  # (B, N, stack·E)
        embeddings = self.linear_out(self.activation(self.linear_in(stacked)))
        return output_rms * self.norm(embeddings), projector_tokens(encoder_lengths, self.stack)
