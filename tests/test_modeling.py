import pytest
import torch

from tests.conftest import noise_clip
from unispeech.model.flow import FlowMatchingExample
from unispeech.model.modeling import UnispeechLMModel
from unispeech.model.processor import AsrSample, TtsSample
from unispeech.testing import tiny_model, tts_sample


def _samples(config):
    return [
        AsrSample(noise_clip(0.6, 16000, 1), "hello world", 16000),
        tts_sample(noise_clip(0.3, 22050, 2), "speak this", config, 22050),
        AsrSample(noise_clip(0.25, 16000, 3), "hi", 16000),
        tts_sample(noise_clip(0.15, 22050, 4), "short", config, 22050, prompt_fraction=0.0),
    ]


def test_a_mixed_batch_trains_both_tasks(tiny):
    model, processor = tiny
    model.train()
    try:
        output = model(**processor(_samples(model.config)), generator=torch.Generator().manual_seed(1))
        assert torch.isfinite(output.text_loss) and torch.isfinite(output.tts_loss)
        parts = (output.text_loss, output.tts_loss, output.prior_loss, output.duration_loss)
        torch.testing.assert_close(output.loss, sum(parts))
        model.zero_grad()
        output.loss.backward()
        assert model.projector.linear_in.weight.grad.abs().sum() > 0
        assert model.flow.mel_input.linear.weight.grad.abs().sum() > 0
        assert model.flow.durations.output.weight.grad.abs().sum() > 0
        assert model.flow.prior.output.weight.grad.abs().sum() > 0
        assert model.markers.embedding.weight.grad[[0, 1, 2, 3]].abs().sum(dim=1).gt(0).all()
        assert all(p.grad is None for p in model.encoder.parameters()), "the encoder is frozen"
    finally:
        model.zero_grad()
        model.eval()


@torch.no_grad()
def test_text_loss_is_the_backbones_own_causal_lm_loss(tiny_sdpa):
    model, processor = tiny_sdpa
    batch = processor([s for s in _samples(model.config) if isinstance(s, AsrSample)])
    output = model(**batch)
    speech = model.encode_speech(batch["input_features"], batch["feature_lengths"])
    embeddings = model.embed_inputs(batch["input_ids"], batch["marker_ids"], batch["speech_mask"], speech)
    reference = model.backbone(
        inputs_embeds=embeddings, attention_mask=batch["attention_mask"], labels=batch["labels"]
    )
    torch.testing.assert_close(output.text_loss, reference.loss)
    assert output.tts_loss is None


@torch.no_grad()
def test_speech_enters_the_backbone_at_the_scale_of_its_token_embeddings(tiny):
    model, processor = tiny
    batch = processor([s for s in _samples(model.config) if isinstance(s, AsrSample)])
    model.projector.linear_out.weight.mul_(100)  # however large the projector's raw output
    speech, lengths = model.encode_speech(batch["input_features"], batch["feature_lengths"])
    model.projector.linear_out.weight.div_(100)
    token_rms = model.backbone.get_input_embeddings().weight.pow(2).mean().sqrt()
    rms = speech[0, : lengths[0]].pow(2).mean(dim=-1).sqrt()
    torch.testing.assert_close(rms, torch.full_like(rms, float(token_rms)), rtol=1e-3, atol=0)


def _select(example: FlowMatchingExample, index: int, frames: int) -> FlowMatchingExample:
    """Sample `index` of a batched draw, alone and trimmed to its own `frames`."""
    row = slice(index, index + 1)
    return FlowMatchingExample(
        time=example.time[row],
        noisy=example.noisy[row, :frames],
        velocity=example.velocity[row, :frames],
        frames=example.frames[row, :frames],
        drop_text=example.drop_text[row],
        drop_audio=example.drop_audio[row],
    )


@torch.no_grad()
def test_a_batch_equals_each_sample_alone(tiny):
    model, processor = tiny
    samples = _samples(model.config)
    batch = processor(samples)
    example = model.flow.draw(
        model.flow.normalize(batch["mel"]), batch["mel_lengths"], torch.Generator().manual_seed(0)
    )
    hidden = model(**batch, flow_example=example).last_hidden_state
    tts_index = 0
    for row, sample in enumerate(samples):
        alone = processor([sample])
        kwargs = {}
        if isinstance(sample, TtsSample):
            kwargs["flow_example"] = _select(example, tts_index, int(alone["mel_lengths"][0]))
            tts_index += 1
        expected = model(**alone, **kwargs).last_hidden_state[0]
        real = batch["attention_mask"][row].bool()
        torch.testing.assert_close(hidden[row, real], expected, atol=2e-5, rtol=2e-5)


