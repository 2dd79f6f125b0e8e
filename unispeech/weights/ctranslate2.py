"""CTranslate2 model files in, openai-whisper checkpoints out.

This module owns everything we do with CTranslate2's `model.bin` format: `read_ctranslate2_model`
parses one file, or several part files concatenated in order (streamed, never joined on disk),
into a `CTranslate2Model` of numpy arrays; `whisper_checkpoint_from_ctranslate2` renames a
`WhisperSpec` model's variables to openai-whisper's state-dict names, splits the fused attention
projections and derives `ModelDimensions` from the tensors; `save_whisper_checkpoint` writes the
`.pt` that `whisper.load_model(path)` reads. A file that is truncated, corrupt, or of an
unsupported version or dtype raises `CTranslate2FormatError` (a `ValueError`) naming the file and
what was wrong; a model that does not fit openai-whisper's architecture raises `ValueError`.

Shapes: `D` model width (`n_audio_state` / `n_text_state`), `V` vocabulary, `M` mel bins, `K`
convolution kernel, `P` positions. CTranslate2 stores linear weights as `(out, in)`, like torch.
"""

from __future__ import annotations

import logging
import math
import os
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, NoReturn

import numpy as np
import torch

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]

# The layout `ctranslate2/specs/model_spec.py` writes (CURRENT_BINARY_VERSION there). Older
# versions laid some fields out differently (e.g. an item size where the dtype id is now) and are
# not verified here, so they are refused rather than possibly misread.
SUPPORTED_BINARY_VERSIONS = (6,)
WHISPER_SPEC_NAME = "WhisperSpec"

# dtype ids, in the order of `_dtype_to_type_id` in ctranslate2/specs/model_spec.py.
CTRANSLATE2_DTYPE_NAMES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")
BFLOAT16_DTYPE_ID = CTRANSLATE2_DTYPE_NAMES.index("bfloat16")
# How each dtype's bytes are stored; bfloat16 is read as its raw 16 bits, then widened to float32.
_STORAGE_DTYPES = {
    dtype_id: np.dtype(storage) for dtype_id, storage in enumerate(("<f4", "i1", "<i2", "<i4", "<f2", "<u2"))
}
_BFLOAT16_SHIFT = 16  # a bfloat16 is the upper half of a float32's bits

_U8 = struct.Struct("<B")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_STRING_TERMINATOR = b"\x00"  # a string's u16 length counts this trailing NUL

# Decoder flags that CTranslate2's TransformerDecoderSpec stores as scalars, with the values
# openai-whisper's architecture computes; any other value would convert into a different model.
GELU_ACTIVATION_ID = 3  # `ctranslate2.specs.Activation.GELU` (exact erf GELU, as whisper's nn.GELU)
WHISPER_DECODER_FLAGS = {
    "decoder/activation": GELU_ACTIVATION_ID,
    "decoder/pre_norm": 1,
    "decoder/scale_embeddings": 0,
    "decoder/alibi": 0,
    "decoder/start_from_zero_embedding": 0,
}
# TransformerDecoderSpec's attention-alignment settings, unused for Whisper: CTranslate2 reads
# Whisper's alignment heads from config.json, openai-whisper keeps them in a non-persistent buffer.
IGNORED_DECODER_SCALARS = ("decoder/alignment_heads", "decoder/alignment_layer")
QUANTIZATION_SCALE_SUFFIX = "/weight_scale"
_LAYER_PATTERN = re.compile(r"^(encoder|decoder)/layer_(\d+)/")


class CTranslate2FormatError(ValueError):
    """A `model.bin` that cannot be read: truncated, corrupt, or of an unsupported version or dtype."""


@dataclass(frozen=True)
class CTranslate2Model:
    """The contents of one CTranslate2 `model.bin`.

    `variables` maps each stored name to its array, in the stored dtype and shape (scalars are
    0-d arrays; bfloat16 is widened to float32, which holds it exactly). `aliases` maps a name
    that shares another variable's value (e.g. a tied output projection) to that variable's name.
    """

    binary_version: int
    spec_name: str
    spec_revision: int
    variables: dict[str, np.ndarray]
    aliases: dict[str, str]

    def variable(self, name: str) -> np.ndarray:
        """The array stored under `name`, following an alias; `KeyError` when there is none."""
        return self.variables[self.aliases.get(name, name)]

    def has(self, name: str) -> bool:
        return self.aliases.get(name, name) in self.variables


