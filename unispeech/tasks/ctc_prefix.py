"""CTC prefix scores: how likely a CTC head finds a token sequence as the *start* of a transcript.

Joint CTC/LLM beam search (Watanabe et al. 2017, "Hybrid CTC/attention architecture for end-to-end
speech recognition"; ESPnet's `CTCPrefixScore`) adds to each candidate token's LLM score how much
the CTC head believes in the extended hypothesis. The prefix probability ψ(h) of a hypothesis h is
the total probability of every CTC alignment of the clip whose collapsed output begins with h. It
comes from two forward variables per frame: r^n_t(h), the probability that frames 0..t emit exactly
h with frame t on h's last token, and r^b_t(h), the same with frame t blank. Extending g by token c
needs only g's variables (x_t: the head's probabilities at frame t; sums in log space):

    φ_t(g, c) = r^b_t(g) + (r^n_t(g) if c ≠ last(g) else 0)     (a repeat needs a blank between)
    r^n_t(g+c) = (r^n_{t-1}(g+c) + φ_{t-1}(g, c)) · x_t(c)
    r^b_t(g+c) = (r^b_{t-1}(g+c) + r^n_{t-1}(g+c)) · x_t(blank)
    ψ(g+c) = Σ_t φ_{t-1}(g, c) · x_t(c)

A virtual frame -1 before the clip holds r^b = 1 for the empty hypothesis and 0 otherwise, so the
first frame needs no special case. eos scores the whole sequence instead: r^n_T(g) + r^b_T(g).
Frames past a clip's end are made certain blanks, which carry every variable through unchanged, so
clips of different lengths share one batch. Only the candidates beam search asks about are scored
(ESPnet's partial scoring), every row and candidate at once; the loop runs over frames. Tokens the
head lacks score -inf (the head cannot emit them), except eos.

No pip library fits: ESPnet's scorer needs ESPnet and one vocabulary for CTC and decoder, whereas
our head scores K of the LLM's V tokens; torchaudio's and pyctcdecode's CTC decoders run their own
beam searches and score no one else's hypotheses. The algorithm is short, written here, and tested
against brute-force enumeration of alignments.

Shapes: `B` clips, `T` frames (speech embeddings), `C = 1 + K` classes (blank first), `V` the
LLM's vocabulary, `R` rows (hypotheses), `W` candidates per row.
"""

from __future__ import annotations

import torch

from unispeech.model.ctc import BLANK

NO_CLASS = -1  # the class of a token the head lacks, and the "last class" of the empty hypothesis


class CtcPrefixScorer:
    """Prefix scores of growing hypotheses, one row per hypothesis, over a batch of clips.

    `log_probs` `(B, T, C)` are a CTC head's (blank first, class k + 1 is `token_ids[k]`), `lengths`
    `(B,)` the clips' real frames; `row_samples` `(R,)` says which clip each row reads. The rows
    start empty; `score` gives the prefix scores of candidate extensions, and `advance` keeps the
    ones chosen (each new row extending one old row by one of its candidates)."""

    def __init__(
        self,
        log_probs: torch.Tensor,
        lengths: torch.Tensor,
        token_ids: torch.Tensor,
        vocab_size: int,
        eos: int,
        row_samples: torch.Tensor,
    ):
        frames = torch.arange(log_probs.shape[1], device=log_probs.device)
        padding = frames[None] >= lengths.to(log_probs.device)[:, None]  # (B, T)
        certain_blank = torch.full_like(log_probs[0, 0], float("-inf"))
        certain_blank[BLANK] = 0.0
        log_probs = torch.where(padding[..., None], certain_blank, log_probs.float())
        self.log_probs = log_probs.transpose(0, 1)  # (T, B, C): frames first, for the loop
        device = log_probs.device
        self.classes = torch.full((vocab_size,), NO_CLASS, dtype=torch.long, device=device)  # (V,)
        self.classes[token_ids.to(device)] = torch.arange(1, len(token_ids) + 1, device=device)
        self.eos = eos
        self.scoreable = self.classes != NO_CLASS  # (V,): the tokens with a CTC score, eos included
        self.scoreable[eos] = True
        rows = len(row_samples)
        self.row_samples = row_samples.to(device)
        blank_run = torch.cumsum(self.log_probs[:, self.row_samples, BLANK], dim=0)  # (T, R)
        self.blank = torch.cat([blank_run.new_zeros(1, rows), blank_run])  # (T + 1, R): frame -1 first
        self.non_blank = torch.full_like(self.blank, float("-inf"))  # (T + 1, R)
        self.last = torch.full((rows,), NO_CLASS, dtype=torch.long, device=device)
        self._candidates: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def score(self, tokens: torch.Tensor) -> torch.Tensor:
        """Prefix scores `(R, W)` of each row extended by each of its candidate `tokens` `(R, W)`:
        log ψ(row + token); eos gives the row's whole-sequence log-probability."""
        classes = self.classes[tokens]  # (R, W)
        known = classes != NO_CLASS
        emit = self.log_probs[:, self.row_samples[:, None], classes.clamp(min=0)]  # (T, R, W)
        emit = emit.masked_fill(~known[None], float("-inf"))
        blank_emit = self.log_probs[:, self.row_samples, BLANK]  # (T, R)
        repeat = (classes == self.last[:, None])[None]  # (1, R, W)
        reach = torch.logaddexp(  # φ_{t-1} for t = 0 … T-1: (T, R, W)
            self.blank[:-1, :, None], self.non_blank[:-1, :, None].masked_fill(repeat, float("-inf"))
        )
        scores = torch.logsumexp(reach + emit, dim=0)  # (R, W)
        non_blank = torch.empty((len(emit) + 1, *tokens.shape), device=emit.device)  # (T + 1, R, W)
        blank = torch.empty_like(non_blank)
        non_blank[0] = blank[0] = float("-inf")  # a non-empty hypothesis has emitted nothing before frame 0
        for t in range(len(emit)):
            non_blank[t + 1] = torch.logaddexp(non_blank[t], reach[t]) + emit[t]
            blank[t + 1] = torch.logaddexp(blank[t], non_blank[t]) + blank_emit[t, :, None]
        whole = torch.logaddexp(self.non_blank[-1], self.blank[-1])  # (R,)
        scores = torch.where(tokens == self.eos, whole[:, None], scores)
        self._candidates = (non_blank, blank, classes)
        return scores

    def advance(self, rows: torch.Tensor, columns: torch.Tensor) -> None:
        """Keep, as the new rows `(R,)`, candidate `columns[i]` of old row `rows[i]` of the last
        `score` call (the new row reads the old row's clip)."""
        if self._candidates is None:
            raise RuntimeError("advance needs a score call first: it keeps some of the scored candidates")
        non_blank, blank, classes = self._candidates
        self.non_blank, self.blank = non_blank[:, rows, columns], blank[:, rows, columns]
        self.last = classes[rows, columns]
        self.row_samples = self.row_samples[rows]
        self._candidates = None
