import random
import shutil

import numpy as np
import pytest
import soundfile

from unispeech.data.manifest import (
    DURATION_TOLERANCE_SECONDS,
    AudioFileError,
    ManifestError,
    ProblemKind,
    Utterance,
    read_manifest,
    relative_audio,
    split_manifest,
    validate_manifest,
    with_durations,
    write_manifest,
)

RATE = 8000


def _clip(path, seconds=1.0, rate=RATE):
    path.parent.mkdir(parents=True, exist_ok=True)
    samples = np.random.default_rng(0).uniform(-0.5, 0.5, round(seconds * rate)).astype(np.float32)
    soundfile.write(path, samples, rate)
    return path


def test_round_trip_keeps_every_field_and_omits_unset_ones(tmp_path):
    utterances = [
        Utterance("a.wav", "Grüße, 世界", lang="de", speaker="anna", dur=1.25),
        Utterance("b/c.flac", "plain", dur=0.0),
        Utterance("d.wav", "no speaker, no duration"),
    ]
    manifest = write_manifest(tmp_path / "deep" / "train.jsonl", utterances)
    assert read_manifest(manifest) == utterances
    assert '"speaker"' not in manifest.read_text().splitlines()[2]
    assert "Grüße, 世界" in manifest.read_text(encoding="utf-8")  # stored as text, not escapes


def test_relative_paths_resolve_after_the_folder_moves(tmp_path):
    corpus = tmp_path / "corpus"
    audio = _clip(corpus / "clips" / "a.wav")
    manifest = corpus / "lists" / "train.jsonl"
    write_manifest(manifest, [Utterance(relative_audio(audio, manifest), "hello", dur=1.0)])
    assert read_manifest(manifest)[0].audio == "../clips/a.wav"
    moved = tmp_path / "elsewhere" / "corpus"
    shutil.move(corpus, moved)
    [utterance] = read_manifest(moved / "lists" / "train.jsonl")
    assert utterance.path(moved / "lists" / "train.jsonl").resolve() == (moved / "clips" / "a.wav").resolve()
    assert validate_manifest(moved / "lists" / "train.jsonl") == []


def test_validation_reports_each_kind_on_its_line(tmp_path):
    _clip(tmp_path / "good.wav")
    _clip(tmp_path / "long.wav", seconds=2.0)
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really audio")
    soundfile.write(tmp_path / "silent.wav", np.zeros(0, dtype=np.float32), RATE)
    manifest = write_manifest(
        tmp_path / "train.jsonl",
        [
            Utterance("good.wav", "fine", dur=1.0),  # line 1
            Utterance("absent.wav", "gone"),  # line 2
            Utterance("corrupt.wav", "broken"),  # line 3
            Utterance("long.wav", " \t ", dur=2.0),  # line 4
            Utterance("long.wav", "too short a dur", dur=1.0),  # line 5
            Utterance("good.wav", "again"),  # line 6
            Utterance("silent.wav", "nothing"),  # line 7
        ],
    )
    problems = validate_manifest(manifest)
    assert [(problem.line, problem.kind) for problem in problems] == [
        (2, ProblemKind.MISSING_AUDIO),
        (3, ProblemKind.UNREADABLE_AUDIO),
        (4, ProblemKind.EMPTY_TEXT),
        (5, ProblemKind.DUPLICATE_AUDIO),
        (5, ProblemKind.DURATION_MISMATCH),
        (6, ProblemKind.DUPLICATE_AUDIO),
        (7, ProblemKind.EMPTY_AUDIO),
    ]
    messages = {(problem.line, problem.kind): problem.message for problem in problems}
    assert "no such audio file" in messages[2, ProblemKind.MISSING_AUDIO]
    assert "cannot read audio file" in messages[3, ProblemKind.UNREADABLE_AUDIO]
    assert "'dur' is 1.000 s but the file lasts 2.000 s" in messages[5, ProblemKind.DURATION_MISMATCH]
    assert messages[6, ProblemKind.DUPLICATE_AUDIO] == "line 1 already uses this audio file"
    assert str(problems[0]).startswith("line 2: absent.wav: missing-audio: ")


def test_without_audio_checks_only_text_and_duplicates_are_reported(tmp_path):
    manifest = write_manifest(
        tmp_path / "train.jsonl",
        [Utterance("absent.wav", "x", dur=9.0), Utterance("./absent.wav", ""), Utterance("other.wav", "y")],
    )
    problems = validate_manifest(manifest, check_audio=False)
    assert [(problem.line, problem.kind) for problem in problems] == [
        (2, ProblemKind.EMPTY_TEXT),
        (2, ProblemKind.DUPLICATE_AUDIO),  # the same file, however the path is spelled
    ]


@pytest.mark.parametrize(
    ("dur", "tolerance", "mismatch"),
    [
        (1.0 + DURATION_TOLERANCE_SECONDS / 2, DURATION_TOLERANCE_SECONDS, False),
        (1.0 + DURATION_TOLERANCE_SECONDS * 2, DURATION_TOLERANCE_SECONDS, True),
        (1.02, 0.01, True),
        (0.9, 0.2, False),
    ],
)
def test_duration_tolerance(tmp_path, dur, tolerance, mismatch):
    _clip(tmp_path / "a.wav", seconds=1.0)
    manifest = write_manifest(tmp_path / "m.jsonl", [Utterance("a.wav", "text", dur=dur)])
    kinds = [problem.kind for problem in validate_manifest(manifest, duration_tolerance=tolerance)]
    assert kinds == ([ProblemKind.DURATION_MISMATCH] if mismatch else [])


