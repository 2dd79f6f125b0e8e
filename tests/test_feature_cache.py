import copy
import os

import pytest
import soundfile
import torch

from tests.conftest import noise_clip
from unispeech.model.encoder import EncodedSpeech
from unispeech.testing import tiny_model
from unispeech.training.feature_cache import FeatureCache, encoder_fingerprint

SECONDS = (0.4, 1.3, 0.7, 2.1)
FP16 = {"rtol": 1e-3, "atol": 1e-3}  # entries are stored as float16: half an ulp is 2⁻¹¹ relative


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    model, processor = tiny_model()
    return model.encoder, processor


@pytest.fixture
def clips(tmp_path):
    """Noise clips at 16 kHz and one at 22.05 kHz (the processor resamples it)."""
    paths = []
    for index, seconds in enumerate(SECONDS):
        rate = 22050 if index == 2 else 16000
        paths.append(tmp_path / "audio" / f"clip{index}.wav")
        paths[-1].parent.mkdir(exist_ok=True)
        soundfile.write(paths[-1], noise_clip(seconds, rate, seed=index), rate)
    return paths


def _alone(encoder, processor, path):
    """The encoder run on one clip by itself, as the model would without a cache."""
    mel, frames = processor.speech_features(path, None)
    with torch.no_grad():
        states, lengths = encoder(mel[None], torch.tensor([frames]))
    return states[0, : lengths[0]]


def test_fill_encodes_each_clip_once_and_matches_the_encoder_alone(tiny, clips, tmp_path):
    encoder, processor = tiny
    cache = FeatureCache(tmp_path / "cache", encoder)
    assert all(cache.get(path) is None for path in clips)
    assert cache.fill([*clips, clips[0]], processor, show_progress=False) == len(clips)
    assert cache.fill(clips, processor, show_progress=False) == 0
    for path in clips:
        cached = cache.get(path)
        assert isinstance(cached, EncodedSpeech) and cached.states.dtype == torch.float32
        expected = _alone(encoder, processor, path)
        assert cached.states.shape == expected.shape
        torch.testing.assert_close(cached.states, expected, **FP16)
    assert len(list((tmp_path / "cache").rglob("*.safetensors"))) == len(clips)
    assert not list((tmp_path / "cache").rglob(".writing-*")), "no staging file left behind"


def test_the_entry_follows_the_file_not_its_spelling(tiny, clips, tmp_path, monkeypatch):
    encoder, processor = tiny
    cache = FeatureCache(tmp_path / "cache", encoder)
    monkeypatch.chdir(clips[0].parent)
    assert (
        cache.path(clips[0].name)
        == cache.path(clips[0])
        == cache.path(tmp_path / "audio" / ".." / "audio" / "clip0.wav")
    )
    cache.fill([clips[0].name], processor, show_progress=False)
    assert cache.get(clips[0]) is not None


@pytest.mark.parametrize("change", ["rewrite", "touch"])
def test_a_changed_file_is_a_miss(tiny, clips, tmp_path, change):
    encoder, processor = tiny
    cache = FeatureCache(tmp_path / "cache", encoder)
    cache.fill(clips, processor, show_progress=False)
    changed = clips[1]
    if change == "rewrite":
        soundfile.write(changed, noise_clip(0.9, 16000, seed=99), 16000)
    else:
        status = changed.stat()
        os.utime(changed, ns=(status.st_atime_ns, status.st_mtime_ns + 1_000_000_000))
    assert cache.get(changed) is None
    assert cache.fill(clips, processor, show_progress=False) == 1
    torch.testing.assert_close(cache.get(changed).states, _alone(encoder, processor, changed), **FP16)


def test_another_encoder_uses_another_folder(tiny, clips, tmp_path):
    encoder, processor = tiny
    other = copy.deepcopy(encoder)
    with torch.no_grad():
        next(other.parameters())[0, 0] += 1e-3
    full_context = copy.deepcopy(encoder)
    full_context.full_context = True
    fingerprints = {encoder_fingerprint(module) for module in (encoder, other, full_context)}
    assert len(fingerprints) == 3
    assert encoder_fingerprint(copy.deepcopy(encoder)) == encoder_fingerprint(encoder)
    cache = FeatureCache(tmp_path / "cache", encoder)
    cache.fill(clips[:1], processor, show_progress=False)
    other_cache = FeatureCache(tmp_path / "cache", other)
    assert other_cache.folder != cache.folder and other_cache.folder.parent == cache.folder.parent
    assert other_cache.get(clips[0]) is None
    assert other_cache.fill(clips[:1], processor, show_progress=False) == 1


@pytest.mark.parametrize("damage", ["garbage", "truncated", "other key"])
def test_an_unreadable_entry_is_a_miss_and_is_encoded_again(tiny, clips, tmp_path, damage):
    encoder, processor = tiny
    cache = FeatureCache(tmp_path / "cache", encoder)
    cache.fill(clips, processor, show_progress=False)
    entry = cache.path(clips[3])
    if damage == "garbage":
        entry.write_bytes(b"\x00\xffnot a safetensors file" * 3)
    elif damage == "truncated":
        entry.write_bytes(entry.read_bytes()[: entry.stat().st_size // 2])
    else:
        from safetensors.torch import save_file

        save_file({"something": torch.zeros(2, 2)}, entry)
    assert cache.get(clips[3]) is None
    assert cache.get(clips[2]) is not None
    assert cache.fill(clips, processor, show_progress=False) == 1
    torch.testing.assert_close(cache.get(clips[3]).states, _alone(encoder, processor, clips[3]), **FP16)


def test_full_context_entries_hold_only_the_real_frames(clips, tmp_path):
    model, processor = tiny_model(encoder_full_context=True)
    cache = FeatureCache(tmp_path / "cache", model.encoder)
    cache.fill(clips[:2], processor, show_progress=False)
    for path, seconds in zip(clips[:2], SECONDS, strict=False):
        states = cache.get(path).states
        assert states.shape[0] == round(seconds * 50)  # 50 encoder frames per second
        torch.testing.assert_close(states, _alone(model.encoder, processor, path), **FP16)
