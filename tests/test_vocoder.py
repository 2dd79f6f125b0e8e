"""Vocoders: tiny random HiFi-GANs (shapes, batching, weight norm, every weight format) and Griffin-Lim."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch.nn.utils import parametrize

from unispeech.audio.features import MelSettings, vocoder_log_mel
from unispeech.audio.vocoder import GriffinLim, HifiGan, HifiGanConfig, Vocoder

TINY = HifiGanConfig(upsample_initial_channel=16)  # V1 layout and mel, 16 → 8 → 4 → 2 → 1 channels
HOP = TINY.mel.hop_length
N_MELS = TINY.mel.n_mels
TOLERANCE = 1e-6


def tiny_hifigan(seed: int = 0, config: HifiGanConfig = TINY) -> HifiGan:
    torch.manual_seed(seed)
    return HifiGan(config).eval()


def random_log_mel(batch: int, frames: int, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, N_MELS, frames, generator=generator) - 5.0  # (B, M, F), log-mel-like


def original_format(model: HifiGan) -> dict[str, torch.Tensor]:
    """The model's weights named as the original HiFi-GAN checkpoints name them (old weight_norm)."""
    renamed = {}
    for name, tensor in model.state_dict().items():
        name = name.replace(".parametrizations.weight.original0", ".weight_g")
        name = name.replace(".parametrizations.weight.original1", ".weight_v")
        renamed[name] = tensor.clone()
    return renamed


