import json

import pytest
import soundfile

from unispeech.data.phoneme_durations import (
    AlignedClip,
    AlignerTraining,
    align_clips,
    duration_statistics,
    load_clips,
    phone_class,
    read_durations,
    train_aligner,
    write_durations,
)
from unispeech.model.configuration import UnispeechLMConfig
from unispeech.model.phonemes import espeak_voice
from unispeech.testing import noise

pytest.importorskip("monotonic_align")


def test_durations_round_trip_and_bad_lines_are_named(tmp_path):
    clip = AlignedClip("a.wav", "hˈiː", (3, 5, 2, 4))  # <sil> h ˈiː <sil>
    path = write_durations(tmp_path / "durations.jsonl", [clip])
    assert read_durations(path) == {(tmp_path / "a.wav").resolve(): clip}
    assert clip.frames == 14
    path.write_text(json.dumps({"audio": "a.wav", "phonemes": "hˈiː", "durations": [3, 5, 2]}) + "\n")
    with pytest.raises(ValueError, match=r"durations.jsonl:1: 3 durations for 'hˈiː'"):
        read_durations(path)


def test_statistics_by_class():
    clips = [AlignedClip("a.wav", "hˈiː, ha", (10, 2, 6, 4, 8, 1, 3, 10))]
    statistics = duration_statistics(clips, hop_seconds=0.01)
    assert statistics["vowel"] == {"units": 2, "mean_ms": 45.0, "median_ms": 45.0, "one_frame_share": 0.0}
    assert statistics["consonant"]["one_frame_share"] == 0.5
    assert statistics["pause"]["units"] == 4 and phone_class(" ") == "pause"


@pytest.mark.skipif(espeak_voice("en") is None, reason="espeak-ng is not installed")
def test_a_corpus_is_aligned_end_to_end(tmp_path):
    lines = []
    for index, text in enumerate(["one two", "three four five"]):
        soundfile.write(tmp_path / f"{index}.wav", noise(1.0 + index, 22050, seed=index), 22050)
        lines.append(json.dumps({"audio": f"{index}.wav", "text": text}))
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    clips = load_clips([manifest], UnispeechLMConfig(), show_progress=False)
    aligner, history = train_aligner(
        clips, AlignerTraining(steps=3, binarization_start=1), show_progress=False
    )
    assert [sorted(record) for record in history] == [["forward_sum", "step"]] + [
        ["binarization", "forward_sum", "step"]
    ] * 2
    aligned = align_clips(aligner, clips, tmp_path)
    assert [clip.audio for clip in aligned] == ["0.wav", "1.wav"]
    assert [clip.frames for clip in aligned] == [len(clip.mel) for clip in clips]  # every frame on a unit
    assert (
        read_durations(write_durations(tmp_path / "durations.jsonl", aligned))[(tmp_path / "1.wav").resolve()]
        == aligned[1]
    )
