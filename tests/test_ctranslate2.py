"""Tests for unispeech.weights.ctranslate2: a tiny openai-whisper model written in CTranslate2's
layout by the writer below, read back, converted, and compared logit for logit with the original."""

from __future__ import annotations

import dataclasses
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
import whisper
from whisper.model import ModelDimensions, Whisper

from unispeech.weights.ctranslate2 import (
    CTranslate2FormatError,
    read_ctranslate2_model,
    save_whisper_checkpoint,
    whisper_checkpoint_from_ctranslate2,
)

TINY_DIMS = ModelDimensions(
    n_mels=80,
    n_audio_ctx=16,
    n_audio_state=16,
    n_audio_head=2,
    n_audio_layer=2,
    n_vocab=64,
    n_text_ctx=8,
    n_text_state=16,
    n_text_head=2,
    n_text_layer=2,
)
MEL_FRAMES = 2 * TINY_DIMS.n_audio_ctx  # conv2 has stride 2
BINARY_VERSION = 6
SPEC_NAME = "WhisperSpec"
SPEC_REVISION = 3
FLOAT32_ID, INT8_ID, INT16_ID, INT32_ID, FLOAT16_ID, BFLOAT16_ID = range(6)
GELU_ACTIVATION_ID = 3
TIED_PROJECTION = {"decoder/projection/weight": "decoder/embeddings/weight"}

# (dtype id, raw little-endian array) per variable, as CTranslate2's spec writer stores them.
Variables = dict[str, tuple[int, np.ndarray]]


# --- a minimal CTranslate2 writer (the layout of ctranslate2/specs/model_spec.py) -------------------


def _string(text: str) -> bytes:
    raw = text.encode("utf-8") + b"\x00"
    return struct.pack("<H", len(raw)) + raw


def write_ctranslate2(
    path: Path,
    variables: Variables,
    aliases: dict[str, str],
    binary_version: int = BINARY_VERSION,
    spec_name: str = SPEC_NAME,
) -> dict[str, int]:
    """Write a `model.bin`; returns the byte offset where each variable's data starts."""
    chunks = [
        struct.pack("<I", binary_version),
        _string(spec_name),
        struct.pack("<II", SPEC_REVISION, len(variables)),
    ]
    data_offsets = {}
    size = sum(map(len, chunks))
    for name in sorted(variables):
        dtype_id, array = variables[name]
        header = (
            _string(name)
            + struct.pack("<B", array.ndim)
            + struct.pack(f"<{array.ndim}I", *array.shape)
            + struct.pack("<BI", dtype_id, array.nbytes)
        )
        data_offsets[name] = size + len(header)
        chunks += [header, array.tobytes()]
        size += len(header) + array.nbytes
    chunks.append(struct.pack("<I", len(aliases)))
    for alias, target in aliases.items():
        chunks += [_string(alias), _string(target)]
    path.write_bytes(b"".join(chunks))
    return data_offsets


def _encode(tensor: torch.Tensor, dtype: torch.dtype) -> tuple[int, np.ndarray]:
    if dtype == torch.bfloat16:
        return BFLOAT16_ID, tensor.to(torch.bfloat16).view(torch.int16).numpy().view("<u2")
    if dtype == torch.float16:
        return FLOAT16_ID, tensor.to(torch.float16).numpy()
    return FLOAT32_ID, tensor.float().numpy()


