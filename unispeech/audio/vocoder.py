"""Audio out: the vocoders that turn the vocoder log-mel back into a waveform.

This module owns the interface `mel → waveform` and its two implementations. `Vocoder` is the
contract: it reads the log-mel that `unispeech.audio.features.vocoder_log_mel` computes with its
`mel_settings`, shape `(B, M, F)`, and returns float32 audio at `sample_rate`, `(B, F * hop)`.
`HifiGan` is the HiFi-GAN V1 generator (Kong et al., 2020), written here and loadable from the
original `generator_*.pth.tar` checkpoints (old-style `weight_g`/`weight_v` weight-norm names) or
from our cache's safetensors (a `.safetensors` file with its `HifiGanConfig` in a `.json` beside
it); it is what real speech goes through. `GriffinLim` needs no weights: it inverts the mel
filters by non-negative least squares and recovers a phase by Griffin-Lim, for tiny test models
that have no trained vocoder.

Shapes: `B` batch, `M` mel bins, `F` mel frames, `T = F * hop` samples, `C` channels.
"""

from __future__ import annotations

import abc
import dataclasses
import functools
import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import librosa
import numpy as np
import safetensors.torch
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm

from unispeech.audio.features import MelSettings, mel_filters, vocoder_log_mel

logger = logging.getLogger(__name__)

V1_MEL_SETTINGS = MelSettings()  # 22.05 kHz, 80 bins, n_fft/win 1024, hop 256, 0–8 kHz
LEAKY_RELU_SLOPE = 0.1  # every activation inside the generator
FINAL_LEAKY_RELU_SLOPE = 0.01  # the one before conv_post: the original calls F.leaky_relu(x) with the default
PRE_POST_KERNEL_SIZE = 7  # conv_pre and conv_post
INIT_STD = 0.01  # the original draws conv weights from N(0, 0.01²)
CHECKPOINT_GENERATOR_KEY = "generator"  # where generator_*.pth.tar keeps the state dict
MISMATCHES_SHOWN = 5  # how many mismatching names a ValueError lists
DEFAULT_GRIFFIN_LIM_ITERATIONS = 32
DEFAULT_GRIFFIN_LIM_MOMENTUM = 0.99  # librosa's "fast Griffin-Lim" default

# Weight-norm parameter names: old-style `torch.nn.utils.weight_norm` and its parametrization.
OLD_MAGNITUDE_SUFFIX = ".weight_g"
OLD_DIRECTION_SUFFIX = ".weight_v"
MAGNITUDE_SUFFIX = ".parametrizations.weight.original0"
DIRECTION_SUFFIX = ".parametrizations.weight.original1"
FUSED_SUFFIX = ".weight"


class Vocoder(nn.Module, abc.ABC):
    """Log-mel `(B, M, F)`, as `vocoder_log_mel(audio, mel_settings)` computes it → float32 `(B, F * hop)`."""

    mel_settings: MelSettings

    @property
    def sample_rate(self) -> int:
        return self.mel_settings.sample_rate

    @property
    def hop_length(self) -> int:
        return self.mel_settings.hop_length

    @abc.abstractmethod
    def forward(self, mel: Tensor) -> Tensor: ...

    @torch.inference_mode()
    def resynthesize(self, audio: np.ndarray) -> np.ndarray:
        """`(T,)` audio at `sample_rate` → its log-mel, voiced back: `(T // hop · hop,)`.

        The proof that our TTS mel is the one this vocoder was trained on."""
        return self(vocoder_log_mel(audio, self.mel_settings)[None])[0].numpy()

    def _check_mel(self, mel: Tensor) -> None:
        if mel.dim() != 3 or mel.shape[1] != self.mel_settings.n_mels or mel.shape[2] == 0:
            raise ValueError(
                f"{type(self).__name__} takes a log-mel of shape (batch, {self.mel_settings.n_mels}, frames"
                f" > 0), got {tuple(mel.shape)}; add a batch axis with mel[None] for a single clip"
            )


# ----------------------------------------------------------------------------------------------------
# HiFi-GAN V1


