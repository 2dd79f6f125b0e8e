import pytest
import torch
from torch import nn

from unispeech.model.ctc import BLANK, CtcHead

WIDTH = 16
TOKEN_IDS = (20, 3, 11, 5, 8, 3)  # unsorted, with a repeat: the head keeps 3, 5, 8, 11, 20


@pytest.fixture
def embedding():
    return nn.Embedding(30, WIDTH)


def test_log_probs_have_a_blank_and_one_class_per_token_and_are_normalised(embedding):
    head = CtcHead(TOKEN_IDS, WIDTH)
    assert head.token_ids.tolist() == [3, 5, 8, 11, 20]
    log_probs = head(torch.randn(2, 7, WIDTH), embedding)
    assert log_probs.shape == (2, 7, 1 + 5) and log_probs.dtype == torch.float32
    torch.testing.assert_close(log_probs.exp().sum(dim=-1), torch.ones(2, 7))


def test_a_token_is_scored_by_the_cosine_with_its_embedding_row(embedding):
    head = CtcHead(TOKEN_IDS, WIDTH)
    row = embedding.weight[8].detach()
    for scale in (0.01, 1.0, 100.0):  # the direction counts, not the size
        tokens = head(scale * row.expand(1, 3, WIDTH), embedding)[..., BLANK + 1 :]
        assert tokens.argmax(dim=-1).tolist() == [[2, 2, 2]], "token 8 is the third token class"


def test_targets_drop_ids_the_head_lacks_and_map_the_rest_from_one():
    head = CtcHead(TOKEN_IDS, WIDTH)
    assert head.targets([5, 99, 3, 8, 3, 0, 20]) == [2, 1, 3, 1, 5]
    assert head.targets([99, 0]) == []
    assert BLANK == 0 and BLANK not in head.targets(list(range(30)))


def test_an_extended_head_keeps_what_it_learned_and_adds_the_new_tokens(embedding):
    head = CtcHead(TOKEN_IDS, WIDTH)
    with torch.no_grad():
        head.bias.copy_(torch.tensor([0.5, -1.0, 2.0, 0.0, 1.0]))
        head.log_scale.fill_(2.0)
    wider = head.extended([9, 5, 25])
    assert wider.token_ids.tolist() == [3, 5, 8, 9, 11, 20, 25]
    torch.testing.assert_close(wider.bias, torch.tensor([0.5, -1.0, 2.0, 0.5, 0.0, 1.0, 0.5]))
    assert wider.log_scale.item() == 2.0
    speech = torch.randn(1, 4, WIDTH)
    known = [0, 1, 2, 3, 5, 6]  # blank and the old tokens' classes in the wider head
    torch.testing.assert_close(  # the old classes' scores relative to each other are unchanged
        wider(speech, embedding)[..., known].log_softmax(dim=-1), head(speech, embedding)
    )


def test_training_on_a_toy_problem_lowers_the_loss_and_decodes_the_targets(embedding):
    torch.manual_seed(0)
    transcripts = [[5, 8, 8, 20, 3], [11, 3, 5]]  # 8, 8 needs a blank between the two
    head = CtcHead({token for transcript in transcripts for token in transcript}, WIDTH)
    targets = [head.targets(transcript) for transcript in transcripts]
    lengths = torch.tensor([12, 8])
    speech = nn.Parameter(torch.randn(2, 12, WIDTH))
    parameters = [speech, *head.parameters()]
    losses = []
    for _ in range(50):  # plain gradient descent: a torch.optim optimiser costs seconds of imports
        loss = head.loss(head(speech, embedding), lengths, targets)
        assert torch.isfinite(loss)
        with torch.no_grad():
            for parameter, gradient in zip(parameters, torch.autograd.grad(loss, parameters), strict=True):
                parameter -= 0.5 * gradient
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]
    with torch.no_grad():
        assert head.decode(head(speech, embedding), lengths) == transcripts


def test_a_clip_too_short_for_its_transcript_adds_nothing_instead_of_inf(embedding):
    head = CtcHead(TOKEN_IDS, WIDTH)
    log_probs = head(torch.randn(2, 6, WIDTH), embedding)
    too_short = head.loss(log_probs[:1], torch.tensor([2]), [[1, 2, 3, 4, 5]])
    assert too_short.item() == 0
    fine = head.loss(log_probs[1:], torch.tensor([6]), [[1, 2]])
    both = head.loss(log_probs, torch.tensor([2, 6]), [[1, 2, 3, 4, 5], [1, 2]])
    torch.testing.assert_close(both, fine / 2)


def test_decode_merges_repeats_drops_blanks_and_stops_at_the_length():
    head = CtcHead(TOKEN_IDS, WIDTH)
    best = torch.tensor(
        [
            [0, 1, 1, 0, 1, 2, 2, 0, 5, 4],  # classes 1, 1, 2, 5 (4 is past the length)
            [3, 3, 3, 0, 0, 0, 0, 0, 0, 0],
        ]
    )
    log_probs = (10 * nn.functional.one_hot(best, 6).float()).log_softmax(dim=-1)
    assert head.decode(log_probs, torch.tensor([9, 10])) == [[3, 3, 5, 20], [8]]
    assert head.decode(log_probs, torch.tensor([0, 1])) == [[], [8]]


def test_only_speech_and_the_head_learn_never_the_embedding_rows(embedding):
    head = CtcHead(TOKEN_IDS, WIDTH)
    speech = torch.randn(1, 6, WIDTH, requires_grad=True)
    assert embedding.weight.requires_grad
    head.loss(head(speech, embedding), torch.tensor([6]), [[1, 2]]).backward()
    assert embedding.weight.grad is None
    assert speech.grad is not None and speech.grad.abs().sum() > 0
    for name, parameter in head.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_the_token_ids_are_saved_with_the_head():
    head = CtcHead(TOKEN_IDS, WIDTH)
    assert head.state_dict()["token_ids"].tolist() == [3, 5, 8, 11, 20]


def test_empty_token_ids_raise():
    with pytest.raises(ValueError, match="at least one token id"):
        CtcHead([], WIDTH)
