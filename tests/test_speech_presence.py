import numpy as np
import pytest
import soundfile
import torch

from unispeech.audio.features import WHISPER_SAMPLE_RATE, load_audio
from unispeech.audio.speech_presence import SpeechPresence
from unispeech.data.nonspeech import KINDS, nonspeech_clip
from unispeech.samples import LJSPEECH_SAMPLE

DETECTOR = SpeechPresence()


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return load_audio(LJSPEECH_SAMPLE.path, WHISPER_SAMPLE_RATE)  # (samples,), 2.5 s


def test_real_speech_is_heard_where_it_is(speech):
    quiet = np.zeros(WHISPER_SAMPLE_RATE, np.float32)
    segments = DETECTOR.speech_segments(np.concatenate([quiet, speech, quiet]), WHISPER_SAMPLE_RATE)
    assert segments
    start, end = segments[0][0], segments[-1][1]
    assert 0.9 <= start <= 1.3 and 3.2 <= end <= 3.6  # the speech lies in [1, 3.5] s


def test_speech_that_starts_at_the_first_sample_is_heard(speech):
    """The lead silence settles the network before the first word; without it, a word starting at
    sample 0 may be missed (as 13 of 300 FSDD digits were)."""
    first_word = speech[int(0.05 * WHISPER_SAMPLE_RATE) : int(0.6 * WHISPER_SAMPLE_RATE)]
    assert DETECTOR.holds_speech(first_word, WHISPER_SAMPLE_RATE)


def test_speech_is_heard_at_any_rate(speech, tmp_path):
    soundfile.write(tmp_path / "clip.wav", speech, WHISPER_SAMPLE_RATE)
    at_8k = load_audio(tmp_path / "clip.wav", 8000)
    assert DETECTOR.holds_speech(at_8k, 8000)


@pytest.mark.parametrize("kind", [kind for kind in KINDS if kind != "notes"])
def test_noise_hum_tones_and_square_waves_hold_no_speech(kind):
    for seed in range(2):
        clip = nonspeech_clip(kind, seed=10_000 + seed, seconds=3.0)
        assert not DETECTOR.holds_speech(clip, WHISPER_SAMPLE_RATE), (kind, seed)


def test_loud_white_noise_and_a_clipped_square_wave_hold_no_speech():
    rng = np.random.default_rng(0)
    white = np.clip(rng.normal(0, 0.5, 3 * WHISPER_SAMPLE_RATE), -1, 1).astype(np.float32)
    t = np.arange(3 * WHISPER_SAMPLE_RATE) / WHISPER_SAMPLE_RATE
    square = np.clip(2.0 * np.sign(np.sin(2 * np.pi * 220 * t)), -1, 1).astype(np.float32)
    assert not DETECTOR.holds_speech(white, WHISPER_SAMPLE_RATE)
    assert not DETECTOR.holds_speech(square, WHISPER_SAMPLE_RATE)


def test_a_longer_minimum_drops_short_speech(speech):
    short = speech[int(0.05 * WHISPER_SAMPLE_RATE) : int(0.6 * WHISPER_SAMPLE_RATE)]
    assert not SpeechPresence(min_speech_seconds=2.0).holds_speech(short, WHISPER_SAMPLE_RATE)


def test_loading_the_detector_keeps_torch_threads():
    """silero_vad's import sets torch's threads to 1 for the whole process; loading puts them back."""
    from unispeech.audio.speech_presence import _silero

    _silero.cache_clear()
    threads = torch.get_num_threads()
    DETECTOR.holds_speech(np.zeros(WHISPER_SAMPLE_RATE, np.float32), WHISPER_SAMPLE_RATE)
    assert torch.get_num_threads() == threads


def test_stereo_and_bad_settings_are_refused():
    with pytest.raises(ValueError, match="mono"):
        DETECTOR.holds_speech(np.zeros((2, 100), np.float32), WHISPER_SAMPLE_RATE)
    with pytest.raises(ValueError, match="threshold"):
        SpeechPresence(threshold=1.5)
    with pytest.raises(ValueError, match=">= 0"):
        SpeechPresence(lead_silence_seconds=-1)
