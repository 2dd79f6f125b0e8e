"""Task adapters: one named LoRA on the frozen backbone plus the task modules the task trains.

A task adapter is a peft LoRA adapter on `model.backbone` (through transformers' PEFT integration:
`add_adapter`, `load_adapter`, `set_adapter`, `disable_adapters`) together with the whole
submodules of `UnispeechLMModel` the task trains fully (its *task modules*: any of `projector`,
`markers`, `flow`, and ASR's optional CTC head `ctc`, which the base model lacks: an adapter
carries it when the model had one, and loading rebuilds it from its saved tensors, which carry its
size; an adapter without one leaves the model without). This module owns what an adapter folder
holds (where the shipped ones live, `<adapters>/<model>/<task>/`, is `weights.cache.adapter_dir`'s):
peft's `adapter_config.json` + `adapter_model.safetensors`, `task_modules.safetensors` with the
modules' state dicts prefixed by module name, and `unispeech_adapter.json` with the task, its
modules and a fingerprint of the base it was trained on. It checks that fingerprint when loading,
and switches tasks: `set_task` activates one task's LoRA and puts its task-module weights in
place, `None` gives the bare base model back. Which tasks are loaded, their task-module weights
and the base task-module weights live in a small registry on the model instance, which
`has_task_adapters`, `loaded_tasks` and `active_task` query; the active task's modules are the
live ones, so weights trained in place survive a switch.

An adapter loaded *as* a registry task (`task="asr"`, as `unispeech.load` and the pipelines do)
must hold that task: a folder recorded as another registry task is refused
(`AdapterMismatchError`), one recorded under a free name (a `joint` adapter, a second version) is
taken when it holds the task's modules; under a free name (`task="asr_first"`) any folder loads.

    model = unispeech.weights.pretrained.load_parts("smol").model  # the base
    load_task_adapter(model, cache.adapter_dir("smol", "asr"))  # now active: "asr"
    load_task_adapter(model, cache.adapter_dir("smol", "tts"))  # now active: "tts"
    set_task(model, "asr"); set_task(model, None)               # switch; bare base
"""

from __future__ import annotations

import copy
import json
import logging
import os
import re
import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn
from transformers.pytorch_utils import Conv1D

from unispeech.dependencies import check_peft
from unispeech.model.cpu_weights import is_packed
from unispeech.model.ctc import CtcHead
from unispeech.model.sequences import TASKS

if TYPE_CHECKING:
    from peft import LoraConfig

    from unispeech.model.configuration import UnispeechLMConfig
    from unispeech.model.modeling import UnispeechLMModel

logger = logging.getLogger(__name__)

# The files of one adapter folder; the first two are peft's own names.
ADAPTER_CONFIG_FILE = "adapter_config.json"
ADAPTER_WEIGHTS_FILE = "adapter_model.safetensors"
TASK_MODULES_FILE = "task_modules.safetensors"
METADATA_FILE = "unispeech_adapter.json"
ADAPTER_FILES = (METADATA_FILE, ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, TASK_MODULES_FILE)
FORMAT_VERSION = 1
PEFT_KEY_PREFIX = "base_model.model."  # how peft prefixes the keys of a saved adapter

DEFAULT_LORA_RANK = 16
DEFAULT_LORA_ALPHA = 32
DEFAULT_LORA_DROPOUT = 0.05
ATTENTION_MODULE_NAMES = ("self_attn", "attn", "attention", "self_attention")  # across HF causal LMs
PROJECTION_TYPES = (nn.Linear, Conv1D)  # Conv1D: GPT-2's linear layers

NOT_TASK_MODULES = ("backbone", "encoder")  # the backbone takes LoRA; the encoder stays frozen
# Task modules the base model lacks (its attribute is None until an adapter or a training run sets
# one), built from their saved tensors, whose shapes give their sizes.
BUILT_FROM_WEIGHTS: dict[str, Callable[[Mapping[str, torch.Tensor]], nn.Module]] = {
    "ctc": CtcHead.from_weights
}
SAVE_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
TASK_NAME = re.compile(r"[A-Za-z0-9_-]+")  # peft adapter names become module keys: no dots

StateDict = dict[str, torch.Tensor]


class AdapterError(ValueError):
    """An adapter folder that cannot be used: damaged, incomplete or inconsistent with the model."""


