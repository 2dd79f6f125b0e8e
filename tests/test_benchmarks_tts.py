import json
import math

import numpy as np
import pytest

from tests.benchmark_helpers import RATE, FakeClock, LookupTranscriber, tone, write_corpus
from unispeech.benchmarks import asr, tts
from unispeech.benchmarks.clips import read_clips
from unispeech.interfaces.cli import EXIT_USER_ERROR, main

ROWS = [
    {"samples": 8000, "text": "the cat sat", "speaker": "a"},
    {"samples": 12000, "text": "a quick brown fox", "speaker": "a", "lang": "de"},  # spoken as German
    {"samples": 16000, "text": "hello world", "speaker": "b"},  # b's only recording: no prompt
    {"samples": 20000, "text": "nobody"},  # no speaker
]
SAMPLES_PER_CHARACTER = 800  # the fake synthesiser's output length: 8 800 and 13 600 samples


class FakeSynthesizer:
    name = "fake-tts"
    sample_rate = RATE

    def __init__(self, clock: FakeClock):
        self.clock, self.calls = clock, []

    def synthesize(self, text, prompt, prompt_text, language):
        self.calls.append((text, len(prompt), prompt_text, language))
        self.clock.advance(0.5)
        return tone(SAMPLES_PER_CHARACTER * len(text))


class AngleEncoder:
    """A 2-D unit embedding whose angle (degrees) is looked up by clip length."""

    def __init__(self, angles: dict[int, float]):
        self.angles = angles

    def embed(self, audio):
        angle = math.radians(self.angles[len(audio)])
        return np.array([math.cos(angle), math.sin(angle)])


@pytest.fixture
def clips(tmp_path):
    return read_clips([write_corpus(tmp_path, ROWS)])


def test_prompts_come_from_another_recording_of_the_same_speaker(clips):
    skipped = []
    pairs = tts.pair_by_speaker(clips, None, skipped)
    assert [(p.target.number, p.prompt.number) for p in pairs] == [(1, 2), (2, 1)]
    assert {s.number: s.reason for s in skipped} == {
        3: "the only recording of speaker 'b'",
        4: "no speaker: no other recording of the voice to prompt with",
    }
    assert [p.target.number for p in tts.pair_by_speaker(clips, ["b"], [])] == []
    with pytest.raises(ValueError, match=r"no utterance of speaker.*zed.*the manifests have a, b"):
        tts.pair_by_speaker(clips, ["zed"], [])


def test_three_recordings_pair_round_robin(tmp_path):
    rows = [{"samples": 8000 + 100 * i, "text": f"t{i}", "speaker": "s"} for i in range(3)]
    pairs = tts.pair_by_speaker(read_clips([write_corpus(tmp_path, rows)]), None, [])
    assert [(p.target.number, p.prompt.number) for p in pairs] == [(1, 2), (2, 3), (3, 1)]


