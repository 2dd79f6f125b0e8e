import json

import pytest

from tests.benchmark_helpers import write_corpus
from unispeech.benchmarks import commands, ger
from unispeech.data.nbest import NbestItem, read_nbest
from unispeech.interfaces.cli import EXIT_USER_ERROR, main
from unispeech.tasks.correction import NoHarmGate

# reference, hypotheses (best first), what the fake corrector writes
CASES = [
    ("the cat sat", ["the cat sad", "the cat sat"], "the cat sat"),  # 1/3 → 0; oracle 0
    (
        "hello world",
        ["hello word", "yellow word"],
        "hello big world",
    ),  # 1/2 → 1/2 (one insertion); oracle 1/2
    ("a quick brown fox", ["a quick brown fox"], "quick brown fox"),  # 0 → 1/4; oracle 0
]


class ScriptedCorrector:
    name = "scripted"

    def __init__(self, answers):
        self.answers, self.calls = answers, []

    def correct(self, nbest_lists, audios):
        self.calls.append((list(map(list, nbest_lists)), list(audios)))
        return [self.answers[tuple(hypotheses)] for hypotheses in nbest_lists]


def _write(path, cases=CASES, audio=None):
    items = [NbestItem(hyps, ref, audio, "en") for ref, hyps, _ in cases]
    path.write_text("".join(item.to_json() + "\n" for item in items))
    return path


def _corrector(cases=CASES):
    return ScriptedCorrector({tuple(hyps): corrected for _, hyps, corrected in cases})


def test_first_corrected_and_oracle_rates_by_hand(tmp_path):
    path = _write(tmp_path / "n.jsonl")
    corrector = _corrector()
    options = ger.GerBenchmarkOptions(batch_size=2)
    result = ger.score_ger(read_nbest(path), corrector, path, options, progress=False)
    totals = result.totals()
    assert {name: (c.errors, c.units) for name, c in totals.items()} == {
        ger.FIRST: (2, 9),
        ger.CORRECTED: (2, 9),
        ger.ORACLE: (1, 9),
    }
    assert [item.oracle for item in result.items] == ["the cat sat", "hello word", "a quick brown fox"]
    assert (result.improved, result.worsened) == (1, 1)
    assert [len(call[0]) for call in corrector.calls] == [2, 1], "batches of two lists"
    assert corrector.calls[0][1] == [None, None], "no audio unless asked"

    report = ger.ger_report(result, [str(path)], options)
    assert report.data["error_rates"] == pytest.approx(
        {ger.FIRST: 2 / 9, ger.CORRECTED: 2 / 9, ger.ORACLE: 1 / 9}
    )
    assert report.chart.series["scripted"] == pytest.approx([200 / 9, 200 / 9, 100 / 9])
    assert "removed errors in 1 lists and added errors in 1" in report.markdown


def test_with_audio_passes_recordings_and_skips_lists_without_them(tmp_path):
    manifest = write_corpus(tmp_path, [{"samples": 8000, "text": "x"}])
    path = tmp_path / "n.jsonl"
    items = [
        NbestItem(CASES[0][1], CASES[0][0], "wavs/manifest-0.wav", "en"),
        NbestItem(CASES[1][1], CASES[1][0], "wavs/missing.wav", "en"),
        NbestItem(CASES[2][1], CASES[2][0], None, "en"),
        NbestItem(CASES[0][1], CASES[0][0], "wavs/clean.wav", "en", heard="wavs/manifest-0.wav"),
    ]
    path.write_text("".join(item.to_json() + "\n" for item in items))
    corrector = _corrector()
    options = ger.GerBenchmarkOptions(with_audio=True)
    result = ger.score_ger(read_nbest(path), corrector, path, options, progress=False)
    heard = manifest.parent / "wavs/manifest-0.wav"
    assert corrector.calls[0][1] == [heard, heard], "a perturbed copy is heard instead of the recording"
    assert [(s.number, s.reason.split(":")[0]) for s in result.skipped] == [
        (2, "no such audio file"),
        (3, "no audio path"),
    ]


def test_the_cli_writes_the_report_with_an_injected_model(tmp_path, monkeypatch, capsys):
    class FakeSpeech:
        def correct(self, lists, audio, options):
            assert audio is None
            return [_corrector().answers[tuple(hypotheses)] for hypotheses in lists]

    monkeypatch.setattr(commands, "load_speech", lambda args: FakeSpeech())
    path = _write(tmp_path / "n.jsonl")
    out = tmp_path / "out"
    assert main(["eval", "ger", "--nbest", str(path), "--out", str(out), "--limit", "2"]) == 0
    data = json.loads((out / "report.json").read_text())
    assert data["lists"] == 2 and data["errors"] == {ger.FIRST: 2, ger.CORRECTED: 1, ger.ORACLE: 1}
    assert (out / "report.md").is_file() and (out / "report.png").is_file()
    assert "WER 1-best 40.00 %, corrected 20.00 %, oracle 20.00 %" in capsys.readouterr().out


