import dataclasses

import numpy as np
import pytest

from tests.conftest import noise_clip
from unispeech.tasks import transcription
from unispeech.tasks.decoding import DecodingOptions
from unispeech.tasks.transcription import TranscriptionOptions, split_windows, transcribe
from unispeech.testing import speech

FAST = TranscriptionOptions(decoding=DecodingOptions(max_new_tokens=6))


def test_windows_cover_the_audio_and_cut_where_it_is_quiet():
    rate = 1000
    audio = np.random.default_rng(0).normal(0, 0.3, 95 * rate).astype(np.float32)
    audio[27_500:27_600] = 0.0  # a pause 2.4 s before the first limit
    windows = split_windows(audio, rate, window_seconds=30, search_seconds=5)
    assert windows[0] == (0, 27_520)
    assert all(end - start <= 30 * rate for start, end in windows)
    assert [start for start, _ in windows[1:]] == [end for _, end in windows[:-1]] and windows[-1][1] == len(
        audio
    )
    assert split_windows(audio[: 10 * rate], rate, 30, 5) == [(0, 10 * rate)]


def test_silence_and_tiny_windows_transcribe_to_nothing(tiny_sdpa):
    model, processor = tiny_sdpa
    results = transcribe(
        model, processor, [np.zeros(16000, np.float32), noise_clip(0.05, 16000)], FAST, 16000
    )
    assert [r.text for r in results] == ["", ""]
    assert results[0].chunks[0].timestamp == (0.0, 1.0)


def test_windows_without_speech_are_not_decoded(tiny_sdpa, monkeypatch):
    """Noise never reaches the decoder (which would write a sentence for it), while speech beside it
    in the same batch does; with the check off, the noise is decoded too."""
    model, processor = tiny_sdpa
    decoded = []
    original = transcription.decode_samples

    def spy(model, processor, samples, *args):
        decoded.extend(len(sample.audio) for sample in samples)
        return original(model, processor, samples, *args)

    monkeypatch.setattr(transcription, "decode_samples", spy)
    clips = [noise_clip(1.0, 16000), speech(1.5, 16000)]
    results = transcribe(model, processor, clips, FAST, 16000)
    assert results[0].text == "" and results[0].hypotheses == [] and decoded == [24000]
    decoded.clear()
    transcribe(model, processor, clips, dataclasses.replace(FAST, speech_presence=None), 16000)
    assert sorted(decoded) == [16000, 24000]


def test_long_audio_is_windowed_and_joined(tiny_sdpa):
    model, processor = tiny_sdpa
    (result,) = transcribe(model, processor, [speech(65.0, 16000)], FAST, 16000)
    assert len(result.chunks) == 3 and result.chunks[-1].timestamp[1] == pytest.approx(65.0)
    assert result.text == " ".join(chunk.text for chunk in result.chunks if chunk.text)
    assert result.hypotheses == [], "an N-best list belongs to each window of a long recording"


def test_a_batch_equals_each_recording_alone(tiny_sdpa):
    model, processor = tiny_sdpa
    clips = [speech(s, 16000, seed=i) for i, s in enumerate((0.9, 0.3, 0.6))]
    options = TranscriptionOptions(
        decoding=DecodingOptions(beam_size=2, n_best=2, max_new_tokens=5), batch_size=2
    )
    together = transcribe(model, processor, clips, options, 16000)
    for clip, result in zip(clips, together, strict=True):
        (alone,) = transcribe(model, processor, [clip], options, 16000)
        assert [h.tokens for h in alone.hypotheses] == [h.tokens for h in result.hypotheses]
        assert len(result.hypotheses) == 2


def test_the_length_guard_follows_the_duration(tiny_sdpa):
    model, processor = tiny_sdpa
    options = TranscriptionOptions(
        decoding=DecodingOptions(max_new_tokens=448), tokens_per_second=4, min_tokens=2
    )
    results = transcribe(model, processor, [speech(0.5, 16000), speech(2.0, 16000)], options, 16000)
    lengths = [len(r.hypotheses[0].tokens) for r in results]
    assert lengths[0] <= 2 + 2 and lengths[1] <= 2 + 8


def test_the_language_hint_reaches_the_prompt(tiny_sdpa, monkeypatch):
    model, processor = tiny_sdpa
    seen = []
    original = processor.__class__.__call__

    def spy(self, samples, padding_side="right"):
        seen.extend(sample.language for sample in samples)
        return original(self, samples, padding_side)

    monkeypatch.setattr(processor.__class__, "__call__", spy)
    transcribe(model, processor, [speech(0.3, 16000)], TranscriptionOptions(language="de"), 16000)
    assert seen == ["de"]


def test_options_are_validated():
    with pytest.raises(ValueError, match=r"window_seconds must be in \(0, 30\]"):
        TranscriptionOptions(window_seconds=40)
    with pytest.raises(ValueError, match="search_seconds"):
        TranscriptionOptions(window_seconds=5, search_seconds=5)


@pytest.mark.parametrize("decoding", [DecodingOptions(ctc_weight=0.3), DecodingOptions(speculative=True)])
def test_ctc_decoding_without_a_head_is_refused_before_any_work(tiny_sdpa, decoding):
    from unispeech.tasks.decoding import NO_CTC_HEAD

    model, processor = tiny_sdpa
    with pytest.raises(ValueError) as raised:
        transcribe(
            model, processor, [np.zeros(16000, np.float32)], TranscriptionOptions(decoding=decoding), 16000
        )
    assert str(raised.value) == NO_CTC_HEAD, "even silence, which decodes nothing, is refused"