class AdapterMismatchError(AdapterError):
    """An adapter that does not fit where it is loaded: trained on a different base model, or
    holding another task than the one it is loaded as."""


@dataclass
class _TaskState:
    adapter_name: str
    modules: tuple[str, ...]
    weights: dict[str, StateDict]  # module name → its state dict; the live module is the truth while active
    trainable: bool


@dataclass
class _Registry:
    tasks: dict[str, _TaskState] = field(default_factory=dict)  # in load order
    base: dict[str, StateDict] = field(default_factory=dict)  # task modules before any adapter touched them
    active: str | None = None


REGISTRY_ATTRIBUTE = "_unispeech_adapters"


# ------------------------------------------------------------------------------------------ LoRA set-up


def default_lora_config(model: UnispeechLMModel) -> LoraConfig:
    """The default task LoRA: rank 16, alpha 32, dropout 0.05 on the backbone's attention projections
    (read from the backbone: `q_proj`, `k_proj`, `v_proj`, `o_proj` for Llama and Qwen2)."""
    from peft import LoraConfig

    return LoraConfig(
        r=DEFAULT_LORA_RANK,
        lora_alpha=DEFAULT_LORA_ALPHA,
        lora_dropout=DEFAULT_LORA_DROPOUT,
        target_modules=_attention_projections(model.backbone),
        bias="none",
        task_type="CAUSAL_LM",
    )


def _attention_projections(backbone: nn.Module) -> list[str]:
    """Names of the linear layers directly inside the backbone's attention modules."""
    names: set[str] = set()
    for module_name, module in backbone.named_modules():
        if module_name.rsplit(".", 1)[-1] not in ATTENTION_MODULE_NAMES:
            continue
        for child_name, child in module.named_children():
            if isinstance(getattr(child, "base_layer", child), PROJECTION_TYPES):  # LoRA-wrapped or plain
                names.add(child_name)
    if not names:
        raise ValueError(
            f"found no linear layers inside {'/'.join(ATTENTION_MODULE_NAMES)} modules of "
            f"{type(backbone).__name__}: pass a LoraConfig with explicit target_modules"
        )
    return sorted(names)


def _adapter_name(task: str) -> str:
    """The peft adapter name of a task: the task registry's, or the task name for tasks it lacks."""
    if not TASK_NAME.fullmatch(task):
        raise ValueError(f"task name {task!r} must be letters, digits, '_' or '-' (it names a LoRA adapter)")
    return TASKS[task].adapter_name if task in TASKS else task


def _task_modules(model: UnispeechLMModel, task: str, modules: Iterable[str] | None) -> tuple[str, ...]:
    """Validated task-module names: `modules`, or the task's default (its optional ones included)."""
    default = TASKS[task].task_modules + TASKS[task].optional_modules if task in TASKS else ()
    chosen = tuple(modules) if modules is not None else default
    allowed = [name for name, _ in model.named_children() if name not in NOT_TASK_MODULES]
    allowed += [name for name in BUILT_FROM_WEIGHTS if name not in allowed]
    unknown = [name for name in chosen if name not in allowed]
    if unknown:
        raise ValueError(
            f"not task modules of this model: {', '.join(unknown)}; choose from {', '.join(allowed)}"
        )
    if len(set(chosen)) != len(chosen):
        raise ValueError(f"task modules listed twice: {', '.join(chosen)}")
    return chosen


# ------------------------------------------------------------------------------------------ public API


