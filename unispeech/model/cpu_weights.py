"""Half-precision backbone weights for CPU inference: the frozen linear layers packed for fbgemm.

On a CPU, one decoding step reads every backbone weight once and waits on memory, not arithmetic
(45 ms a pass for one token, 76 ms for 17 on the two-core machine of train/RUNS.md). fbgemm's fp16
GEMM, which torch reaches through dynamic quantisation with a float16 config, keeps the weights
packed in fp16 and multiplies them with the fp32 activations, accumulating in fp32: a 576 → 1 536
layer takes 106 µs where fp32 takes 194 µs (one thread, one token). Its packed matrices take about
the memory fp32 did (60 such layers: 195 MB against 212 MB; fbgemm packs blocks of 512 input rows,
and these layers have 576), so this buys speed, not memory. Plain fp16 or
bf16 tensors would not do: without native half-precision arithmetic (AVX2 here) torch's CPU half
matmul is 2–4× *slower* than fp32; torchao 0.18's int8 configurations, torch.ao's replacement, ran
1.4–13× slower than fp32 without torch.compile, and torch's int8 and int4 weight-only CPU kernels
6–55× slower (all measured, train/RUNS.md). The cost in accuracy is small by construction: the
backbone's weights are SmolLM2's 4-bit GGUF values, which fp16 holds to about 1e-3 relative.

Only the frozen base layers are packed: every `nn.Linear` of the backbone (peft's `base_layer`s
and the LM head), not LoRA's own matrices, which switch with the task, nor the speech projector,
the flow head, the CTC head or the encoder. Adapters load first (peft cannot wrap a packed layer)
and switch afterwards as before. Packing is for inference on the CPU and cannot be undone (load
the model again to train it or move it to a GPU). torch marks the `torch.ao.quantization` API
deprecated; `pack_fp16_weights` raises a clear error if a torch release drops it, and fp32 keeps
working. This module imports torch only when called, so that argument parsers can name the formats.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

WEIGHT_FORMATS = ("fp32", "fp16")  # fp16: `pack_fp16_weights`, for CPU inference
# What `unispeech.load` and the command line use: the same transcripts and speech as fp32 on real dev
# clips, faster on a CPU (train/RUNS.md); fp32 for a model that moves to a GPU or trains.
DEFAULT_WEIGHT_FORMAT = "fp16"


def check_weight_format(weight_format: str) -> None:
    """Refuse a format that is not one of `WEIGHT_FORMATS` (a `ValueError` naming them)."""
    if weight_format not in WEIGHT_FORMATS:
        raise ValueError(f"weight_format must be one of {', '.join(WEIGHT_FORMATS)}, got {weight_format!r}")


def is_packed(model: nn.Module) -> bool:
    """Whether `model` (a `UnispeechLMModel`) has fp16-packed backbone layers."""
    try:
        from torch.ao.nn.quantized.dynamic import Linear as Packed
    except ImportError:  # a torch without the API has packed nothing
        return False
    return any(isinstance(module, Packed) for module in model.backbone.modules())


def pack_fp16_weights(model: nn.Module) -> int:
    """Pack the frozen linear layers of `model.backbone` (on the CPU) into fbgemm's fp16 format, in
    place; returns how many were packed (0 when already packed)."""
    backbone = model.backbone
    devices = {parameter.device.type for parameter in backbone.parameters()}
    if devices != {"cpu"}:
        raise ValueError(
            f"fp16 weight packing is for a model on the CPU, not on {', '.join(sorted(devices))}"
        )
    try:
        from torch.ao.quantization import float16_dynamic_qconfig, quantize_dynamic
    except ImportError as error:  # a torch release without the deprecated API
        raise RuntimeError(
            f"this torch cannot pack fp16 weights ({error}): use weight_format='fp32'"
        ) from None
    names = {
        name: float16_dynamic_qconfig
        for name, module in backbone.named_modules()
        if _frozen_linear(name, module)
    }
    if names:
        with warnings.catch_warnings():  # torch.ao's deprecation notice: see the module docstring
            warnings.simplefilter("ignore", DeprecationWarning)
            quantize_dynamic(backbone, names, inplace=True)
    return len(names)


def _frozen_linear(name: str, module: nn.Module) -> bool:
    """A plain linear layer of the base model: not one of LoRA's (`lora_A`, `lora_B`, …)."""
    from torch import nn

    return type(module) is nn.Linear and not any(part.startswith("lora_") for part in name.split("."))
