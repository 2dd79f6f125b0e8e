"""The Hugging Face pipelines, built by `transformers.pipeline` from a saved folder."""

import shutil

import numpy as np
import pytest
from transformers import pipeline

import unispeech.interfaces.pipelines  # noqa: F401 - registers the tasks
from tests.conftest import noise_clip, speech_clip
from unispeech.audio.features import AudioError
from unispeech.tasks.correction import LOOP_GUARD_NGRAM_SIZE


@pytest.fixture(scope="module")
def asr(tiny_dir):
    return pipeline("unispeech-speech-recognition", model=str(tiny_dir))


def test_speech_recognition_output_like_the_stock_pipeline(asr):
    plain = asr(speech_clip(0.5, 16000), sampling_rate=16000)
    assert set(plain) == {"text"} and isinstance(plain["text"], str)
    full = asr({"raw": speech_clip(0.5, 8000), "sampling_rate": 8000}, return_timestamps=True, nbest=2)
    assert set(full) == {"text", "chunks", "nbest"}
    assert full["chunks"][0]["timestamp"] == (0.0, 0.5)
    assert len(full["nbest"]) == 2 and {"text", "score"} == set(full["nbest"][0])


def test_speech_recognition_batch_equals_one_by_one(asr):
    clips = [speech_clip(0.4, 16000, seed=i) for i in range(3)]
    batched = asr(clips, sampling_rate=16000)
    assert batched == [asr(clip, sampling_rate=16000) for clip in clips]


@pytest.mark.parametrize(
    ("audio", "message"),
    [
        (np.zeros(0, np.float32), "empty"),
        (np.full(1600, np.nan, np.float32), "NaN"),
        ({"array": np.zeros(10, np.float32)}, "needs 'raw' .* and 'sampling_rate'"),
        ("/no/such.wav", "no such audio file"),
    ],
)
def test_speech_recognition_bad_input(asr, audio, message):
    with pytest.raises((AudioError, ValueError), match=message):
        asr(audio, sampling_rate=16000)


def test_text_to_audio(tiny_dir):
    tts = pipeline("unispeech-text-to-audio", model=str(tiny_dir))
    prompt = noise_clip(0.4, 22050)
    out = tts("hello", prompt=prompt, prompt_text="ab", prompt_sampling_rate=22050, steps=1, duration=0.3)
    assert set(out) == {"audio", "sampling_rate"} and out["sampling_rate"] == 22050
    assert abs(len(out["audio"]) - 0.3 * 22050) <= 256
    with pytest.raises(ValueError, match="pass prompt="):
        tts("hello")
    with pytest.raises(ValueError, match="unknown text-to-audio arguments: \\['cfg'\\]"):
        tts("hello", prompt=prompt, cfg=2)


def test_nbest_correction_inputs(tiny_dir):
    ger = pipeline("unispeech-nbest-correction", model=str(tiny_dir))
    one = ger(["helo world", "hello world"])
    assert set(one) == {"text"}
    assert ger({"input": ["helo world", "hello world"], "output": "hello world"}) == one
    assert ger([["helo world", "hello world"], ["x"]])[0] == one
    for bad in (42, {"input": ["a b", 2]}, [["a b", 2]], {"input": "a b"}):
        with pytest.raises(ValueError, match=r"give an N-best list as a list of strings .*, got "):
            ger(bad)
    _, forward, _ = ger._sanitize_parameters(beam_size=3)
    assert forward["options"].decoding.beam_size == 3
    assert forward["options"].decoding.no_repeat_ngram_size == LOOP_GUARD_NGRAM_SIZE, "the loop guard stays"


def test_silence_and_long_audio(asr):
    assert asr(np.zeros(16000, np.float32), sampling_rate=16000) == {"text": ""}
    long = asr(speech_clip(65.0, 16000), sampling_rate=16000, return_timestamps=True)
    assert len(long["chunks"]) == 3 and long["chunks"][-1]["timestamp"][1] == pytest.approx(65.0)


def test_text_to_audio_bad_text(tiny_dir):
    tts = pipeline("unispeech-text-to-audio", model=str(tiny_dir))
    prompt = noise_clip(0.4, 22050)
    for text in ("   ", "🎉🎉", "\x00\x07"):
        with pytest.raises(ValueError, match="nothing to speak"):
            tts(text, prompt=prompt, prompt_text="ab", prompt_sampling_rate=22050, steps=1)
    with pytest.raises(ValueError, match="takes a string"):
        tts({"text": "x"}, prompt=prompt, prompt_text="ab", prompt_sampling_rate=22050)


def test_a_mismatched_adapter_is_refused(tiny_dir, tmp_path):
    from unispeech.model.adapters import AdapterMismatchError, add_task_adapter, save_task_adapter
    from unispeech.testing import tiny_model

    other, _ = tiny_model(mel_patch_size=2)
    add_task_adapter(other, "tts")
    save_task_adapter(other, "tts", tmp_path / "tts")
    with pytest.raises(AdapterMismatchError, match="mel_patch_size=2"):
        pipeline("unispeech-text-to-audio", model=str(tiny_dir), adapter=tmp_path / "tts")


def test_an_adapter_of_another_task_is_refused(tiny_dir, tmp_path):
    from unispeech.model.adapters import AdapterMismatchError, add_task_adapter, save_task_adapter
    from unispeech.testing import tiny_model

    trained, _ = tiny_model()
    add_task_adapter(trained, "tts")
    folder = save_task_adapter(trained, "tts", tmp_path / "tts")
    with pytest.raises(AdapterMismatchError, match=r"holds task 'tts', not 'asr'"):
        pipeline("unispeech-speech-recognition", model=str(tiny_dir), adapter=folder)
    assert pipeline("unispeech-text-to-audio", model=str(tiny_dir), adapter=folder).speech.tasks == ["tts"]


def test_a_pipeline_over_a_named_models_base_loads_its_shipped_adapter(tiny_dir, tmp_path, monkeypatch):
    from unispeech.model.adapters import add_task_adapter, save_task_adapter
    from unispeech.testing import tiny_model
    from unispeech.weights.cache import (
        ADAPTERS_ENVIRONMENT_VARIABLE,
        CACHE_ENVIRONMENT_VARIABLE,
        MODELS,
        _write_manifest,
    )

    shutil.copytree(tiny_dir, tmp_path / "cache" / "smol" / "model")  # the tiny model as smol's cached base
    _write_manifest(tmp_path / "cache" / "smol", MODELS["smol"])  # a finished cache: the pipeline checks it
    monkeypatch.setenv(CACHE_ENVIRONMENT_VARIABLE, str(tmp_path / "cache"))
    monkeypatch.setenv(ADAPTERS_ENVIRONMENT_VARIABLE, str(tmp_path / "adapters"))
    trained, _ = tiny_model()
    add_task_adapter(trained, "ger")
    save_task_adapter(trained, "ger", tmp_path / "adapters" / "smol" / "ger")

    base = str(tmp_path / "cache" / "smol" / "model")
    assert pipeline("unispeech-nbest-correction", model=base).speech.tasks == ["ger"]
    assert pipeline("unispeech-nbest-correction", model=base, adapter=None).speech.tasks == []
    assert pipeline("unispeech-text-to-audio", model=base).speech.tasks == [], "no tts adapter shipped"
    other = shutil.copytree(tiny_dir, tmp_path / "other")
    assert pipeline("unispeech-nbest-correction", model=str(other)).speech.tasks == [], "not a named base"