def add_task_adapter(
    model: UnispeechLMModel,
    task: str,
    lora: LoraConfig | None = None,
    modules: Iterable[str] | None = None,
    start_from: str | Path | None = None,
) -> None:
    """Add a trainable adapter for `task` and make it the active task.

    The LoRA (`lora`, default `default_lora_config(model)`) starts as a no-op (peft zero-inits
    `lora_B`); peft freezes the backbone's own weights. The task modules (`modules`, default
    the task registry's `task_modules`) start from the base weights and are made trainable;
    every other module (the encoder, other tasks' modules) is frozen. `start_from` names a saved
    adapter folder (of this task or another, e.g. ASR's for audio-aware GER) to start from
    instead; its LoRA rank, alpha and targets and its task modules must be the ones asked for,
    but for those built from weights (the CTC head): one the folder lacks starts as none, and one
    the task does not train is left out."""
    _require_unpacked(model)
    check_peft()
    name = _adapter_name(task)
    registry = _registry(model, create=True)
    if task in registry.tasks:
        raise ValueError(
            f"task {task!r} already has an adapter on this model; loaded: {', '.join(registry.tasks)}"
        )
    chosen = _task_modules(model, task, modules)
    config = copy.deepcopy(lora) if lora is not None else default_lora_config(model)
    if start_from is not None:
        _check_start(Path(start_from), config, chosen)
        _load(model, Path(start_from), task, trainable=True, modules=chosen)  # another task's on purpose
        return
    _capture_base(model, registry, chosen)
    with _quiet_peft():
        model.backbone.add_adapter(config, adapter_name=name)
    model.backbone.train(model.backbone.training)  # peft makes the new layers in training mode (dropout on)
    registry.tasks[task] = _TaskState(
        name, chosen, {module: _clone(registry.base[module]) for module in chosen}, trainable=True
    )
    _activate(model, registry, task)
    _train_only(model, chosen)
    logger.info("added a trainable %s adapter (task modules: %s)", task, ", ".join(chosen) or "none")


