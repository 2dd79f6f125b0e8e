import json

import pytest

from tests.benchmark_helpers import RATE, tiny_whisper, write_corpus
from unispeech.benchmarks import speed
from unispeech.benchmarks.clips import read_clips
from unispeech.interfaces.cli import EXIT_USER_ERROR, main
from unispeech.model.flow import FlowMatching

GIB = speed.GIB
ROWS = [
    {"samples": 8000, "text": "the cat sat", "speaker": "a"},
    {"samples": 16000, "text": "a quick brown fox", "speaker": "a"},
    {"samples": 4000, "text": "hello", "speaker": "b"},
]


@pytest.fixture
def manifest(tmp_path):
    return write_corpus(tmp_path / "data", ROWS)


def _canned(job: speed.SpeedJob) -> dict:
    """What children would report: ours takes 3 s and 1.5 GiB, whisper 1 s and 0.5 GiB, for 2 s of audio."""
    ours = job.model != speed.WHISPER_BASE
    memory = {"baseline_rss_bytes": GIB, "peak_rss_bytes": int((2.5 if ours else 1.5) * GIB)}
    memory["peak_added_bytes"] = memory["peak_rss_bytes"] - GIB
    if job.system == speed.TTS:
        timings = {str(n): {"compute_seconds": n * 0.5, "generated_seconds": 2.0} for n in job.nfe}
        return {"nfe": timings, "pairs": len(job.pairs), "load_seconds": 1.0, **memory}
    return {"audio_seconds": 2.0, "compute_seconds": 3.0 if ours else 1.0, "load_seconds": 1.0, **memory}


def test_ratios_and_jobs_with_an_injected_runner(manifest):
    jobs = []

    def runner(job):
        jobs.append(job)
        return _canned(job)

    options = speed.SpeedOptions(nfe=(4, 8), tts_clips=2, threads=3)
    result = speed.measure_speed(
        read_clips([manifest]), "mine", None, "w.pt", options, runner, progress=False
    )
    assert [(job.system, job.model) for job in jobs] == [
        ("asr", "mine"),
        ("asr", "whisper-base"),
        ("tts", "mine"),
    ]
    assert jobs[0].clips == jobs[1].clips and len(jobs[0].clips) == 3, "the same clips for both systems"
    assert {job.threads for job in jobs} == {3} and jobs[1].whisper == "w.pt"
    assert jobs[2].pairs == [(0, 1), (1, 0)] and jobs[2].nfe == [4, 8], "b's clip has no other recording"
    assert result.audio_seconds == pytest.approx(sum(r["samples"] for r in ROWS) / RATE)

    report = speed.speed_report(result, [str(manifest)])
    assert report.data["ratios"] == pytest.approx(
        {"real_time_factor": 3.0, "peak_added": 3.0, "peak_rss": 2.5 / 1.5}
    )
    assert report.data["asr"]["mine"]["real_time_factor"] == pytest.approx(1.5)
    assert report.data["asr"]["whisper-base"]["rtfx"] == pytest.approx(2.0)
    assert report.data["tts"]["8"]["real_time_factor"] == pytest.approx(2.0)
    assert "**3.00×** the compute time" in report.markdown
    assert report.chart.categories == [
        "ASR RTF",
        "ASR peak memory added (GiB)",
        "TTS RTF, NFE 4",
        "TTS RTF, NFE 8",
    ]
    assert report.chart.series["whisper-base"] == [0.5, 0.5, None, None]
    assert report.data["decoding"] == {"ctc_weight": None, "speculative": None}
    assert any("speculative where the adapter has a CTC head (one clip at a time)" in n for n in report.notes)


def test_the_ctc_options_reach_our_model_only(manifest):
    jobs = []

    def runner(job):
        jobs.append(job)
        return _canned(job)

    options = speed.SpeedOptions(tts_clips=0, ctc_weight=0.3, speculative=False, weight_format="fp32")
    result = speed.measure_speed(
        read_clips([manifest]), "mine", None, "w.pt", options, runner, progress=False
    )
    assert [(job.model, job.ctc_weight, job.speculative, job.weight_format) for job in jobs] == [
        ("mine", 0.3, False, "fp32"),
        ("whisper-base", None, None, "fp16"),  # the default, which whisper-base's child never reads
    ]
    report = speed.speed_report(result, [str(manifest)])
    assert report.data["decoding"] == {"ctc_weight": 0.3, "speculative": False}
    assert report.data["weight_format"] == "fp32"
    expected = (
        "- `mine` decodes ASR greedily with ctc_weight 0.3, speculative off, its backbone weights in fp32"
    )
    assert any(note.startswith(expected) for note in report.notes)
    with pytest.raises(ValueError, match="weight_format must be one of fp32, fp16, got 'int3'"):
        speed.SpeedOptions(weight_format="int3")
    with pytest.raises(ValueError, match=r"ctc_weight must be in \[0, 1\)"):
        speed.SpeedOptions(speculative=True, ctc_weight=2.0)


