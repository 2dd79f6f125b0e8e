"""The dual attention mask: as a pure function, and by perturbation through a real backbone."""

import pytest
import torch

from tests.conftest import noise_clip
from unispeech.model.markers import Marker
from unispeech.model.masks import dual_attention_mask, position_ids, span_ids
from unispeech.model.processor import AsrSample
from unispeech.testing import tts_sample

BLOCKED = torch.finfo(torch.float32).min


def test_span_ids_number_each_run():
    mask = torch.tensor([[0, 1, 1, 0, 1, 0], [1, 1, 0, 0, 0, 1]], dtype=torch.bool)
    assert span_ids(mask).tolist() == [[0, 1, 1, 0, 2, 0], [1, 1, 0, 0, 0, 2]]


def test_values_shape_and_rules():
    attention = torch.tensor([[1, 1, 1, 1, 1, 0]])
    span = torch.tensor([[0, 0, 1, 1, 0, 0]], dtype=torch.bool)
    mask = dual_attention_mask(attention, span)
    assert mask.shape == (1, 1, 6, 6) and mask.dtype == torch.float32
    assert set(mask.unique().tolist()) == {0.0, BLOCKED}
    allowed = (mask[0, 0] == 0).int().tolist()
    assert allowed == [
        [1, 0, 0, 0, 0, 0],
        [1, 1, 0, 0, 0, 0],
        [1, 1, 1, 1, 0, 0],  # span position 2 sees 3, after it
        [1, 1, 1, 1, 0, 0],
        [1, 1, 1, 1, 1, 0],
        [1, 1, 1, 1, 1, 1],  # padding sees itself; nobody else sees padding
    ]


def test_hidden_keys_are_hidden_from_the_span_only():
    attention = torch.ones(1, 5, dtype=torch.long)
    span = torch.tensor([[0, 0, 0, 1, 1]], dtype=torch.bool)
    hidden = torch.tensor([[0, 1, 0, 0, 0]], dtype=torch.bool)
    allowed = dual_attention_mask(attention, span, hidden)[0, 0] == 0
    assert allowed[2, 1] and not allowed[3, 1] and not allowed[4, 1]
    assert allowed[3, 0] and allowed[3, 2] and allowed[3, 4]


def test_queries_are_the_last_rows_of_the_full_mask():
    attention = torch.tensor([[0, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 1]])
    span = torch.tensor([[0, 0, 0, 1, 1, 1, 0], [0, 0, 1, 1, 0, 0, 0]], dtype=torch.bool)
    full = dual_attention_mask(attention, span)
    for queries in (1, 3, 7):
        torch.testing.assert_close(
            dual_attention_mask(attention, span, query_length=queries), full[:, :, -queries:]
        )
    with pytest.raises(ValueError, match="query_length"):
        dual_attention_mask(attention, span, query_length=8)


def test_position_ids_ignore_left_padding():
    assert position_ids(torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 0]])).tolist() == [
        [0, 0, 0, 1, 2],
        [0, 1, 2, 3, 3],
    ]


def _perturbed(model, batch, embeddings, position, row=0):
    """Final hidden states with and without a change to the input embedding at (row, position)."""
    changed = embeddings.clone()
    changed[row, position] += 5.0 * torch.randn_like(changed[row, position])
    args = (batch["attention_mask"], batch["bidirectional_mask"])
    return model.run_backbone(embeddings, *args)[row], model.run_backbone(changed, *args)[row]


def _moved(before, after):
    """Which positions' outputs changed."""
    return (before - after).abs().amax(dim=-1) > 1e-5


@pytest.fixture
def mixed_batch(tiny):
    model, processor = tiny
    batch = processor(
        [
            tts_sample(noise_clip(0.4, 22050), "ab cd", model.config, 22050, prompt_fraction=0.3),
            AsrSample(noise_clip(0.5, 16000), "hello there", sampling_rate=16000),
        ]
    )
    embeddings = torch.randn(*batch["input_ids"].shape, model.config.text_config.hidden_size)
    return model, batch, embeddings


@torch.no_grad()
def test_text_positions_are_causal(mixed_batch):
    model, batch, embeddings = mixed_batch
    real = int(batch["attention_mask"][1].sum())
    text_positions = torch.nonzero(batch["labels"][1] != -100).flatten()
    position = int(text_positions[len(text_positions) // 2])
    before, after = _perturbed(model, batch, embeddings, position, row=1)
    moved = _moved(before, after)
    assert not moved[:position].any()
    assert moved[position:real].all()


@torch.no_grad()
def test_asr_speech_is_causal(mixed_batch):
    model, batch, embeddings = mixed_batch
    speech = torch.nonzero(batch["speech_mask"][1]).flatten()
    middle = int(speech[len(speech) // 2])
    moved = _moved(*_perturbed(model, batch, embeddings, middle, row=1))
    assert not moved[speech[0] : middle].any() and moved[middle : speech[-1] + 1].all()


@torch.no_grad()
def test_tts_spans_are_bidirectional_and_the_prefix_never_sees_the_generated_one(mixed_batch):
    model, batch, embeddings = mixed_batch
    time = int(torch.nonzero(batch["marker_ids"][0] == Marker.TIME)[0])
    real = int(batch["attention_mask"][0].sum())
    span = torch.arange(time, real)
    prompt = torch.nonzero(batch["prompt_mask"][0]).flatten()
    text = torch.nonzero(batch["text_condition_mask"][0] & ~batch["prompt_condition_mask"][0]).flatten()
    assert len(prompt) >= 2 and len(text) > 0
    moved = _moved(*_perturbed(model, batch, embeddings, int(span[-1])))
    assert moved[span].all(), "every span position sees the last one"
    assert not moved[:time].any(), "the text and the prompt before the span do not see it"
    moved = _moved(*_perturbed(model, batch, embeddings, int(prompt[-1])))
    assert moved[prompt].all(), "the prompt is bidirectional inside itself"
    assert not moved[: prompt[0]].any() and moved[span].all(), "the text does not see it, the span does"
    moved = _moved(*_perturbed(model, batch, embeddings, int(text[0])))
    assert moved[prompt].all() and moved[span].all(), "prompt and span see the text"


@torch.no_grad()
def test_padding_is_invisible(mixed_batch):
    model, batch, embeddings = mixed_batch
    padding = torch.nonzero(batch["attention_mask"][0] == 0).flatten()
    assert len(padding) > 0, "the TTS sample must be the shorter one for this test"
    changed = embeddings.clone()
    changed[0, padding] = 100.0
    args = (batch["attention_mask"], batch["bidirectional_mask"])
    real = batch["attention_mask"][0].bool()
    before = model.run_backbone(embeddings, *args)[0, real]
    after = model.run_backbone(changed, *args)[0, real]
    torch.testing.assert_close(before, after)
    alone = model.run_backbone(
        embeddings[:1, real], batch["attention_mask"][:1, real], batch["bidirectional_mask"][:1, real]
    )
    torch.testing.assert_close(alone[0], before, atol=1e-5, rtol=1e-5)
    assert torch.isfinite(model.run_backbone(changed, *args)).all()