def ctranslate2_variables(model: Whisper, dtype: torch.dtype = torch.float32) -> Variables:
    """The tiny model's weights under CTranslate2's WhisperSpec names, attention projections fused."""
    state = model.state_dict()
    tensors: dict[str, torch.Tensor] = {}

    def linear(ct2: str, prefix: str) -> None:
        tensors[f"{ct2}/weight"] = state[f"{prefix}.weight"]
        tensors[f"{ct2}/bias"] = state[f"{prefix}.bias"]

    def layer_norm(ct2: str, prefix: str) -> None:
        tensors[f"{ct2}/gamma"] = state[f"{prefix}.weight"]
        tensors[f"{ct2}/beta"] = state[f"{prefix}.bias"]

    def fused(ct2: str, prefix: str, parts: list[str]) -> None:
        weights = [state[f"{prefix}.{part}.weight"] for part in parts]  # each (D, D)
        # Whisper's key has no bias; CTranslate2's converter writes zeros in its place.
        biases = [
            state.get(f"{prefix}.{part}.bias", torch.zeros(weight.shape[0]))
            for part, weight in zip(parts, weights, strict=True)
        ]
        tensors[f"{ct2}/weight"] = torch.cat(weights)  # (len(parts) * D, D)
        tensors[f"{ct2}/bias"] = torch.cat(biases)

    def block(ct2: str, prefix: str, cross: bool) -> None:
        fused(f"{ct2}/self_attention/linear_0", f"{prefix}.attn", ["query", "key", "value"])
        linear(f"{ct2}/self_attention/linear_1", f"{prefix}.attn.out")
        layer_norm(f"{ct2}/self_attention/layer_norm", f"{prefix}.attn_ln")
        if cross:
            linear(f"{ct2}/attention/linear_0", f"{prefix}.cross_attn.query")
            fused(f"{ct2}/attention/linear_1", f"{prefix}.cross_attn", ["key", "value"])
            linear(f"{ct2}/attention/linear_2", f"{prefix}.cross_attn.out")
            layer_norm(f"{ct2}/attention/layer_norm", f"{prefix}.cross_attn_ln")
        linear(f"{ct2}/ffn/linear_0", f"{prefix}.mlp.0")
        linear(f"{ct2}/ffn/linear_1", f"{prefix}.mlp.2")
        layer_norm(f"{ct2}/ffn/layer_norm", f"{prefix}.mlp_ln")

    linear("encoder/conv1", "encoder.conv1")
    linear("encoder/conv2", "encoder.conv2")
    tensors["encoder/position_encodings/encodings"] = state["encoder.positional_embedding"]
    for index in range(model.dims.n_audio_layer):
        block(f"encoder/layer_{index}", f"encoder.blocks.{index}", cross=False)
    layer_norm("encoder/layer_norm", "encoder.ln_post")
    tensors["decoder/embeddings/weight"] = state["decoder.token_embedding.weight"]
    tensors["decoder/position_encodings/encodings"] = state["decoder.positional_embedding"]
    for index in range(model.dims.n_text_layer):
        block(f"decoder/layer_{index}", f"decoder.blocks.{index}", cross=True)
    layer_norm("decoder/layer_norm", "decoder.ln")

    variables = {name: _encode(tensor, dtype) for name, tensor in tensors.items()}
    # The scalars the real whisper-base file holds, with its values.
    variables["encoder/num_heads"] = (INT16_ID, np.array(model.dims.n_audio_head, dtype="<i2"))
    variables["decoder/num_heads"] = (INT16_ID, np.array(model.dims.n_text_head, dtype="<i2"))
    variables["decoder/activation"] = (INT8_ID, np.array(GELU_ACTIVATION_ID, dtype="i1"))
    variables["decoder/pre_norm"] = (INT8_ID, np.array(1, dtype="i1"))
    for flag in ("alibi", "scale_embeddings", "start_from_zero_embedding"):
        variables[f"decoder/{flag}"] = (INT8_ID, np.array(0, dtype="i1"))
    variables["decoder/alignment_heads"] = (INT16_ID, np.array(1, dtype="<i2"))
    variables["decoder/alignment_layer"] = (INT16_ID, np.array(-1, dtype="<i2"))
    return variables


# --- fixtures ---------------------------------------------------------------------------------------


def tiny_whisper(seed: int = 0) -> Whisper:
    """A tiny Whisper whose every weight (biases, norms, positions too) is random and distinct."""
    generator = torch.Generator().manual_seed(seed)
    model = Whisper(TINY_DIMS).eval()
    with torch.no_grad():
        for tensor in model.state_dict().values():
            tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.5)
    return model