def save_task_adapter(
    model: UnispeechLMModel,
    task: str,
    path: str | Path,
    modules: Iterable[str] | None = None,
    dtype: torch.dtype | None = None,
) -> Path:
    """Write `task`'s adapter folder at `path` (created if needed) and return it.

    `modules` overrides which task modules are saved (default: the task's own; one built from
    weights that the model lacks, such as a CTC head never trained, is left out). `dtype`
    (`torch.float16` or `torch.bfloat16`) stores floating tensors at that precision to halve the
    files; `None` keeps the model's. Each file is replaced atomically, `unispeech_adapter.json` last,
    so an interrupted save never looks like a complete adapter."""
    registry = _registry(model)
    state = _loaded_state(registry, task)
    chosen = state.modules if modules is None else _task_modules(model, task, modules)
    if dtype is not None and dtype not in SAVE_DTYPES.values():
        raise ValueError(f"dtype must be one of {', '.join(SAVE_DTYPES)} (or None), got {dtype}")
    if registry.active == task:
        module_weights = {module: _module_weights(model, module) for module in chosen}
    else:
        missing = [module for module in chosen if module not in state.weights]
        if missing:
            raise ValueError(
                f"task {task!r} has no weights of {', '.join(missing)} (its modules: "
                f"{', '.join(state.modules) or 'none'}); activate it with set_task to save the live modules"
            )
        module_weights = {module: state.weights[module] for module in chosen}
    chosen = tuple(module for module in chosen if module_weights[module] or module not in BUILT_FROM_WEIGHTS)
    task_tensors = {
        f"{module}.{key}": value for module in chosen for key, value in module_weights[module].items()
    }
    lora_tensors = {
        PEFT_KEY_PREFIX + key: value
        for key, value in model.backbone.get_adapter_state_dict(state.adapter_name).items()
    }
    saved_dtype = dtype or _floating_dtype(lora_tensors.values(), task_tensors.values())
    metadata = {
        "format_version": FORMAT_VERSION,
        "task": task,
        "adapter_name": state.adapter_name,
        "task_modules": list(chosen),
        "dtype": str(saved_dtype).removeprefix("torch."),
        "base": _fingerprint(model.config, chosen),
    }

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path, prefix=".saving-") as staging:
        staging = Path(staging)
        model.backbone.peft_config[state.adapter_name].save_pretrained(staging)
        save_file(_cast(lora_tensors, dtype), staging / ADAPTER_WEIGHTS_FILE, metadata={"format": "pt"})
        save_file(_cast(task_tensors, dtype), staging / TASK_MODULES_FILE, metadata={"format": "pt"})
        (staging / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n")
        for file in ADAPTER_FILES[1:] + ADAPTER_FILES[:1]:  # the metadata last: it marks a complete folder
            os.replace(staging / file, path / file)
    logger.info("saved the %s adapter to %s (%s)", task, path, metadata["dtype"])
    return path


def load_task_adapter(
    model: UnispeechLMModel, path: str | Path, task: str | None = None, trainable: bool = False
) -> str:
    """Load an adapter folder into `model`, make it the active task, and return the task's name.

    `task` defaults to the one in `unispeech_adapter.json`. A registry task (`asr`, `tts`, `ger`)
    loads the folder *as* that task, so the folder must hold it (`check_adapter_task`); any other
    name holds the folder under that name (two versions of one task side by side). A task already
    loaded under that name is replaced. The folder is checked in full before the model is touched:
    missing files raise `FileNotFoundError`, damaged ones `AdapterError`, another task or a base
    other than `model.config` `AdapterMismatchError`, naming every field that differs.
    `trainable=True` keeps the LoRA and the task modules trainable, and freezes every other module,
    as `add_task_adapter` does (to train further). A model whose backbone is packed in fp16
    (`cpu_weights`) takes no more adapters: every adapter loads before packing."""
    check_peft()
    _require_unpacked(model)
    path = Path(path)
    if task is not None:
        check_adapter_task(path, task)
    return _load(model, path, task, trainable)


def _require_unpacked(model: UnispeechLMModel) -> None:
    """Refuse a backbone packed for CPU inference: peft cannot wrap a packed layer."""
    if is_packed(model):
        raise ValueError(
            "this model's backbone weights are packed in fp16 (weight_format='fp16'), and adapters load "
            "before packing: name them when loading, unispeech.load(..., adapters=FOLDER), or load the "
            "model with weight_format='fp32'"
        )


def check_adapter_task(path: str | Path, task: str) -> None:
    """Refuse an adapter folder that cannot serve as `task` (`AdapterMismatchError`), reading only
    its `unispeech_adapter.json`. A registry task needs a folder recorded as that task, or, recorded
    under a free name (a `joint` adapter), one that holds every module the task trains; a free
    `task` name takes any folder."""
    if task not in TASKS:
        return
    path = Path(path)
    metadata = _read_metadata(path)
    held = metadata["task"]
    if held == task:
        return
    if held in TASKS:
        raise AdapterMismatchError(
            f"the adapter at {path} holds task {held!r}, not {task!r}: give a folder that holds task {task!r}"
        )
    missing = [module for module in TASKS[task].task_modules if module not in metadata["task_modules"]]
    if missing:
        raise AdapterMismatchError(
            f"the adapter at {path} holds task {held!r} without the {', '.join(missing)} a {task!r} "
            f"adapter needs: give a folder that holds task {task!r}"
        )


def _load(
    model: UnispeechLMModel,
    path: Path,
    task: str | None,
    trainable: bool,
    modules: tuple[str, ...] | None = None,
) -> str:
    """`load_task_adapter` without the task check: also what `add_task_adapter(start_from=...)`
    uses to start one task from another task's adapter, with the task modules it trains
    (`modules`; default: the folder's). The folder's other modules are left out."""
    metadata, task_tensors = _read_folder(path)
    task = task if task is not None else metadata["task"]
    name = _adapter_name(task)
    chosen = _task_modules(model, task, metadata["task_modules"] if modules is None else modules)
    if modules is not None:
        task_tensors = {key: value for key, value in task_tensors.items() if key.split(".", 1)[0] in chosen}
    _check_fingerprint(metadata["base"], _fingerprint(model.config, chosen), task, path)
    module_weights = _split_task_tensors(model, chosen, task_tensors, path)

    registry = _registry(model, create=True)
    if task in registry.tasks:
        logger.info("replacing the loaded %s adapter with %s", task, path)
        _remove_task(model, registry, task)
    _capture_base(model, registry, chosen)
    was_training = model.backbone.training
    try:
        with _quiet_peft():
            info = model.backbone.load_adapter(
                str(path),
                adapter_name=name,
                is_trainable=trainable,
                adapter_kwargs={"local_files_only": True},
            )
    except (ValueError, RuntimeError, KeyError) as error:
        if name in getattr(model.backbone, "peft_config", {}):
            model.backbone.delete_adapter(name)
        raise AdapterError(f"cannot load the LoRA at {path} into this backbone: {error}") from error
    finally:
        model.backbone.train(was_training)  # peft puts the backbone in eval mode
    missing = sorted(key for key in info.missing_keys if f".{name}." in key)
    if missing or info.unexpected_keys:
        model.backbone.delete_adapter(name)
        raise AdapterError(
            f"the LoRA weights at {path / ADAPTER_WEIGHTS_FILE} do not match {ADAPTER_CONFIG_FILE}: "
            f"missing {missing[:3]}, unexpected {sorted(info.unexpected_keys)[:3]} (of "
            f"{len(missing)} and {len(info.unexpected_keys)}); save the adapter again"
        )
    registry.tasks[task] = _TaskState(name, chosen, module_weights, trainable)
    _activate(model, registry, task)
    if trainable:
        _train_only(model, chosen)
    logger.info("loaded the %s adapter from %s", task, path)
    return task


def set_task(model: UnispeechLMModel, task: str | None) -> None:
    """Make `task` the active task: its LoRA on, its task modules in place (the others as in the
    base). `None` gives the bare base model: adapters disabled, the base task modules."""
    registry = _registry(model)
    if task is None:
        if registry is not None and registry.active is not None:
            _activate(model, registry, None)
        return
    _loaded_state(registry, task)
    if registry.active != task:  # the active task's modules and LoRA are in place already
        _activate(model, registry, task)


def active_task(model: UnispeechLMModel) -> str | None:
    """The active task, or `None` for the bare base model."""
    registry = _registry(model)
    return registry.active if registry is not None else None


def has_task_adapters(model: UnispeechLMModel) -> bool:
    """Whether a task adapter was ever added to or loaded into `model`: its backbone's layers are
    then peft's and its task modules may be a task's, so it is no longer a plain base model."""
    return _registry(model) is not None


def loaded_tasks(model: UnispeechLMModel) -> list[str]:
    """The tasks with an adapter on `model`, in the order they were added or loaded."""
    registry = _registry(model)
    return list(registry.tasks) if registry is not None else []


# ------------------------------------------------------------------------------------ task switching


def _registry(model: UnispeechLMModel, create: bool = False) -> _Registry | None:
    registry = getattr(model, REGISTRY_ATTRIBUTE, None)
    if registry is None and create:
        registry = _Registry()
        setattr(model, REGISTRY_ATTRIBUTE, registry)
    return registry


def _loaded_state(registry: _Registry | None, task: str) -> _TaskState:
    if registry is None or task not in registry.tasks:
        loaded = ", ".join(registry.tasks) if registry is not None and registry.tasks else "none"
        raise ValueError(
            f"task {task!r} has no adapter on this model; loaded tasks: {loaded} "
            "(load one with load_task_adapter or add one with add_task_adapter)"
        )
    return registry.tasks[task]


def _module_weights(model: UnispeechLMModel, module: str) -> StateDict:
    """A task module's state dict; empty for one the model lacks (a `ctc` that is None)."""
    live = getattr(model, module)
    return {} if live is None else live.state_dict()


def _put_module_weights(model: UnispeechLMModel, module: str, weights: StateDict) -> None:
    """Put a task module's weights in place: loaded into the live module, which a module built
    from weights is only when its shapes fit (so an optimiser's parameters stay the model's);
    otherwise such a module is built anew, and empty weights leave the model without it."""
    live = getattr(model, module)
    if module in BUILT_FROM_WEIGHTS:
        fits = live is not None and all(
            key in weights and weights[key].shape == value.shape for key, value in live.state_dict().items()
        )
        if not fits:
            setattr(model, module, BUILT_FROM_WEIGHTS[module](weights) if weights else None)
            return
    live.load_state_dict(weights)


def _capture_base(model: UnispeechLMModel, registry: _Registry, modules: Iterable[str]) -> None:
    """Remember the base weights of modules no loaded task has listed yet (so they are still base)."""
    for module in modules:
        if module not in registry.base:
            registry.base[module] = _clone(_module_weights(model, module))


@torch.no_grad()
def _activate(model: UnispeechLMModel, registry: _Registry, task: str | None) -> None:
    """Switch the live task modules and the backbone's LoRA from the active task to `task`."""
    previous = registry.active
    if previous is not None and previous in registry.tasks and registry.tasks[previous].trainable:
        state = registry.tasks[previous]  # keep what was trained in place
        state.weights = {module: _clone(_module_weights(model, module)) for module in state.modules}
    target = registry.tasks[task] if task is not None else None
    for module, base_weights in registry.base.items():
        weights = target.weights.get(module, base_weights) if target is not None else base_weights
        _put_module_weights(model, module, weights)
    backbone = model.backbone
    if target is None:
        if registry.tasks:
            backbone.disable_adapters()
    else:
        backbone.enable_adapters()
        backbone.set_adapter(target.adapter_name)  # peft makes the active LoRA trainable …
        if not target.trainable:  # … so freeze it again when it was loaded for inference
            for parameter_name, parameter in backbone.named_parameters():
                if "lora_" in parameter_name and f".{target.adapter_name}." in f"{parameter_name}.":
                    parameter.requires_grad_(False)
    registry.active = task


def _check_start(path: Path, lora: LoraConfig, modules: tuple[str, ...]) -> None:
    """Refuse to start training from an adapter shaped unlike the one the caller asks for (modules
    built from weights may differ: `add_task_adapter`)."""
    metadata, _ = _read_folder(path)
    saved = _read_json(path / ADAPTER_CONFIG_FILE)

    def required(names: Iterable[str]) -> list[str]:
        return [name for name in names if name not in BUILT_FROM_WEIGHTS]

    differing = [
        f"{key} {found!r} (asked: {wanted!r})"
        for key, wanted, found in (
            ("r", lora.r, saved.get("r")),
            ("lora_alpha", lora.lora_alpha, saved.get("lora_alpha")),
            ("target_modules", sorted(lora.target_modules), sorted(saved.get("target_modules") or [])),
            ("task_modules", required(modules), required(metadata["task_modules"])),
        )
        if found != wanted
    ]
    if differing:
        raise AdapterMismatchError(f"cannot start from the adapter at {path}: its {', '.join(differing)}")


def _train_only(model: UnispeechLMModel, modules: Iterable[str]) -> None:
    """Make `modules` trainable and freeze the model's other submodules (peft has frozen the
    backbone's own weights and left the active LoRA trainable)."""
    modules = set(modules)
    for name, module in model.named_children():
        if name != "backbone":
            module.requires_grad_(name in modules)


def _remove_task(model: UnispeechLMModel, registry: _Registry, task: str) -> None:
    if registry.active == task:
        _activate(model, registry, None)
    model.backbone.delete_adapter(registry.tasks.pop(task).adapter_name)


# ------------------------------------------------------------------------------------ folder checks


# The config fields each part of an adapter depends on. An adapter's fingerprint holds the
# backbone's fields and those of the task modules it saved, so that a base differing only where the
# adapter never looks (an ASR adapter and the TTS mel patch size, say) still takes it.
BACKBONE_FIELDS = ("model_type", "hidden_size", "num_hidden_layers", "vocab_size")  # of text_config
PROJECTOR_ENCODER_FIELDS = ("n_audio_state", "n_mels")  # of encoder_config: what the projector reads
TASK_MODULE_FIELDS = {
    "projector": ("projector_stack", "projector_hidden_size"),
    "flow": ("mel_bins", "mel_patch_size", "mel_sample_rate", "mel_hop_length"),
}


def _fingerprint(config: UnispeechLMConfig, modules: Iterable[str]) -> dict[str, int | str]:
    """The base-model fields an adapter with task modules `modules` depends on, named as the
    config names them."""
    modules = tuple(modules)
    fingerprint = {field: getattr(config.text_config, field) for field in BACKBONE_FIELDS}
    if "projector" in modules:
        fingerprint |= {field: getattr(config.encoder_config, field) for field in PROJECTOR_ENCODER_FIELDS}
    for name in modules:
        fingerprint |= {field: getattr(config, field) for field in TASK_MODULE_FIELDS.get(name, ())}
    return fingerprint


def _check_fingerprint(saved: Mapping, current: Mapping, task: str, path: Path) -> None:
    differing = [key for key in current if key in saved and saved[key] != current[key]]
    if differing:
        trained = ", ".join(f"{key}={saved[key]}" for key in differing)
        has = ", ".join(f"{key}={current[key]}" for key in differing)
        raise AdapterMismatchError(
            f"adapter {task!r} at {path} was trained on a base with {trained}; this model has {has}"
        )


def _read_folder(path: Path) -> tuple[dict, StateDict]:
    """The metadata and task-module tensors of an adapter folder, every file checked readable."""
    metadata = _read_metadata(path)
    _read_json(path / ADAPTER_CONFIG_FILE)
    _read_safetensors(path / ADAPTER_WEIGHTS_FILE)
    return metadata, _read_safetensors(path / TASK_MODULES_FILE)


def _read_metadata(path: Path) -> dict:
    """The `unispeech_adapter.json` of a complete adapter folder, with the keys loading needs."""
    if not path.is_dir():
        raise FileNotFoundError(f"no adapter folder at {path}")
    missing = [file for file in ADAPTER_FILES if not (path / file).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{path} is not a complete unispeech adapter: {', '.join(missing)} missing "
            f"(save_task_adapter writes {', '.join(ADAPTER_FILES)})"
        )
    metadata = _read_json(path / METADATA_FILE)
    absent = [key for key in ("task", "task_modules", "base") if key not in metadata]
    if absent:
        raise AdapterError(f"{path / METADATA_FILE} lacks {', '.join(absent)}: save the adapter again")
    return metadata


def _read_json(file: Path) -> dict:
    try:
        content = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise AdapterError(
            f"cannot read {file}: {error}; the adapter is damaged, save or copy it again"
        ) from error
    if not isinstance(content, dict):
        raise AdapterError(
            f"{file} holds {type(content).__name__}, not a JSON object; save the adapter again"
        )
    return content


def _read_safetensors(file: Path) -> StateDict:
    try:
        return load_file(file)
    except (SafetensorError, OSError) as error:
        raise AdapterError(
            f"cannot read {file}: {error}; the adapter is damaged or not safetensors, save or copy it again"
        ) from error


def _split_task_tensors(
    model: UnispeechLMModel, modules: tuple[str, ...], tensors: StateDict, path: Path
) -> dict[str, StateDict]:
    """`{"projector.linear_in.weight": …}` → per-module state dicts, checked against the model's
    keys and shapes and cast to the live modules' dtype and device."""
    split: dict[str, StateDict] = {}
    problems: list[str] = []
    for module in modules:
        prefix = f"{module}."
        stored = {key.removeprefix(prefix): value for key, value in tensors.items() if key.startswith(prefix)}
        if module in BUILT_FROM_WEIGHTS:  # checked by building it; none stored: the model will have none
            try:
                built = BUILT_FROM_WEIGHTS[module](stored) if stored else None
            except (ValueError, RuntimeError) as error:
                problems.append(f"{prefix}*: {error}")
                continue
            split[module] = {} if built is None else built.to(model.device, model.dtype).state_dict()
            continue
        live = getattr(model, module).state_dict()
        problems += [f"{prefix}{key} missing" for key in live.keys() - stored.keys()]
        problems += [f"{prefix}{key} unexpected" for key in stored.keys() - live.keys()]
        problems += [
            f"{prefix}{key} has shape {tuple(stored[key].shape)}, the model {tuple(value.shape)}"
            for key, value in live.items()
            if key in stored and stored[key].shape != value.shape
        ]
        split[module] = {
            key: stored[key].to(device=value.device, dtype=value.dtype)
            for key, value in live.items()
            if key in stored
        }
    strays = sorted(key for key in tensors if key.split(".", 1)[0] not in modules)
    problems += [f"{key} belongs to no listed task module" for key in strays]
    if problems:
        shown = "; ".join(problems[:5]) + (f" … ({len(problems)} problems)" if len(problems) > 5 else "")
        raise AdapterError(f"{path / TASK_MODULES_FILE} does not fit this model: {shown}")
    return split


# ------------------------------------------------------------------------------------------ helpers


def _clone(state: Mapping[str, torch.Tensor]) -> StateDict:
    return {key: value.detach().clone() for key, value in state.items()}


def _cast(tensors: StateDict, dtype: torch.dtype | None) -> StateDict:
    """Floating tensors to `dtype` (others unchanged), contiguous as safetensors needs."""
    return {
        key: (value.to(dtype) if dtype is not None and value.is_floating_point() else value).contiguous()
        for key, value in tensors.items()
    }


def _floating_dtype(*groups: Iterable[torch.Tensor]) -> torch.dtype:
    """The dtype of the first floating tensor (what an unconverted save stores)."""
    for group in groups:
        for tensor in group:
            if tensor.is_floating_point():
                return tensor.dtype
    return torch.float32


@contextmanager
def _quiet_peft() -> Iterator[None]:
    """Silence two false alarms of adding a second adapter: peft's "Already found a `peft_config`"
    warning, and transformers' load report, which lists the *other* adapters' weights as missing
    (`load_task_adapter` checks the loaded adapter's own keys itself)."""
    report_logger = logging.getLogger("transformers.integrations.peft")
    level = report_logger.level
    report_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Already found a `peft_config` attribute")
            yield
    finally:
        report_logger.setLevel(level)
