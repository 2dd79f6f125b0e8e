"""The decode loop: cached decoding equals recomputation, beam 1 equals greedy, batches equal
samples alone, and the length guard holds; joint CTC/LLM scores are what they say and a CTC head
steers the beam; speculative decoding writes greedy's tokens in fewer passes."""

from dataclasses import replace

import pytest
import torch

from tests.conftest import noise_clip
from unispeech.model.ctc import BLANK, CtcHead
from unispeech.model.processor import AsrSample, GerSample
from unispeech.tasks import decoding
from unispeech.tasks.ctc_prefix import CtcPrefixScorer
from unispeech.tasks.decoding import (
    JOINT_CTC_WEIGHT,
    MAX_DRAFT_TOKENS,
    NO_CTC_HEAD,
    CtcOutput,
    DecodingOptions,
    decode,
    decode_samples,
    embed_prompts,
    rank_score,
)


def _prompts(model, processor, seconds=(0.6, 0.25, 0.4)):
    samples = [AsrSample(noise_clip(s, 16000, seed=i), None, 16000) for i, s in enumerate(seconds)]
    return embed_prompts(model, processor, samples)


@pytest.fixture
def trained_like(tiny_sdpa):
    """The tiny model with a sharper LM head, so decodes are long and branch (random heads are flat)."""
    model, processor = tiny_sdpa
    head = model.backbone.get_output_embeddings().weight
    original = head.detach().clone()
    with torch.no_grad():
        head.mul_(30.0)
    yield model, processor
    with torch.no_grad():
        head.copy_(original)


@torch.inference_mode()
def test_cached_decoding_equals_full_recomputation(trained_like):
    model, processor = trained_like
    embeddings, mask = _prompts(model, processor)
    results = decode(model, embeddings, mask, eos_token_id=2, options=DecodingOptions(max_new_tokens=12))
    embed = model.backbone.get_input_embeddings()
    for row, (best,) in enumerate(results):
        assert len(best.tokens) > 3, "the test needs real continuations"
        tokens = torch.tensor(best.tokens)
        full = torch.cat([embeddings[row : row + 1], embed(tokens)[None]], dim=1)
        full_mask = torch.nn.functional.pad(mask[row : row + 1], (0, len(tokens)), value=1)
        hidden = model.run_backbone(full, full_mask)
        logits = model.backbone.get_output_embeddings()(hidden[0, mask.shape[1] - 1 : -1])
        log_probs = torch.log_softmax(logits, dim=-1)
        assert log_probs.argmax(dim=-1).tolist() == best.tokens, (
            "greedy picks the argmax of recomputed logits"
        )
        total = log_probs.gather(1, tokens[:, None]).sum().item()
        if best.finished:
            eos = model.backbone.get_output_embeddings()(hidden[0, -1]).log_softmax(-1)[2].item()
            total += eos
        assert best.log_probability == pytest.approx(total, abs=1e-3)


@torch.inference_mode()
def test_beam_of_one_equals_greedy(trained_like):
    model, processor = trained_like
    embeddings, mask = _prompts(model, processor)
    greedy = decode(model, embeddings, mask, 2, DecodingOptions(max_new_tokens=10))
    beam = decode(model, embeddings, mask, 2, DecodingOptions(beam_size=1, max_new_tokens=10))
    for (g,), (b,) in zip(greedy, beam, strict=True):
        assert g.tokens == b.tokens and g.log_probability == pytest.approx(b.log_probability, abs=1e-4)


@torch.inference_mode()
@pytest.mark.parametrize("beam_size", [None, 3])
def test_a_batch_equals_each_sample_alone(trained_like, beam_size):
    model, processor = trained_like
    options = DecodingOptions(beam_size=beam_size, n_best=beam_size or 1, max_new_tokens=8)
    embeddings, mask = _prompts(model, processor)
    batched = decode(model, embeddings, mask, 2, options)
    for row in range(embeddings.shape[0]):
        real = mask[row].bool()
        (alone,) = decode(model, embeddings[row : row + 1, real], mask[row : row + 1, real], 2, options)
        assert [h.tokens for h in alone] == [h.tokens for h in batched[row]]
        assert [h.score for h in alone] == pytest.approx([h.score for h in batched[row]], abs=1e-4)