def test_jobs_run_in_process_with_tiny_models(manifest, tiny_dir, tmp_path, monkeypatch):
    clips = [{"path": str(c.path), "lang": "en", "text": c.utterance.text} for c in read_clips([manifest])]
    common = {"adapters": None, "whisper": str(tiny_whisper(tmp_path / "w.safetensors")), "clips": clips[:2]}
    common |= {"threads": 1, "warmup": False}
    for model in (str(tiny_dir), speed.WHISPER_BASE):
        result = speed.run_job(speed.SpeedJob(speed.ASR, model, **common), progress=False)
        assert (
            result["audio_seconds"] == pytest.approx((8000 + 16000) / RATE) and result["compute_seconds"] > 0
        )
        assert result["peak_rss_bytes"] >= result["baseline_rss_bytes"] > 0
    integrations = []
    sample = FlowMatching.sample

    def counting_sample(velocity_fn, noise, steps, *args, start_time=0.0, **kwargs):
        integrations.append((steps, start_time))
        return sample(velocity_fn, noise, steps, *args, start_time=start_time, **kwargs)

    monkeypatch.setattr(FlowMatching, "sample", staticmethod(counting_sample))
    tts_job = speed.SpeedJob(speed.TTS, str(tiny_dir), pairs=[(0, 1)], nfe=[0, 2], start_time=0.5, **common)
    result = speed.run_job(tts_job, progress=False)
    assert set(result["nfe"]) == {"0", "2"} and result["pairs"] == 1
    assert all(t["generated_seconds"] > 0 and t["compute_seconds"] > 0 for t in result["nfe"].values())
    assert integrations == [(2, 0.5)], "NFE 0 speaks the prior without integrating; NFE 2 starts at 0.5"


@pytest.mark.parametrize(
    ("fields", "message"),
    [({"nfe": (-1,)}, "nfe must be step counts >= 0"), ({"start_time": 1.0}, r"start_time .* \[0, 1\)")],
)
def test_bad_tts_sweeps_are_refused(fields, message):
    with pytest.raises(ValueError, match=message):
        speed.SpeedOptions(**fields)


def test_a_child_process_reports_its_peak_memory(manifest, tiny_dir):
    (clip, *_) = read_clips([manifest])
    clips = [{"path": str(clip.path), "lang": "en", "text": clip.utterance.text}]
    job = speed.SpeedJob(speed.ASR, str(tiny_dir), None, "smol", clips, threads=1, warmup=False)
    result = speed.run_in_subprocess(job)
    assert result["audio_seconds"] == pytest.approx(0.5) and result["compute_seconds"] > 0
    assert result["peak_rss_bytes"] >= result["baseline_rss_bytes"] > 100 * 2**20, "torch alone is > 100 MiB"
    assert result["peak_added_bytes"] == result["peak_rss_bytes"] - result["baseline_rss_bytes"]


def test_a_failing_child_writes_its_error(tmp_path):
    job = speed.SpeedJob(speed.ASR, str(tmp_path / "nowhere"), None, "smol", [], threads=1, warmup=False)
    job_path, result_path = tmp_path / "job.json", tmp_path / "result.json"
    job_path.write_text(json.dumps(speed.asdict(job)))
    assert speed.child_main([str(job_path), str(result_path)]) == 1
    assert "no model at" in json.loads(result_path.read_text())["error"]


def test_the_cli_refuses_to_compare_whisper_with_itself(manifest, tmp_path, capsys):
    command = [
        "eval",
        "speed",
        "--manifest",
        str(manifest),
        "--out",
        str(tmp_path / "o"),
        "--model",
        "whisper-base",
    ]
    assert main(command) == EXIT_USER_ERROR
    assert "not whisper-base itself" in capsys.readouterr().err


def test_the_cli_checks_nfe(manifest, tmp_path, capsys):
    command = ["eval", "speed", "--manifest", str(manifest), "--out", str(tmp_path / "o"), "--nfe", "8,x"]
    assert main(command) == EXIT_USER_ERROR
    assert "--nfe takes comma-separated step counts" in capsys.readouterr().err
