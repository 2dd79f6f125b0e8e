import logging

import numpy as np
import pytest
import soundfile

from unispeech.data.importers import DatasetError, import_folder, import_fsdd, import_ljspeech
from unispeech.data.manifest import ProblemKind, Utterance, read_manifest, validate_manifest

RATE = 8000


def _clip(path, seconds=0.5, rate=RATE, **kwargs):
    path.parent.mkdir(parents=True, exist_ok=True)
    samples = np.random.default_rng(0).uniform(-0.5, 0.5, round(seconds * rate)).astype(np.float32)
    soundfile.write(path, samples, rate, **kwargs)
    return path


def _kinds(result):
    return [(problem.line, problem.kind) for problem in result.problems]


def test_ljspeech(tmp_path, caplog):
    corpus = tmp_path / "LJSpeech"
    _clip(corpus / "wavs" / "LJ001-0001.wav", seconds=1.0, rate=22050)
    _clip(corpus / "wavs" / "LJ001-0002.wav", seconds=0.25, rate=22050)
    _clip(corpus / "wavs" / "LJ001-0005.wav")
    (corpus / "wavs" / "LJ001-0006.wav").write_bytes(b"not audio")
    (corpus / "metadata.csv").write_text(
        "LJ001-0001|Dr. Smith, 1850.|Doctor Smith, eighteen fifty.\n"  # line 1: the normalised text
        "LJ001-0002|in being modern.|\n"  # line 2: no normalised text, the raw one
        "LJ001-0003|no audio for this one|no audio for this one\n"  # line 3
        "\n"  # line 4: blank, skipped quietly
        "no separator at all\n"  # line 5
        "LJ001-0005| | \n"  # line 6: no text
        "LJ001-0006|unreadable|unreadable\n",  # line 7
        encoding="utf-8",
    )
    manifest = tmp_path / "lists" / "lj.jsonl"
    with caplog.at_level(logging.INFO, logger="unispeech.data.importers"):
        result = import_ljspeech(corpus, manifest, lang="en-us")
    assert result.utterances == [
        Utterance(
            "../LJSpeech/wavs/LJ001-0001.wav", "Doctor Smith, eighteen fifty.", "en-us", "ljspeech", 1.0
        ),
        Utterance("../LJSpeech/wavs/LJ001-0002.wav", "in being modern.", "en-us", "ljspeech", 0.25),
    ]
    assert read_manifest(manifest) == result.utterances
    assert validate_manifest(manifest) == []
    assert _kinds(result) == [
        (5, ProblemKind.MALFORMED_LINE),
        (3, ProblemKind.MISSING_AUDIO),
        (6, ProblemKind.EMPTY_TEXT),
        (7, ProblemKind.UNREADABLE_AUDIO),
    ]
    assert result.problems[1].audio.endswith("LJ001-0003.wav")
    assert "id|raw|normalised" in result.problems[0].message
    assert result.skipped["missing-audio"] == 1
    assert "2 utterances written" in caplog.text and "4 skipped" in caplog.text
    assert import_ljspeech(corpus, manifest, speaker=None).utterances[0].speaker is None


def test_fsdd(tmp_path):
    recordings = tmp_path / "fsdd" / "recordings"
    _clip(recordings / "0_george_0.wav")
    _clip(recordings / "7_yweweler_12.wav", seconds=0.375)
    _clip(recordings / "hello.wav")
    _clip(recordings / "10_george_1.wav")
    (recordings / "notes.md").write_text("not a recording")
    manifest = tmp_path / "fsdd" / "all.jsonl"
    result = import_fsdd(tmp_path / "fsdd", manifest)
    assert result.utterances == [
        Utterance("recordings/0_george_0.wav", "zero", "en", "george", 0.5),
        Utterance("recordings/7_yweweler_12.wav", "seven", "en", "yweweler", 0.375),
    ]
    assert read_manifest(manifest) == result.utterances
    assert [problem.kind for problem in result.problems] == [ProblemKind.MALFORMED_NAME] * 2
    assert sorted(problem.audio.rsplit("/", 1)[1] for problem in result.problems) == [
        "10_george_1.wav",
        "hello.wav",
    ]
    assert "{digit}_{speaker}_{index}.wav" in result.problems[0].message


