import pytest
import torch

from unispeech.model.adapters import active_task, add_task_adapter
from unispeech.tasks.rescoring import Rescorer, calibrate_rescorer, language_model_scores
from unispeech.testing import tiny_model


def test_scores_are_the_bare_backbones_log_probabilities(tiny_sdpa):
    model, processor = tiny_sdpa
    texts = ["one two three", "four", "five six"]
    scores = language_model_scores(model, processor, texts)
    row = [processor.token_ids.bos, *processor.tokenize("one two three"), processor.token_ids.eos]
    with torch.no_grad():
        logits = model.backbone(input_ids=torch.tensor([row])).logits[0].float()
    expected = logits[:-1].log_softmax(-1).gather(-1, torch.tensor(row[1:])[:, None]).sum()
    assert scores[0] == pytest.approx(float(expected), rel=1e-4)
    alone = [language_model_scores(model, processor, [text])[0] for text in texts]
    assert scores == pytest.approx(alone, abs=1e-4)


def test_the_adapter_is_off_while_scoring_and_back_after():
    torch.manual_seed(0)
    bare, processor = tiny_model()
    texts = ["one two three", "four"]
    expected = language_model_scores(bare, processor, texts)
    torch.manual_seed(0)
    model, _ = tiny_model()
    add_task_adapter(model, "ger")
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_()  # a LoRA that changes every output
    assert language_model_scores(model, processor, texts) == pytest.approx(expected, abs=1e-4)
    assert active_task(model) == "ger"


def test_rescoring_weighs_the_lm_against_the_rank_and_the_length():
    hypotheses, scores = ["a b", "a c", "a d"], [-10.0, -8.5, -7.0]
    assert Rescorer(0.0).choose(hypotheses, scores) == "a d"
    assert Rescorer(1.0).choose(hypotheses, scores) == "a d"  # -10, -9.5, -9
    assert Rescorer(2.0).choose(hypotheses, scores) == "a b"  # -10, -10.5, -11
    sentence = ["the cat sat on the mat", "the cat sat", "cat"]
    lm = [-20.0, -12.0, -6.0]  # a total log-probability prefers the shortest
    assert Rescorer(0.0).choose(sentence, lm) == "cat"
    assert Rescorer(0.0, word_bonus=3.0).choose(sentence, lm) == "the cat sat on the mat"  # -2, -3, -3
    assert Rescorer(1.0).choose([], []) == ""
    with pytest.raises(ValueError, match="3 hypotheses but 2 scores"):
        Rescorer(1.0).choose(hypotheses, scores[:2])


def test_the_weights_with_fewest_errors_are_chosen():
    lists = [["a b", "a c"], ["x y", "x z"], ["one two three", "one"]]
    scores = [[-9.0, -8.0], [-9.0, -6.0], [-12.0, -5.0]]  # the LM prefers the second of each
    references = ["a b", "x z", "one two three"]  # right: list 0's first, list 1's second, list 2's first

    def errors(i, text):
        return int(text != references[i])

    rescorer = calibrate_rescorer(
        lists, scores, errors, rank_weights=(0.0, 2.0, 4.0), word_bonuses=(0.0, 4.0)
    )
    assert rescorer == Rescorer(2.0, 4.0)  # 1 nat apart: keep; 3: take; 7 − 2 − 2·4 < 0: keep