@torch.inference_mode()
def test_beam_search_returns_distinct_ranked_hypotheses(trained_like):
    model, processor = trained_like
    embeddings, mask = _prompts(model, processor, seconds=(0.5,))
    (nbest,) = decode(model, embeddings, mask, 2, DecodingOptions(beam_size=4, n_best=4, max_new_tokens=6))
    assert len(nbest) == 4
    assert len({tuple(h.tokens) for h in nbest}) == 4
    scores = [h.score for h in nbest]
    assert scores == sorted(scores, reverse=True)
    (greedy,) = decode(model, embeddings, mask, 2, DecodingOptions(max_new_tokens=6))
    assert nbest[0].score >= greedy[0].score - 1e-6, "the beam finds at least the greedy path's score"


@torch.inference_mode()
def test_the_length_guard_stops_every_sample(trained_like):
    model, processor = trained_like
    embeddings, mask = _prompts(model, processor)
    results = decode(model, embeddings, mask, eos_token_id=-1, budgets=[3, 5, 1])  # eos never comes
    assert [len(best.tokens) for (best,) in results] == [3, 5, 1]
    assert not any(best.finished for (best,) in results)


def _repeated_ngrams(tokens: list[int], n: int) -> int:
    ngrams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    return len(ngrams) - len(set(ngrams))


@pytest.mark.parametrize("beam_size", [None, 3])
@torch.inference_mode()
def test_no_repeat_ngram_size_stops_the_loops_a_plain_decode_writes(trained_like, beam_size):
    model, processor = trained_like
    embeddings, mask = _prompts(model, processor)
    plain = DecodingOptions(beam_size=beam_size, max_new_tokens=40)
    looping = decode(model, embeddings, mask, eos_token_id=-1, options=plain)  # eos never comes
    assert sum(_repeated_ngrams(best.tokens, 2) for (best, *_) in looping) > 0, "the test needs loops"
    guarded = DecodingOptions(beam_size=beam_size, max_new_tokens=40, no_repeat_ngram_size=2)
    for best, *_ in decode(model, embeddings, mask, eos_token_id=-1, options=guarded):
        assert len(best.tokens) == 40 and _repeated_ngrams(best.tokens, 2) == 0


def test_options_are_validated():
    with pytest.raises(ValueError, match="n_best=3 needs a beam of at least as many"):
        DecodingOptions(n_best=3)
    with pytest.raises(ValueError, match="beam_size must be at least 1"):
        DecodingOptions(beam_size=0)
    with pytest.raises(ValueError, match="max_new_tokens must be at least 1"):
        DecodingOptions(max_new_tokens=0)
    with pytest.raises(ValueError, match="no_repeat_ngram_size must be at least 1"):
        DecodingOptions(no_repeat_ngram_size=0)
    for weight in (-0.1, 1.0):
        with pytest.raises(ValueError, match=rf"ctc_weight must be in \[0, 1\) \(0: no CTC\), got {weight}"):
            DecodingOptions(ctc_weight=weight)
    with pytest.raises(ValueError, match=r"speculative .* takes no beam_size \(got 2\)"):
        DecodingOptions(speculative=True, beam_size=2)


def test_n_best_hypotheses_mean_a_beam_of_n_unless_a_width_is_given():
    assert DecodingOptions.for_n_best() == DecodingOptions()  # one: greedy
    assert DecodingOptions.for_n_best(3) == DecodingOptions(beam_size=3, n_best=3)
    assert DecodingOptions.for_n_best(2, beam_size=5) == DecodingOptions(beam_size=5, n_best=2)
    assert DecodingOptions.for_n_best(1, beam_size=4, ctc_weight=0.5) == DecodingOptions(
        beam_size=4, ctc_weight=0.5
    )
    with pytest.raises(ValueError, match="n_best=3 needs a beam of at least as many"):
        DecodingOptions.for_n_best(3, beam_size=2)


def test_rank_score():
    assert rank_score(-6.0, 3, None) == -2.0
    assert rank_score(-6.0, 3, 1.0) == pytest.approx(-6.0 / (8 / 6))