def test_line_numbers_count_blank_lines_and_an_unreadable_manifest_raises(tmp_path):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text('\n{"audio": "a.wav", "text": ""}\n\n{"audio": "b.wav", "text": " "}\n')
    assert [problem.line for problem in validate_manifest(manifest, check_audio=False)] == [2, 4]
    manifest.write_text('{"audio": "a.wav", "text": "x"}\n{"audio": "b.wav"}\n')
    with pytest.raises(ManifestError, match=r"m\.jsonl:2: missing text"):
        validate_manifest(manifest)
    with pytest.raises(ManifestError, match="no such manifest"):
        validate_manifest(tmp_path / "absent.jsonl")
    with pytest.raises(ValueError, match="duration_tolerance"):
        validate_manifest(manifest, duration_tolerance=-1)


def test_with_durations_fills_only_missing_ones(tmp_path):
    _clip(tmp_path / "audio" / "a.wav", seconds=0.5)
    manifest = tmp_path / "m.jsonl"
    filled = with_durations([Utterance("audio/a.wav", "x"), Utterance("audio/a.wav", "y", dur=7.0)], manifest)
    assert [utterance.dur for utterance in filled] == [0.5, 7.0]
    with pytest.raises(AudioFileError, match="no such audio file"):
        with_durations([Utterance("audio/absent.wav", "x")], manifest)


def _speakers_corpus(speakers, per_speaker=3):
    return [
        Utterance(f"{speaker}/{index}.wav", "text", speaker=f"speaker{speaker}")
        for speaker in range(speakers)
        for index in range(per_speaker)
    ]


def _audio(utterances):
    return sorted(utterance.audio for utterance in utterances)


def test_split_by_speaker_is_deterministic_order_free_and_never_splits_a_speaker():
    utterances = _speakers_corpus(200)
    train, dev = split_manifest(utterances, 0.2)
    assert split_manifest(utterances, 0.2) == (train, dev)
    shuffled = utterances.copy()
    random.Random(1).shuffle(shuffled)
    shuffled_train, shuffled_dev = split_manifest(shuffled, 0.2)
    assert (_audio(shuffled_train), _audio(shuffled_dev)) == (_audio(train), _audio(dev))
    train_speakers = {utterance.speaker for utterance in train}
    dev_speakers = {utterance.speaker for utterance in dev}
    assert not train_speakers & dev_speakers
    assert len(train) + len(dev) == len(utterances)
    assert abs(len(dev_speakers) / 200 - 0.2) < 0.06  # 3 standard deviations of a binomial
    assert [utterance for utterance in utterances if utterance in dev] == dev  # input order kept


def test_split_is_stable_when_speakers_are_added_and_changes_with_the_seed():
    _, dev = split_manifest(_speakers_corpus(200), 0.2)
    _, bigger_dev = split_manifest(_speakers_corpus(300), 0.2)
    assert set(_audio(dev)) == {audio for audio in _audio(bigger_dev) if int(audio.split("/")[0]) < 200}
    _, other_dev = split_manifest(_speakers_corpus(200), 0.2, seed=1)
    assert _audio(other_dev) != _audio(dev)


def test_split_by_utterance_and_utterances_without_speaker():
    utterances = _speakers_corpus(2, per_speaker=100)
    train, dev = split_manifest(utterances, 0.3, by="utterance")
    assert {utterance.speaker for utterance in train} == {utterance.speaker for utterance in dev}
    assert abs(len(dev) / 200 - 0.3) < 0.1
    anonymous = [Utterance(f"{index}.wav", "text") for index in range(100)]
    train, dev = split_manifest(anonymous, 0.3, by="speaker")  # each its own group
    assert (train, dev) == split_manifest(anonymous, 0.3, by="utterance")
    assert abs(len(dev) / 100 - 0.3) < 0.15


@pytest.mark.parametrize("dev_fraction", [0.001, 0.999])
def test_a_side_left_empty_gets_the_group_nearest_the_cut(dev_fraction):
    for seed in range(10):
        train, dev = split_manifest(_speakers_corpus(2), dev_fraction, seed=seed)
        assert len({utterance.speaker for utterance in train}) == 1
        assert len({utterance.speaker for utterance in dev}) == 1


@pytest.mark.parametrize(
    ("utterances", "kwargs", "message"),
    [
        (_speakers_corpus(1), {}, r"cannot split 1 speaker group\(s\).*by='utterance'"),
        ([], {}, "cannot split 0 speaker"),
        (_speakers_corpus(1, per_speaker=1), {"by": "utterance"}, "cannot split 1 utterance"),
        (_speakers_corpus(3), {"dev_fraction": 0}, "strictly between 0 and 1"),
        (_speakers_corpus(3), {"dev_fraction": 1.5}, "strictly between 0 and 1"),
        (_speakers_corpus(3), {"by": "lang"}, "by must be one of"),
    ],
)
def test_split_errors(utterances, kwargs, message):
    kwargs = {"dev_fraction": 0.1, **kwargs}
    with pytest.raises(ValueError, match=message):
        split_manifest(utterances, **kwargs)