def logits(model: Whisper, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    mel = torch.randn(1, TINY_DIMS.n_mels, MEL_FRAMES, generator=generator)
    tokens = torch.randint(0, TINY_DIMS.n_vocab, (1, TINY_DIMS.n_text_ctx), generator=generator)
    with torch.no_grad():
        return model(mel, tokens)  # (1, n_text_ctx, n_vocab)


def rounded_copy(model: Whisper, dtype: torch.dtype) -> Whisper:
    """The model with its weights rounded to `dtype` (kept in float32), as a file in `dtype` holds them."""
    copy = Whisper(model.dims).eval()
    copy.load_state_dict({name: tensor.to(dtype).float() for name, tensor in model.state_dict().items()})
    return copy


def load_converted(checkpoint: dict) -> Whisper:
    model = Whisper(ModelDimensions(**checkpoint["dims"])).eval()
    model.load_state_dict(checkpoint["model_state_dict"])  # strict: every name present, none extra
    return model


@pytest.fixture
def tiny_model_file(tmp_path: Path) -> tuple[Whisper, Path, dict[str, int]]:
    model = tiny_whisper()
    path = tmp_path / "model.bin"
    offsets = write_ctranslate2(path, ctranslate2_variables(model), TIED_PROJECTION)
    return model, path, offsets


# --- reading and converting -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dtype", "stored_dtype"),
    [(torch.float32, np.float32), (torch.float16, np.float16), (torch.bfloat16, np.float32)],
)
def test_round_trip_gives_the_same_logits(tmp_path: Path, dtype: torch.dtype, stored_dtype: type) -> None:
    original = tiny_whisper()
    write_ctranslate2(tmp_path / "model.bin", ctranslate2_variables(original, dtype), TIED_PROJECTION)

    ct2_model = read_ctranslate2_model(tmp_path / "model.bin")
    assert (ct2_model.binary_version, ct2_model.spec_name, ct2_model.spec_revision) == (6, "WhisperSpec", 3)
    assert ct2_model.aliases == TIED_PROJECTION
    conv1 = ct2_model.variables["encoder/conv1/weight"]
    assert conv1.dtype == stored_dtype and conv1.shape == (16, 80, 3)
    assert ct2_model.variables["decoder/num_heads"].dtype == np.int16
    assert int(ct2_model.variables["decoder/alignment_layer"]) == -1

    checkpoint = whisper_checkpoint_from_ctranslate2(ct2_model)
    assert checkpoint["dims"] == dataclasses.asdict(TINY_DIMS)
    assert (
        checkpoint["model_state_dict"]["decoder.token_embedding.weight"].dtype
        == torch.from_numpy(conv1).dtype
    )
    torch.testing.assert_close(
        logits(load_converted(checkpoint)), logits(rounded_copy(original, dtype)), rtol=0, atol=0
    )


def test_part_files_read_like_the_joined_file(tiny_model_file: tuple[Whisper, Path, dict[str, int]]) -> None:
    _, path, offsets = tiny_model_file
    data = path.read_bytes()
    # Cut inside the header, then inside a tensor, so reads straddle the part boundaries.
    cuts = [3, offsets["encoder/conv1/weight"] + 101, len(data)]
    parts = []
    for index, (start, end) in enumerate(zip([0, *cuts[:-1]], cuts, strict=True)):
        part = path.with_name(f"model.bin.part{index + 1}")
        part.write_bytes(data[start:end])
        parts.append(part)

    whole = read_ctranslate2_model(str(path))
    joined = read_ctranslate2_model(parts)
    assert joined.aliases == whole.aliases
    assert joined.variables.keys() == whole.variables.keys()
    for name, array in whole.variables.items():
        np.testing.assert_array_equal(joined.variables[name], array, err_msg=name)


def test_saved_checkpoint_loads_with_whisper_load_model(
    tmp_path: Path, tiny_model_file: tuple[Whisper, Path, dict[str, int]]
) -> None:
    original, path, _ = tiny_model_file
    checkpoint = whisper_checkpoint_from_ctranslate2(read_ctranslate2_model(path))
    saved = save_whisper_checkpoint(checkpoint, tmp_path / "tiny.pt")

    loaded = torch.load(saved, weights_only=True)
    assert loaded["dims"] == dataclasses.asdict(TINY_DIMS)
    assert "alignment_heads" not in loaded["model_state_dict"]
    model = whisper.load_model(str(saved), device="cpu").eval()
    torch.testing.assert_close(logits(model), logits(original), rtol=0, atol=0)


