"""The matched / mismatched / no-speech loss test on the tiny model."""

import pytest

from unispeech.evaluation.reliance import AudioReliance, audio_reliance
from unispeech.testing import noise, tiny_model

RATE = 16000


def test_scores_three_pairings_and_leaves_the_mode_alone():
    model, processor = tiny_model()
    model.train()
    audios = [noise(0.5 + 0.25 * i, RATE, seed=i) for i in range(3)]
    texts = ["one", "two words", "three words here"]
    result = audio_reliance(model, processor, audios, texts, batch_size=2, sampling_rate=RATE)
    assert model.training
    assert all(0 < value < 20 for value in (result.matched, result.mismatched, result.no_speech))
    # the random model's speech changes its loss: the three pairings are scored differently
    assert len({result.matched, result.mismatched, result.no_speech}) == 3
    assert result.gap == pytest.approx(result.mismatched - result.matched)


def test_loss_per_token_weights_batches_by_their_tokens():
    model, processor = tiny_model()
    audios = [noise(0.5, RATE, seed=i) for i in range(4)]
    texts = ["a", "much longer text", "b", "another long text"]
    one_batch = audio_reliance(model, processor, audios, texts, batch_size=4, sampling_rate=RATE)
    two_batches = audio_reliance(model, processor, audios, texts, batch_size=2, sampling_rate=RATE)
    assert two_batches.matched == pytest.approx(one_batch.matched, rel=1e-4)
    assert two_batches.no_speech == pytest.approx(one_batch.no_speech, rel=1e-4)


def test_needs_two_clips_with_one_text_each():
    model, processor = tiny_model()
    with pytest.raises(ValueError, match="at least two clips"):
        audio_reliance(model, processor, [noise(0.5, RATE)], ["one"])
    assert AudioReliance(1.0, 3.0, 4.0).gap == 2.0
