"""Tiny random models for tests and examples: a byte-level tokenizer, a small `UnispeechLMModel`,
and deterministic noise clips.

Nothing here downloads anything: the tokenizer is built in memory (each UTF-8 byte one token, plus
`<pad>`, `<s>`, `</s>`), so tests run offline and in seconds, on any text in any script.
"""

from __future__ import annotations

import numpy as np
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from unispeech.configuration import UnispeechLMConfig
from unispeech.modeling import UnispeechLMModel
from unispeech.processor import UnispeechLMProcessor

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
