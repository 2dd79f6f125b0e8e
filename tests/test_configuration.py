import pytest

from unispeech.model.configuration import UnispeechLMConfig, WhisperEncoderConfig


def test_defaults_are_the_smol_model():
    config = UnispeechLMConfig()
    assert config.model_type == "unispeech_lm" != "unispeech"
    backbone = config.text_config
    assert (backbone.model_type, backbone.hidden_size, backbone.num_hidden_layers, backbone.vocab_size) == (
        "llama",
        576,
        30,
        49152,
    )
    assert (config.encoder_config.n_audio_state, config.encoder_config.n_audio_layer) == (512, 6)
    assert config.projector_hidden_size == 576
    assert config.mel_settings.hop_length == 256 and config.mel_settings.fmax == 8000


def test_round_trip_through_json(tmp_path):
    config = UnispeechLMConfig.tiny(mel_patch_size=2, encoder_full_context=True)
    config.save_pretrained(tmp_path)
    loaded = UnispeechLMConfig.from_pretrained(tmp_path)
    assert loaded.to_dict() == config.to_dict()
    assert isinstance(loaded.encoder_config, WhisperEncoderConfig)


def test_any_causal_lm_backbone():
    config = UnispeechLMConfig(
        text_config={"model_type": "qwen2", "hidden_size": 32, "num_attention_heads": 4}
    )
    assert config.text_config.model_type == "qwen2" and config.projector_hidden_size == 32


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"mel_patch_size": 0}, "mel_patch_size must be at least 1, got 0"),
        ({"projector_stack": 0}, "projector_stack must be at least 1"),
        (
            {"prompt_max_fraction": 1.0},
            r"prompt_max_fraction must be in \[0, 1\)",
        ),
        ({"audio_drop_prob": 1.5}, r"audio_drop_prob must be a probability in \[0, 1\], got 1.5"),
        ({"mel_std": 0.0}, "mel_std must be positive"),
        ({"mel_fmax": 12000.0}, "fmax"),
        ({"encoder_config": {"n_mels": 64}}, r"take \(80, 128\) mel bins, got n_mels=64"),
        ({"encoder_config": {"n_audio_state": 30, "n_audio_head": 4}}, "multiple of n_audio_head"),
    ],
)
def test_bad_values_are_refused_with_the_value(overrides, message):
    with pytest.raises(ValueError, match=message):
        UnispeechLMConfig(**overrides)
