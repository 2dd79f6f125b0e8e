"""The decode loop: cached decoding equals recomputation, beam 1 equals greedy, batches equal
samples alone, and the length guard holds."""

import pytest
import torch

from tests.conftest import noise_clip
from unispeech.decoding import DecodingOptions, decode, decode_samples, embed_prompts, rank_score
from unispeech.processor import AsrSample


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
