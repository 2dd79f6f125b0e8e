"""The phoneme aligner: which mel frames say which phoneme, learned on the mel itself.

Explicitly aligned TTS needs each training clip's frames per phoneme. `PhonemeAligner` is the
learned forward-sum aligner of RAD-TTS ("One TTS Alignment To Rule Them All", Badlani et al. 2022;
NeMo's `AlignmentEncoder`): phoneme embeddings and mel frames are projected by small convolutions
into one space, and each frame's distribution over the clip's phonemes is a softmax of their
negative squared distances, times a static beta-binomial prior that favours the diagonal. The
forward-sum loss is the probability of all monotonic paths through those distributions — CTC with
the phonemes as the target sequence and a blank that is never used — so the aligner learns from
speech and phonemes alone, with no durations given. The binarisation loss then pulls the soft
alignment towards its best monotonic path, which monotonic alignment search (MAS; Glow-TTS,
`monotonic-align`) finds; that hard path's frame counts are the durations. Every phoneme gets at
least one frame, and the silences at the ends and the word boundaries take the pauses.

Shapes: `B` clips, `N` phoneme units, `W` symbols per unit, `F` mel frames, `M` mel bins, `C`
attention channels.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from torch import nn

from unispeech.model.phonemes import PAD_ID, PHONEME_SYMBOLS

MASKED = -1e4  # the log-probability of a padded phoneme: finite, since CTC's gradient turns −inf into NaN


@dataclass(frozen=True)
class AlignerConfig:
    """Sizes of the aligner (RAD-TTS's defaults) and its distance temperature and prior."""

    symbols: int = len(PHONEME_SYMBOLS)
    phoneme_channels: int = 256
    mel_bins: int = 80
    attention_channels: int = 80
    kernel_size: int = 3  # of the first convolution on each side: context from neighbouring frames
    temperature: float = 0.0005  # scales squared distances into logits
    prior_scale: float = 1.0  # the beta-binomial prior's ω (RAD-TTS): larger, a narrower diagonal
    blank_log_probability: float = -1.0  # the forward-sum CTC's blank, kept well below the phonemes


def _convolution(channels_in: int, channels_out: int, width: int) -> nn.Conv1d:
    return nn.Conv1d(channels_in, channels_out, width, padding=width // 2)


class PhonemeAligner(nn.Module):
    def __init__(self, config: AlignerConfig = AlignerConfig()):
        super().__init__()
        self.config = config
        phonemes, mels, attention = config.phoneme_channels, config.mel_bins, config.attention_channels
        self.embedding = nn.Embedding(config.symbols, phonemes, padding_idx=PAD_ID)
        self.keys = nn.Sequential(
            _convolution(phonemes, 2 * phonemes, config.kernel_size),
            nn.ReLU(),
            _convolution(2 * phonemes, attention, 1),
        )
        self.queries = nn.Sequential(
            _convolution(mels, 2 * mels, config.kernel_size),
            nn.ReLU(),
            _convolution(2 * mels, mels, 1),
            nn.ReLU(),
            _convolution(mels, attention, 1),
        )

    def forward(
        self,
        phonemes: torch.Tensor,
        phoneme_lengths: torch.Tensor,
        mel: torch.Tensor,
        mel_lengths: torch.Tensor,
    ) -> torch.Tensor:
        """Log-probabilities `(B, F, N)` of each frame belonging to each phoneme (prior included),
        `MASKED` on padded phonemes. `phonemes` (B, N, W): the ids of each unit's symbols, `PAD_ID`
        beyond them (a unit's embedding is the sum of its symbols'); `mel` (B, F, M) normalised."""
        keys = self.keys(self.embedding(phonemes).sum(dim=2).transpose(1, 2))  # (B, C, N)
        queries = self.queries(mel.transpose(1, 2))  # (B, C, F)
        # ‖q − k‖² = ‖q‖² + ‖k‖² − 2·q·k, without a (B, C, F, N) tensor
        distances = (
            queries.pow(2).sum(dim=1)[:, :, None]
            + keys.pow(2).sum(dim=1)[:, None, :]
            - 2 * queries.transpose(1, 2) @ keys
        )  # (B, F, N)
        padded = ~_mask(phoneme_lengths, distances.shape[-1])[:, None, :]  # (B, 1, N)
        scores = (-self.config.temperature * distances).masked_fill(padded, MASKED).log_softmax(dim=-1)
        return scores + beta_binomial_log_prior(phoneme_lengths, mel_lengths, scores.shape[1:], self.config)

    def forward_sum_loss(
        self, log_probs: torch.Tensor, phoneme_lengths: torch.Tensor, mel_lengths: torch.Tensor
    ) -> torch.Tensor:
        """The negative log-likelihood of all monotonic alignments, per mel frame (RAD-TTS's
        forward-sum loss: CTC over the phonemes in order, a fixed blank in front)."""
        batch, frames, count = log_probs.shape
        blank = torch.full((batch, frames, 1), self.config.blank_log_probability, device=log_probs.device)
        classes = torch.cat([blank, log_probs], dim=-1).log_softmax(dim=-1)  # (B, F, 1 + N)
        targets = torch.arange(1, count + 1, device=log_probs.device).expand(batch, count)
        loss = nn.functional.ctc_loss(
            classes.transpose(0, 1),
            targets,
            mel_lengths,
            phoneme_lengths,
            blank=0,
            reduction="sum",
            zero_infinity=True,  # a clip with fewer frames than phonemes adds nothing
        )
        return loss / mel_lengths.sum()

    @staticmethod
    def binarization_loss(log_probs: torch.Tensor, hard: torch.Tensor) -> torch.Tensor:
        """−mean log-probability of the hard path's cells: pulls the soft alignment onto it."""
        return -(log_probs.masked_fill(hard == 0, 0).sum() / hard.sum().clamp(min=1))


def hard_alignment(
    log_probs: torch.Tensor, phoneme_lengths: torch.Tensor, mel_lengths: torch.Tensor
) -> torch.Tensor:
    """The most likely monotonic path (MAS, `monotonic_align`'s Cython search): `(B, F, N)` of 0/1,
    each real frame on one phoneme, each phoneme on at least one frame, in order."""
    import monotonic_align  # the data extra's: only aligning needs it

    mask = (
        _mask(phoneme_lengths, log_probs.shape[2])[:, None, :]
        & _mask(mel_lengths, log_probs.shape[1])[:, :, None]
    )
    scores = log_probs.detach().masked_fill(~mask, 0)  # frames first, as VITS lays it out
    return monotonic_align.maximum_path(scores, mask.float())


def durations(hard: torch.Tensor, phoneme_lengths: torch.Tensor) -> list[list[int]]:
    """Frames per phoneme of hard alignments `(B, F, N)`."""
    counts = hard.sum(dim=1).long()  # (B, N)
    return [row[:length].tolist() for row, length in zip(counts, phoneme_lengths.tolist(), strict=True)]


def beta_binomial_log_prior(
    phoneme_lengths: torch.Tensor, mel_lengths: torch.Tensor, shape: tuple[int, int], config: AlignerConfig
) -> torch.Tensor:
    """RAD-TTS's static alignment prior, log `(B, F, N)`: frame f of F draws its phoneme from a
    beta-binomial over the N phonemes with α = ω·(f+1), β = ω·(F−f), a band along the diagonal."""
    frames, count = shape
    priors = torch.zeros(len(mel_lengths), frames, count)
    for row, (n, f) in enumerate(zip(phoneme_lengths.tolist(), mel_lengths.tolist(), strict=True)):
        priors[row, :f, :n] = torch.from_numpy(_prior(n, f, config.prior_scale))
    return priors.to(phoneme_lengths.device)


@lru_cache(maxsize=4096)
def _prior(phonemes: int, frames: int, scale: float) -> np.ndarray:
    from scipy.stats import betabinom

    index = np.arange(frames)[:, None]
    probability = betabinom(phonemes - 1, scale * (index + 1), scale * (frames - index)).pmf(
        np.arange(phonemes)
    )
    return np.log(np.maximum(probability, 1e-8)).astype(np.float32)  # (F, N)


def _mask(lengths: torch.Tensor, longest: int) -> torch.Tensor:
    return torch.arange(longest, device=lengths.device)[None] < lengths[:, None]
