"""A CTC head on the projector's output: the ASR alignment aid of training, and joint decoding's.

A frozen LLM learns to read speech embeddings slowly (the SLAM-ASR plateau, `../shared/NOTES.md`).
`CtcHead` gives the projector a direct signal instead: each speech embedding is scored against the
backbone's own (frozen) input-embedding rows of the tokens that occur in the training transcripts,
so CTC pulls every embedding towards the token spoken there, in the space the backbone already
reads. The score is the cosine between an embedding and a row times a learned scale (CLIP's
inverse temperature, kept in log space so it stays positive), so the head never asks the projector
for large embeddings. Only that scale, a bias per token and a blank score are learned; the
embedding rows are read from the backbone at each call, never copied. CTC over tokens rather than
characters because the projector runs at 12.5 Hz, slower than speech's characters but faster than
its tokens.

The head is the model's `ctc` (None in the base model) and an optional task module of ASR
(`sequences.TASKS`): an ASR adapter trained with the CTC aid carries it, for joint CTC/LLM and
speculative decoding (`tasks/decoding.py`). Its size is set by the training transcripts (their token
set), so a saved head is rebuilt from its own tensors: `from_weights` reads K from `token_ids` and
D from `blank.weight`, and no config field records it.

Shapes: `A` clips, `N` speech embeddings, `D` backbone width, `K` token ids in the head.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import torch
from torch import nn

BLANK = 0  # the blank's class index; token k of `token_ids` is class k + 1
INITIAL_SCALE = 1 / 0.07  # CLIP's initial inverse temperature for cosine logits


class CtcHead(nn.Module):
    def __init__(self, token_ids: Iterable[int], hidden_size: int):
        super().__init__()
        ids = sorted(set(token_ids))
        if not ids:
            raise ValueError("a CTC head needs at least one token id (are the transcripts empty?)")
        self.register_buffer("token_ids", torch.tensor(ids), persistent=True)
        self.log_scale = nn.Parameter(torch.tensor(math.log(INITIAL_SCALE)))
        self.bias = nn.Parameter(torch.zeros(len(ids)))
        self.blank = nn.Linear(hidden_size, 1)

    @classmethod
    def from_weights(cls, weights: Mapping[str, torch.Tensor]) -> CtcHead:
        """The head whose state dict is `weights` (a saved head: its sizes are its tensors'), on
        their device and in their floating dtype. Missing or unexpected keys raise `ValueError`."""
        expected = {"token_ids", "log_scale", "bias", "blank.weight", "blank.bias"}
        if weights.keys() != expected:
            raise ValueError(
                f"a CTC head's tensors are {', '.join(sorted(expected))}; got {', '.join(sorted(weights))}"
            )
        blank = weights["blank.weight"]  # (1, D)
        head = cls(weights["token_ids"].tolist(), blank.shape[1]).to(device=blank.device, dtype=blank.dtype)
        head.load_state_dict(weights)
        return head

    def extended(self, token_ids: Iterable[int]) -> CtcHead:
        """This head over its tokens and `token_ids`: what it learned kept (scale, blank, each known
        token's bias), a new token's bias starting at the known ones' mean. A run continues the
        head of `init_from` this way when its transcripts hold tokens the head lacks."""
        known = self.token_ids.tolist()
        head = CtcHead([*known, *token_ids], self.blank.in_features).to(self.bias.device, self.bias.dtype)
        with torch.no_grad():
            head.log_scale.copy_(self.log_scale)
            head.blank.load_state_dict(self.blank.state_dict())
            head.bias.fill_(self.bias.mean().item())
            positions = torch.searchsorted(head.token_ids, self.token_ids)  # both sorted
            head.bias[positions] = self.bias
        return head

    def forward(self, speech: torch.Tensor, embedding: nn.Embedding) -> torch.Tensor:
        """Speech embeddings `(A, N, D)` → CTC log-probabilities `(A, N, 1 + K)`, blank first."""
        rows = embedding.weight[self.token_ids].detach()  # (K, D): the backbone's, frozen
        cosines = nn.functional.normalize(speech, dim=-1) @ nn.functional.normalize(rows, dim=-1).T
        tokens = self.log_scale.exp() * cosines + self.bias  # (A, N, K)
        return torch.cat([self.blank(speech), tokens], dim=-1).float().log_softmax(dim=-1)

    def targets(self, token_ids: list[int]) -> list[int]:
        """Class indices of a transcript's tokens; tokens the head lacks are left out (it cannot
        produce them, and CTC cannot skip a target)."""
        index = {token: k + 1 for k, token in enumerate(self.token_ids.tolist())}
        return [index[token] for token in token_ids if token in index]

    def loss(self, log_probs: torch.Tensor, lengths: torch.Tensor, targets: list[list[int]]) -> torch.Tensor:
        """Mean CTC loss per target token of `(A, N, 1 + K)` log-probabilities with `(A,)` lengths."""
        target_lengths = torch.tensor([len(target) for target in targets], device=log_probs.device)
        flat = torch.tensor(
            [k for target in targets for k in target], dtype=torch.long, device=log_probs.device
        )
        return nn.functional.ctc_loss(
            log_probs.transpose(0, 1),  # (N, A, 1 + K), as ctc_loss wants it
            flat,
            lengths,
            target_lengths,
            blank=BLANK,
            reduction="mean",
            zero_infinity=True,  # a clip too short for its transcript adds nothing, not inf
        )

    def decode(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[list[int]]:
        """Greedy CTC decoding: best class per position, repeats merged, blanks dropped → token ids."""
        best = log_probs.argmax(dim=-1)  # (A, N)
        decoded = []
        for row, length in zip(best.tolist(), lengths.tolist(), strict=True):
            classes = [k for i, k in enumerate(row[:length]) if k != BLANK and (i == 0 or k != row[i - 1])]
            decoded.append([self.token_ids[k - 1].item() for k in classes])
        return decoded
