"""Conditional flow matching over mel frames: the TTS head of the unified model.

Everything that is flow matching and not the backbone lives here (F5-TTS's recipe with the
backbone as the velocity network, plus explicit alignment as in Matcha-TTS): sampling a training
example (time `t`, noise `x0`, the point `x_t = (1 − t)·x0 + t·x1` on the straight path to the
normalised mel `x1`, the velocity target `x1 − x0`, and the condition-dropout flags), embedding
the prompt's clean mel and the generated span's noisy mel as backbone inputs — each generated
position also carrying the embeddings of its frames' phoneme units, length-regulated by their
durations — turning final hidden states back into velocities through a time-conditioned adaLN, the
masked MSE loss, the phoneme prior (the mel each frame's unit predicts, Grad-TTS's μ: the flow's
condition on the generated frames, learned by MSE to the target), the duration predictor and its
loss, and the Euler sampler with sway-sampled steps
and batched classifier-free guidance. The mel input projection and the adaLN modulation start at
zero, so an untrained head leaves the backbone's behaviour unchanged.

Shapes: `S` TTS samples, `F` generated mel frames, `Fp` prompt frames, `M` mel bins, `p` frames per
patch, `P` patches (F / p), `Pp` prompt patches, `N` phoneme units, `W` symbols per unit, `D`
backbone width.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from unispeech.model.configuration import UnispeechLMConfig
from unispeech.model.lengths import mel_patches
from unispeech.model.phonemes import PAD_ID

TIME_SCALE = 1000.0  # t ∈ [0, 1] is spread over sinusoid periods as diffusion step indices are


class TimestepEmbedding(nn.Module):
    """`(B,)` times in [0, 1] → `(B, D)`: sinusoidal features, then Linear → SiLU → Linear."""

    def __init__(self, frequencies: int, hidden_size: int):
        super().__init__()
        self.frequencies = frequencies
        self.mlp = nn.Sequential(
            nn.Linear(frequencies, hidden_size), nn.SiLU(), nn.Linear(hidden_size, hidden_size)
        )

    def forward(self, time: torch.Tensor) -> torch.Tensor:
        half = self.frequencies // 2
        exponents = torch.arange(half, device=time.device, dtype=torch.float32) / max(half - 1, 1)
        angles = TIME_SCALE * time.float()[:, None] * torch.exp(-math.log(10000.0) * exponents)[None]
        features = torch.cat([angles.sin(), angles.cos()], dim=-1)  # (B, 2·half)
        features = nn.functional.pad(features, (0, self.frequencies - 2 * half))
        return self.mlp(features.to(self.mlp[0].weight.dtype))


class ZeroLinear(nn.Linear):
    """A linear layer that starts at zero, weights and bias, so its branch starts switched off."""

    def reset_parameters(self) -> None:
        nn.init.zeros_(self.weight)
        nn.init.zeros_(self.bias)


class MelInputProjection(nn.Module):
    """Noisy mel and condition mel, `p` frames each per position → backbone inputs `(B, P, D)`."""

    def __init__(self, mel_bins: int, patch_size: int, hidden_size: int):
        super().__init__()
        self.linear = ZeroLinear(2 * patch_size * mel_bins, hidden_size)

    def forward(self, noisy_patches: torch.Tensor, condition_patches: torch.Tensor) -> torch.Tensor:
        return self.linear(torch.cat([noisy_patches, condition_patches], dim=-1))


class AdaptiveLayerNorm(nn.Module):
    """LayerNorm whose scale and shift come from the time embedding (DiT's adaLN, zero-initialised)."""

    def __init__(self, hidden_size: int):
        super().__init__()
        self.norm = nn.LayerNorm(hidden_size, elementwise_affine=False)
        self.modulation = nn.Sequential(nn.SiLU(), ZeroLinear(hidden_size, 2 * hidden_size))

    def forward(self, hidden: torch.Tensor, time_embedding: torch.Tensor) -> torch.Tensor:
        """`(B, P, D)` hidden, `(B, D)` time embedding → `(B, P, D)`."""
        scale, shift = self.modulation(time_embedding)[:, None].chunk(2, dim=-1)
        return self.norm(hidden) * (1 + scale) + shift


class PhonemeEmbedding(nn.Module):
    """The TTS phoneme table: units `(…, W)` of symbol ids → `(…, D)`, the sum of their symbols'
    embeddings (`PAD_ID` is zero, so padding adds nothing)."""

    def __init__(self, table_size: int, hidden_size: int):
        super().__init__()
        self.table = nn.Embedding(table_size, hidden_size, padding_idx=PAD_ID)

    def forward(self, units: torch.Tensor) -> torch.Tensor:
        return self.table(units).sum(dim=-2)


class VariancePredictor(nn.Module):
    """FastSpeech 2's variance predictor: convolutions with ReLU and LayerNorm over a sequence of
    embeddings, then a linear layer to `outputs` values per step. It predicts log frames per phoneme
    unit (the duration predictor) and, over frames, each frame's mel (the phoneme prior)."""

    def __init__(self, hidden_size: int, channels: int, kernel_size: int, layers: int, outputs: int = 1):
        super().__init__()
        widths = [hidden_size] + [channels] * layers
        self.convolutions = nn.ModuleList(
            nn.Conv1d(a, b, kernel_size, padding=kernel_size // 2) for a, b in itertools.pairwise(widths)
        )
        self.norms = nn.ModuleList(nn.LayerNorm(channels) for _ in range(layers))
        self.output = nn.Linear(channels, outputs)

    def forward(self, embeddings: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """`(S, N, D)` embeddings with `(S,)` real lengths → `(S, N, outputs)`, 0 on padding."""
        real = (torch.arange(embeddings.shape[1], device=lengths.device)[None] < lengths[:, None])[..., None]
        hidden = embeddings * real
        for convolution, norm in zip(self.convolutions, self.norms, strict=True):
            hidden = norm(convolution(hidden.transpose(1, 2)).transpose(1, 2).relu()) * real
        return self.output(hidden) * real


@dataclass
class PhonemeCondition:
    """What the phonemes tell the generated frames: the prior mel μ the units predict (Grad-TTS's
    and Matcha-TTS's encoder output, here from the frames' length-regulated units) and the units'
    embeddings, both per frame."""

    prior: torch.Tensor  # (S, F, M) normalised mel
    embeddings: torch.Tensor  # (S, F, D)


@dataclass
class FlowMatchingExample:
    """One training draw for a batch of generated mels (see `FlowMatching.draw`)."""

    time: torch.Tensor  # (S,) in [0, 1]
    noisy: torch.Tensor  # (S, F, M) x_t
    velocity: torch.Tensor  # (S, F, M) target x1 − x0
    frames: torch.Tensor  # (S, F) True on real frames (where the loss is taken)
    drop_text: torch.Tensor  # (S,) True where text, phonemes and prompt are hidden
    drop_audio: torch.Tensor  # (S,) True where the prompt is hidden (always when the text is)


@dataclass(frozen=True)
class SwaySchedule:
    """ODE time steps `t_k = u + s·(cos(π/2·u) − 1 + u)` for uniform u (F5-TTS's sway sampling).

    `coefficient` s < 0 spends more steps at small t, where the coarse structure is decided;
    s = 0 is the uniform schedule. s must be in [-1, 1] for the steps to stay increasing.
    """

    coefficient: float = -1.0

    def __post_init__(self) -> None:
        if not -1 <= self.coefficient <= 1:
            raise ValueError(f"sway coefficient must be in [-1, 1], got {self.coefficient}")

    def timesteps(self, steps: int) -> torch.Tensor:
        """`(S + 1,)` increasing times from 0 to 1."""
        if steps < 1:
            raise ValueError(f"the ODE needs at least one step, got {steps}")
        uniform = torch.linspace(0, 1, steps + 1)
        return uniform + self.coefficient * (torch.cos(math.pi / 2 * uniform) - 1 + uniform)


VelocityFunction = Callable[[torch.Tensor, float], tuple[torch.Tensor, torch.Tensor | None]]


class FlowMatching(nn.Module):
    """Time embedding, mel patches and phonemes in, velocities out, the training draw, the losses,
    the duration predictor and the sampler."""

    def __init__(self, config: UnispeechLMConfig):
        super().__init__()
        hidden_size = config.text_config.hidden_size
        self.mel_bins = config.mel_bins
        self.patch_size = config.mel_patch_size
        self.mel_mean = config.mel_mean
        self.mel_std = config.mel_std
        self.audio_drop_prob = config.audio_drop_prob
        self.text_drop_prob = config.text_drop_prob
        self.time_embedding = TimestepEmbedding(config.time_embedding_frequencies, hidden_size)
        self.mel_input = MelInputProjection(config.mel_bins, config.mel_patch_size, hidden_size)
        self.phonemes = PhonemeEmbedding(config.phoneme_table_size, hidden_size)
        self.durations = VariancePredictor(
            hidden_size, config.duration_channels, config.duration_kernel_size, config.duration_layers
        )
        self.prior = VariancePredictor(
            hidden_size,
            config.duration_channels,
            config.duration_kernel_size,
            config.duration_layers,
            config.mel_bins,
        )
        self.output_norm = AdaptiveLayerNorm(hidden_size)
        self.mel_output = nn.Linear(hidden_size, config.mel_patch_size * config.mel_bins)

    def normalize(self, log_mel: torch.Tensor) -> torch.Tensor:
        return (log_mel - self.mel_mean) / self.mel_std

    def denormalize(self, mel: torch.Tensor) -> torch.Tensor:
        return mel * self.mel_std + self.mel_mean

    def patchify(self, frames: torch.Tensor) -> torch.Tensor:
        """`(B, F, C)` → `(B, P, p·C)`, zero-padding the last patch."""
        batch, count, channels = frames.shape
        patches = mel_patches(count, self.patch_size)
        frames = nn.functional.pad(frames, (0, 0, 0, patches * self.patch_size - count))
        return frames.reshape(batch, patches, self.patch_size * channels)

    def unpatchify(self, patches: torch.Tensor, frames: int) -> torch.Tensor:
        """`(B, P, p·M)` → `(B, F, M)`, dropping the padding of the last patch."""
        batch, count, _ = patches.shape
        return patches.reshape(batch, count * self.patch_size, self.mel_bins)[:, :frames]

    def draw(
        self, mel: torch.Tensor, mel_lengths: torch.Tensor, generator: torch.Generator | None = None
    ) -> FlowMatchingExample:
        """A random training example for the normalised mels to generate `(S, F, M)`, `(S,)` long."""
        batch, frames, _ = mel.shape
        device = mel.device

        def uniform(*shape: int) -> torch.Tensor:
            return torch.rand(*shape, generator=generator, device=device)

        drop_text = uniform(batch) < self.text_drop_prob
        drop_audio = drop_text | (uniform(batch) < self.audio_drop_prob)
        time = uniform(batch)
        noise = torch.randn(mel.shape, generator=generator, device=device, dtype=mel.dtype)
        noisy = (1 - time[:, None, None]) * noise + time[:, None, None] * mel
        real = torch.arange(frames, device=device)[None] < mel_lengths[:, None]
        return FlowMatchingExample(time, noisy, mel - noise, real, drop_text, drop_audio)

    def embed_prompt(self, prompt: torch.Tensor) -> torch.Tensor:
        """Backbone inputs `(S, Pp, D)` of normalised prompt mels `(S, Fp, M)`: the clean half of
        the input projection (the noisy half is zero)."""
        patches = self.patchify(prompt)
        return self.mel_input(torch.zeros_like(patches), patches)

    def phoneme_condition(self, frame_units: torch.Tensor, lengths: torch.Tensor) -> PhonemeCondition:
        """The prior mel and the unit embeddings of frames' units `(S, F, W)` with `(S,)` real lengths."""
        embeddings = self.phonemes(frame_units)  # (S, F, D)
        return PhonemeCondition(self.prior(embeddings, lengths), embeddings)

    def embed_target(
        self, noisy: torch.Tensor, condition: PhonemeCondition, phonemes_seen: torch.Tensor
    ) -> torch.Tensor:
        """Backbone inputs `(S, P, D)` of the generated span: noisy mels `(S, F, M)` and the prior
        mel through the input projection's two halves, plus the mean embedding of each patch's
        frames' units; the phonemes (prior and embeddings) are left out where `phonemes_seen` `(S,)`
        is False (guidance's unconditional row)."""
        seen = phonemes_seen[:, None, None].to(noisy.dtype)
        patches, prior = self.patchify(noisy), self.patchify(condition.prior.to(noisy.dtype) * seen)
        phonemes = condition.embeddings * seen  # (S, F, D)
        per_patch = self.patchify(phonemes).unflatten(-1, (self.patch_size, -1)).mean(dim=2)  # (S, P, D)
        return self.mel_input(patches, prior) + per_patch.to(patches.dtype)

    def velocity(self, hidden: torch.Tensor, time_embedding: torch.Tensor, frames: int) -> torch.Tensor:
        """Final hidden states of the generated mel positions `(S, P, D)` → velocities `(S, F, M)`."""
        return self.unpatchify(self.mel_output(self.output_norm(hidden, time_embedding)), frames)

    def log_durations(self, units: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Predicted log frames `(S, N)` of units `(S, N, W)` with `(S,)` real counts."""
        return self.durations(self.phonemes(units), lengths)[..., 0]

    @staticmethod
    def loss(predicted: torch.Tensor, target: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """Mean squared error over the real frames `(S, F)` only."""
        squared = ((predicted.float() - target.float()) ** 2).mean(dim=-1)  # (S, F)
        return (squared * frames).sum() / frames.sum().clamp(min=1)

    @staticmethod
    def duration_loss(
        log_predicted: torch.Tensor, durations: torch.Tensor, lengths: torch.Tensor
    ) -> torch.Tensor:
        """Mean squared error of log frames over the real units (FastSpeech's duration loss)."""
        real = torch.arange(durations.shape[1], device=lengths.device)[None] < lengths[:, None]
        error = (log_predicted.float() - durations.clamp(min=1).float().log()) ** 2
        return (error * real).sum() / real.sum().clamp(min=1)

    @staticmethod
    def sample(
        velocity_fn: VelocityFunction,
        noise: torch.Tensor,
        steps: int,
        schedule: SwaySchedule = SwaySchedule(),
        guidance_strength: float = 2.0,
        start_time: float = 0.0,
    ) -> torch.Tensor:
        """Integrate dx/dt = v(x, t) from `noise` (the state at `start_time`, 0 by default: pure
        noise) to t=1 with Euler steps, the schedule's steps squeezed into [start_time, 1].

        `velocity_fn(x, t)` returns the conditional velocity and, when `guidance_strength` is not
        zero, the unconditional one (computed in the same batched forward); they are combined as
        `v_cond + strength·(v_cond − v_uncond)`.
        """
        times = (start_time + (1 - start_time) * schedule.timesteps(steps)).tolist()
        x = noise
        for t, t_next in itertools.pairwise(times):
            conditional, unconditional = velocity_fn(x, t)
            if guidance_strength != 0:
                if unconditional is None:
                    raise ValueError("classifier-free guidance needs the unconditional velocity")
                conditional = conditional + guidance_strength * (conditional - unconditional)
            x = x + (t_next - t) * conditional
        return x