def test_pairs_file(clips, tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text(
        json.dumps({"target": clips[2].utterance.audio, "prompt": clips[0].utterance.audio}) + "\n"
    )
    (pair,) = tts.read_pairs(path, clips)
    assert (pair.target.number, pair.prompt.number) == (3, 1)
    for line, message in [
        ('{"target": "x.wav", "prompt": "y.wav"}', "pairs.jsonl:1: not in the manifest"),
        ('{"target": "wavs/manifest-0.wav"}', 'expected {"target": AUDIO, "prompt": AUDIO}'),
        ('{"target": "wavs/manifest-0.wav", "prompt": "wavs/manifest-0.wav"}', "the prompt is the target"),
        ("", "holds no pairs"),
    ]:
        path.write_text(line + "\n")
        with pytest.raises(ValueError, match=message):
            tts.read_pairs(path, clips)


def test_round_trip_similarity_floor_ceiling_and_speed_by_hand(clips, tmp_path, monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(tts, "time", clock)
    synthesizer = FakeSynthesizer(clock)
    judge = LookupTranscriber(
        {8800: "the cat sat", 13600: "quick", 8000: "the cat", 12000: "a quick brown fox"}
    )
    # Real clips a0 at 0°, a1 at 60°; speech made in a1's voice at 60° (same), in a0's voice at 90°.
    encoder = AngleEncoder({8000: 0.0, 12000: 60.0, 8800: 60.0, 13600: 90.0})
    skipped = []
    pairs = tts.pair_by_speaker(clips, None, skipped)
    result = tts.score_tts(pairs, synthesizer, judge, encoder, skipped, tmp_path / "audio", progress=False)

    assert synthesizer.calls == [
        ("the cat sat", 12000, "a quick brown fox", "en"),
        ("a quick brown fox", 8000, "the cat sat", "de"),  # each target in its manifest language
    ]
    overall = result.overall()
    assert (overall.count.errors, overall.count.units) == (3, 7), "0/3 + 3 deletions/4"
    assert overall.real_count.rate == pytest.approx(1 / 7), "the judge on the real recordings"
    assert overall.similarity == pytest.approx((1.0 + 0.0) / 2)
    assert overall.real_similarity == pytest.approx(0.5), "cos 60°, two real clips"
    assert overall.real_time_factor == pytest.approx(2 * 0.5 / ((8800 + 13600) / RATE))
    assert overall.duration_error == pytest.approx((800 / 8000 + 1600 / 12000) / 2), "10 % and 13.3 % long"
    assert len(result.skipped) == 2
    assert sorted(p.name for p in (tmp_path / "audio").iterdir()) == ["manifest-1.wav", "manifest-2.wav"]

    report = tts.tts_report(result, ["m.jsonl"], {"steps": 8})
    assert report.data["overall"]["round_trip_error_rate"] == pytest.approx(3 / 7)
    assert report.chart.series["real recordings"] == pytest.approx([100 / 7, 50.0])
    assert "42.86 %" in report.markdown and "steps=8" in "\n".join(report.notes)
    assert "duration error **11.67 %**" in report.markdown


def test_a_failing_synthesis_is_skipped_and_counted(clips):
    class Refuses(FakeSynthesizer):
        def synthesize(self, text, prompt, prompt_text, language):
            if text == "the cat sat":
                raise ValueError("nothing to speak")
            return np.full(4000, np.nan, np.float32)  # a diverged model

    pairs = tts.pair_by_speaker(clips, None, [])
    with pytest.raises(ValueError, match="no pair could be scored: 2 skipped"):
        tts.score_tts(pairs, Refuses(FakeClock()), LookupTranscriber({}), AngleEncoder({}), progress=False)
    skipped = []
    with pytest.raises(ValueError):
        tts.score_tts(
            pairs, Refuses(FakeClock()), LookupTranscriber({}), AngleEncoder({}), skipped, progress=False
        )
    assert "synthesis failed: nothing to speak" in skipped[0].reason and "NaN" in skipped[1].reason


class AnyEncoder:
    def embed(self, audio):
        return np.array([1.0, 0.0])


class HearsNothing:
    name = "deaf"

    def transcribe(self, audios, languages):
        return ["" for _ in audios]


def test_the_cli_runs_the_tiny_model(tiny_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(tts.ResemblyzerEncoder, "load", classmethod(lambda cls: AnyEncoder()))
    monkeypatch.setattr(asr, "load_transcriber", lambda *args, **kwargs: HearsNothing())
    rows = [{"samples": 4000 + 1000 * i, "text": f"say {i}", "speaker": "s"} for i in range(3)]
    manifest = write_corpus(tmp_path / "data", rows)
    out = tmp_path / "out"
    command = ["eval", "tts", "--manifest", str(manifest), "--out", str(out), "--model", str(tiny_dir)]
    assert main([*command, "--steps", "1", "--guidance", "0", "--limit", "2"]) == 0
    data = json.loads((out / "report.json").read_text())
    assert data["overall"]["items"] == 2 and data["overall"]["round_trip_error_rate"] == 1.0
    assert data["settings"] == {"steps": 1, "guidance_strength": 0.0, "seed": 0, "start_time": 1.0}
    assert data["overall"]["similarity"] == pytest.approx(1.0) and data["overall"]["generated_seconds"] > 0
    assert len(list((out / "audio").iterdir())) == 2 and (out / "report.png").is_file()
    assert "2 pairs (0 skipped)" in capsys.readouterr().out


def test_the_cli_refuses_speakers_and_pairs_together(tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", "tts", "--manifest", "m", "--out", "o", "--speakers", "a", "--pairs", "p"])
    assert exit_info.value.code == EXIT_USER_ERROR


def test_resemblyzer_tells_a_voice_from_noise():
    pytest.importorskip("resemblyzer")
    from unispeech.audio.features import load_audio
    from unispeech.samples import LJSPEECH_SAMPLE
    from unispeech.testing import noise

    speech = load_audio(LJSPEECH_SAMPLE.path, tts.SPEAKER_SAMPLE_RATE)
    half = len(speech) // 2
    encoder = tts.ResemblyzerEncoder.load()
    first, second = encoder.embed(speech[:half]), encoder.embed(speech[half:])
    assert np.linalg.norm(first) == pytest.approx(1.0)
    same = tts.cosine(first, second)
    other = tts.cosine(first, encoder.embed(noise(2.0, tts.SPEAKER_SAMPLE_RATE)))
    assert same > 0.6 and same > other + 0.2  # measured: 0.72 for two 1.2 s halves, 0.47 for noise
