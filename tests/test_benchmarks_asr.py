import json
import math

import pytest

from tests.benchmark_helpers import RATE, FakeClock, LookupTranscriber, write_corpus
from unispeech.benchmarks import asr
from unispeech.benchmarks.clips import read_clips, source_names
from unispeech.data.manifest import ManifestError
from unispeech.evaluation.metrics import word_error_rate
from unispeech.interfaces.cli import EXIT_USER_ERROR, main
from unispeech.model.adapters import add_task_adapter
from unispeech.tasks.decoding import DecodingOptions

# Four clips of distinct lengths; the fake transcriber answers by length.
ROWS = [
    {"samples": 8000, "text": "The cat sat.", "speaker": "a"},  # 0 errors / 3 words
    {"samples": 12000, "text": "a quick brown fox", "speaker": "a"},  # 1 deletion / 4
    {"samples": 16000, "text": "Hello, world!", "speaker": "b"},  # 1 insertion / 2
    {"samples": 20000, "text": "今日は良い天気", "lang": "ja", "speaker": "b"},  # 1 substitution / 7 chars
]
HYPOTHESES = {
    8000: "the cat sat",
    12000: "quick brown fox",
    16000: "hello there world",
    20000: "今日は悪い天気",
}


@pytest.fixture
def corpus(tmp_path):
    return write_corpus(tmp_path / "data", ROWS, name="mine.jsonl")