@torch.no_grad()
def test_sdpa_and_eager_agree():
    sdpa, processor = tiny_model("sdpa")
    eager, _ = tiny_model("eager")
    eager.load_state_dict(sdpa.state_dict())
    batch = processor(_samples(sdpa.config))
    example = sdpa.flow.draw(
        sdpa.flow.normalize(batch["mel"]), batch["mel_lengths"], torch.Generator().manual_seed(1)
    )
    a, b = sdpa(**batch, flow_example=example), eager(**batch, flow_example=example)
    torch.testing.assert_close(a.loss, b.loss, atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_save_and_load_round_trip(tiny_sdpa, tmp_path):
    model, processor = tiny_sdpa
    model.save_pretrained(tmp_path)
    loaded = UnispeechLMModel.from_pretrained(tmp_path).eval()
    assert (tmp_path / "model.safetensors").exists()
    batch = processor(_samples(model.config))
    example = model.flow.draw(
        model.flow.normalize(batch["mel"]), batch["mel_lengths"], torch.Generator().manual_seed(2)
    )
    torch.testing.assert_close(
        loaded(**batch, flow_example=example).loss, model(**batch, flow_example=example).loss
    )
    tied = loaded.backbone.get_output_embeddings().weight
    assert tied.data_ptr() == loaded.backbone.get_input_embeddings().weight.data_ptr()


def test_inputs_from_a_mismatched_processor_are_refused(tiny_sdpa):
    model, _ = tiny_sdpa
    _, other_processor = tiny_model(projector_stack=2)
    batch = other_processor([AsrSample(noise_clip(0.5, 16000), "x", 16000)])
    with pytest.raises(ValueError, match=r"lays out 13 speech positions but 7 speech embeddings"):
        model(**batch)


@torch.no_grad()
def test_dropping_the_text_hides_it_from_the_span(tiny_sdpa):
    """Texts of equal length, so only what they say differs (positions do not)."""
    model, processor = tiny_sdpa
    clip = noise_clip(0.2, 22050, 5)
    config = model.config
    batch = processor(
        [tts_sample(clip, "one text", config, 22050), tts_sample(clip, "two word", config, 22050)]
    )
    _assert_hidden_only_when_dropped(model, batch, ("drop_text", "drop_audio"))


@torch.no_grad()
def test_dropping_the_audio_hides_the_prompt_from_the_span():
    """Two clips of one length saying one text: only their prompts differ. (The prompt's input
    projection starts at zero, so it is set at random here: an untrained head hears no prompt.)"""
    model, processor = tiny_model("sdpa")
    torch.nn.init.normal_(model.flow.mel_input.linear.weight, std=0.1)
    config = model.config
    clips = [noise_clip(0.3, 22050, 6), 0.01 * noise_clip(0.3, 22050, 7)]  # loud and quiet: other mels
    batch = processor([tts_sample(clip, "same text", config, 22050) for clip in clips])
    _assert_hidden_only_when_dropped(model, batch, ("drop_audio",))


def _assert_hidden_only_when_dropped(model, batch, flags: tuple[str, ...]) -> None:
    """The two rows' span states are equal with `flags` of the draw set, and differ without."""
    example = _same_draw(model, batch)

    def span_states(dropped: bool) -> torch.Tensor:
        for flag in flags:
            getattr(example, flag)[:] = dropped
        hidden = model(**batch, flow_example=example).last_hidden_state
        return torch.stack([hidden[row][batch["mel_mask"][row]] for row in range(2)])

    hidden = span_states(dropped=True)
    torch.testing.assert_close(hidden[0], hidden[1], atol=1e-5, rtol=1e-5)
    hidden = span_states(dropped=False)
    assert (hidden[0] - hidden[1]).abs().max() > 1e-3


def _same_draw(model, batch) -> FlowMatchingExample:
    """A draw for a batch of two whose second row's time and noisy mel are the first's."""
    example = model.flow.draw(
        model.flow.normalize(batch["mel"]), batch["mel_lengths"], torch.Generator().manual_seed(3)
    )
    example.noisy[1], example.time[1] = example.noisy[0], example.time[0]
    example.drop_text[:] = False
    return example


@pytest.mark.parametrize("with_info", [False, True])
def test_a_loaded_model_keeps_its_encoder_frozen(tiny_dir, with_info):
    loaded = UnispeechLMModel.from_pretrained(tiny_dir, output_loading_info=with_info)
    model, info = loaded if with_info else (loaded, None)
    assert not any(parameter.requires_grad for parameter in model.encoder.parameters())
    assert all(parameter.requires_grad for parameter in model.projector.parameters())
    assert info is None or not info["missing_keys"]
