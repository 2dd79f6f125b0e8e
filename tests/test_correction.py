import pytest

from tests.conftest import noise_clip
from unispeech.correction import LOOP_GUARD_NGRAM_SIZE, CorrectionOptions, clean_hypotheses, correct
from unispeech.decoding import DecodingOptions

FAST = CorrectionOptions(decoding=DecodingOptions(max_new_tokens=6))


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
    together = correct(model, processor, lists, audios, FAST, sampling_rate=16000)
    alone = [
        correct(model, processor, [nbest], [audio], FAST, 16000)[0]
        for nbest, audio in zip(lists, audios, strict=True)
    ]
    assert together == alone


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