def test_decode_samples_fills_in_each_hypothesis_text(tiny_sdpa):
    model, processor = tiny_sdpa
    samples = [AsrSample(noise_clip(0.4, 16000), None, 16000)]
    options = DecodingOptions(beam_size=3, n_best=2, max_new_tokens=5)
    [hypotheses] = decode_samples(model, processor, samples, options)
    assert len(hypotheses) == 2
    for hypothesis in hypotheses:
        assert (
            hypothesis.text == processor.tokenizer.decode(hypothesis.tokens, skip_special_tokens=True).strip()
        )


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("beam_size", [None, 3])
def test_a_model_on_the_gpu_decodes_there(trained_like, beam_size):
    """Greedy and beam search on CUDA give the CPU's tokens (the batch and new tokens follow the model)."""
    model, processor = trained_like
    samples = [
        AsrSample(noise_clip(0.4, 16000), None, 16000),
        AsrSample(noise_clip(0.3, 16000, seed=1), None, 16000),
    ]
    options = DecodingOptions(beam_size=beam_size, max_new_tokens=6)
    on_cpu = [h[0].tokens for h in decode_samples(model, processor, samples, options)]
    try:
        on_gpu = [h[0].tokens for h in decode_samples(model.to("cuda"), processor, samples, options)]
    finally:
        model.to("cpu")
    assert on_gpu == on_cpu


# ---------------------------------------------------------------------------------- the CTC head

HEAD_TOKENS = [40, 41, 42, 43, 44, 45]  # the tiny byte tokenizer's "()*+,-"
EOS = 2


def _head(model, token_ids=HEAD_TOKENS, seed: int = 0) -> CtcHead:
    """A random CTC head (a trained one's parameters moved far from the initial ones)."""
    head = CtcHead(token_ids, model.config.text_config.hidden_size)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in head.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator))
    return head


def _ctc_favouring(head: CtcHead, transcripts: list[list[int]]) -> CtcOutput:
    """CTC output sure of each clip's `transcripts` (tokens of the head): token, blank, token, …"""
    frames = 2 * max(map(len, transcripts)) + 1
    scores = torch.zeros(len(transcripts), frames, 1 + len(head.token_ids))  # (B, T, C)
    index = {token: k + 1 for k, token in enumerate(head.token_ids.tolist())}
    for clip, transcript in enumerate(transcripts):
        scores[clip, :, BLANK] = 8.0
        for position, token in enumerate(transcript):
            scores[clip, 2 * position, BLANK] = 0.0
            scores[clip, 2 * position, index[token]] = 8.0
    lengths = torch.tensor([2 * len(transcript) + 1 for transcript in transcripts])
    return CtcOutput(head, scores.log_softmax(-1), lengths)


def _llm_log_probability(model, embeddings, mask, row: int, tokens: list[int], finished: bool) -> float:
    """The LLM's log-probability of `tokens` (and eos when finished) after a prompt, recomputed."""
    real = mask[row].bool()
    continuation = torch.tensor([*tokens, EOS] if finished else tokens)
    inputs = torch.cat(
        [embeddings[row : row + 1, real], model.backbone.get_input_embeddings()(continuation)[None]], 1
    )
    hidden = model.run_backbone(inputs, torch.ones(inputs.shape[:2], dtype=torch.long))
    logits = model.backbone.get_output_embeddings()(hidden[0, int(real.sum()) - 1 : -1])
    return logits.float().log_softmax(-1).gather(1, continuation[:, None]).sum().item()


def _ctc_log_probability(ctc: CtcOutput, clip: int, tokens: list[int]) -> float:
    """log P_CTC(tokens) of one clip: the prefix scorer's eos score after the tokens."""
    vocab = int(ctc.head.token_ids.max()) + 1  # enough for the tokens scored here
    scorer = CtcPrefixScorer(ctc.log_probs, ctc.lengths, ctc.head.token_ids, vocab, EOS, torch.tensor([clip]))
    for token in tokens:
        scorer.score(torch.tensor([[token]]))
        scorer.advance(torch.tensor([0]), torch.tensor([0]))
    return float(scorer.score(torch.tensor([[EOS]]))[0, 0])


