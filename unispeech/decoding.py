"""Text decoding: our own autoregressive loop over a KV cache, greedy or beam search.

transformers' `generate()` refuses the 4D attention masks the unified model needs, so the loop is
written here, in the spirit of openai-whisper's `decoding.py`: the prompt (speech embeddings, task
markers, text) is run once into a `DynamicCache` (prefill), then one token at a time, with logits
computed only for the newest position. What varies is a small strategy object: `GreedyDecoder`
takes the best token of each row, `BeamSearchDecoder` keeps the `beam_size` best continuations of
each sample and collects finished hypotheses; both rank them with the same length-normalised
score. Each sample has its own token budget (the length guard), so a bad input cannot loop forever;
`no_repeat_ngram_size` (transformers' `NoRepeatNGramLogitsProcessor`, applied to the tokens each
row has written) stops a loop before the budget does.

`decode_samples` is the one path from processor samples to text that every task takes: the
left-padded batch on the model's device, speech encoded, the prompt embedded (`embed_prompts`),
decoded, and each hypothesis detokenised. New tokens live on the device of the log-probabilities,
so a model on a GPU decodes there.

Shapes: `B` samples, `K` beams per sample (1 for greedy), `R = B·K` rows, `L` prompt positions,
`D` backbone width, `V` vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from transformers import DynamicCache, LogitsProcessorList, NoRepeatNGramLogitsProcessor

from unispeech.modeling import UnispeechLMModel
from unispeech.processor import AsrSample, GerSample, UnispeechLMProcessor

NEGATIVE_INFINITY = float("-inf")


@dataclass(frozen=True)
class DecodingOptions:
    """How to decode. `beam_size=None` is greedy; `n_best` hypotheses are returned (≤ beams).

    `length_penalty=None` ranks by log-probability per token (openai-whisper's default); a value α
    uses GNMT's ((5 + length) / 6)^α instead. `max_new_tokens` caps every sample's length;
    `no_repeat_ngram_size=n` forbids writing any n-gram of tokens twice (None allows it)."""

    beam_size: int | None = None
    n_best: int = 1
    length_penalty: float | None = None
    max_new_tokens: int = 448
    no_repeat_ngram_size: int | None = None

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
    """A decoded token sequence (without eos), its total log-probability and its ranking score."""

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
    log_probability: float = 0.0


class TokenDecoder:
    """Chooses the next token of every row and keeps the finished hypotheses of every sample."""

    def __init__(self, samples: int, options: DecodingOptions, eos: int, budgets: list[int]):
        self.samples, self.options, self.eos, self.budgets = samples, options, eos, budgets
        self.beams = options.beams
        self.rows = [_Row() for _ in range(samples * self.beams)]
        self.finished: list[list[Hypothesis]] = [[] for _ in range(samples)]

    def _finish(self, sample: int, row: _Row, finished: bool) -> None:
        score = rank_score(row.log_probability, len(row.tokens) + finished, self.options.length_penalty)
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
            if token == self.eos:
                row.log_probability += float(log_probs[sample, token])
                self._finish(sample, row, finished=True)
                continue
            row.tokens.append(token)
            row.log_probability += float(log_probs[sample, token])
            if len(row.tokens) >= self.budgets[sample]:
                self._finish(sample, row, finished=False)
        return tokens, torch.arange(len(self.rows), device=log_probs.device)


class BeamSearchDecoder(TokenDecoder):
    def step(self, log_probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        vocab = log_probs.shape[-1]
        next_tokens, sources = [], []
        next_rows: list[_Row] = []
        for sample in range(self.samples):
            first = sample * self.beams
            rows = range(first, first + self.beams)
            if self.done(sample):  # keep the rows in place; their output is ignored
                next_rows += [self.rows[r] for r in rows]
                next_tokens += [self.eos] * self.beams
                sources += list(rows)
                continue
            totals = (
                torch.tensor([self.rows[r].log_probability for r in rows], device=log_probs.device)[:, None]
                + log_probs[first : first + self.beams]
            )
            if all(not self.rows[r].tokens for r in rows):
                totals[1:] = NEGATIVE_INFINITY  # at the start all beams are the same prompt: expand one
            flat = totals.flatten()
            order = flat.argsort(descending=True)
            kept: list[tuple[int, int, float]] = []
            for index in order.tolist():
                if flat[index] == NEGATIVE_INFINITY or len(kept) == self.beams:
                    break
                beam, token = divmod(index, vocab)
                source, total = first + beam, float(flat[index])
                if token == self.eos:
                    self._finish(sample, _Row(self.rows[source].tokens, total), finished=True)
                    if self.done(sample):
                        break
                else:
                    kept.append((source, token, total))
            while len(kept) < self.beams:  # the sample is done: pad with anything, ignored later
                kept.append((first, self.eos, NEGATIVE_INFINITY))
            for source, token, total in kept:
                row = _Row([*self.rows[source].tokens, token], total)
                next_rows.append(row)
                next_tokens.append(token)
                sources.append(source)
                if (
                    not self.done(sample)
                    and total != NEGATIVE_INFINITY
                    and len(row.tokens) >= self.budgets[sample]
                ):
                    self._finish(sample, row, finished=False)
        self.rows = next_rows
        device = log_probs.device
        return torch.tensor(next_tokens, device=device), torch.tensor(sources, device=device)


@torch.inference_mode()
def decode(
    model: UnispeechLMModel,
    inputs_embeds: torch.Tensor,
    attention_mask: torch.Tensor,
    eos_token_id: int,
    options: DecodingOptions = DecodingOptions(),
    budgets: list[int] | None = None,
) -> list[list[Hypothesis]]:
    """Decode text after left-padded prompts `(B, L, D)`; `budgets` caps each sample's tokens.

    Returns, per sample, its `n_best` hypotheses, best first."""
    samples, prompt_length = inputs_embeds.shape[:2]
    budgets = [min(b, options.max_new_tokens) for b in (budgets or [options.max_new_tokens] * samples)]
    context = model.backbone.config.max_position_embeddings
    if prompt_length + max(budgets) > context:
        raise ValueError(
            f"a prompt of {prompt_length} positions plus up to {max(budgets)} new tokens exceeds the "
            f"backbone's context of {context} positions: shorten the input"
        )
    strategy = GreedyDecoder if options.beam_size is None else BeamSearchDecoder
    decoder = strategy(samples, options, eos_token_id, budgets)
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


def embed_prompts(
    model: UnispeechLMModel, processor: UnispeechLMProcessor, samples: list[AsrSample | GerSample]
) -> tuple[torch.Tensor, torch.Tensor]:
    """The prompts of `samples` (no target text), left-padded, on the model's device: embeddings
    `(B, L, D)` with speech encoded where a sample has audio, and the attention mask `(B, L)`."""
    inputs = processor(samples, padding_side="left").to(model.device)
    speech = None
    if "input_features" in inputs:
        speech = model.encode_speech(inputs["input_features"], inputs["feature_lengths"])
    elif "encoder_states" in inputs:
        speech = model.project_speech(inputs["encoder_states"], inputs["encoder_lengths"])
    embeddings = model.embed_inputs(inputs["input_ids"], inputs["marker_ids"], inputs["speech_mask"], speech)
    return embeddings, inputs["attention_mask"]


@torch.inference_mode()
def decode_samples(
    model: UnispeechLMModel,
    processor: UnispeechLMProcessor,
    samples: list[AsrSample | GerSample],
    options: DecodingOptions = DecodingOptions(),
    budgets: list[int] | None = None,
) -> list[list[Hypothesis]]:
    """Per sample, its `n_best` hypotheses (best first) with their `text` filled in."""
    embeddings, attention_mask = embed_prompts(model, processor, samples)
    results = decode(model, embeddings, attention_mask, processor.token_ids.eos, options, budgets)
    for hypotheses in results:
        for hypothesis in hypotheses:
            hypothesis.text = processor.tokenizer.decode(hypothesis.tokens, skip_special_tokens=True).strip()
    return results


def _next_log_probs(model: UnispeechLMModel, hidden: torch.Tensor) -> torch.Tensor:
    """Log-probabilities `(R, V)` of the token after the last position; the LM head runs there only."""
    logits = model.backbone.get_output_embeddings()(hidden[:, -1])
    return torch.log_softmax(logits.float(), dim=-1)