def test_several_files_are_scored_together_and_by_file(tmp_path, monkeypatch):
    class FakeSpeech:
        def correct(self, lists, audio, options):
            return [_corrector().answers[tuple(hypotheses)] for hypotheses in lists]

    monkeypatch.setattr(commands, "load_speech", lambda args: FakeSpeech())
    first, second = _write(tmp_path / "a.jsonl", CASES[:2]), _write(tmp_path / "b.jsonl", CASES[2:])
    out = tmp_path / "out"
    assert main(["eval", "ger", "--nbest", str(first), str(second), "--out", str(out)]) == 0
    data = json.loads((out / "report.json").read_text())
    assert data["lists"] == 3 and data["nbest_files"] == [str(first), str(second)]
    assert [item["source"] for item in data["items"]] == ["a", "a", "b"]
    groups = data["groups"]
    assert groups["a"] == pytest.approx(
        {"lists": 2, ger.FIRST: 2 / 5, ger.CORRECTED: 1 / 5, ger.ORACLE: 1 / 5, "improved": 1, "worsened": 0}
    )
    # the fox list's 1-best is right: the corrector could only add errors there, and did
    assert groups[ger.RIGHT_FIRST] == pytest.approx(
        {"lists": 1, ger.FIRST: 0.0, ger.CORRECTED: 1 / 4, ger.ORACLE: 0.0, "improved": 0, "worsened": 1}
    )
    markdown = (out / "report.md").read_text()
    assert "## Where it helps and where it hurts" in markdown and "| b:1 | -1 |" in markdown


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "No such file"), ("", "holds no N-best lists"), ("[1, 2]", "item 1 is not")],
)
def test_bad_nbest_files_are_one_line_errors(tmp_path, monkeypatch, capsys, content, message):
    monkeypatch.setattr(commands, "load_speech", lambda args: pytest.fail("the model must not load"))
    path = tmp_path / "n.jsonl"
    if content is not None:
        path.write_text(content)
    assert main(["eval", "ger", "--nbest", str(path), "--out", str(tmp_path / "out")]) == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert err.startswith("unispeech eval: error: ") and message in err and err.count("\n") == 1


def test_the_tiny_model_corrects_end_to_end(tiny_sdpa, tmp_path):
    from unispeech.api import Unispeech
    from unispeech.audio.vocoder import GriffinLim

    model, processor = tiny_sdpa
    path = _write(tmp_path / "n.jsonl", CASES[:2])
    corrector = ger.UnispeechCorrector(Unispeech(model, processor, GriffinLim(model.config.mel_settings)))
    result = ger.score_ger(read_nbest(path), corrector, path, progress=False)
    assert len(result.items) == 2 and result.totals()[ger.FIRST].rate == pytest.approx(2 / 5)


def test_the_rescoring_baseline_chooses_within_each_list(tiny_sdpa, tmp_path):
    from unispeech.api import Unispeech
    from unispeech.audio.vocoder import GriffinLim
    from unispeech.tasks.rescoring import language_model_scores

    model, processor = tiny_sdpa
    speech = Unispeech(model, processor, GriffinLim(model.config.mel_settings))
    path = _write(tmp_path / "n.jsonl", CASES)
    from unispeech.tasks.rescoring import Rescorer

    never_moves = ger.score_ger(
        read_nbest(path), ger.RescoringCorrector(speech, Rescorer(1e9)), path, progress=False
    )
    assert [item.corrected for item in never_moves.items] == [hyps[0] for _, hyps, _ in CASES]
    lm_only = ger.score_ger(
        read_nbest(path), ger.RescoringCorrector(speech, Rescorer(0.0)), path, progress=False
    )
    for item in lm_only.items:
        scores = language_model_scores(model, processor, item.item.input)
        assert item.corrected == item.item.input[scores.index(max(scores))]


def test_the_cli_can_score_the_baseline_or_the_ungated_corrector(tmp_path, monkeypatch):
    seen = []

    class FakeSpeech:
        def correct(self, lists, audio, options):
            seen.append(options.gate)
            return [hypotheses[0] for hypotheses in lists]

    monkeypatch.setattr(commands, "load_speech", lambda args: FakeSpeech())
    monkeypatch.setattr(ger, "language_model_scores", lambda model, processor, texts: [0.0] * len(texts))
    FakeSpeech.model = FakeSpeech.processor = None
    path = _write(tmp_path / "n.jsonl")
    assert main(["eval", "ger", "--nbest", str(path), "--out", str(tmp_path / "a"), "--no-gate"]) == 0
    assert seen == [None]
    gated = ["eval", "ger", "--nbest", str(path), "--out", str(tmp_path / "g"), "--gate", "3", "9", "0.5"]
    assert main(gated) == 0
    assert seen[-1] == NoHarmGate(margin=3.0, single_margin=9.0, max_distance=0.5)
    corrections = len(seen)
    assert (
        main(["eval", "ger", "--nbest", str(path), "--out", str(tmp_path / "b"), "--rescore", "2", "1"]) == 0
    )
    data = json.loads((tmp_path / "b" / "report.json").read_text())
    assert data["corrector"] == "LM rescoring" and len(seen) == corrections, "the corrector never ran"
