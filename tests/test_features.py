import librosa
import numpy as np
import pytest
import soundfile
import torch

from tests.conftest import noise_clip
from unispeech.audio.features import AudioError, MelSettings, load_audio, vocoder_log_mel, whisper_log_mel


def test_file_in_any_rate_and_channels_becomes_mono_at_the_rate_asked(tmp_path):
    left = np.sin(2 * np.pi * 440 * np.arange(8000) / 8000).astype(np.float32) * 0.5
    stereo = np.stack([left, -left * 0 + 0.25], axis=1)  # (T, 2)
    path = tmp_path / "clip.wav"
    soundfile.write(path, stereo, 8000, subtype="PCM_16")
    audio = load_audio(path, 16000)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(len(audio) - 16000) <= 1
    direct = load_audio(stereo.T.copy(), 8000, source_rate=8000)  # (C, T): channels on the short axis
    np.testing.assert_allclose(direct, (left + 0.25) / 2, atol=1e-6)


def test_integer_arrays_are_scaled():
    pcm16 = np.array([-32768, 0, 16384], dtype=np.int16)
    np.testing.assert_allclose(load_audio(pcm16, 16000, 16000), [-1.0, 0.0, 0.5])
    pcm8 = np.array([0, 128, 192], dtype=np.uint8)
    np.testing.assert_allclose(load_audio(pcm8, 16000, 16000), [-1.0, 0.0, 0.5])
    tensor = torch.tensor([0.25, -0.25], dtype=torch.float64)
    assert load_audio(tensor, 16000, 16000).dtype == np.float32


@pytest.mark.parametrize(
    ("source", "kwargs", "message"),
    [
        (np.zeros(0, dtype=np.float32), {"source_rate": 16000}, "audio is empty"),
        (np.array([0.1, np.nan, np.inf], dtype=np.float32), {"source_rate": 16000}, "2 NaN or infinite"),
        (np.zeros(10, dtype=np.float32), {}, "needs its sample rate"),
        (np.zeros((2, 2, 2), dtype=np.float32), {"source_rate": 16000}, "must be 1-D or 2-D"),
        (np.array(["a"]), {"source_rate": 16000}, "integers or floats"),
        (np.zeros(10, dtype=np.float32), {"source_rate": 0}, "must be positive"),
    ],
)
def test_bad_arrays_raise_a_clear_error(source, kwargs, message):
    with pytest.raises(AudioError, match=message):
        load_audio(source, 16000, **kwargs)


def test_missing_and_corrupt_files_raise_a_clear_error(tmp_path):
    with pytest.raises(AudioError, match="no such audio file"):
        load_audio(tmp_path / "absent.wav", 16000)
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really audio")
    with pytest.raises(AudioError, match="cannot read audio file"):
        load_audio(corrupt, 16000)


def test_whisper_log_mel_is_whispers():
    clip = noise_clip(1.0, 16000)
    mel = whisper_log_mel(clip)
    assert mel.shape == (80, 100)
    import whisper.audio

    torch.testing.assert_close(mel, whisper.audio.log_mel_spectrogram(torch.from_numpy(clip)))


def test_vocoder_log_mel_follows_hifigans_recipe():
    """An independent numpy/librosa rendering of HiFi-GAN's meldataset.mel_spectrogram."""
    settings = MelSettings()
    clip = noise_clip(0.5, settings.sample_rate)
    pad = (settings.n_fft - settings.hop_length) // 2
    padded = np.pad(clip, (pad, pad), mode="reflect")
    spectrum = librosa.stft(
        padded,
        n_fft=settings.n_fft,
        hop_length=settings.hop_length,
        win_length=settings.win_length,
        window="hann",
        center=False,
    )
    magnitude = np.sqrt(np.abs(spectrum) ** 2 + 1e-9)
    filters = librosa.filters.mel(sr=settings.sample_rate, n_fft=settings.n_fft, n_mels=80, fmin=0, fmax=8000)
    expected = np.log(np.clip(filters @ magnitude, 1e-5, None))
    mel = vocoder_log_mel(clip, settings)
    np.testing.assert_allclose(mel.numpy(), expected, atol=2e-3)
    batched = vocoder_log_mel(np.stack([clip, clip]), settings)
    torch.testing.assert_close(batched[1], mel)


def test_vocoder_log_mel_of_silence_is_the_floor():
    mel = vocoder_log_mel(np.zeros(4096, dtype=np.float32))
    torch.testing.assert_close(mel, torch.full_like(mel, np.log(1e-5)), atol=1e-3, rtol=0)


def test_too_short_for_a_frame_and_bad_settings():
    with pytest.raises(AudioError, match="too short for a Whisper frame"):
        whisper_log_mel(np.zeros(200, dtype=np.float32))
    with pytest.raises(AudioError, match="too short"):
        vocoder_log_mel(np.zeros(100, dtype=np.float32))
    with pytest.raises(ValueError, match="fmax"):
        MelSettings(fmax=20000)
