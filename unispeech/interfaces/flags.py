"""What the `unispeech` subcommands share: the model flags, and flags that mirror option fields.

A flag that mirrors a field of a run-time options dataclass (`SynthesisOptions.steps` is
`--steps`) is unset (None) unless given, so the dataclass keeps its default and a given 0 is a
value; `given(args, ...)` collects the ones given. Its help states that default, read from the
dataclass's field when help is shown (`HelpFormatter`): the dataclasses live in modules that take
seconds to import (torch), or need an optional extra (the demo's gradio), so the parser names them
by path and building it imports none of them. The dataclass is thus the one place a default is
written.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from unispeech.model.cpu_weights import DEFAULT_WEIGHT_FORMAT, WEIGHT_FORMATS

if TYPE_CHECKING:
    from unispeech.api import Unispeech

MODEL_HELP = "a model name (smol) or a saved model folder"
SYNTHESIS = "unispeech.tasks.synthesis.SynthesisOptions"
DECODING = "unispeech.tasks.decoding.DecodingOptions"
# The SynthesisOptions fields `speak` and `eval tts` take: type and help of each flag.
SYNTHESIS_FLAGS: dict[str, tuple[type, str]] = {
    "steps": (int, "ODE steps, the NFE"),
    "guidance_strength": (float, "classifier-free guidance strength"),
    "sway": (float, "sway sampling coefficient"),
    "speed": (float, "speaking rate, 1 = the prompt's"),
    "duration": (float, "seconds of speech to generate (default: estimated)"),
    "seed": (int, "noise seed"),
    "start_time": (float, "ODE start time: 0 from noise, 1 the phoneme prior alone"),
    "language": (str, "the text's language, an ISO code: its phonemes, and which adapters speak"),
    "max_text_characters": (int, "refuse longer text (default: any length)"),
}
CTC_FIELDS = ("ctc_weight", "speculative")


@dataclass(frozen=True)
class OptionField:
    """Field `name` of the options dataclass at dotted path `options`, imported when asked."""

    options: str
    name: str

    def options_class(self) -> type:
        module, name = self.options.rsplit(".", 1)
        return getattr(importlib.import_module(module), name)

    def default(self) -> Any:
        field = {field.name: field for field in dataclasses.fields(self.options_class())}[self.name]
        return field.default_factory() if field.default is dataclasses.MISSING else field.default


class HelpFormatter(argparse.HelpFormatter):
    """argparse's, with each mirrored flag's default added to its help as it is shown (a field
    whose default is None or False says what unset means in its own help)."""

    def _format_action(self, action: argparse.Action) -> str:
        # Here, not in `_get_help_string`: Python 3.14 expands every help string as it is added,
        # which would import each dataclass's module while the parser is built.
        field = getattr(action, "option_field", None)
        if field is not None and action.help:
            try:
                default = field.default()
            except ImportError:  # an optional extra (gradio) is not installed: no default to show
                default = None
            if default is not None and default is not False:
                action = copy.copy(action)
                action.help = f"{action.help} (default {spelled(default, ' ' if action.nargs else ',')})"
        return super()._format_action(action)


class Parser(argparse.ArgumentParser):
    """An argument parser whose help shows mirrored flags' defaults; its subparsers are too."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


def spelled(value: Any, separator: str = ",") -> str:
    """A flag's value as it is typed: a tuple's items joined by `separator`, anything else as str."""
    return separator.join(map(str, value)) if isinstance(value, tuple) else str(value)


def add_option_flag(
    command: argparse.ArgumentParser, options: str, name: str, *flags: str, **kwargs: Any
) -> argparse.Action:
    """`--name` (or `flags`), stored as `name`, mirroring field `name` of `options`; unset it is
    None (an on/off flag too), and its help gains the field's default when shown."""
    if kwargs.get("action") in ("store_true", argparse.BooleanOptionalAction):
        kwargs.setdefault("default", None)
    elif flags:  # named after the flag, not the field
        kwargs.setdefault("metavar", flags[0].removeprefix("--").replace("-", "_").upper())
    action = command.add_argument(*(flags or [_flag(name)]), dest=name, **kwargs)
    action.option_field = OptionField(options, name)
    return action


def add_option_flags(
    command: argparse.ArgumentParser,
    options: str,
    flags: Mapping[str, tuple[type, str]],
    aliases: Mapping[str, tuple[str, ...]] | None = None,
) -> None:
    """One mirrored flag per entry of `flags` (field name → type and help), with `aliases`."""
    for name, (kind, help_text) in flags.items():
        spellings = (_flag(name), *(aliases or {}).get(name, ()))
        add_option_flag(command, options, name, *spellings, type=kind, help=help_text)


def given(args: argparse.Namespace, *names: str) -> dict[str, Any]:
    """The flags among `names` that were given (mirrored flags are None when unset), a flag of
    several values (a list) as the tuple an options field holds."""
    values = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    return {name: tuple(value) if isinstance(value, list) else value for name, value in values.items()}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_model_flags(command: argparse.ArgumentParser, model_help: str = MODEL_HELP) -> None:
    command.add_argument("--model", default="smol", help=model_help)
    command.add_argument(
        "--adapters", help="a folder of task adapters (default: those shipped for the model; 'none': none)"
    )
    command.add_argument(
        "--weight-format",
        choices=WEIGHT_FORMATS,
        default=DEFAULT_WEIGHT_FORMAT,
        help="fp16: the backbone's frozen weights packed in half precision, faster on a CPU; fp32 as "
        f"trained (default: {DEFAULT_WEIGHT_FORMAT})",
    )


def adapters_choice(args: argparse.Namespace) -> str | None:
    """`--adapters` as `unispeech.load` takes it: "shipped" unless given, None for 'none'."""
    if args.adapters is None:
        return "shipped"
    return None if args.adapters == "none" else args.adapters


def load_speech(args: argparse.Namespace, languages: Sequence[str] = ()) -> Unispeech:
    """The `Unispeech` that `--model` and `--adapters` name; a `--language` other than English, and
    each of `languages`, load that language's adapters beside the English ones (`unispeech.api.load`)."""
    from unispeech.api import load

    language = getattr(args, "language", None)
    languages = [*languages] if language is None else [language, *languages]
    return load(
        args.model, adapters=adapters_choice(args), languages=languages, weight_format=args.weight_format
    )


def add_ctc_flags(command: argparse.ArgumentParser) -> None:
    """`DecodingOptions.ctc_weight` and `.speculative`: decoding helped by the ASR adapter's CTC head."""
    add_option_flag(
        command,
        DECODING,
        "ctc_weight",
        type=float,
        help="joint CTC/LLM decoding, ranked by (1 - W)·LLM + W·CTC log-probability, W in [0, 1) "
        "(0: the LLM alone); unset, 0.3 where the ASR adapter has a CTC head and 0 where it has none",
    )
    add_option_flag(
        command,
        DECODING,
        "speculative",
        action=argparse.BooleanOptionalAction,
        help="greedy decoding (joint or not) with drafts from the CTC head: the same transcripts in fewer "
        "LLM passes; unset, on where the ASR adapter has a CTC head and one clip decodes alone",
    )
