"""Tiny random models for tests and examples: a byte-level tokenizer, a small `UnispeechLMModel`,
deterministic noise and speech clips, and TTS samples with stand-in durations.

Nothing here downloads anything: the tokenizer is built in memory (each UTF-8 byte one token, plus
`<pad>`, `<s>`, `</s>`), so tests run offline and in seconds, on any text in any script.
"""

from __future__ import annotations

import functools

import numpy as np
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from unispeech.audio.features import AudioSource, load_audio
from unispeech.data.phoneme_durations import even_durations
from unispeech.model.configuration import UnispeechLMConfig
from unispeech.model.lengths import vocoder_mel_frames
from unispeech.model.modeling import UnispeechLMModel
from unispeech.model.phonemes import phoneme_units
from unispeech.model.processor import TtsSample, UnispeechLMProcessor
from unispeech.samples import LJSPEECH_SAMPLE

SPECIAL_TOKENS = ("<pad>", "<s>", "</s>")  # ids 0, 1, 2, as the tiny config declares them


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """A byte-level tokenizer of 256 + 3 tokens with no merges."""
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {token: index for index, token in enumerate([*SPECIAL_TOKENS, *sorted(alphabet)])}
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="<pad>", bos_token="<s>", eos_token="</s>"
    )


def tiny_model(
    attn_implementation: str = "sdpa", **config_overrides
) -> tuple[UnispeechLMModel, UnispeechLMProcessor]:
    """A random tiny model (in eval mode) and its processor."""
    tokenizer = tiny_tokenizer()
    config = UnispeechLMConfig.tiny(vocab_size=len(tokenizer), **config_overrides)
    model = UnispeechLMModel._from_config(config, attn_implementation=attn_implementation).eval()
    return model, UnispeechLMProcessor(tokenizer, config)


def noise(seconds: float, sample_rate: int, seed: int = 0) -> np.ndarray:
    """A deterministic clip of quiet noise (standard deviation 0.1), float32 mono."""
    return (0.1 * np.random.default_rng(seed).standard_normal(int(seconds * sample_rate))).astype(np.float32)


SPEECH_OFFSET_SECONDS = 1.0  # a clip starts within the sample's first second (its speech is continuous)


def speech(seconds: float, sample_rate: int, seed: int = 0) -> np.ndarray:
    """A deterministic clip of real speech, float32 mono: `seconds` of the bundled LJSpeech sample
    (looped) from a seeded offset, so that different seeds give different clips. What transcription
    tests feed: it passes the speech presence check, which noise does not."""
    recording = _sample_speech(sample_rate)  # (samples,)
    start = int(np.random.default_rng(seed).uniform(0, SPEECH_OFFSET_SECONDS) * sample_rate)
    length = int(seconds * sample_rate)
    return np.resize(np.roll(recording, -start), length).astype(np.float32)


@functools.cache
def _sample_speech(sample_rate: int) -> np.ndarray:
    return load_audio(LJSPEECH_SAMPLE.path, sample_rate)


def tts_sample(
    audio: AudioSource,
    text: str,
    config: UnispeechLMConfig,
    sampling_rate: int | None = None,
    prompt_fraction: float | None = 0.25,
) -> TtsSample:
    """A TTS sample of a clip whose units are `text`'s characters (no espeak-ng needed), spread
    evenly over its frames (no aligner). `prompt_fraction=None` makes an inference sample: the
    clip is the prompt and the units fill as many frames again after it."""
    settings = config.mel_settings
    frames = vocoder_mel_frames(
        len(load_audio(audio, settings.sample_rate, sampling_rate)), settings.hop_length
    )
    units = tuple(phoneme_units(text.lower()))
    durations = even_durations(len(units), max(frames, len(units)))
    prompt = None if prompt_fraction is None else int(prompt_fraction * frames)
    return TtsSample(audio, text, units, durations, prompt, sampling_rate)
