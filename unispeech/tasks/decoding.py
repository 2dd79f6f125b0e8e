"""Text decoding: our own autoregressive loop over a KV cache, greedy or beam search, for ASR
optionally guided by the adapter's CTC head.

transformers' `generate()` refuses the 4D attention masks the unified model needs, so the loop is
written here, in the spirit of openai-whisper's `decoding.py`: the prompt (speech embeddings, task
markers, text) is run once into a `DynamicCache` (prefill), then one token at a time, with logits
computed only for the newest position. What varies is a small strategy object: `GreedyDecoder`
takes the best token of each row, `BeamSearchDecoder` keeps the `beam_size` best continuations of
each sample and collects finished hypotheses; both rank them with the same length-normalised
score. Each sample has its own token budget (the length guard), so a bad input cannot loop forever;
`no_repeat_ngram_size` (transformers' `NoRepeatNGramLogitsProcessor`, applied to the tokens each
row has written) stops a loop before the budget does.

The CTC head (`model/ctc.py`, shipped with ASR adapters trained with the CTC aid) helps in two ways.
Joint decoding (`ctc_weight` λ > 0, ESPnet's hybrid CTC/attention decoding) ranks each hypothesis
by (1 − λ)·its LLM log-probability + λ·its CTC prefix log-probability (`ctc_prefix.py`), scoring
only each row's best LLM candidates among the tokens the head knows (partial scoring); greedy
decoding then runs as a beam of one. It is the default where the head exists (`JOINT_CTC_WEIGHT`):
it is what stops the LLM writing on past the end of the speech. Speculative decoding
(`speculative`) keeps greedy decoding's output (joint or not) and needs fewer backbone passes: the
head's greedy transcript drafts the next tokens, one pass over the cache gives the LLM's
log-probabilities after each of them, the greedy decoder itself chooses at each drafted position
in turn (so each choice is the one it would make step by step), the draft is kept up to the first
choice that differs from it, that choice is the next token, and the cache is cropped back to what
was kept. It runs one sample at a time, as each sample keeps a different number of tokens, so
it is the default only where a batch holds one sample (one clip transcribed alone): a batch
decoded together costs fewer passes in all.

`decode_samples` is the one path from processor samples to text that every task takes: the
left-padded batch on the model's device, speech encoded, the prompt embedded (`embed_prompts`),
decoded, and each hypothesis detokenised. New tokens live on the device of the log-probabilities,
so a model on a GPU decodes there.

Shapes: `B` samples, `K` beams per sample (1 for greedy), `R = B·K` rows, `L` prompt positions,
`D` backbone width, `V` vocabulary, `W` candidates scored by CTC per row, `T` speech embeddings,
`Q` positions of one speculative pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from transformers import DynamicCache, LogitsProcessorList, NoRepeatNGramLogitsProcessor

from unispeech.model.ctc import CtcHead
from unispeech.model.modeling import UnispeechLMModel
from unispeech.model.processor import AsrSample, GerSample, UnispeechLMProcessor
from unispeech.tasks.ctc_prefix import CtcPrefixScorer

NEGATIVE_INFINITY = float("-inf")
PRE_BEAM_RATIO = 1.5  # CTC scores this many candidates per beam (ESPnet's pre_beam_ratio)
JOINT_CTC_WEIGHT = 0.3  # λ where the ASR adapter has a CTC head: train/RUNS.md (smol-asr-real) measures it
MAX_DRAFT_TOKENS = 16  # drafted per speculative pass at most: a long pass costs little more than one step
DRAFT_GROWTH = 2  # a pass drafts this many times what the last kept, or this fraction of what it drafted
NO_CTC_HEAD = (
    "ctc_weight and speculative decoding need the ASR adapter's CTC head, and the loaded adapter has "
    "none: use an adapter trained with the CTC aid (recipe ctc.weight), or leave both off"
)


@dataclass(frozen=True)
class DecodingOptions:
    """How to decode. `beam_size=None` is greedy; `n_best` hypotheses are returned (≤ beams).

    `length_penalty=None` ranks by log-probability per token (openai-whisper's default); a value α
    uses GNMT's ((5 + length) / 6)^α instead. `max_new_tokens` caps every sample's length;
    `no_repeat_ngram_size=n` forbids writing any n-gram of tokens twice (None allows it).
    ASR with a CTC head only: `ctc_weight` λ in [0, 1) ranks by (1 − λ)·LLM + λ·CTC log-probability
    (0: the LLM alone, as without a head); None, the default, is `JOINT_CTC_WEIGHT` for ASR with a
    head and 0 otherwise (`for_model`). `speculative` drafts from the CTC head to reach greedy
    decoding's output (with the `ctc_weight` asked for) in fewer passes: greedy only, not with a
    beam; None, the default, turns it on where a head exists and one sample decodes alone."""

    beam_size: int | None = None
    n_best: int = 1
    length_penalty: float | None = None
    max_new_tokens: int = 448
    no_repeat_ngram_size: int | None = None
    ctc_weight: float | None = None
    speculative: bool | None = None

    def __post_init__(self) -> None:
        if self.beam_size is not None and self.beam_size < 1:
            raise ValueError(f"beam_size must be at least 1 (or None for greedy), got {self.beam_size}")
        if self.n_best < 1:
            raise ValueError(f"n_best must be at least 1, got {self.n_best}")
        if self.n_best > (self.beam_size or 1):
            raise ValueError(
                f"n_best={self.n_best} needs a beam of at least as many hypotheses, "
                f"got beam_size={self.beam_size}"
            )
        if self.length_penalty is not None and not 0 <= self.length_penalty <= 1:
            raise ValueError(f"length_penalty must be in [0, 1] or None, got {self.length_penalty}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {self.max_new_tokens}")
        if self.no_repeat_ngram_size is not None and self.no_repeat_ngram_size < 1:
            raise ValueError(
                f"no_repeat_ngram_size must be at least 1 (or None), got {self.no_repeat_ngram_size}"
            )
        if self.ctc_weight is not None and not 0 <= self.ctc_weight < 1:
            raise ValueError(f"ctc_weight must be in [0, 1) (0: no CTC), got {self.ctc_weight}")
        if self.speculative and self.beam_size is not None:
            raise ValueError(
                "speculative decoding reproduces greedy decoding: it takes no beam_size "
                f"(got {self.beam_size})"
            )

    @classmethod
    def for_n_best(cls, n_best: int = 1, beam_size: int | None = None, **fields: Any) -> DecodingOptions:
        """Options returning the `n_best` best hypotheses: a beam of `beam_size`, or of `n_best`
        when no width is given and more than one hypothesis is asked for (one is greedy)."""
        if beam_size is None and n_best > 1:
            beam_size = n_best
        return cls(beam_size=beam_size, n_best=n_best, **fields)

    def for_model(self, has_ctc_head: bool, samples: int = 1) -> DecodingOptions:
        """These options with the defaults decided for a batch of `samples`: a `ctc_weight` of None
        becomes `JOINT_CTC_WEIGHT` where the model's CTC head hears the samples (ASR with a head),
        else 0; a `speculative` of None becomes True there for one greedy sample, else False."""
        ctc_weight, speculative = self.ctc_weight, self.speculative
        if ctc_weight is None:
            ctc_weight = JOINT_CTC_WEIGHT if has_ctc_head else 0.0
        if speculative is None:
            speculative = has_ctc_head and self.beam_size is None and samples == 1
        return replace(self, ctc_weight=ctc_weight, speculative=speculative)

    @property
    def logits_processors(self) -> LogitsProcessorList:
        """What changes the scores before each choice: transformers' processors for these options."""
        if self.no_repeat_ngram_size is None:
            return LogitsProcessorList()
        return LogitsProcessorList([NoRepeatNGramLogitsProcessor(self.no_repeat_ngram_size)])

    @property
    def beams(self) -> int:
        return self.beam_size or 1


@dataclass
class Hypothesis:
    """A decoded token sequence (without eos), its total log-probability under the LLM and its
    ranking score (length-normalised; of the joint CTC/LLM score under `ctc_weight`)."""

    tokens: list[int]
    log_probability: float
    score: float
    finished: bool = True  # False: cut by the length guard before eos
    text: str = ""


def rank_score(log_probability: float, length: int, length_penalty: float | None) -> float:
    """Length-normalised score: per-token log-probability, or GNMT's penalty with α."""
    length = max(length, 1)
    penalty = length if length_penalty is None else ((5 + length) / 6) ** length_penalty
    return log_probability / penalty


@dataclass
class _Row:
    tokens: list[int] = field(default_factory=list)
    log_probability: float = 0.0  # the LLM's
    score: float = 0.0  # what rows are ranked by: the LLM's log-probability, or the joint score


@dataclass(frozen=True)
class CtcOutput:
    """The ASR adapter's CTC head and its log-probabilities `(B, T, 1 + K)` over each clip's speech
    embeddings, with their real lengths `(B,)`."""

    head: CtcHead
    log_probs: torch.Tensor
    lengths: torch.Tensor

    def scorer(self, beams: int, vocab_size: int, eos: int) -> CtcPrefixScorer:
        """A prefix scorer for `beams` rows per clip."""
        rows = torch.arange(len(self.lengths), device=self.log_probs.device).repeat_interleave(beams)
        return CtcPrefixScorer(self.log_probs, self.lengths, self.head.token_ids, vocab_size, eos, rows)

    def clip(self, index: int) -> CtcOutput:
        """The head's view of clip `index` alone."""
        return CtcOutput(self.head, self.log_probs[index : index + 1], self.lengths[index : index + 1])

    def drafts(self) -> list[list[int]]:
        """Each clip's greedy CTC transcript (token ids)."""
        return self.head.decode(self.log_probs, self.lengths)


class TokenDecoder:
    """Chooses the next token of every row and keeps the finished hypotheses of every sample."""

    def __init__(self, samples: int, options: DecodingOptions, eos: int, budgets: list[int]):
        self.samples, self.options, self.eos, self.budgets = samples, options, eos, budgets
        self.beams = options.beams
        self.rows = [_Row() for _ in range(samples * self.beams)]
        self.finished: list[list[Hypothesis]] = [[] for _ in range(samples)]

    def _finish(self, sample: int, row: _Row, finished: bool) -> None:
        score = rank_score(row.score, len(row.tokens) + finished, self.options.length_penalty)
        self.finished[sample].append(Hypothesis(list(row.tokens), row.log_probability, score, finished))

    def done(self, sample: int) -> bool:
        return len(self.finished[sample]) >= self.beams

    def step(self, log_probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`(R, V)` log-probabilities → next tokens `(R,)` and the row each new row continues `(R,)`."""
        raise NotImplementedError

    def result(self) -> list[list[Hypothesis]]:
        """The `n_best` hypotheses of each sample, best first (unfinished ones if none finished)."""
        for sample in range(self.samples):
            if not self.finished[sample]:
                for beam in range(self.beams):
                    self._finish(sample, self.rows[sample * self.beams + beam], finished=False)
        return [
            sorted(hypotheses, key=lambda h: h.score, reverse=True)[: self.options.n_best]
            for hypotheses in self.finished
        ]


class GreedyDecoder(TokenDecoder):
    def step(self, log_probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = log_probs.argmax(dim=-1)
        for sample, (row, token) in enumerate(zip(self.rows, tokens.tolist(), strict=True)):
            if self.done(sample):
                continue
            row.log_probability += float(log_probs[sample, token])
            row.score = row.log_probability
            if token == self.eos:
                self._finish(sample, row, finished=True)
                continue
            row.tokens.append(token)
            if len(row.tokens) >= self.budgets[sample]:
                self._finish(sample, row, finished=False)
        return tokens, torch.arange(len(self.rows), device=log_probs.device)


class BeamSearchDecoder(TokenDecoder):
    """Keeps the `beam_size` best rows of each sample. With a CTC prefix `scorer`, each row's
    candidates are the LLM's `PRE_BEAM_RATIO · beams` best tokens among those the head can score
    (any other would score -inf) and eos (so that a row the head cannot extend can still end),
    ranked by the joint score of `ctc_weight`."""

    def __init__(
        self,
        samples: int,
        options: DecodingOptions,
        eos: int,
        budgets: list[int],
        scorer: CtcPrefixScorer | None = None,
    ):
        super().__init__(samples, options, eos, budgets)
        self.scorer = scorer
        self.candidates = math.ceil(PRE_BEAM_RATIO * self.beams)

    def _extensions(self, log_probs: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
        """Each row's candidate tokens `(R, W)` (None: the whole vocabulary, W = V), the LLM
        log-probabilities of the extended rows `(R, W)` and their ranking scores `(R, W)`."""
        previous = torch.tensor([row.log_probability for row in self.rows], device=log_probs.device)[:, None]
        if self.scorer is None:
            totals = previous + log_probs
            return None, totals, totals
        known = log_probs.masked_fill(~self.scorer.scoreable, NEGATIVE_INFINITY)
        known[:, self.eos] = NEGATIVE_INFINITY  # eos is a candidate anyway (below)
        step, tokens = known.topk(min(self.candidates, known.shape[-1] - 1), dim=-1)  # (R, W - 1)
        tokens = torch.nn.functional.pad(tokens, (0, 1), value=self.eos)  # (R, W)
        llm = previous + torch.cat([step, log_probs[:, self.eos, None]], dim=-1)
        weight = self.options.ctc_weight
        return tokens, llm, (1 - weight) * llm + weight * self.scorer.score(tokens)

    def step(self, log_probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        tokens, llm, totals = self._extensions(log_probs)
        width = totals.shape[-1]
        next_tokens, sources, columns = [], [], []
        next_rows: list[_Row] = []
        for sample in range(self.samples):
            first = sample * self.beams
            rows = range(first, first + self.beams)
            if self.done(sample):  # keep the rows in place; their output is ignored
                next_rows += [self.rows[r] for r in rows]
                next_tokens += [self.eos] * self.beams
                sources += list(rows)
                columns += [0] * self.beams
                continue
            candidates = totals[first : first + self.beams].clone()  # (K, W)
            if all(not self.rows[r].tokens for r in rows):
                candidates[1:] = NEGATIVE_INFINITY  # at the start all beams are the same prompt: expand one
            flat = candidates.flatten()
            order = flat.argsort(descending=True)
            kept: list[tuple[int, int, int, float, float]] = []  # source, column, token, LLM, score
            for index in order.tolist():
                if flat[index] == NEGATIVE_INFINITY or len(kept) == self.beams:
                    break
                beam, column = divmod(index, width)
                source, total = first + beam, float(flat[index])
                token = column if tokens is None else int(tokens[source, column])
                log_probability = float(llm[source, column])
                if token == self.eos:
                    ended = _Row(self.rows[source].tokens, log_probability, total)
                    self._finish(sample, ended, finished=True)
                    if self.done(sample):
                        break
                else:
                    kept.append((source, column, token, log_probability, total))
            while len(kept) < self.beams:  # the sample is done: pad with anything, ignored later
                kept.append((first, 0, self.eos, NEGATIVE_INFINITY, NEGATIVE_INFINITY))
            for source, column, token, log_probability, total in kept:
                row = _Row([*self.rows[source].tokens, token], log_probability, total)
                next_rows.append(row)
                next_tokens.append(token)
                sources.append(source)
                columns.append(column)
                if (
                    not self.done(sample)
                    and total != NEGATIVE_INFINITY
                    and len(row.tokens) >= self.budgets[sample]
                ):
                    self._finish(sample, row, finished=False)
        self.rows = next_rows
        device = log_probs.device
        if self.scorer is not None:
            self.scorer.advance(torch.tensor(sources, device=device), torch.tensor(columns, device=device))
        return torch.tensor(next_tokens, device=device), torch.tensor(sources, device=device)


@torch.inference_mode()
def decode(
    model: UnispeechLMModel,
    inputs_embeds: torch.Tensor,
    attention_mask: torch.Tensor,
    eos_token_id: int,
    options: DecodingOptions = DecodingOptions(),
    budgets: list[int] | None = None,
    ctc: CtcOutput | None = None,
) -> list[list[Hypothesis]]:
    """Decode text after left-padded prompts `(B, L, D)`; `budgets` caps each sample's tokens;
    `ctc`, the CTC head's view of each sample's speech, is needed for `ctc_weight` and
    `speculative` (a `ctc_weight` of None is 0 here, and a `speculative` of None is off:
    `decode_samples` decides both by the model's head).

    Returns, per sample, its `n_best` hypotheses, best first."""
    options = options.for_model(has_ctc_head=False)
    samples, prompt_length = inputs_embeds.shape[:2]
    budgets = [min(b, options.max_new_tokens) for b in (budgets or [options.max_new_tokens] * samples)]
    context = model.backbone.config.max_position_embeddings
    if prompt_length + max(budgets) > context:
        raise ValueError(
            f"a prompt of {prompt_length} positions plus up to {max(budgets)} new tokens exceeds the "
            f"backbone's context of {context} positions: shorten the input"
        )
    if (options.ctc_weight > 0 or options.speculative) and ctc is None:
        raise ValueError("ctc_weight and speculative decoding need the CTC head's output: pass ctc")
    if options.speculative:
        real = attention_mask.bool()
        results = []
        for i, (budget, draft) in enumerate(zip(budgets, ctc.drafts(), strict=True)):
            decoder = _decoder(model, options, eos_token_id, [budget], ctc.clip(i))
            results.append([_speculative(model, inputs_embeds[i, real[i]][None], decoder, draft)])
        return results
    decoder = _decoder(model, options, eos_token_id, budgets, ctc)
    cache = DynamicCache(config=model.backbone.config)
    hidden = model.run_backbone(inputs_embeds, attention_mask, past_key_values=cache)  # (B, L, D)
    log_probs = _next_log_probs(model, hidden)
    if decoder.beams > 1:
        cache.batch_repeat_interleave(decoder.beams)
        attention_mask = attention_mask.repeat_interleave(decoder.beams, dim=0)
        log_probs = log_probs.repeat_interleave(decoder.beams, dim=0)
    embed_tokens = model.backbone.get_input_embeddings()
    processors = options.logits_processors
    written = torch.empty((len(log_probs), 0), dtype=torch.long)  # (R, steps): each row's tokens so far
    for _ in range(max(budgets) + 1):
        tokens, sources = decoder.step(processors(written, log_probs))
        if all(decoder.done(sample) for sample in range(samples)):
            break
        written = torch.cat([written[sources.cpu()], tokens.cpu()[:, None]], dim=1)
        if decoder.beams > 1:
            cache.reorder_cache(sources)
            attention_mask = attention_mask[sources]
        attention_mask = torch.nn.functional.pad(attention_mask, (0, 1), value=1)
        hidden = model.run_backbone(embed_tokens(tokens)[:, None], attention_mask, past_key_values=cache)
        log_probs = _next_log_probs(model, hidden)
    return decoder.result()


def _decoder(
    model: UnispeechLMModel, options: DecodingOptions, eos: int, budgets: list[int], ctc: CtcOutput | None
) -> TokenDecoder:
    """The strategy `options` ask for, for samples with these `budgets` (and this view of their
    speech, for CTC). Greedy decoding with CTC runs as a beam of one through the prefix scorer."""
    if options.beam_size is None and options.ctc_weight == 0:
        return GreedyDecoder(len(budgets), options, eos, budgets)
    vocab_size = model.backbone.get_output_embeddings().out_features
    scorer = ctc.scorer(options.beams, vocab_size, eos) if options.ctc_weight > 0 else None
    return BeamSearchDecoder(len(budgets), options, eos, budgets, scorer)


def _speculative(
    model: UnispeechLMModel, prompt: torch.Tensor, decoder: TokenDecoder, draft: list[int]
) -> Hypothesis:
    """What greedy `decoder` (one sample) writes after one unpadded prompt `(1, L, D)`, checking
    `draft` (the CTC transcript) up to `MAX_DRAFT_TOKENS` at a time (`DRAFT_GROWTH` times what the
    last pass kept, at least 1 / `DRAFT_GROWTH` of what it drafted: a draft the LLM keeps rejecting
    shrinks to one token a pass and costs little): the decoder chooses at every position as it would
    step by step, so the tokens are the same, in fewer backbone passes."""
    cache = DynamicCache(config=model.backbone.config)
    embed_tokens = model.backbone.get_input_embeddings()
    processors = decoder.options.logits_processors
    draft = [token for token in draft if token != decoder.eos]
    length = prompt.shape[1]
    written: list[int] = []
    drafted = MAX_DRAFT_TOKENS  # how many tokens the next pass drafts

    def choose(log_probs: torch.Tensor) -> int | None:
        """The decoder's next token after `log_probs` `(1, V)`, written; None once it has finished."""
        tokens, _ = decoder.step(processors(torch.tensor([written], dtype=torch.long), log_probs))
        if decoder.done(0):
            return None
        written.append(int(tokens[0]))
        return written[-1]

    hidden = model.run_backbone(prompt, _ones(length, prompt.device), past_key_values=cache)  # (1, L, D)
    token = choose(_next_log_probs(model, hidden))
    while token is not None:  # each round feeds the chosen token and as much of the draft as is chosen
        proposed = _continuation(draft, written)[: min(decoder.budgets[0] - len(written), drafted)]
        inputs = torch.tensor([[token, *proposed]], device=prompt.device)  # (1, Q)
        mask = _ones(length + len(written) + len(proposed), prompt.device)  # the cache's and the new
        hidden = model.run_backbone(embed_tokens(inputs), mask, past_key_values=cache)  # (1, Q, D)
        all_log_probs = _log_probs(model, hidden[0])  # (Q, V): after the token, then after each drafted one
        accepted = 0
        token = choose(all_log_probs[:1])
        while accepted < len(proposed) and token == proposed[accepted]:
            accepted += 1
            token = choose(all_log_probs[accepted : accepted + 1])
        cache.crop(accepted - len(proposed))  # drop the rejected draft's positions (a count ≤ 0)
        drafted = min(MAX_DRAFT_TOKENS, max(1, DRAFT_GROWTH * accepted, drafted // DRAFT_GROWTH))
    return decoder.result()[0][0]


def _ones(positions: int, device: torch.device) -> torch.Tensor:
    """The attention mask `(1, positions)` of one unpadded row."""
    return torch.ones((1, positions), dtype=torch.long, device=device)


def _continuation(draft: list[int], written: list[int]) -> list[int]:
    """What the CTC transcript has after the place `written` reached in it: after the occurrence of
    `written`'s last token nearest to where it stands in `written` (an inserted or dropped word
    shifts the two), or, where the transcript lacks that token, after as many tokens as written."""
    last, position = written[-1], len(written) - 1
    matches = [i for i, token in enumerate(draft) if token == last]
    start = min(matches, key=lambda i: abs(i - position)) + 1 if matches else len(written)
    return draft[start:]


def _embed(
    model: UnispeechLMModel, processor: UnispeechLMProcessor, samples: list[AsrSample | GerSample]
) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None]:
    """`embed_prompts`, with the speech embeddings `(A, T, D)` and lengths `(A,)` (None without)."""
    inputs = processor(samples, padding_side="left").to(model.device)
    speech = None
    if "input_features" in inputs:
        speech = model.encode_speech(inputs["input_features"], inputs["feature_lengths"])
    elif "encoder_states" in inputs:
        speech = model.project_speech(inputs["encoder_states"], inputs["encoder_lengths"])
    embeddings = model.embed_inputs(inputs["input_ids"], inputs["marker_ids"], inputs["speech_mask"], speech)
    return embeddings, inputs["attention_mask"], speech


def embed_prompts(
    model: UnispeechLMModel, processor: UnispeechLMProcessor, samples: list[AsrSample | GerSample]
) -> tuple[torch.Tensor, torch.Tensor]:
    """The prompts of `samples` (no target text), left-padded, on the model's device: embeddings
    `(B, L, D)` with speech encoded where a sample has audio, and the attention mask `(B, L)`."""
    embeddings, attention_mask, _ = _embed(model, processor, samples)
    return embeddings, attention_mask


def require_ctc_head(model: UnispeechLMModel, options: DecodingOptions) -> None:
    """Refuse, before any work, CTC decoding `options` for a model whose ASR adapter has no head (a
    `ctc_weight` of None asks for none: it follows the head)."""
    if ((options.ctc_weight or 0) > 0 or options.speculative) and model.ctc is None:
        raise ValueError(NO_CTC_HEAD)


def ctc_output(
    model: UnispeechLMModel,
    samples: list[AsrSample | GerSample],
    speech: tuple[torch.Tensor, torch.Tensor] | None,
) -> CtcOutput:
    """The CTC head's log-probabilities over the speech of ASR `samples` (`_embed`'s `speech`, which
    every ASR sample has); refused for other samples and for a model without a head."""
    others = sorted({type(sample).__name__ for sample in samples if not isinstance(sample, AsrSample)})
    if others:
        raise ValueError(
            "ctc_weight and speculative decoding are for ASR samples (speech to transcribe), "
            f"not {', '.join(others)}"
        )
    if model.ctc is None:
        raise ValueError(NO_CTC_HEAD)
    speech_embeddings, lengths = speech
    return CtcOutput(model.ctc, model.ctc(speech_embeddings, model.backbone.get_input_embeddings()), lengths)


@torch.inference_mode()
def decode_samples(
    model: UnispeechLMModel,
    processor: UnispeechLMProcessor,
    samples: list[AsrSample | GerSample],
    options: DecodingOptions = DecodingOptions(),
    budgets: list[int] | None = None,
) -> list[list[Hypothesis]]:
    """Per sample, its `n_best` hypotheses (best first) with their `text` filled in."""
    speech_only = all(isinstance(sample, AsrSample) for sample in samples)
    options = options.for_model(has_ctc_head=model.ctc is not None and speech_only, samples=len(samples))
    embeddings, attention_mask, speech = _embed(model, processor, samples)
    ctc = ctc_output(model, samples, speech) if options.ctc_weight > 0 or options.speculative else None
    results = decode(model, embeddings, attention_mask, processor.token_ids.eos, options, budgets, ctc)
    for hypotheses in results:
        for hypothesis in hypotheses:
            hypothesis.text = processor.tokenizer.decode(hypothesis.tokens, skip_special_tokens=True).strip()
    return results


def _next_log_probs(model: UnispeechLMModel, hidden: torch.Tensor) -> torch.Tensor:
    """Log-probabilities `(R, V)` of the token after the last position; the LM head runs there only."""
    return _log_probs(model, hidden[:, -1])


def _log_probs(model: UnispeechLMModel, hidden: torch.Tensor) -> torch.Tensor:
    """Next-token log-probabilities `(…, V)` after hidden states `(…, D)`."""
    logits = model.backbone.get_output_embeddings()(hidden)
    return torch.log_softmax(logits.float(), dim=-1)
