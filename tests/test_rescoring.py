import pytest
import torch

from unispeech.adapters import active_task, add_task_adapter
from unispeech.rescoring import calibrate_rank_weight, language_model_scores, rescore
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


def test_rescoring_weighs_the_lm_against_the_rank():
    hypotheses, scores = ["a b", "a c", "a d"], [-10.0, -8.5, -7.0]
    assert rescore(hypotheses, scores, 0.0) == "a d"
    assert rescore(hypotheses, scores, 1.0) == "a d"  # -10, -9.5, -9
    assert rescore(hypotheses, scores, 2.0) == "a b"  # -10, -10.5, -11
    assert rescore([], [], 1.0) == ""
    with pytest.raises(ValueError, match="3 hypotheses but 2 scores"):
        rescore(hypotheses, scores[:2], 1.0)


def test_the_rank_weight_with_fewest_errors_is_chosen():
    lists = [["a b", "a c"], ["x y", "x z"]]
    scores = [[-9.0, -8.0], [-9.0, -6.0]]  # the LM prefers the second hypothesis of both
    references = ["a b", "x z"]  # right: the first of list 0, the second of list 1

    def errors(i, text):
        return int(text != references[i])

    weight = calibrate_rank_weight(lists, scores, errors, weights=(0.0, 2.0, 4.0))
    assert weight == 2.0  # keeps list 0's first (1 nat apart), takes list 1's second (3 nats)
