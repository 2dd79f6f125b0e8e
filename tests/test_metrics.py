import pytest

from unispeech.evaluation.metrics import normalize, word_error_rate


def test_known_hypotheses_give_the_known_rate():
    references = ["the cat sat on the mat", "hello world"]
    hypotheses = ["the cat sat on a mat", "hello"]  # 1 substitution + 1 deletion over 8 words
    assert word_error_rate(references, hypotheses) == pytest.approx(2 / 8)


def test_whispers_normaliser_forgives_case_punctuation_and_spelling():
    assert word_error_rate(["Mr. Smith's colour, 10 dollars!"], ["mister smith's color ten dollars"]) == 0.0
    assert normalize("Hello, World!") == "hello world"


def test_character_rate_for_languages_without_spaces():
    assert word_error_rate(["今日は良い天気"], ["今日は悪い天気"], language="ja") == pytest.approx(1 / 7)


def test_empty_references():
    assert word_error_rate(["", "a b"], ["anything", "a b"]) == 0.0, "unscorable pairs are left out"
    assert word_error_rate([""], [""]) == 0.0
    assert word_error_rate([""], ["words"]) == 1.0
    with pytest.raises(ValueError, match="2 references but 1 hypotheses"):
        word_error_rate(["a", "b"], ["a"])
