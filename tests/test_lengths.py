import numpy as np
import pytest
import torch

from tests.conftest import noise_clip
from unispeech.audio.features import MelSettings, vocoder_log_mel, whisper_log_mel
from unispeech.model.configuration import WhisperEncoderConfig
from unispeech.model.encoder import SpeechEncoder
from unispeech.model.lengths import (
    encoder_frames,
    mel_patches,
    projector_tokens,
    speech_tokens,
    vocoder_mel_frames,
    whisper_mel_frames,
)
from unispeech.model.projector import SpeechProjector


@pytest.mark.parametrize("num_samples", [201, 319, 320, 1601, 16000, 16159])
def test_arithmetic_matches_what_the_modules_produce(num_samples):
    encoder = SpeechEncoder(WhisperEncoderConfig(n_audio_state=8, n_audio_head=2, n_audio_layer=1))
    projector = SpeechProjector(8, 16, 16, stack=4)
    mel = whisper_log_mel(noise_clip(num_samples / 16000, 16000))
    assert mel.shape[-1] == whisper_mel_frames(num_samples)
    states, lengths = encoder(mel[None], torch.tensor([mel.shape[-1]]))
    assert states.shape[1] == encoder_frames(mel.shape[-1]) == int(lengths[0])
    embeddings, token_lengths = projector(states, lengths, 1.0)
    assert embeddings.shape[1] == projector_tokens(states.shape[1], 4) == int(token_lengths[0])
    assert embeddings.shape[1] == speech_tokens(mel.shape[-1], 4)


@pytest.mark.parametrize("num_samples", [1024, 1025, 22050, 22050 + 255])
def test_vocoder_frames(num_samples):
    settings = MelSettings()
    mel = vocoder_log_mel(np.zeros(num_samples, dtype=np.float32) + 0.01, settings)
    assert mel.shape == (settings.n_mels, vocoder_mel_frames(num_samples, settings.hop_length))


def test_integer_tensors_and_ints_agree():
    frames = torch.tensor([0, 1, 2, 3, 7, 8, 9])
    assert encoder_frames(frames).tolist() == [encoder_frames(int(f)) for f in frames]
    assert mel_patches(frames, 3).tolist() == [0, 1, 1, 1, 3, 3, 3]