def vocode(model: HifiGan, mel: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(mel)


@pytest.mark.parametrize("frames", [1, 7])
@pytest.mark.parametrize("batch", [1, 2])
def test_hifigan_gives_hop_samples_per_frame(batch: int, frames: int) -> None:
    audio = vocode(tiny_hifigan(), random_log_mel(batch, frames))
    assert isinstance(tiny_hifigan(), Vocoder)
    assert audio.shape == (batch, frames * HOP)
    assert audio.dtype == torch.float32
    assert audio.abs().max() <= 1.0  # tanh output


def test_hifigan_batch_equals_one_by_one() -> None:
    model = tiny_hifigan()
    mel = random_log_mel(3, 9)
    batched = vocode(model, mel)
    one_by_one = torch.cat([vocode(model, clip[None]) for clip in mel])
    torch.testing.assert_close(batched, one_by_one, rtol=0, atol=TOLERANCE)


def test_remove_weight_norm_keeps_output_and_parameters() -> None:
    model = tiny_hifigan()
    mel = random_log_mel(2, 5)
    before = vocode(model, mel)
    weight_count = sum(
        parameter.numel() for name, parameter in model.named_parameters() if "original1" in name
    )
    with torch.no_grad():  # removal under no_grad must still leave parameters, not buffers
        model.remove_weight_norm()
    after = vocode(model, mel)
    torch.testing.assert_close(after, before, rtol=0, atol=TOLERANCE)
    assert not model.has_weight_norm
    assert not any(parametrize.is_parametrized(module) for module in model.modules())
    assert sum(
        parameter.numel() for name, parameter in model.named_parameters() if name.endswith("weight")
    ) == (weight_count)


def test_original_weight_norm_names_round_trip() -> None:
    source, target = tiny_hifigan(seed=0), tiny_hifigan(seed=1)
    mel = random_log_mel(1, 6)
    assert not torch.allclose(vocode(source, mel), vocode(target, mel))
    state_dict = original_format(source)
    assert "conv_pre.weight_g" in state_dict
    assert "resblocks.0.convs1.2.weight_v" in state_dict
    target.load_weights(state_dict)
    torch.testing.assert_close(vocode(target, mel), vocode(source, mel), rtol=0, atol=0)
    fused = tiny_hifigan(seed=2).remove_weight_norm().load_weights(state_dict)  # g · v / ‖v‖ computed on load
    torch.testing.assert_close(vocode(fused, mel), vocode(source, mel), rtol=0, atol=TOLERANCE)


def test_from_checkpoint_reads_the_original_layout(tmp_path) -> None:
    source = tiny_hifigan(seed=3)
    path = tmp_path / "generator_tiny.pth.tar"
    torch.save({"generator": original_format(source)}, path)
    loaded = HifiGan.from_checkpoint(path, TINY)
    mel = random_log_mel(1, 4)
    torch.testing.assert_close(vocode(loaded, mel), vocode(source, mel), rtol=0, atol=0)
    torch.save({"model": original_format(source)}, path)
    with pytest.raises(ValueError, match="expected a dict with key 'generator'"):
        HifiGan.from_checkpoint(path, TINY)


@pytest.mark.parametrize("fuse", [False, True])
def test_safetensors_round_trip(tmp_path, fuse: bool) -> None:
    config = dataclasses.replace(
        TINY, resblock_kernel_sizes=(3, 5), resblock_dilation_sizes=((1, 3, 5), (1, 2, 4))
    )
    source = tiny_hifigan(seed=4, config=config)
    if fuse:
        source.remove_weight_norm()
    path = tmp_path / "vocoder" / "hifigan.safetensors"
    source.save(path)
    assert path.with_suffix(".json").is_file()
    loaded = HifiGan.from_safetensors(path)
    assert loaded.config == config
    assert loaded.has_weight_norm is not fuse
    mel = random_log_mel(2, 3)
    torch.testing.assert_close(vocode(loaded, mel), vocode(source, mel), rtol=0, atol=0)


def test_mismatched_state_dict_names_the_mismatches() -> None:
    model = tiny_hifigan()
    state_dict = original_format(tiny_hifigan())
    del state_dict["conv_post.weight_g"]
    state_dict["conv_post.extra"] = torch.zeros(1)
    with pytest.raises(ValueError, match=r"missing conv_post\.parametrizations\.weight\.original0") as error:
        model.load_weights(state_dict)
    assert "unexpected conv_post.extra" in str(error.value)

    wider = original_format(tiny_hifigan(config=dataclasses.replace(TINY, upsample_initial_channel=32)))
    with pytest.raises(ValueError, match=r"wrong shape conv_pre\.bias \(32,\) \(expected \(16,\)\)"):
        model.load_weights(wider)

    fused = tiny_hifigan().remove_weight_norm().state_dict()  # plain weights into a weight-normed model
    with pytest.raises(ValueError, match=r"weight-normed HifiGan .*unexpected conv_pre\.weight"):
        model.load_weights(fused)


def test_mel_of_the_wrong_shape_is_refused() -> None:
    with pytest.raises(ValueError, match=r"\(batch, 80, frames > 0\), got \(80, 5\)"):
        tiny_hifigan()(torch.zeros(N_MELS, 5))
    with pytest.raises(ValueError, match=r"got \(1, 40, 5\)"):
        GriffinLim()(torch.zeros(1, 40, 5))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"upsample_rates": (8, 8, 2, 4)}, "multiply to 512"),
        ({"upsample_kernel_sizes": (16, 16, 4)}, "one kernel size per rate"),
        ({"upsample_kernel_sizes": (15, 16, 4, 4)}, "kernel - rate"),
        ({"resblock": "3"}, "resblock must be one of"),
        ({"upsample_initial_channel": 20}, "divisible by"),
    ],
)
def test_config_rejects_inconsistent_layouts(changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(TINY, **changes)


def test_config_round_trips_through_json_types() -> None:
    values = TINY.to_dict()  # lists/dicts once through JSON
    values = {key: list(value) if isinstance(value, tuple) else value for key, value in values.items()}
    assert HifiGanConfig.from_dict(values) == TINY
    with pytest.raises(ValueError, match="unknown HifiGanConfig fields"):
        HifiGanConfig.from_dict(values | {"num_mels": 80})


def test_griffin_lim_recovers_a_tone() -> None:
    settings = MelSettings()
    frequency = 440.0
    time = np.arange(settings.sample_rate) / settings.sample_rate  # 1 s
    tone = 0.5 * np.sin(2 * np.pi * frequency * time).astype(np.float32)
    mel = vocoder_log_mel(tone, settings)[None]  # (1, M, F)
    vocoder = GriffinLim(settings, n_iter=16)
    audio = vocoder(mel)
    assert audio.shape == (1, mel.shape[-1] * settings.hop_length)
    assert audio.dtype == torch.float32
    spectrum = np.abs(np.fft.rfft(audio[0].numpy()))
    dominant = np.fft.rfftfreq(audio.shape[-1], 1 / settings.sample_rate)[spectrum.argmax()]
    assert abs(dominant - frequency) <= settings.sample_rate / settings.n_fft  # ± one STFT bin
    torch.testing.assert_close(vocoder(mel), audio)  # seeded: deterministic
