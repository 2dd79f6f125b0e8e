"""CTC prefix scores against brute force: every alignment of tiny clips enumerated and summed."""

import itertools
import math

import pytest
import torch

from unispeech.model.ctc import BLANK
from unispeech.tasks.ctc_prefix import CtcPrefixScorer

TOKEN_IDS = [7, 3, 11]  # the head's tokens (class k + 1 is TOKEN_IDS[k]); the vocabulary is larger
VOCAB, EOS, UNKNOWN = 16, 2, 5


def _collapse(path: tuple[int, ...]) -> list[int]:
    """An alignment's output: repeats merged, blanks dropped, classes as token ids."""
    classes = [c for i, c in enumerate(path) if c != BLANK and (i == 0 or c != path[i - 1])]
    return [TOKEN_IDS[c - 1] for c in classes]


def _brute_force(log_probs: torch.Tensor, tokens: list[int], whole: bool) -> float:
    """log Σ over all alignments of `log_probs` `(T, C)` whose output starts with (or, `whole`, is)
    `tokens`."""
    frames, classes = log_probs.shape
    total = 0.0
    for path in itertools.product(range(classes), repeat=frames):
        output = _collapse(path)
        if (output == tokens) if whole else (output[: len(tokens)] == tokens):
            total += math.exp(sum(float(log_probs[t, c]) for t, c in enumerate(path)))
    return math.log(total) if total > 0 else float("-inf")


def _random_log_probs(clips: int, frames: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(clips, frames, 1 + len(TOKEN_IDS), generator=generator).mul(2).log_softmax(-1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_prefix_and_whole_sequence_scores_equal_brute_force(seed):
    """Two clips of different lengths in one batch, two rows each, extended step by step with
    repeats (which need a blank between) and a token the head lacks."""
    log_probs = _random_log_probs(2, 5, seed)  # (B, T, C)
    lengths = torch.tensor([5, 3])
    scorer = CtcPrefixScorer(
        log_probs, lengths, torch.tensor(TOKEN_IDS), VOCAB, EOS, torch.tensor([0, 0, 1, 1])
    )
    hypotheses = [[], [], [], []]
    steps = [[7, 3, 7, 3], [7, 7, 3, 3], [11, 11, 11, 11]]  # each row's next token, step by step
    for chosen in steps:
        candidates = torch.tensor([[token, EOS, UNKNOWN, 3] for token in chosen])  # (R, W)
        scores = scorer.score(candidates)
        for row, hypothesis in enumerate(hypotheses):
            clip = log_probs[row // 2, : lengths[row // 2]]
            for column, token in enumerate(candidates[row].tolist()):
                if token == UNKNOWN:
                    assert scores[row, column] == float("-inf")
                    continue
                expected = (
                    _brute_force(clip, hypothesis, whole=True)
                    if token == EOS
                    else (_brute_force(clip, [*hypothesis, token], whole=False))
                )
                assert float(scores[row, column]) == pytest.approx(expected, abs=1e-5), (
                    row,
                    hypothesis,
                    token,
                )
        scorer.advance(torch.arange(4), torch.zeros(4, dtype=torch.long))
        for hypothesis, token in zip(hypotheses, chosen, strict=True):
            hypothesis.append(token)


def test_the_empty_hypothesis_has_prefix_probability_one_and_rows_follow_their_sources():
    log_probs = _random_log_probs(1, 4, seed=3)
    scorer = CtcPrefixScorer(
        log_probs, torch.tensor([4]), torch.tensor(TOKEN_IDS), VOCAB, EOS, torch.tensor([0])
    )
    all_tokens = torch.tensor([TOKEN_IDS])  # (1, K): the first token is one of them, or there is none
    first = scorer.score(all_tokens)
    nothing = torch.tensor(float(log_probs[0, :, BLANK].sum()))
    assert torch.logsumexp(torch.cat([first[0], nothing[None]]), 0) == pytest.approx(0.0, abs=1e-5)

    scorer.advance(torch.tensor([0, 0]), torch.tensor([2, 0]))  # two rows: [11] and [7]
    scores = scorer.score(torch.tensor([[3], [3]]))
    for row, prefix in enumerate([[11, 3], [7, 3]]):
        assert float(scores[row, 0]) == pytest.approx(_brute_force(log_probs[0], prefix, False), abs=1e-5)


def test_advance_needs_a_score_first():
    scorer = CtcPrefixScorer(
        _random_log_probs(1, 2, 0), torch.tensor([2]), torch.tensor(TOKEN_IDS), VOCAB, EOS, torch.tensor([0])
    )
    with pytest.raises(RuntimeError, match="advance needs a score call first"):
        scorer.advance(torch.tensor([0]), torch.tensor([0]))
