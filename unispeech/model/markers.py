"""Task markers: learned embeddings for the structural positions of every task's sequence.

`<asr_start>`/`<asr_end>` fence speech that is read (ASR, audio-aware GER), `<tts_start>` ends the
text a TTS sample speaks, and `<time>` carries the flow-matching time step at the head of the TTS
span. They are rows of a small table owned by the unispeech model and inserted as embeddings, never
token ids: the base tokenizer and vocabulary stay untouched, so any base checkpoint works and
adapters stay small. Sequences mark their positions with `Marker` values (-1 elsewhere).
"""

from __future__ import annotations

from enum import IntEnum

import torch
from torch import nn

NO_MARKER = -1


class Marker(IntEnum):
    ASR_START = 0
    ASR_END = 1
    TTS_START = 2
    TIME = 3


class MarkerEmbedding(nn.Module):
    """One learned `hidden_size` vector per `Marker`."""

    def __init__(self, hidden_size: int):
        super().__init__()
        self.embedding = nn.Embedding(len(Marker), hidden_size)

    def forward(self, marker_ids: torch.Tensor) -> torch.Tensor:
        """`(N,)` marker ids → `(N, hidden_size)`."""
        return self.embedding(marker_ids)
