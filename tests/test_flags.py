"""Flags that mirror option fields: each names a real field of its type, and help shows the default."""

import argparse
import types
import typing

import pytest

from unispeech.interfaces.cli import build_parser
from unispeech.interfaces.flags import Parser, add_option_flag, given
from unispeech.tasks.synthesis import SynthesisOptions


def _subparsers(parser: argparse.ArgumentParser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                yield from _subparsers(child)


def _mirrored_flags():
    return [
        (parser.prog, action)
        for parser in _subparsers(build_parser())
        for action in parser._actions
        if getattr(action, "option_field", None) is not None
    ]


@pytest.mark.parametrize(
    ("command", "action"), _mirrored_flags(), ids=lambda value: getattr(value, "dest", value)
)
def test_every_mirrored_flag_names_a_field_of_its_type(command, action):
    if action.option_field.options.startswith("unispeech.interfaces.demo"):
        pytest.importorskip("gradio")
    options = action.option_field.options_class()
    hint = typing.get_type_hints(options)[action.dest]
    kinds = (
        {kind for kind in typing.get_args(hint) if kind is not type(None)}
        if isinstance(hint, types.UnionType)
        else {hint}
    )
    assert action.default is None, f"{command} {action.option_strings}: unset must keep the field's default"
    if action.nargs == 0:  # store_true
        assert kinds == {bool}
    elif action.dest == "nfe":  # comma-separated, parsed by the command
        assert typing.get_origin(hint) is tuple
    elif action.nargs:
        assert typing.get_origin(hint) is tuple and action.type in typing.get_args(hint)
    else:
        assert (action.type or str) in kinds, (command, action.option_strings, hint)


def test_help_shows_the_fields_default_and_given_values_replace_it():
    parser = Parser(prog="test")
    synthesis = "unispeech.tasks.synthesis.SynthesisOptions"
    add_option_flag(parser, synthesis, "steps", type=int, help="ODE steps")
    add_option_flag(parser, synthesis, "duration", type=float, help="seconds (default: estimated)")
    text = " ".join(parser.format_help().split())
    assert f"ODE steps (default {SynthesisOptions().steps})" in text
    assert "seconds (default: estimated)" in text and "estimated) (default" not in text
    assert given(parser.parse_args([]), "steps", "duration") == {}
    assert given(parser.parse_args(["--steps", "0"]), "steps", "duration") == {"steps": 0}  # 0 is a value
