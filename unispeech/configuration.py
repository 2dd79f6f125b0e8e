"""Configuration of the unified speech LM: one `PretrainedConfig` for the whole model.

`UnispeechLMConfig` is a composite config in the style of transformers' audio-LLMs: `text_config`
is any causal-LM config (the backbone; defaults to SmolLM2-135M's Llama dimensions),
`encoder_config` the Whisper encoder's dimensions (defaults to whisper-base), and the flat fields
hold the projector, the vocoder mel, mel patching and flow matching. The defaults are the `smol`
model; `UnispeechLMConfig.tiny()` is the random test model. Its `model_type` is `unispeech_lm`
because transformers already owns `unispeech` (a different model).
"""

from __future__ import annotations

from typing import ClassVar

from transformers import AutoConfig, PretrainedConfig
from transformers.configuration_utils import SubConfigSpec

from unispeech.audio import MelSettings

# SmolLM2-135M-Instruct (Llama architecture), as its GGUF file declares it.
SMOLLM2_135M = {
    "vocab_size": 49152,
    "hidden_size": 576,
    "intermediate_size": 1536,
    "num_hidden_layers": 30,
    "num_attention_heads": 9,
    "num_key_value_heads": 3,
    "max_position_embeddings": 8192,
    "rms_norm_eps": 1e-5,
    "rope_parameters": {"rope_type": "default", "rope_theta": 100000.0},
    "tie_word_embeddings": True,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "pad_token_id": 2,
}

WHISPER_N_MELS = (80, 128)  # the two front-ends Whisper checkpoints use


class WhisperEncoderConfig(PretrainedConfig):
    """Dimensions of a Whisper audio encoder, named as openai-whisper's `ModelDimensions` names them.

    Defaults are whisper-base: 80 mels, 1500 positions (30 s at 50 Hz), width 512, 8 heads, 6 layers.
    """

    model_type = "unispeech_whisper_encoder"

    n_mels: int = 80
    n_audio_ctx: int = 1500
    n_audio_state: int = 512
    n_audio_head: int = 8
    n_audio_layer: int = 6

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.n_mels not in WHISPER_N_MELS:
            raise ValueError(f"Whisper encoders take {WHISPER_N_MELS} mel bins, got n_mels={self.n_mels}")
        if self.n_audio_state % self.n_audio_head:
            raise ValueError(
                f"n_audio_state ({self.n_audio_state}) must be a multiple of "
                f"n_audio_head ({self.n_audio_head})"
            )


class UnispeechLMConfig(PretrainedConfig):
    """The unified speech LM: backbone, speech encoder, projector, mel and flow-matching settings.

    Projector: `projector_stack` adjacent encoder frames are concatenated (50 Hz → 12.5 Hz for 4)
    and mapped by Linear → GELU → Linear (`projector_hidden_size`, default the backbone width).
    Encoder: `encoder_full_context=False` feeds the true length (positional table sliced);
    `True` pads every clip to Whisper's 30 s, as Whisper itself does.
    Mel: the vocoder's mel (`mel_*` fields, HiFi-GAN V1 by default), normalised as
    `(log_mel - mel_mean) / mel_std` for flow matching; the defaults are the statistics of 60
    LJSpeech LJ001 clips (mean -5.32, std 2.12). `mel_patch_size` frames share one TTS position
    (4: 21.5 positions a second of speech; the choice is measured in `adapters/smol/tts/README.md`).
    Flow matching (F5-TTS recipe): a span of `infill_min_fraction`–`infill_max_fraction` of each
    utterance is generated, the rest is the condition; per sample, the audio condition is dropped
    with `audio_drop_prob` and audio and text together with `text_drop_prob`, for classifier-free
    guidance. `time_embedding_frequencies` is the size of the sinusoidal time features.
    """

    model_type = "unispeech_lm"
    sub_configs_defaults: ClassVar[dict] = {
        "text_config": SubConfigSpec(config_class=AutoConfig, model_type="llama", init_kwargs=SMOLLM2_135M),
        "encoder_config": WhisperEncoderConfig,
    }

    text_config: dict | PretrainedConfig | None = None
    encoder_config: dict | PretrainedConfig | None = None
    encoder_full_context: bool = False
    freeze_encoder: bool = True
    projector_stack: int = 4
    projector_hidden_size: int | None = None
    mel_sample_rate: int = 22050
    mel_bins: int = 80
    mel_n_fft: int = 1024
    mel_hop_length: int = 256
    mel_win_length: int = 1024
    mel_fmin: float = 0.0
    mel_fmax: float = 8000.0
    mel_log_floor: float = 1e-5
    mel_mean: float = -5.32
    mel_std: float = 2.12
    mel_patch_size: int = 4
    time_embedding_frequencies: int = 256
    infill_min_fraction: float = 0.7
    infill_max_fraction: float = 1.0
    audio_drop_prob: float = 0.3
    text_drop_prob: float = 0.2

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.projector_hidden_size is None:
            self.projector_hidden_size = self.text_config.hidden_size
        for name in (
            "projector_stack",
            "projector_hidden_size",
            "mel_patch_size",
            "time_embedding_frequencies",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.mel_std <= 0:
            raise ValueError(f"mel_std must be positive, got {self.mel_std}")
        if not 0 < self.infill_min_fraction <= self.infill_max_fraction <= 1:
            raise ValueError(
                "need 0 < infill_min_fraction <= infill_max_fraction <= 1, got "
                f"{self.infill_min_fraction} and {self.infill_max_fraction}"
            )
        for name in ("audio_drop_prob", "text_drop_prob"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be a probability in [0, 1], got {getattr(self, name)}")
        _ = self.mel_settings  # validates the mel fields now, not at first use

    @property
    def mel_settings(self) -> MelSettings:
        """The vocoder mel these fields describe."""
        return MelSettings(
            sample_rate=self.mel_sample_rate,
            n_mels=self.mel_bins,
            n_fft=self.mel_n_fft,
            hop_length=self.mel_hop_length,
            win_length=self.mel_win_length,
            fmin=self.mel_fmin,
            fmax=self.mel_fmax,
            log_floor=self.mel_log_floor,
        )

    @classmethod
    def tiny(cls, vocab_size: int = 260, **overrides) -> UnispeechLMConfig:
        """A random model small enough for unit tests: 2 backbone layers of width 64, 1 encoder layer."""
        text_config = {
            "model_type": "llama",
            "vocab_size": vocab_size,
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 4096,
            "tie_word_embeddings": True,
            "bos_token_id": 1,
            "eos_token_id": 2,
            "pad_token_id": 0,
        }
        encoder_config = {"n_audio_state": 32, "n_audio_head": 2, "n_audio_layer": 1}
        settings = {"projector_hidden_size": 64, "time_embedding_frequencies": 32, **overrides}
        return cls(text_config=text_config, encoder_config=encoder_config, **settings)


# Registered so that transformers' Auto classes (AutoConfig, and AutoTokenizer reading config.json
# beside a tokenizer) know the model types of saved unispeech models.
AutoConfig.register(WhisperEncoderConfig.model_type, WhisperEncoderConfig)
AutoConfig.register(UnispeechLMConfig.model_type, UnispeechLMConfig)
