import numpy as np
import pytest

from unispeech.data.manifest import read_manifest
from unispeech.data.nonspeech import (
    KINDS,
    LEVEL_RANGE_DB,
    SECONDS_RANGE,
    nonspeech_clip,
    write_nonspeech_corpus,
)


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_is_a_seeded_clip_in_range(kind):
    clip = nonspeech_clip(kind, seed=3)
    assert clip.dtype == np.float32 and clip.ndim == 1
    assert SECONDS_RANGE[0] * 16000 - 1 <= len(clip) <= SECONDS_RANGE[1] * 16000 + 1
    assert np.isfinite(clip).all() and np.abs(clip).max() <= 10 ** (LEVEL_RANGE_DB[1] / 20) + 1e-6
    assert np.array_equal(clip, nonspeech_clip(kind, seed=3))
    assert not np.array_equal(clip, nonspeech_clip(kind, seed=4)) or kind == "silence"


def test_a_requested_length_is_kept_and_unknown_kinds_refused():
    assert len(nonspeech_clip("tone", seed=0, seconds=2.0)) == 32000
    with pytest.raises(ValueError, match="unknown non-speech kind 'jazz'"):
        nonspeech_clip("jazz", seed=0)


def test_the_corpus_has_every_kind_with_empty_transcripts_and_rewrites_nothing(tmp_path):
    manifest = write_nonspeech_corpus(tmp_path, count=len(KINDS) + 2, show_progress=False)
    utterances = read_manifest(manifest)
    assert {u.audio.split("-")[0] for u in utterances} == set(KINDS)
    assert all(u.text == "" and u.dur > 0 for u in utterances)
    first = (tmp_path / utterances[0].audio).stat().st_mtime_ns
    write_nonspeech_corpus(tmp_path, count=len(KINDS) + 2, show_progress=False)
    assert (tmp_path / utterances[0].audio).stat().st_mtime_ns == first