def test_error_rates_per_language_source_speaker_and_utterance(corpus, monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(asr, "time", clock)
    transcriber = LookupTranscriber(HYPOTHESES, clock, seconds_per_clip=0.25)
    options = asr.AsrBenchmarkOptions(batch_size=3)
    result = asr.score_asr(read_clips([corpus]), transcriber, options, progress=False)

    languages = {group.name: group for group in result.by_language()}
    assert languages["en"].metric == "WER" and languages["ja"].metric == "CER"
    assert languages["en"].count.rate == pytest.approx(2 / 9)
    assert languages["ja"].count.rate == pytest.approx(1 / 7)
    english = [row for row in ROWS if row.get("lang", "en") == "en"]
    expected = word_error_rate([r["text"] for r in english], [HYPOTHESES[r["samples"]] for r in english])
    assert languages["en"].count.rate == pytest.approx(expected), "group rate = evaluation's corpus WER"
    overall = result.overall()
    assert overall.metric == "CER/WER" and (overall.count.errors, overall.count.units) == (3, 16)
    speakers = {group.name: group.count.rate for group in result.by_speaker()}
    assert speakers == pytest.approx({"a": 1 / 7, "b": 2 / 9})
    assert [group.name for group in result.by_source()] == ["mine"]

    worst = result.worst(2)
    assert [u.clip.number for u in worst] == [3, 2], "1/2 before 1/4; the perfect clip is never listed"
    assert transcriber.calls[3] == (20000, "ja"), "each clip's manifest language reaches the system"
    audio_seconds = sum(row["samples"] for row in ROWS) / RATE
    assert result.audio_seconds == pytest.approx(audio_seconds)
    assert result.real_time_factor == pytest.approx(4 * 0.25 / audio_seconds)


def test_several_manifests_are_sources_and_same_names_are_told_apart(tmp_path):
    first = write_corpus(tmp_path / "x", ROWS[:1], name="dev.jsonl")
    second = write_corpus(tmp_path / "y", ROWS[1:3], name="dev.jsonl")
    assert source_names([first, second]) == ["x/dev", "y/dev"]
    clips = read_clips([first, second], limit=1)
    assert [(c.source, c.number) for c in clips] == [("x/dev", 1), ("y/dev", 1)], "limit is per manifest"
    result = asr.score_asr(read_clips([first, second]), LookupTranscriber(HYPOTHESES), progress=False)
    assert {g.name: g.count.rate for g in result.by_source()} == pytest.approx({"x/dev": 0.0, "y/dev": 2 / 6})


def test_unusable_lines_are_skipped_counted_and_reported(tmp_path):
    rows = [
        ROWS[0],
        {"missing": True, "text": "gone"},
        {"audio_bytes": b"not a wav", "text": "broken"},
        {"samples": 12000, "text": "   "},
    ]
    manifest = write_corpus(tmp_path, rows)
    result = asr.score_asr(read_clips([manifest]), LookupTranscriber(HYPOTHESES), progress=False)
    assert [u.clip.number for u in result.utterances] == [1]
    reasons = {s.number: s.reason for s in result.skipped}
    assert "no such audio file" in reasons[2] and "cannot read audio file" in reasons[3]
    assert reasons[4] == "empty text"
    report = asr.asr_report(result, [str(manifest)])
    assert report.data["skipped"][0]["number"] == 2 and "3 utterance(s) could not be used" in report.markdown


def test_the_cli_writes_the_report(corpus, tmp_path, monkeypatch, capsys):
    chosen = {}

    def fake_loader(
        model, adapters, whisper_weights, language_hint, batch_size, decoding, weight_format, languages
    ):
        chosen.update(model=model, adapters=adapters, hint=language_hint, weights=weight_format)
        chosen.update(languages=languages)
        assert decoding == DecodingOptions()
        return LookupTranscriber(HYPOTHESES, name=model)

    monkeypatch.setattr(asr, "load_transcriber", fake_loader)
    out = tmp_path / "report"
    assert main(["eval", "asr", "--manifest", str(corpus), "--model", "whisper-base", "--out", str(out)]) == 0
    assert chosen == {
        "model": "whisper-base",
        "adapters": "shipped",
        "hint": False,
        "weights": "fp16",
        "languages": ["en", "en", "en", "ja"],  # the clips' languages: each one's own adapters load
    }
    data = json.loads((out / "report.json").read_text())
    assert data["overall"]["errors"] == 3 and data["overall"]["reference_units"] == 16
    assert [g["error_rate"] for g in data["by_language"]] == pytest.approx([2 / 9, 1 / 7])
    assert len(data["utterances"]) == 4 and data["worst"][0]["hypothesis"] == "hello there world"
    markdown = (out / "report.md").read_text()
    assert "22.22 %" in markdown and "unispeech eval asr --manifest" in markdown
    assert (out / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "CER/WER 18.75 % on 4 utterances (0 skipped)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--ctc-weight", "0.3"], DecodingOptions(ctc_weight=0.3)),
        (["--speculative"], DecodingOptions(speculative=True)),
        (["--beam-size", "4", "--ctc-weight", "0.3"], DecodingOptions(beam_size=4, ctc_weight=0.3)),
    ],
)
def test_the_cli_decodes_with_the_decoding_flags(corpus, tmp_path, monkeypatch, flags, expected):
    chosen = []

    def fake_loader(
        model, adapters, whisper_weights, language_hint, batch_size, decoding, weight_format, languages
    ):
        chosen.append(decoding)
        return LookupTranscriber(HYPOTHESES, name=model)

    monkeypatch.setattr(asr, "load_transcriber", fake_loader)
    out = tmp_path / "report"
    assert main(["eval", "asr", "--manifest", str(corpus), "--out", str(out), *flags]) == 0
    assert chosen == [expected]
    assert " ".join(flags) in json.loads((out / "report.json").read_text())["command"]


def test_whisper_base_takes_no_ctc_options():
    with pytest.raises(ValueError, match="decoding options are for a unispeech model; whisper-base decodes"):
        asr.load_transcriber("whisper-base", decoding=DecodingOptions(ctc_weight=0.3))


