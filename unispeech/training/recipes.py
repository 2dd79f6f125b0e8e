"""Training recipes: the YAML file a run is described by, as dataclasses with defaults that work.

A recipe names the base model, the adapter it trains (`task`: one of the tasks, or `joint` for one
adapter over several), the data sources and how they mix (`sources`, each a manifest or an N-best
file with a task and a weight), and everything about optimisation. `load_recipe` reads a YAML file,
applies `key.sub=value` overrides from the command line (values parsed as YAML), and checks every
field, naming the unknown or wrong ones. Relative paths are taken from the working directory.

    model: smol
    task: asr
    output: runs/smol-asr
    sources:
      - {task: asr, manifest: ../data/ljspeech.train.jsonl, weight: 1}
    steps: 2000
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

import yaml

from unispeech.model.sequences import ASR, GER, TASKS, TTS
from unispeech.training.augmentation import TimeMasking
from unispeech.training.buckets import BucketSettings

JOINT_TASK = "joint"
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
SCHEDULES = ("cosine", "linear", "constant")


@dataclass(frozen=True)
class Source:
    """One stream of training examples. `manifest` (JSON lines of utterances) for ASR and TTS,
    `nbest` (N-best JSON lines) for GER; `weight` is its share of batches; `language_hint` writes
    each utterance's `lang` before the transcript (ASR); `with_audio` lets GER listen too; TTS
    needs `durations`, the phoneme durations of its clips (`unispeech data align`)."""

    task: str
    manifest: str | None = None
    nbest: str | None = None
    weight: float = 1.0
    language_hint: bool = False
    with_audio: bool = False
    durations: str | None = None
    max_seconds: float = 30.0
    name: str | None = None

    @property
    def label(self) -> str:
        return self.name or Path(self.manifest or self.nbest).stem


@dataclass(frozen=True)
class LoraSettings:
    """`targets`: module names inside the backbone (default: its attention projections)."""

    rank: int = 16
    alpha: int = 32
    dropout: float = 0.05
    targets: tuple[str, ...] | None = None


@dataclass(frozen=True)
class OptimizerSettings:
    """AdamW; `lr` for the LoRA, `module_lr` for the task modules (projector, flow head, markers)
    and the CTC head, which start from scratch and want more."""

    lr: float = 2e-4
    module_lr: float = 1e-3
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 50
    schedule: str = "cosine"
    max_grad_norm: float = 1.0


@dataclass(frozen=True)
class CtcSettings:
    """The alignment aid (`model/ctc.py`): for the first `warmup_steps` only the projector learns,
    by CTC alone (no LLM pass); afterwards the CTC loss stays as an auxiliary loss of `weight`."""

    warmup_steps: int = 0
    weight: float = 0.0


@dataclass(frozen=True)
class DevSettings:
    """Periodic dev WER (ASR) on the first `limit` utterances of `manifest`, every `every` steps."""

    manifest: str | None = None
    every: int = 200
    limit: int = 20


@dataclass(frozen=True)
class Recipe:
    model: str = "smol"
    task: str = ASR
    output: str = "runs/unnamed"
    init_from: str | None = None  # an adapter folder whose LoRA and task modules the run starts from
    sources: tuple[Source, ...] = ()
    steps: int = 1000
    seed: int = 0
    batch: BucketSettings = field(default_factory=BucketSettings)
    grad_accumulation: int = 1
    lora: LoraSettings = field(default_factory=LoraSettings)
    optimizer: OptimizerSettings = field(default_factory=OptimizerSettings)
    ctc: CtcSettings = field(default_factory=CtcSettings)
    time_masks: TimeMasking = field(default_factory=TimeMasking)  # on cached encoder states (ASR, GER)
    dev: DevSettings = field(default_factory=DevSettings)
    precision: str = "auto"
    qlora: bool = False
    gradient_checkpointing: bool = False
    cache_features: bool = True
    feature_cache: str | None = None  # default: <unispeech cache>/features
    checkpoint_every: int = 100
    keep_checkpoints: int = 3
    log_every: int = 10
    save_dtype: str = "float16"

    def __post_init__(self):
        known = (*TASKS, JOINT_TASK)
        if self.task not in known:
            raise ValueError(f"task must be one of {', '.join(known)}, got {self.task!r}")
        if not self.sources:
            raise ValueError("a recipe needs at least one entry in sources")
        for source in self.sources:
            if source.task not in TASKS:
                raise ValueError(f"source task must be one of {', '.join(TASKS)}, got {source.task!r}")
            if self.task != JOINT_TASK and source.task != self.task:
                raise ValueError(
                    f"a {self.task} adapter cannot learn from a {source.task} source ({source.label}); "
                    f"use task: {JOINT_TASK} for one adapter over several tasks"
                )
            wanted = "nbest" if source.task == GER else "manifest"
            if getattr(source, wanted) is None:
                raise ValueError(f"a {source.task} source needs `{wanted}:` (a file)")
            if source.task == TTS and source.durations is None:
                raise ValueError(
                    f"a tts source needs `durations:` (its clips' phoneme durations, from unispeech data "
                    f"align), {source.label} has none"
                )
            if source.weight <= 0:
                raise ValueError(f"source weights must be positive, got {source.weight} ({source.label})")
        for name in ("steps", "grad_accumulation", "checkpoint_every", "log_every", "keep_checkpoints"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.optimizer.schedule not in SCHEDULES:
            raise ValueError(
                f"schedule must be one of {', '.join(SCHEDULES)}, got {self.optimizer.schedule!r}"
            )
        if self.ctc.warmup_steps >= self.steps:
            raise ValueError(f"ctc.warmup_steps ({self.ctc.warmup_steps}) must be below steps ({self.steps})")
        if self.time_masks.masks and not self.cache_features:
            raise ValueError("time_masks fall on cached encoder states: they need cache_features: true")
        if (self.ctc.warmup_steps or self.ctc.weight) and not any(s.task == ASR for s in self.sources):
            raise ValueError("the CTC alignment aid needs an asr source (transcribed speech)")

    @property
    def tasks(self) -> tuple[str, ...]:
        """The tasks the sources train, in first-seen order."""
        return tuple(dict.fromkeys(source.task for source in self.sources))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def load_recipe(path: str | Path, overrides: list[str] = ()) -> Recipe:
    """The recipe in the YAML file at `path`, with `key.sub=value` overrides applied."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"no recipe at {path}") from None
    except yaml.YAMLError as error:
        raise ValueError(f"{path} is not valid YAML: {_yaml_problem(error)}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a mapping of recipe fields, not {type(data).__name__}")
    for override in overrides:
        apply_override(data, override)
    return recipe_from_dict(data)


