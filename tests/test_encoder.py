import pytest
import torch
from whisper.model import AudioEncoder

from tests.conftest import noise_clip
from unispeech.audio.features import whisper_log_mel
from unispeech.model.configuration import WhisperEncoderConfig
from unispeech.model.encoder import SpeechEncoder

CONFIG = WhisperEncoderConfig(n_audio_state=16, n_audio_head=2, n_audio_layer=2)


@pytest.fixture
def encoder():
    return SpeechEncoder(CONFIG).eval()


def _mels(*seconds):
    return [whisper_log_mel(noise_clip(s, 16000, seed=i)) for i, s in enumerate(seconds)]


@torch.no_grad()
def test_full_context_is_whispers_own_forward(encoder):
    full = SpeechEncoder(CONFIG, full_context=True)
    full.load_state_dict(encoder.state_dict())
    mel = torch.randn(2, 80, 3000)
    states, lengths = full(mel, torch.tensor([3000, 1000]))
    torch.testing.assert_close(states, full.whisper(mel), atol=1e-5, rtol=1e-5)
    assert lengths.tolist() == [1500, 500]
    with pytest.raises(ValueError, match="needs 3000 mel frames"):
        full(mel[..., :100], torch.tensor([100, 100]))


@torch.no_grad()
def test_a_batch_equals_each_clip_alone(encoder):
    mels = _mels(0.37, 1.0, 0.2)
    batch = torch.nn.utils.rnn.pad_sequence(
        [m.T for m in mels], batch_first=True, padding_value=3.0
    ).transpose(1, 2)
    lengths = torch.tensor([m.shape[-1] for m in mels])
    states, out_lengths = encoder(batch, lengths)
    for index, mel in enumerate(mels):
        alone, alone_length = encoder(mel[None], lengths[index : index + 1])
        assert int(out_lengths[index]) == int(alone_length[0]) == alone.shape[1]
        torch.testing.assert_close(states[index, : alone.shape[1]], alone[0], atol=1e-5, rtol=1e-5)


def test_frozen_by_default_and_trainable_on_request():
    assert not any(p.requires_grad for p in SpeechEncoder(CONFIG).parameters())
    assert all(p.requires_grad for p in SpeechEncoder(CONFIG, frozen=False).parameters())


def test_longer_than_30_seconds_is_refused(encoder):
    with pytest.raises(ValueError, match=r"exceed the encoder's 3000 .* split long audio"):
        encoder(torch.zeros(1, 80, 3002), torch.tensor([3002]))


@torch.no_grad()
def test_loads_an_openai_whisper_checkpoint(tmp_path, encoder):
    source = AudioEncoder(80, 1500, 16, 2, 2)
    state = {f"encoder.{key}": value.half() for key, value in source.state_dict().items()}
    state["decoder.token_embedding.weight"] = torch.zeros(4, 16)
    dims = {"n_mels": 80, "n_audio_ctx": 1500, "n_audio_state": 16, "n_audio_head": 2, "n_audio_layer": 2}
    torch.save({"dims": dims, "model_state_dict": state}, tmp_path / "tiny.pt")
    loaded = SpeechEncoder.from_whisper_checkpoint(tmp_path / "tiny.pt")
    mel = _mels(0.5)[0][None]
    expected = source.half().float()
    encoder.whisper.load_state_dict(expected.state_dict())
    torch.testing.assert_close(loaded(mel, torch.tensor([50]))[0], encoder(mel, torch.tensor([50]))[0])
    with pytest.raises(ValueError, match="no 'encoder"):
        loaded.load_whisper_state_dict({"decoder.x": torch.zeros(1)})
