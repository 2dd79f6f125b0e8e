"""Loading models, and the real `smol` parts converted by `unispeech weights fetch` (tests marked
`real`, one short clip each)."""

import json

import pytest
import torch
from safetensors.torch import load_file

from unispeech.audio.features import WHISPER_SAMPLE_RATE, MelSettings, load_audio, vocoder_log_mel
from unispeech.audio.vocoder import GriffinLim, HifiGan, HifiGanConfig
from unispeech.evaluation.metrics import word_error_rate
from unispeech.model.encoder import SpeechEncoder
from unispeech.model.processor import AsrSample
from unispeech.samples import LJSPEECH_SAMPLE
from unispeech.testing import tiny_model
from unispeech.weights.cache import WeightsError, cache_dir
from unispeech.weights.pretrained import load_parts, load_vocoder, load_whisper


@pytest.fixture(scope="module")
def smol():
    return load_parts("smol")


@pytest.fixture(scope="module")
def whisper_base():
    return load_whisper("smol")


def _transcribe(whisper_model, audio_16k):
    return whisper_model.transcribe(audio_16k, language="en", fp16=False, temperature=0.0)["text"]


@pytest.mark.real
def test_the_converted_cache_holds_every_weight_of_the_model():
    """A cache converted before a module was added loads with that module freshly initialised, and
    transformers prints a report of the missing weights on every command (the phoneme prior was
    missing from layout 5): the layout must move with the model."""
    from unispeech.model.modeling import UnispeechLMModel
    from unispeech.weights.cache import MODEL_DIR

    _, info = UnispeechLMModel.from_pretrained(cache_dir("smol") / MODEL_DIR, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info


@pytest.mark.real
def test_whisper_from_our_conversion_transcribes_a_real_clip(whisper_base):
    audio = load_audio(LJSPEECH_SAMPLE.path, WHISPER_SAMPLE_RATE)
    assert word_error_rate([LJSPEECH_SAMPLE.text], [_transcribe(whisper_base, audio)]) == 0.0


@pytest.mark.real
@torch.inference_mode()
def test_hifigan_resynthesis_of_our_mel_is_transcribed_the_same(smol, whisper_base):
    settings = smol.vocoder.mel_settings
    mel = vocoder_log_mel(load_audio(LJSPEECH_SAMPLE.path, settings.sample_rate), settings)
    audio = smol.vocoder(mel[None])[0].numpy()
    resynthesis = load_audio(audio, WHISPER_SAMPLE_RATE, source_rate=settings.sample_rate)
    assert word_error_rate([LJSPEECH_SAMPLE.text], [_transcribe(whisper_base, resynthesis)]) == 0.0


@pytest.mark.real
@torch.inference_mode()
def test_smollm2_answers_a_simple_prompt(smol):
    tokenizer = smol.processor.tokenizer
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    prompt = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, return_dict=True, return_tensors="pt"
    )
    output = smol.model.backbone.generate(**prompt, max_new_tokens=16, do_sample=False)
    answer = tokenizer.decode(output[0, prompt["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "Paris" in answer


@pytest.mark.real
@torch.inference_mode()
def test_the_assembled_encoder_is_whisper_bases(smol, whisper_base):
    audio = load_audio(LJSPEECH_SAMPLE.path, WHISPER_SAMPLE_RATE)
    batch = smol.processor([AsrSample(audio, LJSPEECH_SAMPLE.text, WHISPER_SAMPLE_RATE)])
    features, lengths = batch["input_features"], batch["feature_lengths"]
    ours, _ = smol.model.encoder(features, lengths)
    full = torch.nn.functional.pad(features, (0, 3000 - features.shape[-1]))
    theirs = whisper_base.encoder(full)[:, : ours.shape[1]]
    # not equal (whisper attends over 30 s of padding), but the same representation of the speech
    similarity = torch.nn.functional.cosine_similarity(ours, theirs, dim=-1)
    shifted = torch.nn.functional.cosine_similarity(ours, theirs.roll(10, dims=1), dim=-1)
    assert similarity.mean() > 0.8 > 0.5 > shifted.mean()
    full_context = SpeechEncoder(smol.model.config.encoder_config, full_context=True)
    full_context.load_state_dict(smol.model.encoder.state_dict())
    exact, _ = full_context(full, lengths)
    torch.testing.assert_close(exact, whisper_base.encoder(full), atol=1e-4, rtol=1e-4)
    assert torch.isfinite(smol.model(**batch).text_loss)


@pytest.mark.real
def test_the_cache_holds_the_real_backbone(smol):
    state = load_file(cache_dir("smol") / "model" / "model.safetensors")
    embedding = state["backbone.model.embed_tokens.weight"]
    assert embedding.shape == (49152, 576)
    torch.testing.assert_close(smol.model.backbone.get_input_embeddings().weight, embedding)
    assert smol.model.backbone.config.name_or_path == "", "no conversion folder recorded as the base"
    config = json.loads((cache_dir("smol") / "model" / "config.json").read_text())
    assert "quantization_config" not in config["text_config"], "the weights are float32, not GGUF's"


def test_loading_something_that_is_not_a_model(tmp_path):
    with pytest.raises(WeightsError, match=r"no model at .* \(no config.json\); known names: smol"):
        load_parts(tmp_path)


def test_loading_a_saved_model_and_a_corrupt_one(tmp_path):
    model, processor = tiny_model()
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    loaded = load_parts(tmp_path)
    assert isinstance(loaded.vocoder, GriffinLim), "no HiFi-GAN saved: Griffin-Lim stands in"
    torch.testing.assert_close(loaded.model.projector.linear_in.weight, model.projector.linear_in.weight)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(WeightsError, match="cannot read the model at"):
        load_parts(tmp_path)


def test_a_vocoder_that_reads_another_mel_is_refused(tmp_path):
    vocoder = HifiGan(HifiGanConfig(upsample_initial_channel=16))
    vocoder.save(tmp_path / "generator.safetensors")
    with pytest.raises(WeightsError, match="cannot be used together"):
        load_vocoder(tmp_path / "generator.safetensors", MelSettings(fmax=7600.0))
    assert isinstance(load_vocoder(tmp_path / "generator.safetensors", MelSettings()), HifiGan)
    (tmp_path / "generator.safetensors").write_bytes(b"corrupt")
    with pytest.raises(WeightsError, match="cannot read the vocoder"):
        load_vocoder(tmp_path / "generator.safetensors")


def test_fetching_an_unknown_model_names_the_known_ones():
    from unispeech.weights.pretrained import fetch_model

    with pytest.raises(ValueError, match="unknown model 'big': one of smol"):
        fetch_model("big")
