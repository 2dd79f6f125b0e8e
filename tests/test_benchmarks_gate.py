import pytest

from unispeech.benchmarks.gate import calibrate_gate
from unispeech.tasks.correction import GateCase


def _cases():
    """Three lists: a correction worth taking at +3 nats, a wrong one at +1, and a stray one."""
    right = GateCase(
        ("the cat sad", "the cat sat"), "the cat sat", {"the cat sad": -9.0, "the cat sat": -6.0}
    )
    wrong = GateCase(("a dog ran", "a dog rang"), "a dog rang", {"a dog ran": -7.0, "a dog rang": -6.0})
    stray = GateCase(("hello world",), "seven", {"hello world": -9.0, "seven": -1.0})
    return [right, wrong, stray], ["the cat sat", "a dog ran", "hello world"]


def test_the_gate_that_takes_only_the_good_correction_is_chosen():
    cases, references = _cases()
    calibration = calibrate_gate(cases, cases, references)
    assert 1.0 < calibration.gate.margin <= 3.0  # between the wrong and the right correction
    assert calibration.gate.max_distance < 1.0  # "seven" for "hello world" is a stray
    assert calibration.gated.errors == 0
    assert calibration.first.errors == 1 and calibration.ungated.errors == 3
    assert "margin" in calibration.summary()


def test_ties_go_to_the_most_cautious_gate():
    cases, references = _cases()
    calibration = calibrate_gate(cases[1:], cases[1:], references[1:])  # nothing is worth taking
    assert calibration.gate.margin == 16.0 and calibration.gate.max_distance == 0.0


def test_counts_must_agree():
    cases, references = _cases()
    with pytest.raises(ValueError, match="as many cases"):
        calibrate_gate(cases, cases[:1], references)