class _ConcatenatedReader:
    """Reads exact byte counts from files concatenated in order, without joining them on disk."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self.name = " + ".join(str(path) for path in paths)
        self.total_bytes = sum(path.stat().st_size for path in paths)
        self.offset = 0
        self._paths = list(paths)
        self._next_path = 0
        self._file: BinaryIO | None = None

    def __enter__(self) -> _ConcatenatedReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def read(self, size: int, what: str) -> bytearray:
        """Exactly `size` bytes; `what` names the item being read for the truncation message."""
        if self.offset + size > self.total_bytes:
            # Checked before allocating, so a corrupt size cannot ask for gigabytes.
            self._raise_truncated(what)
        buffer = bytearray(size)
        view = memoryview(buffer)
        filled = 0
        while filled < size:
            if self._file is None:
                if self._next_path == len(self._paths):
                    self._raise_truncated(what)  # the files shrank while we read them
                self._file = open(self._paths[self._next_path], "rb")  # noqa: SIM115 (closed below)
                self._next_path += 1
            count = self._file.readinto(view[filled:])
            if not count:
                self._file.close()
                self._file = None
                continue
            filled += count
            self.offset += count
        return buffer

    def _raise_truncated(self, what: str) -> NoReturn:
        raise CTranslate2FormatError(
            f"{self.name} ends after {self.total_bytes} bytes while reading {what} at byte {self.offset}"
        )

    def unpack(self, layout: struct.Struct, what: str) -> int:
        return layout.unpack(self.read(layout.size, what))[0]

    def string(self, what: str) -> str:
        length = self.unpack(_U16, f"the length of {what}")
        start = self.offset
        raw = bytes(self.read(length, what))
        if not raw.endswith(_STRING_TERMINATOR):
            raise CTranslate2FormatError(
                f"{self.name}: {what} at byte {start} is not NUL-terminated ({raw[:40]!r}); "
                "the file is corrupt"
            )
        try:
            return raw[: -len(_STRING_TERMINATOR)].decode("utf-8")
        except UnicodeDecodeError as error:
            raise CTranslate2FormatError(
                f"{self.name}: {what} at byte {start} is not UTF-8: {error}"
            ) from None


def read_ctranslate2_model(path_or_paths: PathLike | Sequence[PathLike]) -> CTranslate2Model:
    """Parse a CTranslate2 `model.bin`, or the part files whose concatenation in order is one.

    Raises `CTranslate2FormatError` (a `ValueError`) for a truncated or corrupt file, an
    unsupported binary version or an unknown dtype id, naming the file and the item read.
    """
    paths = _as_paths(path_or_paths)
    with _ConcatenatedReader(paths) as reader:
        binary_version = reader.unpack(_U32, "the binary version")
        if binary_version not in SUPPORTED_BINARY_VERSIONS:
            raise CTranslate2FormatError(
                f"{reader.name} has CTranslate2 binary version {binary_version}; this reader supports "
                f"{SUPPORTED_BINARY_VERSIONS} (re-convert the model with a current ctranslate2)"
            )
        spec_name = reader.string("the spec name")
        spec_revision = reader.unpack(_U32, "the spec revision")
        variable_count = reader.unpack(_U32, "the variable count")
        variables: dict[str, np.ndarray] = {}
        for index in range(variable_count):
            name = reader.string(f"the name of variable {index} of {variable_count}")
            if name in variables:
                raise CTranslate2FormatError(f"{reader.name} stores variable '{name}' twice")
            variables[name] = _read_variable(reader, name)
        alias_count = reader.unpack(_U32, "the alias count")
        aliases: dict[str, str] = {}
        for index in range(alias_count):
            alias = reader.string(f"alias {index} of {alias_count}")
            aliases[alias] = reader.string(f"the target of alias '{alias}'")
        if reader.offset != reader.total_bytes:
            raise CTranslate2FormatError(
                f"{reader.name} has {reader.total_bytes - reader.offset} bytes after its last alias "
                f"(read {reader.offset} of {reader.total_bytes}); are the part files complete and in order?"
            )
    for alias, target in aliases.items():
        if target not in variables:
            raise CTranslate2FormatError(
                f"{reader.name}: alias '{alias}' points to missing variable '{target}'"
            )
    logger.info(
        "read %s: %s revision %d, %d variables, %d aliases, %d bytes",
        reader.name,
        spec_name,
        spec_revision,
        len(variables),
        len(aliases),
        reader.total_bytes,
    )
    return CTranslate2Model(binary_version, spec_name, spec_revision, variables, aliases)


def _as_paths(path_or_paths: PathLike | Sequence[PathLike]) -> list[Path]:
    if isinstance(path_or_paths, str | os.PathLike):
        paths = [Path(path_or_paths)]
    else:
        paths = [Path(path) for path in path_or_paths]
    if not paths:
        raise ValueError("no model file given: pass a path or a non-empty list of part files")
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"no such CTranslate2 model file: {path}")
    return paths


def _read_variable(reader: _ConcatenatedReader, name: str) -> np.ndarray:
    rank = reader.unpack(_U8, f"the rank of variable '{name}'")
    shape = tuple(reader.unpack(_U32, f"dimension {axis} of variable '{name}'") for axis in range(rank))
    dtype_id = reader.unpack(_U8, f"the dtype of variable '{name}'")
    if dtype_id not in _STORAGE_DTYPES:
        known = ", ".join(f"{index} {dtype}" for index, dtype in enumerate(CTRANSLATE2_DTYPE_NAMES))
        raise CTranslate2FormatError(
            f"{reader.name}: variable '{name}' has unknown dtype id {dtype_id} (known: {known})"
        )
    storage = _STORAGE_DTYPES[dtype_id]
    byte_count = reader.unpack(_U32, f"the byte count of variable '{name}'")
    expected_bytes = math.prod(shape) * storage.itemsize
    if byte_count != expected_bytes:
        raise CTranslate2FormatError(
            f"{reader.name}: variable '{name}' of shape {shape} and dtype "
            f"{CTRANSLATE2_DTYPE_NAMES[dtype_id]} "
            f"declares {byte_count} bytes, but that shape needs {expected_bytes}; the file is corrupt"
        )
    array = np.frombuffer(reader.read(byte_count, f"variable '{name}'"), dtype=storage).reshape(shape)
    if dtype_id == BFLOAT16_DTYPE_ID:
        array = (array.astype(np.uint32) << _BFLOAT16_SHIFT).view(np.float32)
    return array


def whisper_checkpoint_from_ctranslate2(model: CTranslate2Model) -> dict[str, Any]:
    """Convert a `WhisperSpec` model to openai-whisper's checkpoint dict.

    Returns `{"dims": {ModelDimensions fields}, "model_state_dict": {name: tensor}}`, every
    dimension derived from the tensors and the `num_heads` scalars. Tensors keep the file's
    dtype (float16 for the released CTranslate2 Whisper models, as in OpenAI's own checkpoints;
    `whisper.load_model` copies them into float32 parameters). The state dict holds no
    `alignment_heads`: it is a non-persistent buffer that `Whisper.__init__` sets to its default
    (all heads of the upper half of the decoder), which is what `load_model(path)` also does.
    """
    if model.spec_name != WHISPER_SPEC_NAME:
        raise ValueError(f"expected a {WHISPER_SPEC_NAME} model, got spec '{model.spec_name}'")
    quantized = sorted(name for name in model.variables if name.endswith(QUANTIZATION_SCALE_SUFFIX))
    if quantized:
        raise ValueError(
            f"the model holds int8-quantized weights ({len(quantized)} scales, e.g. '{quantized[0]}'); "
            "convert it with ctranslate2's --quantization float16 or float32 instead"
        )
    for name, expected in WHISPER_DECODER_FLAGS.items():
        if model.has(name) and int(model.variable(name)) != expected:
            raise ValueError(
                f"'{name}' is {int(model.variable(name))}, but openai-whisper's architecture needs {expected}"
            )

    converter = _WhisperStateDict(model)
    dims = converter.convert()
    unused = sorted(
        set(model.variables) - converter.used - set(WHISPER_DECODER_FLAGS) - set(IGNORED_DECODER_SCALARS)
    )
    if unused:
        logger.warning("%d CTranslate2 variables have no openai-whisper counterpart: %s", len(unused), unused)
    return {"dims": dims, "model_state_dict": converter.state_dict}


class _WhisperStateDict:
    """Builds openai-whisper's state dict from a `WhisperSpec` model, remembering what it used."""

    def __init__(self, model: CTranslate2Model) -> None:
        self.model = model
        self.state_dict: dict[str, torch.Tensor] = {}
        self.used: set[str] = set()

    def take(self, name: str) -> np.ndarray:
        if not self.model.has(name):
            raise ValueError(f"the {self.model.spec_name} model lacks variable '{name}'")
        self.used.add(self.model.aliases.get(name, name))
        array = self.model.variable(name)
        if array.dtype.kind != "f":
            raise ValueError(
                f"variable '{name}' has dtype {array.dtype}; openai-whisper needs floating point"
            )
        return array

    def put(self, whisper_name: str, array: np.ndarray) -> None:
        # A copy, so the checkpoint owns its storage and the model's arrays stay untouched.
        self.state_dict[whisper_name] = torch.from_numpy(np.array(array, copy=True))

    def linear(self, ct2_name: str, whisper_name: str) -> None:
        self.put(f"{whisper_name}.weight", self.take(f"{ct2_name}/weight"))
        self.put(f"{whisper_name}.bias", self.take(f"{ct2_name}/bias"))

    def layer_norm(self, ct2_name: str, whisper_name: str) -> None:
        self.put(f"{whisper_name}.weight", self.take(f"{ct2_name}/gamma"))
        self.put(f"{whisper_name}.bias", self.take(f"{ct2_name}/beta"))

    def fused_linear(self, ct2_name: str, whisper_names: Sequence[str]) -> None:
        """Split a projection fused along its output rows, e.g. `(3D, D)` into three `(D, D)`.

        Whisper's key projection has no bias, so the key part of the fused bias is dropped. That is
        exact whatever its value: it adds `q·b` to every score of a query, which softmax ignores.
        """
        weight = self.take(f"{ct2_name}/weight")
        bias = self.take(f"{ct2_name}/bias")
        parts = len(whisper_names)
        if weight.ndim != 2 or weight.shape[0] % parts or bias.shape != weight.shape[:1]:
            raise ValueError(
                f"'{ct2_name}' should fuse {parts} projections: weight (rows divisible by {parts}, in) "
                f"and bias (rows,), got {weight.shape} and {bias.shape}"
            )
        for whisper_name, weight_part, bias_part in zip(
            whisper_names, np.split(weight, parts), np.split(bias, parts), strict=True
        ):
            self.put(f"{whisper_name}.weight", weight_part)
            if whisper_name.endswith(".key"):
                logger.debug("dropping the bias of %s (max |b| %.3g)", whisper_name, np.abs(bias_part).max())
            else:
                self.put(f"{whisper_name}.bias", bias_part)

    def feed_forward(self, ct2_name: str, whisper_name: str) -> None:
        self.linear(f"{ct2_name}/ffn/linear_0", f"{whisper_name}.mlp.0")  # (4D, D)
        self.linear(f"{ct2_name}/ffn/linear_1", f"{whisper_name}.mlp.2")  # (D, 4D)
        self.layer_norm(f"{ct2_name}/ffn/layer_norm", f"{whisper_name}.mlp_ln")

    def self_attention(self, ct2_name: str, whisper_name: str) -> None:
        attention = f"{whisper_name}.attn"
        self.fused_linear(
            f"{ct2_name}/self_attention/linear_0",
            [f"{attention}.{part}" for part in ("query", "key", "value")],
        )
        self.linear(f"{ct2_name}/self_attention/linear_1", f"{attention}.out")
        self.layer_norm(f"{ct2_name}/self_attention/layer_norm", f"{whisper_name}.attn_ln")

    def cross_attention(self, ct2_name: str, whisper_name: str) -> None:
        attention = f"{whisper_name}.cross_attn"
        self.linear(f"{ct2_name}/attention/linear_0", f"{attention}.query")
        self.fused_linear(f"{ct2_name}/attention/linear_1", [f"{attention}.key", f"{attention}.value"])
        self.linear(f"{ct2_name}/attention/linear_2", f"{attention}.out")
        self.layer_norm(f"{ct2_name}/attention/layer_norm", f"{whisper_name}.cross_attn_ln")

    def layer_count(self, stack: str) -> int:
        indices = {
            int(match.group(2))
            for name in self.model.variables
            if (match := _LAYER_PATTERN.match(name)) and match.group(1) == stack
        }
        if indices != set(range(len(indices))):
            raise ValueError(
                f"{stack} layers should be numbered 0..{len(indices) - 1}, got {sorted(indices)}"
            )
        if not indices:
            raise ValueError(f"the model has no {stack} layers ('{stack}/layer_0/...')")
        return len(indices)

    def head_count(self, stack: str, width: int) -> int:
        name = f"{stack}/num_heads"
        if not self.model.has(name):
            raise ValueError(
                f"the model lacks the scalar '{name}'; the head count cannot be read from the tensors"
            )
        self.used.add(name)
        heads = int(self.model.variable(name))
        if heads <= 0 or width % heads:
            raise ValueError(f"'{name}' is {heads}, which does not divide the {stack} width {width}")
        return heads

    def convert(self) -> dict[str, int]:
        """Fill `state_dict` and return the `ModelDimensions` fields."""
        conv1_weight = self.take("encoder/conv1/weight")  # (D, M, K)
        audio_positions = self.take("encoder/position_encodings/encodings")  # (P_audio, D)
        token_embedding = self.take("decoder/embeddings/weight")  # (V, D)
        text_positions = self.take("decoder/position_encodings/encodings")  # (P_text, D)
        n_audio_state, n_mels = conv1_weight.shape[:2]
        n_vocab, n_text_state = token_embedding.shape
        if audio_positions.shape[1] != n_audio_state or text_positions.shape[1] != n_text_state:
            raise ValueError(
                f"position tables {audio_positions.shape} / {text_positions.shape} do not match the widths "
                f"{n_audio_state} (conv1) / {n_text_state} (embeddings)"
            )
        dims = {
            "n_mels": n_mels,
            "n_audio_ctx": audio_positions.shape[0],
            "n_audio_state": n_audio_state,
            "n_audio_head": self.head_count("encoder", n_audio_state),
            "n_audio_layer": self.layer_count("encoder"),
            "n_vocab": n_vocab,
            "n_text_ctx": text_positions.shape[0],
            "n_text_state": n_text_state,
            "n_text_head": self.head_count("decoder", n_text_state),
            "n_text_layer": self.layer_count("decoder"),
        }

        self.put("encoder.positional_embedding", audio_positions)
        self.put("encoder.conv1.weight", conv1_weight)
        self.put("encoder.conv1.bias", self.take("encoder/conv1/bias"))
        self.linear("encoder/conv2", "encoder.conv2")  # weight (D, D, K)
        for index in range(dims["n_audio_layer"]):
            self.self_attention(f"encoder/layer_{index}", f"encoder.blocks.{index}")
            self.feed_forward(f"encoder/layer_{index}", f"encoder.blocks.{index}")
        self.layer_norm("encoder/layer_norm", "encoder.ln_post")

        self.put("decoder.token_embedding.weight", token_embedding)
        self.put("decoder.positional_embedding", text_positions)
        for index in range(dims["n_text_layer"]):
            self.self_attention(f"decoder/layer_{index}", f"decoder.blocks.{index}")
            self.cross_attention(f"decoder/layer_{index}", f"decoder.blocks.{index}")
            self.feed_forward(f"decoder/layer_{index}", f"decoder.blocks.{index}")
        self.layer_norm("decoder/layer_norm", "decoder.ln")
        self._check_tied_projection(token_embedding)
        return {field: int(value) for field, value in dims.items()}

    def _check_tied_projection(self, token_embedding: np.ndarray) -> None:
        """Whisper's output layer is its token embedding; a separate projection must equal it."""
        name = "decoder/projection/weight"
        if not self.model.has(name):
            return
        projection = self.take(name)
        if projection is not token_embedding and not np.array_equal(projection, token_embedding):
            raise ValueError(
                f"'{name}' differs from 'decoder/embeddings/weight', but openai-whisper ties its output "
                "layer to the token embedding"
            )


def save_whisper_checkpoint(checkpoint: dict[str, Any], path: PathLike) -> Path:
    """Write `checkpoint` as a `.pt` that `whisper.load_model(path)` and
    `torch.load(path, weights_only=True)` load. Returns the path written."""
    missing = {"dims", "model_state_dict"} - set(checkpoint)
    if missing:
        raise ValueError(
            f"a whisper checkpoint needs 'dims' and 'model_state_dict'; missing {sorted(missing)}"
        )
    path = Path(path)
    torch.save(checkpoint, path)
    logger.info("saved whisper checkpoint %s (%d tensors)", path, len(checkpoint["model_state_dict"]))
    return path