@dataclass(frozen=True)
class HifiGanConfig:
    """HiFi-GAN generator hyper-parameters; the defaults are V1 (13.9 M parameters) on the V1 mel."""

    upsample_rates: tuple[int, ...] = (8, 8, 2, 2)
    upsample_kernel_sizes: tuple[int, ...] = (16, 16, 4, 4)
    upsample_initial_channel: int = 512
    resblock: str = "1"
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    mel: MelSettings = V1_MEL_SETTINGS

    def __post_init__(self) -> None:
        # JSON gives lists and a dict: store tuples and MelSettings so the config stays hashable.
        object.__setattr__(self, "upsample_rates", tuple(self.upsample_rates))
        object.__setattr__(self, "upsample_kernel_sizes", tuple(self.upsample_kernel_sizes))
        object.__setattr__(self, "resblock_kernel_sizes", tuple(self.resblock_kernel_sizes))
        object.__setattr__(
            self, "resblock_dilation_sizes", tuple(tuple(d) for d in self.resblock_dilation_sizes)
        )
        if isinstance(self.mel, Mapping):
            object.__setattr__(self, "mel", MelSettings(**self.mel))

        if self.resblock not in RESBLOCKS:
            raise ValueError(f"resblock must be one of {sorted(RESBLOCKS)}, got {self.resblock!r}")
        if len(self.upsample_rates) != len(self.upsample_kernel_sizes):
            raise ValueError(
                f"{len(self.upsample_rates)} upsample_rates but {len(self.upsample_kernel_sizes)} "
                "upsample_kernel_sizes: give one kernel size per rate"
            )
        if math.prod(self.upsample_rates) != self.mel.hop_length:
            raise ValueError(
                f"upsample_rates {self.upsample_rates} multiply to {math.prod(self.upsample_rates)}, "
                f"but the mel hop is {self.mel.hop_length} samples: they must be equal"
            )
        for rate, kernel_size in zip(self.upsample_rates, self.upsample_kernel_sizes, strict=True):
            if kernel_size < rate or (kernel_size - rate) % 2:
                raise ValueError(
                    f"upsample kernel {kernel_size} for rate {rate}: need kernel >= rate and kernel - rate "
                    "even, or the output is not exactly rate × longer"
                )
        if self.upsample_initial_channel % 2 ** len(self.upsample_rates):
            raise ValueError(
                f"upsample_initial_channel {self.upsample_initial_channel} must be divisible by "
                f"2**{len(self.upsample_rates)}: every upsampling halves the channels"
            )
        if len(self.resblock_kernel_sizes) != len(self.resblock_dilation_sizes):
            raise ValueError(
                f"{len(self.resblock_kernel_sizes)} resblock_kernel_sizes but "
                f"{len(self.resblock_dilation_sizes)} resblock_dilation_sizes"
            )
        needed = RESBLOCKS[self.resblock].num_dilations
        for dilations in self.resblock_dilation_sizes:
            if len(dilations) < needed:
                raise ValueError(f"resblock {self.resblock!r} needs {needed} dilations, got {dilations}")
        for kernel_size in self.resblock_kernel_sizes:
            if kernel_size % 2 == 0:
                raise ValueError(f"resblock kernel sizes must be odd (same-length convs), got {kernel_size}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping) -> HifiGanConfig:
        unknown = set(values) - {field.name for field in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown HifiGanConfig fields: {sorted(unknown)}")
        return cls(**values)


def _conv1d(in_channels: int, out_channels: int, kernel_size: int, dilation: int = 1) -> nn.Module:
    """A weight-normed, length-preserving Conv1d (stride 1, 'same' padding)."""
    padding = dilation * (kernel_size - 1) // 2
    conv = nn.Conv1d(in_channels, out_channels, kernel_size, dilation=dilation, padding=padding)
    nn.init.normal_(conv.weight, 0.0, INIT_STD)
    return weight_norm(conv)


def _remove_weight_norms(module: nn.Module) -> int:
    """Fuse every weight-norm parametrization below `module` into a plain weight; returns how many."""
    fused = 0
    for submodule in module.modules():
        if parametrize.is_parametrized(submodule, "weight"):
            with torch.no_grad():
                weight = submodule.weight.detach().clone()  # g · v / ‖v‖
            parametrize.remove_parametrizations(submodule, "weight", leave_parametrized=True)
            # Under no_grad the removal leaves a buffer, not a parameter: register a parameter either way.
            delattr(submodule, "weight")
            submodule.weight = nn.Parameter(weight)
            fused += 1
    return fused


class ResBlock1(nn.Module):
    """V1/V2 residual block: per dilation d, x += conv_k(lrelu(conv_{k,d}(lrelu(x))))."""

    num_dilations = 3

    def __init__(self, channels: int, kernel_size: int, dilations: Sequence[int]):
        super().__init__()
        dilations = dilations[: self.num_dilations]
        self.convs1 = nn.ModuleList([_conv1d(channels, channels, kernel_size, d) for d in dilations])
        self.convs2 = nn.ModuleList([_conv1d(channels, channels, kernel_size) for _ in dilations])

    def forward(self, x: Tensor) -> Tensor:  # (B, C, T) → (B, C, T)
        for dilated, plain in zip(self.convs1, self.convs2, strict=True):
            residual = dilated(F.leaky_relu(x, LEAKY_RELU_SLOPE))
            residual = plain(F.leaky_relu(residual, LEAKY_RELU_SLOPE))
            x = x + residual
        return x


class ResBlock2(nn.Module):
    """V3 residual block: per dilation d, x += conv_{k,d}(lrelu(x))."""

    num_dilations = 2

    def __init__(self, channels: int, kernel_size: int, dilations: Sequence[int]):
        super().__init__()
        dilations = dilations[: self.num_dilations]
        self.convs = nn.ModuleList([_conv1d(channels, channels, kernel_size, d) for d in dilations])

    def forward(self, x: Tensor) -> Tensor:  # (B, C, T) → (B, C, T)
        for conv in self.convs:
            x = x + conv(F.leaky_relu(x, LEAKY_RELU_SLOPE))
        return x


RESBLOCKS: dict[str, type[ResBlock1] | type[ResBlock2]] = {"1": ResBlock1, "2": ResBlock2}


class HifiGan(Vocoder):
    """The HiFi-GAN generator. Module names follow the original, so its checkpoints map one to one.

    conv_pre (M → C) → per stage i: lrelu, ConvTranspose ×rate_i (C/2^i → C/2^(i+1)), mean of the
    stage's resblocks (one per kernel size: a multi-receptive-field fusion) → lrelu, conv_post → tanh.
    """

    def __init__(self, config: HifiGanConfig = HifiGanConfig()):
        super().__init__()
        self.config = config
        self.mel_settings = config.mel
        channels = config.upsample_initial_channel
        self.conv_pre = weight_norm(
            nn.Conv1d(config.mel.n_mels, channels, PRE_POST_KERNEL_SIZE, padding=PRE_POST_KERNEL_SIZE // 2)
        )

        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()  # flat, stage by stage: index = stage * kernels + kernel
        resblock = RESBLOCKS[config.resblock]
        for rate, kernel_size in zip(config.upsample_rates, config.upsample_kernel_sizes, strict=True):
            upsample = nn.ConvTranspose1d(
                channels, channels // 2, kernel_size, stride=rate, padding=(kernel_size - rate) // 2
            )
            nn.init.normal_(upsample.weight, 0.0, INIT_STD)
            self.ups.append(weight_norm(upsample))
            channels //= 2
            for block_kernel_size, dilations in zip(
                config.resblock_kernel_sizes, config.resblock_dilation_sizes, strict=True
            ):
                self.resblocks.append(resblock(channels, block_kernel_size, dilations))

        conv_post = nn.Conv1d(channels, 1, PRE_POST_KERNEL_SIZE, padding=PRE_POST_KERNEL_SIZE // 2)
        nn.init.normal_(conv_post.weight, 0.0, INIT_STD)
        self.conv_post = weight_norm(conv_post)

    @property
    def has_weight_norm(self) -> bool:
        return parametrize.is_parametrized(self.conv_pre, "weight")

    def forward(self, mel: Tensor) -> Tensor:
        self._check_mel(mel)
        parameter = self.conv_pre.bias
        x = self.conv_pre(mel.to(device=parameter.device, dtype=parameter.dtype))  # (B, C, F)
        kernels = len(self.config.resblock_kernel_sizes)
        for stage, upsample in enumerate(self.ups):
            x = upsample(F.leaky_relu(x, LEAKY_RELU_SLOPE))  # (B, C / 2^(stage+1), F · rates[:stage+1])
            blocks = self.resblocks[stage * kernels : (stage + 1) * kernels]
            x = sum(block(x) for block in blocks) / kernels
        x = self.conv_post(F.leaky_relu(x, FINAL_LEAKY_RELU_SLOPE))  # (B, 1, F · hop)
        return torch.tanh(x)[:, 0].float()  # (B, T)

    def remove_weight_norm(self) -> HifiGan:
        """Fuse each weight-norm pair into a plain weight: same output, no per-call renormalisation."""
        fused = _remove_weight_norms(self)
        logger.debug("fused weight norm in %d HiFi-GAN layers", fused)
        return self

    # -- weights --------------------------------------------------------------------------------------

    def load_weights(self, state_dict: Mapping[str, Tensor]) -> HifiGan:
        """Load a generator state dict in any naming: old-style `weight_g`/`weight_v`, parametrized
        `parametrizations.weight.original0/1`, or fused `weight` (the latter only after
        `remove_weight_norm`, the others only before). Raises ValueError naming mismatches."""
        state_dict = _rename_weight_norm(state_dict, fused=not self.has_weight_norm)
        expected = {name: tuple(tensor.shape) for name, tensor in self.state_dict().items()}
        problems = _state_dict_mismatches(expected, state_dict)
        if problems:
            form = "weight-normed" if self.has_weight_norm else "fused (weight norm removed)"
            raise ValueError(
                f"state dict does not fit this {form} HifiGan (upsample_initial_channel "
                f"{self.config.upsample_initial_channel}, resblock {self.config.resblock!r}): "
                + "; ".join(problems)
            )
        self.load_state_dict(dict(state_dict), strict=True)
        return self

    @classmethod
    def from_checkpoint(cls, path: str | Path, config: HifiGanConfig = HifiGanConfig()) -> HifiGan:
        """The original HiFi-GAN `generator_*.pth.tar` (a dict, state dict under "generator"),
        loaded without unpickling code. The checkpoint holds no config: pass it if not V1."""
        checkpoint = torch.load(Path(path), map_location="cpu", weights_only=True)
        if not isinstance(checkpoint, Mapping) or CHECKPOINT_GENERATOR_KEY not in checkpoint:
            found = (
                sorted(checkpoint)[:MISMATCHES_SHOWN] if isinstance(checkpoint, Mapping) else type(checkpoint)
            )
            raise ValueError(
                f"{path} is not a HiFi-GAN generator checkpoint: expected a dict with key "
                f"{CHECKPOINT_GENERATOR_KEY!r}, found {found}"
            )
        model = cls(config)
        state_dict = checkpoint[CHECKPOINT_GENERATOR_KEY]
        if _is_fused(state_dict):
            model.remove_weight_norm()
        logger.info("loaded HiFi-GAN generator from %s", path)
        return model.load_weights(state_dict).eval()

    def save(self, path: str | Path) -> None:
        """Write the weights to `path` (safetensors) and the config to `path` with suffix `.json`."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {name: tensor.detach().contiguous().cpu() for name, tensor in self.state_dict().items()}
        safetensors.torch.save_file(tensors, path, metadata={"format": "pt"})
        config_path = _config_path(path)
        config_path.write_text(json.dumps(self.config.to_dict(), indent=2) + "\n")

    @classmethod
    def from_safetensors(cls, path: str | Path) -> HifiGan:
        """Load what `save` wrote: weights from `path`, config from the `.json` beside it."""
        path = Path(path)
        config_path = _config_path(path)
        if not config_path.is_file():
            raise FileNotFoundError(f"no HiFi-GAN config beside {path}: expected {config_path}")
        model = cls(HifiGanConfig.from_dict(json.loads(config_path.read_text())))
        state_dict = safetensors.torch.load_file(path)
        if _is_fused(state_dict):
            model.remove_weight_norm()
        return model.load_weights(state_dict).eval()


def _config_path(weights_path: Path) -> Path:
    return weights_path.with_suffix(".json")


def _is_fused(state_dict: Mapping[str, Tensor]) -> bool:
    """Whether a state dict holds plain weights (weight norm removed) rather than magnitude/direction."""
    return f"conv_pre{FUSED_SUFFIX}" in state_dict


def _rename_weight_norm(state_dict: Mapping[str, Tensor], fused: bool) -> dict[str, Tensor]:
    """Rename weight-norm pairs to the parametrization's names, or fuse them when `fused` is asked."""
    renamed: dict[str, Tensor] = {}
    magnitudes: dict[str, Tensor] = {}
    directions: dict[str, Tensor] = {}
    for name, tensor in state_dict.items():
        for old, new, pairs in (
            (OLD_MAGNITUDE_SUFFIX, MAGNITUDE_SUFFIX, magnitudes),
            (OLD_DIRECTION_SUFFIX, DIRECTION_SUFFIX, directions),
            (MAGNITUDE_SUFFIX, MAGNITUDE_SUFFIX, magnitudes),
            (DIRECTION_SUFFIX, DIRECTION_SUFFIX, directions),
        ):
            if name.endswith(old):
                stem = name[: -len(old)]
                pairs[stem] = tensor
                if not fused:
                    renamed[stem + new] = tensor
                break
        else:
            renamed[name] = tensor
    if fused:
        for stem in magnitudes.keys() & directions.keys():
            renamed[stem + FUSED_SUFFIX] = _fuse_weight_norm(magnitudes[stem], directions[stem])
        for stem in magnitudes.keys() ^ directions.keys():  # half a pair: keep it so it is reported
            half = magnitudes.get(stem, directions.get(stem))
            suffix = MAGNITUDE_SUFFIX if stem in magnitudes else DIRECTION_SUFFIX
            renamed[stem + suffix] = half
    return renamed


def _fuse_weight_norm(magnitude: Tensor, direction: Tensor) -> Tensor:
    """weight = g · v / ‖v‖, the norm taken per output slice (weight norm's dim 0)."""
    norm = torch.linalg.vector_norm(direction, dim=tuple(range(1, direction.dim())), keepdim=True)
    return magnitude * direction / norm


def _state_dict_mismatches(
    expected: Mapping[str, tuple[int, ...]], state_dict: Mapping[str, Tensor]
) -> list[str]:
    """Human-readable differences (missing, unexpected, wrong shape), the first few of each."""

    def first(names: list[str]) -> str:
        shown = ", ".join(names[:MISMATCHES_SHOWN])
        return shown + (f" … ({len(names)} in all)" if len(names) > MISMATCHES_SHOWN else "")

    missing = [name for name in expected if name not in state_dict]
    unexpected = [name for name in state_dict if name not in expected]
    wrong_shape = [
        f"{name} {tuple(state_dict[name].shape)} (expected {shape})"
        for name, shape in expected.items()
        if name in state_dict and tuple(state_dict[name].shape) != shape
    ]
    problems = []
    if missing:
        problems.append(f"missing {first(missing)}")
    if unexpected:
        problems.append(f"unexpected {first(unexpected)}")
    if wrong_shape:
        problems.append(f"wrong shape {first(wrong_shape)}")
    return problems


# ----------------------------------------------------------------------------------------------------
# Griffin-Lim


class GriffinLim(Vocoder):
    """No weights: mel → linear magnitude by the pseudo-inverse of the same Slaney filters, clipped
    at zero (librosa's NNLS inversion took 1.3 s on the 2.5 s bundled sample here, this 3 ms, and
    their resyntheses had the same mel error), then `n_iter` Griffin-Lim iterations (librosa, fast
    variant with `momentum`). Deterministic for a given `seed`. Buzzy, but it needs nothing
    trained: for tests and tiny models."""

    def __init__(
        self,
        mel_settings: MelSettings = V1_MEL_SETTINGS,
        n_iter: int = DEFAULT_GRIFFIN_LIM_ITERATIONS,
        momentum: float = DEFAULT_GRIFFIN_LIM_MOMENTUM,
        seed: int = 0,
    ):
        super().__init__()
        if n_iter < 1:
            raise ValueError(f"n_iter must be at least 1, got {n_iter}")
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        self.mel_settings = mel_settings
        self.n_iter = n_iter
        self.momentum = momentum
        self.seed = seed

    def forward(self, mel: Tensor) -> Tensor:
        self._check_mel(mel)
        waveforms = [self._invert(clip) for clip in mel.detach().float().cpu().numpy()]
        return torch.from_numpy(np.stack(waveforms)).to(mel.device)  # (B, T)

    def _invert(self, log_mel: np.ndarray) -> np.ndarray:  # (M, F) → (F · hop,)
        settings = self.mel_settings
        # vocoder_log_mel filters the magnitude, not the power
        magnitude = np.maximum(_inverse_mel_filters(settings) @ np.exp(log_mel), 0.0)  # (n_fft/2 + 1, F)
        # vocoder_log_mel frames the signal reflect-padded by (n_fft - hop)/2 with center=False:
        # invert that framing, then cut the padding off again.
        pad = (settings.n_fft - settings.hop_length) // 2
        num_samples = log_mel.shape[1] * settings.hop_length
        padded = librosa.griffinlim(
            magnitude,
            n_iter=self.n_iter,
            hop_length=settings.hop_length,
            win_length=settings.win_length,
            n_fft=settings.n_fft,
            window="hann",
            center=False,
            length=num_samples + 2 * pad,
            momentum=self.momentum,
            random_state=self.seed,
        )
        return padded[pad : pad + num_samples].astype(np.float32)


@functools.lru_cache(maxsize=4)
def _inverse_mel_filters(settings: MelSettings) -> np.ndarray:
    """The pseudo-inverse `(n_fft/2 + 1, M)` of `vocoder_log_mel`'s mel filters."""
    return np.linalg.pinv(mel_filters(settings).numpy())