@torch.inference_mode()
@pytest.mark.parametrize("beam_size", [None, 3])
def test_a_zero_ctc_weight_decodes_exactly_as_without_a_head(trained_like, beam_size):
    model, processor = trained_like
    samples = [AsrSample(noise_clip(s, 16000, seed=i), None, 16000) for i, s in enumerate((0.5, 0.3))]
    options = DecodingOptions(beam_size=beam_size, n_best=beam_size or 1, max_new_tokens=10)
    without = decode_samples(model, processor, samples, options)
    model.ctc = _head(model)
    try:
        with_head = decode_samples(model, processor, samples, replace(options, ctc_weight=0.0))
        embeddings, mask = embed_prompts(model, processor, samples)
        ctc = _ctc_favouring(model.ctc, [[40, 41], [42]])
        given_ctc = decode(model, embeddings, mask, EOS, options, ctc=ctc)
    finally:
        model.ctc = None
    for expected, actual, given in zip(without, with_head, given_ctc, strict=True):
        assert [(h.tokens, h.log_probability, h.score) for h in actual] == [
            (h.tokens, h.log_probability, h.score) for h in expected
        ]
        assert [h.tokens for h in given] == [h.tokens for h in expected]


@torch.inference_mode()
@pytest.mark.parametrize("beam_size", [None, 3])
def test_joint_scores_mix_the_llm_and_ctc_log_probabilities(trained_like, beam_size):
    model, processor = trained_like
    embeddings, mask = _prompts(model, processor, seconds=(0.5, 0.3))
    ctc = _ctc_favouring(_head(model), [[40, 43, 41], [44, 44, 42, 45]])
    weight = 0.4
    options = DecodingOptions(beam_size=beam_size, n_best=beam_size or 1, max_new_tokens=8, ctc_weight=weight)
    for row, hypotheses in enumerate(decode(model, embeddings, mask, EOS, options, ctc=ctc)):
        for hypothesis in hypotheses:
            assert set(hypothesis.tokens) <= set(HEAD_TOKENS), "tokens the head lacks score -inf"
            llm = _llm_log_probability(model, embeddings, mask, row, hypothesis.tokens, hypothesis.finished)
            assert hypothesis.log_probability == pytest.approx(llm, abs=1e-3)
            if hypothesis.finished:
                joint = (1 - weight) * llm + weight * _ctc_log_probability(ctc, row, hypothesis.tokens)
                length = len(hypothesis.tokens) + 1
                assert hypothesis.score == pytest.approx(rank_score(joint, length, None), abs=1e-3)


@torch.inference_mode()
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(
    ("beam_size", "head_tokens", "transcripts"),
    [
        (3, [40, 41, 42, 43], [[43, 40, 40, 41], [42, 41, 42]]),  # repeats need CTC's blank between
        (None, [40, 41], [[41, 40, 40, 41], [40]]),  # greedy: a beam of one through the scorer
    ],
    ids=["beam", "greedy"],
)
def test_a_ctc_head_sure_of_a_transcript_steers_a_random_llm_to_it(seed, beam_size, head_tokens, transcripts):
    """The head's tokens are few enough that all are candidates (`PRE_BEAM_RATIO` per beam)."""
    from unispeech.testing import tiny_model

    torch.manual_seed(seed)
    model, processor = tiny_model()
    embeddings, mask = _prompts(model, processor, seconds=(0.5, 0.3))
    ctc = _ctc_favouring(_head(model, head_tokens, seed=seed), transcripts)
    plain = decode(model, embeddings, mask, EOS, DecodingOptions(beam_size=beam_size, max_new_tokens=8))
    assert all(best.tokens != transcript for (best,), transcript in zip(plain, transcripts, strict=True))
    options = DecodingOptions(beam_size=beam_size, max_new_tokens=8, ctc_weight=0.7)
    steered = decode(model, embeddings, mask, EOS, options, ctc=ctc)
    assert [best.tokens for (best,) in steered] == transcripts
    assert all(best.finished for (best,) in steered)


@torch.inference_mode()
def test_joint_decoding_of_samples_uses_the_models_head_and_refuses_without_one(trained_like):
    model, processor = trained_like
    samples = [AsrSample(noise_clip(0.4, 16000), None, 16000)]
    joint = DecodingOptions(beam_size=2, max_new_tokens=6, ctc_weight=0.5)
    for options in (joint, DecodingOptions(speculative=True, max_new_tokens=6)):
        with pytest.raises(ValueError) as raised:
            decode_samples(model, processor, samples, options)
        assert str(raised.value) == NO_CTC_HEAD
    model.ctc = _head(model)
    try:
        [[best]] = decode_samples(model, processor, samples, joint)
        assert set(best.tokens) <= set(HEAD_TOKENS)
        with pytest.raises(ValueError, match=r"are for ASR samples \(speech to transcribe\), not GerSample"):
            decode_samples(model, processor, [GerSample(("a cat", "a hat"))], joint)
    finally:
        model.ctc = None


