"""N-best rescoring by language-model score: the baseline a corrector has to beat.

What anyone would try first with an LM and an N-best list: score each hypothesis as plain text
with the bare backbone (no adapter: `[bos] hypothesis [eos]`), subtract `rank_weight` nats per
place down the recogniser's ranking (so the recogniser's own preference counts too), add
`word_bonus` nats per word (the insertion bonus of ASR rescoring: a total log-probability
otherwise prefers the shortest hypothesis, "is" for a whole sentence), and keep the best. It only
chooses: it can never write a word no hypothesis holds. Both weights are calibrated, like the
corrector's gate, on training-side lists (`calibrate_rescorer`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from unispeech.model.adapters import active_task, set_task
from unispeech.model.modeling import UnispeechLMModel
from unispeech.model.processor import UnispeechLMProcessor
from unispeech.model.sequences import IGNORE_INDEX

SCORING_BATCH = 16  # hypotheses scored in one forward pass
RANK_WEIGHTS = (0.0, 0.5, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0)
WORD_BONUSES = (0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0)


@dataclass(frozen=True)
class Rescorer:
    """A hypothesis' worth: LM log-probability − `rank_weight` · rank + `word_bonus` · words (nats)."""

    rank_weight: float
    word_bonus: float = 0.0

    def choose(self, hypotheses: Sequence[str], scores: Sequence[float]) -> str:
        """The hypothesis (best first) worth most; the higher-ranked of equals."""
        if len(hypotheses) != len(scores):
            raise ValueError(f"{len(hypotheses)} hypotheses but {len(scores)} scores")
        if not hypotheses:
            return ""

        def worth(rank: int) -> float:
            return scores[rank] - self.rank_weight * rank + self.word_bonus * len(hypotheses[rank].split())

        return hypotheses[max(range(len(hypotheses)), key=worth)]


@torch.inference_mode()
def language_model_scores(
    model: UnispeechLMModel, processor: UnispeechLMProcessor, texts: Sequence[str]
) -> list[float]:
    """The bare backbone's log-probability (nats) of each text, its eos included."""
    task = active_task(model)
    set_task(model, None)
    ids = processor.token_ids
    start = [] if ids.bos is None else [ids.bos]
    scores: list[float] = []
    try:
        for first in range(0, len(texts), SCORING_BATCH):
            window = texts[first : first + SCORING_BATCH]
            rows = [start + processor.tokenize(text) + [ids.eos] for text in window]
            longest = max(map(len, rows))
            input_ids = torch.full((len(rows), longest), ids.pad)  # (B, L), padded on the right
            labels = torch.full((len(rows), longest), IGNORE_INDEX)
            attention = torch.zeros((len(rows), longest), dtype=torch.long)
            for i, row in enumerate(rows):
                input_ids[i, : len(row)] = torch.tensor(row)
                labels[i, len(start) : len(row)] = torch.tensor(row[len(start) :])
                attention[i, : len(row)] = 1
            input_ids, labels, attention = (t.to(model.device) for t in (input_ids, labels, attention))
            decoder = model.backbone.get_decoder()
            hidden = decoder(input_ids=input_ids, attention_mask=attention).last_hidden_state  # (B, L, D)
            scores += model.labelled_log_probability(hidden, labels).tolist()
    finally:
        set_task(model, task)
    return scores


def calibrate_rescorer(
    nbest_lists: Sequence[Sequence[str]],
    scores: Sequence[Sequence[float]],
    errors: Callable[[int, str], int],
    rank_weights: Sequence[float] = RANK_WEIGHTS,
    word_bonuses: Sequence[float] = WORD_BONUSES,
) -> Rescorer:
    """The weights with the fewest errors (`errors(list index, chosen text)`); among equals, the
    largest rank weight and smallest bonus (the closest to the recogniser's own choice)."""
    pairs = list(enumerate(zip(nbest_lists, scores, strict=True)))
    grid = [Rescorer(w, b) for w in sorted(rank_weights, reverse=True) for b in sorted(word_bonuses)]
    return min(grid, key=lambda r: sum(errors(i, r.choose(h, s)) for i, (h, s) in pairs))