def recipe_from_dict(data: dict[str, Any]) -> Recipe:
    return _build(Recipe, data, "recipe")


def apply_override(data: dict[str, Any], override: str) -> None:
    """Set `a.b.0.c=value` in nested dicts and lists; the value is parsed as YAML (`steps=20`)."""
    key, separator, value = override.partition("=")
    if not separator or not key:
        raise ValueError(f"an override is key=value (e.g. steps=200), got {override!r}")
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError as error:
        raise ValueError(
            f"the value of override {override!r} is not valid YAML: {_yaml_problem(error)}"
        ) from None
    *parents, last = key.split(".")
    target: Any = data
    try:
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target.setdefault(part, {})
        if isinstance(target, list):
            target[int(last)] = parsed
        else:
            target[last] = parsed
    except (IndexError, ValueError, TypeError, AttributeError) as error:
        # a list index out of range or not a number, or a key below a plain value
        raise ValueError(f"cannot set {key!r} in this recipe ({error})") from None


def _build(cls: type, data: Any, where: str) -> Any:
    """A dataclass from a mapping, recursively, rejecting unknown keys with their location."""
    if isinstance(data, cls):
        return data
    if not isinstance(data, dict):
        raise ValueError(f"{where} must be a mapping, got {data!r:.60}")
    fields = {item.name: item for item in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ValueError(f"unknown field(s) in {where}: {', '.join(unknown)}; known: {', '.join(fields)}")
    hints = get_type_hints(cls)
    values = {}
    for name, value in data.items():
        hint = hints[name]
        nested = next((t for t in _SECTIONS if hint is t), None)
        if nested is not None:
            value = _build(nested, value, f"{where}.{name}")
        elif name == "sources":
            if not isinstance(value, list | tuple):  # a tuple: what `Recipe.to_dict` gives back
                raise ValueError(f"{where}.sources must be a list of sources")
            value = tuple(_build(Source, item, f"{where}.sources[{i}]") for i, item in enumerate(value))
        elif isinstance(value, list):
            value = tuple(value)
        elif hint is float and isinstance(value, (int, str)) and not isinstance(value, bool):
            value = _number(value, f"{where}.{name}")  # YAML 1.1 reads 1e-4 as a string
        elif hint in (int, bool) and type(value) is not hint:  # bool is an int subclass: compare types
            kind = "a whole number" if hint is int else "true or false"
            raise ValueError(f"{where}.{name} must be {kind}, got {value!r}")
        values[name] = value
    try:
        return cls(**values)
    except TypeError as error:
        raise ValueError(f"{where}: {error}") from None


def _yaml_problem(error: yaml.YAMLError) -> str:
    """PyYAML's error on one line: the problem and where it is."""
    mark = getattr(error, "problem_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    return f"{getattr(error, 'problem', None) or error}{where}"


def _number(value: int | str, where: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{where} must be a number, got {value!r}") from None


_SECTIONS = (BucketSettings, LoraSettings, OptimizerSettings, CtcSettings, DevSettings, TimeMasking)
