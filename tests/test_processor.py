import numpy as np
import pytest
import torch

from tests.conftest import noise_clip
from unispeech.audio.features import AudioError
from unispeech.model.lengths import mel_patches, speech_tokens
from unispeech.model.processor import AsrSample, GerSample, TtsSample, UnispeechLMProcessor
from unispeech.testing import tiny_model


@pytest.fixture(scope="module")
def processor():
    return tiny_model()[1]


def test_a_mixed_batch_keeps_order_and_counts(processor):
    clips = [noise_clip(0.5, 16000, 1), noise_clip(0.3, 16000, 2)]
    batch = processor(
        [
            AsrSample(clips[0], "first", sampling_rate=16000),
            TtsSample(noise_clip(0.2, 22050), "spoken", ((5,), (6,)), (3, 2), sampling_rate=22050),
            AsrSample(clips[1], "second", sampling_rate=16000),
        ]
    )
    assert batch["input_features"].shape == (2, 80, 50)
    assert batch["feature_lengths"].tolist() == [50, 30]
    torch.testing.assert_close(
        batch["input_features"][1, :, :30], processor.speech_features(clips[1], 16000)[0]
    )
    assert (batch["input_features"][1, :, 30:] == 0).all()
    assert batch["speech_mask"].sum(dim=1).tolist() == [speech_tokens(50, 4), 0, speech_tokens(30, 4)]
    prompt = int(0.2 * 22050) // 256 // 4 * 4  # the prompt, trimmed to whole patches of 4
    assert batch["mel_lengths"].tolist() == [5] and batch["prompt_frames"].tolist() == [prompt]
    assert batch["mel_mask"].sum(dim=1).tolist() == [0, mel_patches(5, 4), 0]
    assert batch["prompt_mask"].sum(dim=1).tolist() == [0, prompt // 4, 0]
    assert (batch["mel"][0] == 0).all(), "frames to generate start empty"
    assert batch["frame_units"][0, :, 0].tolist() == [5, 5, 5, 6, 6], "each frame carries its unit"
    text = processor.tokenizer.decode(batch["labels"][2][batch["labels"][2] != -100])
    assert text == "second</s>"


def test_a_training_sample_splits_into_prompt_and_generated_frames(processor):
    clip = noise_clip(0.2, 22050)  # 17 vocoder frames
    units = ((5,), (6, 7), (8,))
    batch = processor([TtsSample(clip, "abc", units, (6, 6, 5), prompt_frames=7, sampling_rate=22050)])
    mel = processor.vocoder_features(clip, 22050)
    assert batch["prompt_frames"].tolist() == [4] and batch["mel_lengths"].tolist() == [13]  # 7 → 4
    torch.testing.assert_close(batch["prompt_mel"][0], mel[:4])
    torch.testing.assert_close(batch["mel"][0], mel[4:])
    assert batch["frame_units"][0, :, 0].tolist() == [5, 5] + [6] * 6 + [8] * 5
    assert batch["units"][0].tolist() == [[5, 0, 0, 0], [6, 7, 0, 0], [8, 0, 0, 0]]
    assert batch["unit_durations"].tolist() == [[6, 6, 5]] and batch["unit_lengths"].tolist() == [3]


def test_ger_samples_with_and_without_audio(processor):
    batch = processor(
        [
            GerSample(("helo world", "hello world"), "hello world"),
            AsrSample(noise_clip(0.3, 16000), "x", 16000, language="fr"),
            GerSample(("a b",), None, audio=noise_clip(0.5, 16000), sampling_rate=16000),
        ]
    )
    assert batch["input_features"].shape[0] == 2, "only the samples with audio have features"
    assert batch["speech_mask"].sum(dim=1).tolist() == [0, speech_tokens(30, 4), speech_tokens(50, 4)]
    first = processor.tokenizer.decode(batch["input_ids"][0][batch["attention_mask"][0].bool()])
    assert first.startswith("<s>Below is the best hypothesis") and "helo world" in first
    assert processor.tokenizer.decode(batch["labels"][0][batch["labels"][0] != -100]) == "hello world</s>"
    second = processor.tokenizer.decode(batch["input_ids"][1][batch["attention_mask"][1].bool()])
    assert second.endswith("[fr] x</s>")


def test_padding_sides(processor):
    samples = [AsrSample(noise_clip(0.5, 16000), "a", 16000), AsrSample(noise_clip(0.2, 16000), None, 16000)]
    right, left = processor(samples), processor(samples, padding_side="left")
    assert right["attention_mask"][1, 0] == 1 and right["attention_mask"][1, -1] == 0
    assert left["attention_mask"][1, 0] == 0 and left["attention_mask"][1, -1] == 1
    short = left["attention_mask"][1].bool()
    torch.testing.assert_close(
        left["marker_ids"][1][short], right["marker_ids"][1][right["attention_mask"][1].bool()]
    )


def test_full_context_pads_to_30_seconds():
    model, processor = tiny_model(encoder_full_context=True)
    clip = noise_clip(1.0, 16000)
    features, frames = processor.speech_features(clip, 16000)
    assert features.shape == (80, 3000) and frames == 100
    batch = processor([AsrSample(clip, "x", 16000)])
    assert batch["speech_mask"].sum() == speech_tokens(100, 4)
    assert torch.isfinite(model(**batch).loss)


@pytest.mark.parametrize(
    ("sample", "error", "message"),
    [
        (TtsSample(noise_clip(0.2, 22050), "   ", ((5,),), (3,), None, 22050), ValueError, "TTS needs text"),
        (TtsSample(noise_clip(0.2, 22050), "x", (), (), None, 22050), ValueError, "phoneme units"),
        (
            TtsSample(noise_clip(0.2, 22050), "x", ((5,),), (0,), None, 22050),
            ValueError,
            "at least one frame",
        ),
        (TtsSample(noise_clip(0.2, 22050), "x", ((5,),), (9,), 2, 22050), ValueError, "align the clip again"),
        (TtsSample(noise_clip(0.2, 22050), "x", ((5,),), (17,), 17, 22050), ValueError, "prompt_frames"),
        (AsrSample(noise_clip(31.0, 16000), "x", 16000), ValueError, r"31.0 s exceeds the encoder's 30 s"),
        (AsrSample(np.zeros(0, np.float32), "x", 16000), AudioError, "empty"),
        (AsrSample(np.full(800, np.nan, np.float32), "x", 16000), AudioError, "NaN"),
        (AsrSample("/no/such/file.wav", "x"), AudioError, "no such audio file"),
    ],
)
def test_bad_samples(processor, sample, error, message):
    with pytest.raises(error, match=message):
        processor([sample])


def test_empty_batch_and_bad_padding_side(processor):
    with pytest.raises(ValueError, match="no samples"):
        processor([])
    with pytest.raises(ValueError, match="padding_side"):
        processor([AsrSample(noise_clip(0.2, 16000), None, 16000)], padding_side="middle")


def test_non_latin_text_round_trips(processor):
    batch = processor([AsrSample(noise_clip(0.2, 16000), "日本語のテキスト ok", 16000)])
    labels = batch["labels"][0][batch["labels"][0] != -100]
    assert processor.tokenizer.decode(labels) == "日本語のテキスト ok</s>"


def test_save_and_load(processor, tmp_path):
    processor.save_pretrained(tmp_path)
    loaded = UnispeechLMProcessor.from_pretrained(tmp_path)
    assert loaded.tokenize("héllo") == processor.tokenize("héllo")
    assert loaded.config.projector_stack == processor.config.projector_stack
