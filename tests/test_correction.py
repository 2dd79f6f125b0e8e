import dataclasses

import pytest
import torch

from tests.conftest import noise_clip
from unispeech.model.processor import GerSample
from unispeech.tasks.correction import (
    LOOP_GUARD_NGRAM_SIZE,
    CorrectionOptions,
    GateCase,
    NoHarmGate,
    clean_hypotheses,
    correct,
    correction_cases,
    score_candidates,
)
from unispeech.tasks.decoding import DecodingOptions

FAST = CorrectionOptions(decoding=DecodingOptions(max_new_tokens=6))
UNGATED = dataclasses.replace(FAST, gate=None)
GATE = NoHarmGate(margin=2.0, single_margin=8.0, max_distance=0.5)


def test_hypotheses_are_cleaned():
    assert clean_hypotheses(["  a b ", "", "   ", "c"]) == ("a b", "c")
    with pytest.raises(ValueError, match="list of strings, not one string"):
        clean_hypotheses("just one string")


def test_empty_lists_correct_to_nothing_and_others_are_decoded(tiny_sdpa):
    model, processor = tiny_sdpa
    results = correct(model, processor, [["", "  "], ["helo wrld", "hello world"]], options=FAST)
    assert results[0] == "" and isinstance(results[1], str)


def test_a_batch_with_and_without_audio_equals_each_alone(tiny_sdpa):
    model, processor = tiny_sdpa
    lists = [["one two", "one too"], ["three"], ["four five six"]]
    audios = [noise_clip(0.4, 16000), None, noise_clip(0.7, 16000, seed=1)]
    for options in (FAST, UNGATED):
        together = correct(model, processor, lists, audios, options, sampling_rate=16000)
        alone = [
            correct(model, processor, [nbest], [audio], options, 16000)[0]
            for nbest, audio in zip(lists, audios, strict=True)
        ]
        assert together == alone


def test_without_the_gate_the_generation_is_the_answer(tiny_sdpa):
    model, processor = tiny_sdpa
    lists = [["one two", "one too"], ["three"]]
    cases = correction_cases(model, processor, lists, options=UNGATED)
    assert correct(model, processor, lists, options=UNGATED) == [case.correction for case in cases]
    assert all(case.scores == {} for case in cases)  # nothing is scored that nothing reads


def test_candidates_are_scored_as_the_loss_scores_them(tiny_sdpa):
    """A candidate's score is the summed log-probability of its tokens and eos: minus the
    training loss times the number of tokens it averages over."""
    model, processor = tiny_sdpa
    hypotheses, text = ("one two", "one too"), "one two"
    [score] = score_candidates(model, processor, [hypotheses], [text], [None])
    batch = processor([GerSample(hypotheses, text)])
    with torch.no_grad():
        loss = model(**batch).text_loss
    tokens = len(processor.tokenize(text)) + 1
    assert score == pytest.approx(-float(loss) * tokens, rel=1e-4)
    lists = [hypotheses, ("three",), ("four five", "for five")]
    texts = ["one two", "three", "for five"]
    together = score_candidates(model, processor, lists, texts, [None] * 3)
    alone = [
        score_candidates(model, processor, [h], [t], [None])[0] for h, t in zip(lists, texts, strict=True)
    ]
    assert together == pytest.approx(alone, abs=1e-4)


def test_gated_cases_score_the_correction_and_every_hypothesis(tiny_sdpa):
    model, processor = tiny_sdpa
    [case] = correction_cases(model, processor, [["one two", "one too"]], options=FAST)
    assert set(case.scores) == {case.correction, "one two", "one too"}
    assert correct(model, processor, [["one two", "one too"]], options=FAST) == [GATE.choose(case)]


def test_the_gate_keeps_the_first_hypothesis_unless_the_correction_is_clearly_better():
    hypotheses = ["i scream for ice cream", "ice cream for ice cream"]
    unsure = GateCase(tuple(hypotheses), hypotheses[1], {hypotheses[0]: -10.0, hypotheses[1]: -9.0})
    sure = GateCase(tuple(hypotheses), hypotheses[1], {hypotheses[0]: -10.0, hypotheses[1]: -7.5})
    assert GATE.choose(unsure) == hypotheses[0]
    assert GATE.choose(sure) == hypotheses[1]


def test_a_generation_that_strays_falls_back_to_the_best_scored_hypothesis():
    hypotheses = ("the cat sat on the mat", "the cat sad on the mat", "a cat sat on a mat")
    scores = {"seven": 0.0, hypotheses[0]: -12.0, hypotheses[1]: -9.0, hypotheses[2]: -11.0}
    case = GateCase(hypotheses, "seven", scores)
    assert GATE.candidate(case) == hypotheses[1]
    assert GATE.choose(case) == hypotheses[1]  # 3 nats above the 1-best
    assert NoHarmGate(margin=4.0).choose(case) == hypotheses[0]


def test_a_one_item_list_is_left_alone_unless_the_model_is_sure():
    strays = GateCase(("hello world",), "seven", {"seven": 0.0, "hello world": -20.0})
    assert GATE.choose(strays) == "hello world"
    close = GateCase(("hello word",), "hello world", {"hello world": -5.0, "hello word": -10.0})
    assert GATE.choose(close) == "hello word"  # 5 nats: enough for a list, not for one item
    assert NoHarmGate(single_margin=4.0, max_distance=0.5).choose(close) == "hello world"
    assert NoHarmGate(single_margin=4.0, max_distance=0.0).choose(close) == "hello word"  # strays


def test_gate_settings_are_checked():
    with pytest.raises(ValueError, match="margins and distance must be >= 0"):
        NoHarmGate(margin=-1.0)


def test_mismatched_inputs_and_options():
    with pytest.raises(ValueError, match="max_length_ratio > 0"):
        CorrectionOptions(max_length_ratio=0)


def test_counts_must_agree(tiny_sdpa):
    model, processor = tiny_sdpa
    with pytest.raises(ValueError, match="2 N-best lists but 1 recordings"):
        correct(model, processor, [["a"], ["b"]], [None])


def test_the_loop_guard_is_on_by_default():
    """What it does is tested in test_decoding (no_repeat_ngram_size); here only that correction,
    whose undertrained adapters loop (train/RUNS.md), asks for it unless told otherwise."""
    assert CorrectionOptions().decoding.no_repeat_ngram_size == LOOP_GUARD_NGRAM_SIZE