class _CountedPasses:
    """Counts the backbone passes of a decode."""

    def __init__(self, model, monkeypatch):
        self.passes = 0
        original = model.run_backbone

        def counted(*args, **kwargs):
            self.passes += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(model, "run_backbone", counted)


@torch.inference_mode()
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("no_repeat_ngram_size", [None, 2])
@pytest.mark.parametrize("ctc_weight", [0.0, 0.5], ids=["llm", "joint"])
def test_speculative_decoding_writes_greedys_tokens_with_any_head(
    trained_like, seed, no_repeat_ngram_size, ctc_weight
):
    """Random heads on the model draft mostly wrong tokens; the output is greedy's all the same,
    with the LLM alone and with the joint score (which the same head steers)."""
    model, processor = trained_like
    samples = [AsrSample(noise_clip(s, 16000, seed=seed + i), None, 16000) for i, s in enumerate((0.6, 0.3))]
    greedy = DecodingOptions(
        max_new_tokens=20, no_repeat_ngram_size=no_repeat_ngram_size, ctc_weight=ctc_weight
    )
    budgets = [20, 7]
    generator = torch.Generator().manual_seed(seed)
    vocab = model.backbone.get_input_embeddings().num_embeddings
    model.ctc = _head(model, torch.randint(3, vocab, (30,), generator=generator).tolist(), seed=seed)
    try:
        expected = [
            decode_samples(model, processor, [sample], greedy, [b])
            for sample, b in zip(samples, budgets, strict=True)
        ]
        actual = decode_samples(model, processor, samples, replace(greedy, speculative=True), budgets)
    finally:
        model.ctc = None
    for [[want]], [got] in zip(expected, actual, strict=True):
        assert got.tokens == want.tokens and got.finished == want.finished
        assert got.log_probability == pytest.approx(want.log_probability, abs=1e-3)
        assert got.score == pytest.approx(want.score, abs=1e-3)
        assert got.text == want.text