def test_a_bad_ctc_weight_fails_before_the_model_loads(corpus, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(asr, "load_transcriber", lambda *args: pytest.fail("loaded a model"))
    command = ["eval", "asr", "--manifest", str(corpus), "--out", str(tmp_path / "out"), "--ctc-weight", "2"]
    assert main(command) == EXIT_USER_ERROR
    _one_line_error(capsys, "ctc_weight must be in [0, 1)")


def _one_line_error(capsys, message: str) -> None:
    """One error line on stderr (after any progress bar), no traceback."""
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error" in line]
    assert len(errors) == 1 and errors[0].startswith("unispeech eval: error: ") and message in errors[0]
    assert err.endswith(errors[0] + "\n") and "Traceback" not in err


@pytest.mark.parametrize(
    ("content", "loads_model", "message"),
    [
        (None, False, "no such manifest"),
        ("", False, "holds no utterances"),
        ('{"audio": "a.wav"}\n', False, "m.jsonl:1: missing text"),
        ('{"audio": "a.wav", "text": "gone"}\n', True, "no utterance could be scored: 1 skipped"),
    ],
)
def test_bad_manifests_are_one_line_errors(tmp_path, capsys, monkeypatch, content, loads_model, message):
    manifest = tmp_path / "m.jsonl"
    if content is not None:
        manifest.write_text(content)
    loaded = []
    monkeypatch.setattr(asr, "load_transcriber", lambda *args: loaded.append(1) or LookupTranscriber({}))
    command = ["eval", "asr", "--manifest", str(manifest), "--out", str(tmp_path / "out")]
    assert main(command) == EXIT_USER_ERROR
    _one_line_error(capsys, message)
    assert bool(loaded) == loads_model, "a broken manifest fails before the model loads"
    assert not (tmp_path / "out").exists()


def test_an_empty_manifest_list_is_refused():
    with pytest.raises(ManifestError, match="no manifest given"):
        read_clips([])


def test_the_tiny_model_runs_end_to_end(tiny_dir, tmp_path):
    manifest = write_corpus(tmp_path, ROWS[:2])
    transcriber = asr.load_transcriber(
        str(tiny_dir), adapters=None, weight_format="fp32"
    )  # adapter added below
    result = asr.score_asr(read_clips([manifest]), transcriber, progress=False)
    assert len(result.utterances) == 2 and result.compute_seconds > 0
    assert all(u.count.units in (3, 4) for u in result.utterances)

    add_task_adapter(transcriber.speech.model, "asr")
    scored = [u.clip for u in result.utterances]
    reliance = asr.score_reliance(transcriber.speech, scored)
    assert all(
        math.isfinite(v) and v > 0 for v in (reliance.matched, reliance.mismatched, reliance.no_speech)
    )
    report = asr.asr_report(result, [str(manifest)], reliance=reliance)
    assert (
        "## Does it listen?" in report.markdown
        and report.data["audio_reliance"]["matched"] == reliance.matched
    )
    assert asr.asr_report(result, [str(manifest)]).data["audio_reliance"] is None


def test_reliance_is_refused_for_whisper_base(corpus, capsys):
    argv = ["eval", "asr", "--model", "whisper-base", "--manifest", str(corpus), "--out", "x", "--reliance"]
    assert main(argv) == EXIT_USER_ERROR
    assert "--reliance scores a unispeech model's ASR adapter, not whisper-base" in capsys.readouterr().err


@pytest.mark.real
def test_whisper_base_on_the_bundled_sample(tmp_path):
    from unispeech.samples import LJSPEECH_SAMPLE

    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"audio": str(LJSPEECH_SAMPLE.path), "text": LJSPEECH_SAMPLE.text}) + "\n")
    result = asr.score_asr(read_clips([manifest]), asr.load_transcriber("whisper-base"), progress=False)
    assert result.overall().count.rate <= 0.1 and 0 < result.real_time_factor < 10


def test_a_sample_spreads_evenly_over_a_sorted_manifest(tmp_path):
    rows = [{"samples": 4000 + i, "text": f"digit {i // 5}"} for i in range(20)]  # sorted by label
    manifest = write_corpus(tmp_path, rows)
    clips = read_clips([manifest], sample=4)
    assert [c.number for c in clips] == [1, 6, 11, 16] and len({c.utterance.text for c in clips}) == 4
    assert len(read_clips([manifest], sample=50)) == 20
    with pytest.raises(ValueError, match="give limit or sample, not both"):
        read_clips([manifest], limit=2, sample=2)