# --- errors -----------------------------------------------------------------------------------------


def test_truncated_file_names_the_variable(tiny_model_file: tuple[Whisper, Path, dict[str, int]]) -> None:
    _, path, offsets = tiny_model_file
    size = offsets["encoder/conv1/weight"] + 10
    path.write_bytes(path.read_bytes()[:size])
    with pytest.raises(
        CTranslate2FormatError,
        match=rf"model\.bin ends after {size} bytes while reading variable 'encoder/conv1/weight'",
    ):
        read_ctranslate2_model(path)


def test_missing_second_part_is_reported_as_truncation(
    tiny_model_file: tuple[Whisper, Path, dict[str, int]],
) -> None:
    _, path, _ = tiny_model_file
    first_part = path.with_name("model.bin.part1")
    first_part.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CTranslate2FormatError, match=r"model\.bin\.part1 ends after \d+ bytes while reading"):
        read_ctranslate2_model([first_part])


def test_unsupported_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    write_ctranslate2(path, ctranslate2_variables(tiny_whisper()), TIED_PROJECTION, binary_version=5)
    with pytest.raises(
        CTranslate2FormatError, match=r"model\.bin has CTranslate2 binary version 5; .*\(6,\)"
    ):
        read_ctranslate2_model(path)


def test_unknown_dtype_id_names_the_variable(tmp_path: Path) -> None:
    variables = ctranslate2_variables(tiny_whisper())
    variables["encoder/conv1/bias"] = (9, variables["encoder/conv1/bias"][1])
    write_ctranslate2(tmp_path / "model.bin", variables, TIED_PROJECTION)
    with pytest.raises(CTranslate2FormatError, match=r"variable 'encoder/conv1/bias' has unknown dtype id 9"):
        read_ctranslate2_model(tmp_path / "model.bin")


def test_trailing_bytes_are_refused(tiny_model_file: tuple[Whisper, Path, dict[str, int]]) -> None:
    _, path, _ = tiny_model_file
    path.write_bytes(path.read_bytes() + b"\x00" * 7)
    with pytest.raises(CTranslate2FormatError, match=r"has 7 bytes after its last alias"):
        read_ctranslate2_model(path)


def _drop_encoder_heads(variables: Variables) -> tuple[Variables, dict[str, str]]:
    del variables["encoder/num_heads"]
    return variables, TIED_PROJECTION


def _untie_projection(variables: Variables) -> tuple[Variables, dict[str, str]]:
    dtype_id, embedding = variables["decoder/embeddings/weight"]
    variables["decoder/projection/weight"] = (dtype_id, embedding + 1)
    return variables, {}


def _skip_decoder_layer(variables: Variables) -> tuple[Variables, dict[str, str]]:
    for name in [name for name in variables if name.startswith("decoder/layer_1/")]:
        variables[name.replace("layer_1", "layer_2")] = variables.pop(name)
    return variables, TIED_PROJECTION


def _relu_activation(variables: Variables) -> tuple[Variables, dict[str, str]]:
    variables["decoder/activation"] = (INT8_ID, np.array(0, dtype="i1"))
    return variables, TIED_PROJECTION


@pytest.mark.parametrize(
    ("break_model", "message"),
    [
        (_drop_encoder_heads, r"lacks the scalar 'encoder/num_heads'"),
        (_untie_projection, r"'decoder/projection/weight' differs from 'decoder/embeddings/weight'"),
        (_skip_decoder_layer, r"decoder layers should be numbered 0\.\.1, got \[0, 2\]"),
        (_relu_activation, r"'decoder/activation' is 0, but openai-whisper's architecture needs 3"),
    ],
)
def test_conversion_refuses_models_whisper_cannot_hold(tmp_path: Path, break_model, message: str) -> None:
    variables, aliases = break_model(ctranslate2_variables(tiny_whisper()))
    write_ctranslate2(tmp_path / "model.bin", variables, aliases)
    ct2_model = read_ctranslate2_model(tmp_path / "model.bin")  # a well-formed file
    with pytest.raises(ValueError, match=message):
        whisper_checkpoint_from_ctranslate2(ct2_model)