@pytest.mark.parametrize("speaker_from", [None, "folder"])
def test_folder_of_audio_with_transcripts(tmp_path, speaker_from):
    corpus = tmp_path / "corpus"
    _clip(corpus / "anna" / "a.wav")
    (corpus / "anna" / "a.txt").write_text("  hello\nworld \n", encoding="utf-8")
    _clip(corpus / "ben" / "deeper" / "b.flac", seconds=0.25)
    (corpus / "ben" / "deeper" / "b.txt").write_text("grüße", encoding="utf-8")
    _clip(corpus / "ben" / "c.ogg")  # no transcript
    _clip(corpus / "ben" / "d.WAV")
    (corpus / "ben" / "d.txt").write_text(" \n")  # empty transcript
    _clip(corpus / "ben" / "e.wav")
    (corpus / "ben" / "e.txt").write_bytes(b"\xff\xfe bad bytes")
    (corpus / "ben" / "f.wav").write_bytes(b"not audio")
    (corpus / "ben" / "f.txt").write_text("unreadable audio")
    (corpus / "README.txt").write_text("a transcript-like file with no audio is not an utterance")
    manifest = corpus / "train.jsonl"
    result = import_folder(corpus, manifest, lang="de", speaker_from=speaker_from)
    assert result.utterances == [
        Utterance("anna/a.wav", "hello world", "de", "anna" if speaker_from else None, 0.5),
        Utterance("ben/deeper/b.flac", "grüße", "de", "deeper" if speaker_from else None, 0.25),
    ]
    assert read_manifest(manifest) == result.utterances
    assert [(problem.audio.rsplit("/", 1)[1], problem.kind) for problem in result.problems] == [
        ("c.ogg", ProblemKind.MISSING_TRANSCRIPT),
        ("e.wav", ProblemKind.UNREADABLE_TRANSCRIPT),
        ("d.WAV", ProblemKind.EMPTY_TEXT),
        ("f.wav", ProblemKind.UNREADABLE_AUDIO),
    ]
    assert result.summary().endswith(
        "4 skipped (1 empty-text, 1 missing-transcript, 1 unreadable-audio, 1 unreadable-transcript)"
    )


@pytest.mark.parametrize(
    ("speaker", "speaker_from", "expected"),
    [("kathleen", None, "kathleen"), (None, "name", "103"), (None, "folder", "chapter"), (None, None, None)],
)
def test_folder_speaker_fixed_or_from_the_name(tmp_path, speaker, speaker_from, expected):
    _clip(tmp_path / "chapter" / "103-1240-0000.flac")
    (tmp_path / "chapter" / "103-1240-0000.txt").write_text("a librispeech-style name")
    result = import_folder(tmp_path, tmp_path / "m.jsonl", speaker=speaker, speaker_from=speaker_from)
    assert [utterance.speaker for utterance in result.utterances] == [expected]


def test_folder_refuses_a_speaker_and_a_rule_together(tmp_path):
    with pytest.raises(ValueError, match="not both"):
        import_folder(tmp_path, tmp_path / "m.jsonl", speaker="a", speaker_from="name")
    with pytest.raises(ValueError, match="speaker_from must be one of"):
        import_folder(tmp_path, tmp_path / "m.jsonl", speaker_from="file")


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".ogg", ".mp3"])
def test_folder_reads_every_common_format(tmp_path, suffix):
    _clip(tmp_path / f"clip{suffix}", seconds=1.0)
    (tmp_path / "clip.txt").write_text("one second")
    [utterance] = import_folder(tmp_path, tmp_path / "m.jsonl").utterances
    assert utterance.audio == f"clip{suffix}"
    assert utterance.dur == pytest.approx(1.0, abs=0.05)  # mp3 headers may count encoder padding


@pytest.mark.parametrize(
    ("importer", "message"),
    [
        (import_ljspeech, "no metadata.csv in"),
        (import_fsdd, "no recordings/ folder in"),
        (import_folder, "no such folder"),
    ],
)
def test_a_folder_of_the_wrong_layout_raises(tmp_path, importer, message):
    with pytest.raises(DatasetError, match=message):
        importer(tmp_path / "absent", tmp_path / "m.jsonl")
    assert not (tmp_path / "m.jsonl").exists()
