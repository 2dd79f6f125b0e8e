import numpy as np
import pytest
import soundfile

from unispeech.data.manifest import Utterance, read_manifest, write_manifest
from unispeech.data.perturbation import Augmentation, perturb_manifest


def test_augmentation_is_deterministic_per_utterance():
    audio = np.sin(np.arange(16000) / 5).astype(np.float32)
    never, always = (
        Augmentation(probability=0.0),
        Augmentation(probability=1.0, snr_db=(10, 10), speed=(1, 1)),
    )
    np.testing.assert_array_equal(never.apply(audio, "a.wav"), audio)
    noisy = always.apply(audio, "a.wav")
    np.testing.assert_array_equal(noisy, always.apply(audio, "a.wav"))
    assert not np.array_equal(noisy, always.apply(audio, "b.wav"))
    snr = 10 * np.log10(np.mean(audio**2) / np.mean((noisy - audio) ** 2))
    assert snr == pytest.approx(10, abs=0.5)
    slower = Augmentation(probability=1.0, snr_db=(60, 60), speed=(0.5, 0.5)).apply(audio, "a.wav")
    assert len(slower) == pytest.approx(2 * len(audio), rel=0.01)
    with pytest.raises(ValueError, match="probability"):
        Augmentation(probability=2)


@pytest.fixture
def corpus(tmp_path):
    """Two clips at 22.05 kHz (a rate the copies do not keep), one stereo, and their manifest."""
    rng = np.random.default_rng(0)
    soundfile.write(tmp_path / "a.wav", 0.3 * np.sin(np.arange(22050) / 7), 22050)
    soundfile.write(tmp_path / "b.wav", 0.1 * rng.standard_normal((11025, 2)), 22050)
    utterances = [Utterance("a.wav", "hello there", "en", "s1"), Utterance("b.wav", "guten tag", "de", "s2")]
    return write_manifest(tmp_path / "m.jsonl", utterances)


def test_each_utterance_gets_its_copies_with_its_text(corpus, tmp_path):
    augmentation = Augmentation(probability=1.0, snr_db=(20, 20), speed=(0.8, 0.8))
    manifest = perturb_manifest(corpus, tmp_path / "out", copies=2, augmentation=augmentation, progress=False)
    copies = read_manifest(manifest)
    assert [(u.text, u.lang, u.speaker) for u in copies] == [
        ("hello there", "en", "s1"),
        ("hello there", "en", "s1"),
        ("guten tag", "de", "s2"),
        ("guten tag", "de", "s2"),
    ]
    first, second = (soundfile.read(u.path(manifest)) for u in copies[:2])
    assert first[1] == second[1] == 16000 and first[0].ndim == 1
    assert len(first[0]) == pytest.approx(1.25 * 16000, rel=0.01), "speed 0.8 makes a 1 s clip 1.25 s"
    assert copies[0].dur == pytest.approx(1.25, rel=0.01)
    assert not np.allclose(first[0], second[0]), "two copies of one clip draw their own noise"


def test_a_second_run_rewrites_nothing_and_the_seed_changes_the_copies(corpus, tmp_path):
    manifest = perturb_manifest(corpus, tmp_path / "out", progress=False)
    files = sorted((tmp_path / "out").glob("*.wav"))
    stamps = [path.stat().st_mtime_ns for path in files]
    again = perturb_manifest(corpus, tmp_path / "out", progress=False)
    assert read_manifest(again) == read_manifest(manifest)
    assert [path.stat().st_mtime_ns for path in files] == stamps
    other = perturb_manifest(corpus, tmp_path / "other", seed=1, progress=False)
    a0, a1 = (soundfile.read(read_manifest(m)[0].path(m))[0] for m in (manifest, other))
    assert len(a0) != len(a1) or not np.allclose(a0, a1)


def test_copies_must_all_be_perturbed_and_of_something(corpus, tmp_path):
    with pytest.raises(ValueError, match="copies must be at least 1"):
        perturb_manifest(corpus, tmp_path / "out", copies=0)
    with pytest.raises(ValueError, match="probability must be 1"):
        perturb_manifest(corpus, tmp_path / "out", augmentation=Augmentation(probability=0.5))
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(ValueError, match="no utterances to perturb"):
        perturb_manifest(tmp_path / "empty.jsonl", tmp_path / "out")