def _passes_least(tokens: int) -> int:
    """Backbone passes of a decode whose every draft is accepted: the prompt, then full drafts."""
    return -(-tokens // (MAX_DRAFT_TOKENS + 1)) + 1


@torch.inference_mode()
@pytest.mark.parametrize("damage", ["none", "substituted", "inserted", "dropped"])
def test_speculative_decoding_accepts_a_good_draft_in_few_passes(trained_like, monkeypatch, damage):
    model, processor = trained_like
    embeddings, mask = _prompts(model, processor, seconds=(0.6,))
    (want,) = decode(model, embeddings, mask, -1, DecodingOptions(max_new_tokens=40))[0]  # eos never comes
    assert len(want.tokens) == 40
    head = CtcHead(sorted(set(want.tokens) | {3}), model.config.text_config.hidden_size)
    draft = list(want.tokens)
    if damage == "substituted":
        draft[10] = 3
    elif damage == "inserted":
        draft.insert(10, 3)
    elif damage == "dropped":
        del draft[10]
    ctc = _ctc_favouring(head, [draft])
    assert ctc.drafts() == [draft]
    counter = _CountedPasses(model, monkeypatch)
    (got,) = decode(
        model, embeddings, mask, -1, DecodingOptions(max_new_tokens=40, speculative=True), ctc=ctc
    )[0]
    assert got.tokens == want.tokens and not got.finished
    assert counter.passes <= _passes_least(len(want.tokens)) + (0 if damage == "none" else 2), counter.passes


@torch.inference_mode()
def test_speculative_decoding_drafts_less_once_its_drafts_are_rejected(trained_like, monkeypatch):
    model, processor = trained_like
    embeddings, mask = _prompts(model, processor, seconds=(0.6,))
    (want,) = decode(model, embeddings, mask, -1, DecodingOptions(max_new_tokens=40))[0]  # eos never comes
    assert len(want.tokens) == 40 and 3 not in want.tokens
    ctc = _ctc_favouring(CtcHead([3], model.config.text_config.hidden_size), [[3] * 40])  # always wrong
    fed = []
    original = model.run_backbone
    monkeypatch.setattr(
        model, "run_backbone", lambda x, *a, **k: fed.append(x.shape[1]) or original(x, *a, **k)
    )
    (got,) = decode(
        model, embeddings, mask, -1, DecodingOptions(max_new_tokens=40, speculative=True), ctc=ctc
    )[0]
    assert got.tokens == want.tokens
    drafted = sum(fed[1:]) - len(fed[1:])  # positions fed beyond each pass's own token
    assert drafted <= 2 * MAX_DRAFT_TOKENS + len(want.tokens), "16 + 8 + 4 + 2 + 1, then one a pass"


@torch.inference_mode()
def test_joint_speculative_decoding_accepts_the_heads_transcript_in_few_passes(monkeypatch):
    """A head sure of a transcript steers the joint greedy decode of a random LLM to it (its two
    tokens are always candidates), and drafts it: every draft is accepted."""
    from unispeech.testing import tiny_model

    torch.manual_seed(0)
    model, processor = tiny_model()
    embeddings, mask = _prompts(model, processor, seconds=(0.5,))
    transcript = [41, 40, 40, 41, 41, 40] * 5
    ctc = _ctc_favouring(_head(model, [40, 41]), [transcript])
    joint = DecodingOptions(max_new_tokens=40, ctc_weight=0.7)
    (want,) = decode(model, embeddings, mask, EOS, joint, ctc=ctc)[0]
    assert want.tokens == transcript and want.finished
    counter = _CountedPasses(model, monkeypatch)
    (got,) = decode(model, embeddings, mask, EOS, replace(joint, speculative=True), ctc=ctc)[0]
    assert (got.tokens, got.finished) == (want.tokens, want.finished)
    assert got.score == pytest.approx(want.score, abs=1e-4)
    assert counter.passes <= _passes_least(len(transcript) + 1), counter.passes  # eos is chosen too


def test_the_defaults_follow_the_head_and_the_batch():
    default = DecodingOptions()
    assert (default.ctc_weight, default.speculative) == (None, None)
    assert default.for_model(has_ctc_head=True).ctc_weight == JOINT_CTC_WEIGHT
    assert default.for_model(has_ctc_head=False).ctc_weight == 0.0
    assert DecodingOptions(speculative=True).for_model(has_ctc_head=True).ctc_weight == JOINT_CTC_WEIGHT
    assert DecodingOptions(ctc_weight=0.0).for_model(has_ctc_head=True).ctc_weight == 0.0, "a given 0 stays"
    assert default.for_model(has_ctc_head=True, samples=1).speculative, "one clip alone: drafted"
    assert not default.for_model(has_ctc_head=True, samples=2).speculative, "a batch decodes together"
    assert not default.for_model(has_ctc_head=False).speculative
    assert not DecodingOptions(beam_size=2).for_model(has_ctc_head=True).speculative
    assert not DecodingOptions(speculative=False).for_model(has_ctc_head=True).speculative


@torch.inference_mode()
def test_the_default_decodes_jointly_where_the_model_has_a_ctc_head(trained_like, monkeypatch):
    model, processor = trained_like
    samples = [AsrSample(noise_clip(s, 16000, seed=i), None, 16000) for i, s in enumerate((0.5, 0.3))]
    default = DecodingOptions(max_new_tokens=10)

    def tokens(options):
        return [
            [h.tokens for h in hypotheses]
            for hypotheses in decode_samples(model, processor, samples, options)
        ]

    assert tokens(default) == tokens(replace(default, ctc_weight=0.0)), "no head: the LLM alone"
    model.ctc = _head(model)
    try:
        assert tokens(default) == tokens(replace(default, ctc_weight=JOINT_CTC_WEIGHT))
        drafted = []
        original = decoding._speculative
        monkeypatch.setattr(decoding, "_speculative", lambda *a: drafted.append(1) or original(*a))
        alone = decode_samples(model, processor, samples[:1], default)
        assert drafted == [1], "one sample alone decodes speculatively"
        stepwise = decode_samples(model, processor, samples[:1], replace(default, speculative=False))
        assert [h.tokens for h in alone[0]] == [h.tokens for h in stepwise[0]]
        decode_samples(model, processor, samples, default)
        assert drafted == [1], "a batch decodes together"
    finally:
        model.ctc = None
