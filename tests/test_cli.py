import json

import numpy as np
import pytest
import soundfile

from unispeech.interfaces.cli import EXIT_USER_ERROR, main


def test_check_runs_the_tiny_model_on_the_bundled_sample(capsys):
    assert main(["check", "--model", "tiny"]) == 0
    out = capsys.readouterr().out
    assert "tiny, random weights" in out
    assert "1 ASR + 1 TTS sample" in out and "losses ASR" in out


def _one_line_error(capsys, command: str, message: str) -> None:
    captured = capsys.readouterr()
    assert captured.err.startswith(f"unispeech {command}: error: ") and message in captured.err
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err + captured.out


def test_a_missing_model_is_one_line_on_stderr(capsys, tmp_path):
    assert main(["check", "--model", str(tmp_path)]) == EXIT_USER_ERROR
    _one_line_error(capsys, "check", "no config.json")


def test_weights_check_of_a_missing_cache(capsys, tmp_path):
    assert main(["weights", "check", "--cache", str(tmp_path)]) == EXIT_USER_ERROR
    _one_line_error(capsys, "weights", "no finished cache")


def test_unknown_command_is_a_usage_error():
    with pytest.raises(SystemExit) as exit_info:
        main(["transcribe-everything"])
    assert exit_info.value.code == EXIT_USER_ERROR


@pytest.mark.parametrize(
    ("write", "message"),
    [
        (None, "no such audio file"),
        (lambda path: path.write_bytes(b"garbage"), "cannot read audio file"),
        (lambda path: soundfile.write(path, np.zeros(0, np.float32), 22050), "audio is empty"),
        (lambda path: soundfile.write(path, np.zeros(50, np.float32), 22050), "too short for a mel frame"),
    ],
)
def test_vocode_bad_input(capsys, tmp_path, write, message):
    source = tmp_path / "in.wav"
    if write:
        write(source)
    assert (
        main(["vocode", str(source), "-o", str(tmp_path / "out.wav"), "--vocoder", "griffin-lim"])
        == EXIT_USER_ERROR
    )
    _one_line_error(capsys, "vocode", message)
    assert not (tmp_path / "out.wav").exists()


@pytest.mark.real
def test_vocode_writes_the_resynthesis(capsys, tmp_path):
    from unispeech.samples import LJSPEECH_SAMPLE

    output = tmp_path / "out.wav"
    assert main(["vocode", str(LJSPEECH_SAMPLE.path), "-o", str(output)]) == 0
    info, original = soundfile.info(output), soundfile.info(LJSPEECH_SAMPLE.path)
    assert info.samplerate == 22050 and abs(info.frames - original.frames) < 256
    assert "22050 Hz" in capsys.readouterr().out


def test_vocode_with_griffin_lim_needs_no_weights(tmp_path):
    from unispeech.samples import LJSPEECH_SAMPLE

    assert (
        main(
            ["vocode", str(LJSPEECH_SAMPLE.path), "-o", str(tmp_path / "gl.wav"), "--vocoder", "griffin-lim"]
        )
        == 0
    )
    assert soundfile.info(tmp_path / "gl.wav").duration > 2.0


def test_vocode_with_a_missing_vocoder(capsys, tmp_path):
    from unispeech.samples import LJSPEECH_SAMPLE

    assert (
        main(["vocode", str(LJSPEECH_SAMPLE.path), "-o", str(tmp_path / "x.wav"), "--vocoder", str(tmp_path)])
        == 2
    )
    _one_line_error(capsys, "vocode", "no vocoder at")


def _write(path, audio, rate=16000):
    soundfile.write(path, audio, rate, subtype="FLOAT")  # float keeps NaN, as a corrupt file may hold
    return str(path)


def test_transcribe_files_as_text_nbest_and_json(capsys, tiny_dir, tmp_path):
    from tests.conftest import speech_clip

    soundfile.write(tmp_path / "b.flac", speech_clip(0.3, 16000, 1), 16000)
    files = [_write(tmp_path / "a.wav", speech_clip(0.4, 16000)), str(tmp_path / "b.flac")]
    model = ["--model", str(tiny_dir), "--adapters", "none"]
    assert main(["transcribe", *files, *model]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in lines] == files
    assert main(["transcribe", files[0], "--json", "--nbest", "2", *model]) == 0
    record = json.loads(capsys.readouterr().out)
    assert (
        record["file"] == files[0]
        and len(record["nbest"]) == 2
        and record["chunks"][0]["timestamp"] == [0.0, 0.4]
    )


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda path: None, "no such audio file"),
        (lambda path: path.write_bytes(b"not audio at all"), "cannot read audio file"),
        (lambda path: _write(path, np.zeros(0, np.float32)), "audio is empty"),
        (lambda path: _write(path, np.full(1600, np.nan, np.float32), 16000), "NaN"),
    ],
)
def test_transcribe_bad_input(capsys, tiny_dir, tmp_path, make, message):
    path = tmp_path / "in.wav"
    make(path)
    args = ["transcribe", str(path), "--model", str(tiny_dir), "--adapters", "none"]
    assert main(args) == EXIT_USER_ERROR
    _one_line_error(capsys, "transcribe", message)


def test_transcribe_in_another_language_uses_its_adapters(capsys, tiny_dir, tmp_path, monkeypatch):
    from tests.conftest import speech_clip
    from tests.test_api import save_adapters
    from unispeech.api import Unispeech
    from unispeech.model.adapters import active_task

    save_adapters(tiny_dir, tmp_path / "adapters", ["asr", "de/asr"])
    used = []
    original = Unispeech._use

    def spy(self, *args):
        served = original(self, *args)
        used.append(active_task(self.model))
        return served

    monkeypatch.setattr(Unispeech, "_use", spy)
    audio = _write(tmp_path / "a.wav", speech_clip(0.5, 16000))
    model = ["--model", str(tiny_dir), "--adapters", str(tmp_path / "adapters")]
    for language in ("de", "en"):
        assert main(["transcribe", audio, "--language", language, *model]) == 0
    assert used == ["asr-de", "asr"]


def test_transcribe_very_long_audio(capsys, tiny_dir, tmp_path):
    from tests.conftest import speech_clip

    path = _write(tmp_path / "long.wav", speech_clip(95.0, 16000))
    assert main(["transcribe", path, "--json", "--model", str(tiny_dir), "--adapters", "none"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert len(record["chunks"]) == 4 and record["chunks"][-1]["timestamp"][1] == pytest.approx(95.0)


def test_speak_writes_a_wav(capsys, tiny_dir, tmp_path):
    from tests.conftest import noise_clip

    prompt = _write(tmp_path / "prompt.wav", noise_clip(0.5, 22050), 22050)
    out = tmp_path / "out.wav"
    args = ["speak", "hello there", "--prompt", prompt, "--prompt-text", "ab", "-o", str(out), "--steps", "1"]
    assert main([*args, "--duration", "0.4", "--model", str(tiny_dir), "--adapters", "none"]) == 0
    assert soundfile.info(out).samplerate == 22050 and abs(soundfile.info(out).duration - 0.4) < 0.02


@pytest.mark.parametrize(
    ("text", "prompt", "message"),
    [
        ("hello", "missing.wav", "no such voice prompt"),
        ("   ", "prompt.wav", "nothing to speak"),
        ("🎉🎉", "prompt.wav", "has no letter or digit"),
        ("\x07\x1b", "prompt.wav", "has no letter or digit"),
        ("hello", "prompt.wav", "steps (ODE function evaluations) must be at least 1, got 0"),
    ],
)
def test_speak_bad_input(capsys, tiny_dir, tmp_path, text, prompt, message):
    from tests.conftest import noise_clip

    _write(tmp_path / "prompt.wav", noise_clip(0.5, 22050), 22050)
    args = [
        "speak",
        text,
        "--prompt",
        str(tmp_path / prompt),
        "--prompt-text",
        "ab",
        "-o",
        str(tmp_path / "o.wav"),
    ]
    extra = ["--steps", "0"] if message.startswith("steps") else []
    assert main([*args, *extra, "--model", str(tiny_dir), "--adapters", "none"]) == EXIT_USER_ERROR
    _one_line_error(capsys, "speak", message)
    assert not (tmp_path / "o.wav").exists()


def test_speak_ten_thousand_characters(capsys, tiny_dir, tmp_path):
    from tests.conftest import noise_clip

    prompt = _write(tmp_path / "prompt.wav", noise_clip(0.5, 22050), 22050)
    text = ("This is a sentence. " * 500)[:10_000]
    out = tmp_path / "long.wav"
    args = ["speak", text, "--prompt", prompt, "--prompt-text", "a b c d e f", "-o", str(out)]
    fast = ["--steps", "1", "--guidance-strength", "0", "--speed", "4"]  # a quarter of the frames to vocode
    assert main([*args, *fast, "--model", str(tiny_dir), "--adapters", "none"]) == 0
    # 500 sentences of 19 bytes at 4 times the prompt's 11 bytes per 0.5 s, whole frames each
    frames = round(0.5 * 19 / 11 / 4 * 22050 / 256)
    assert soundfile.info(out).frames == 500 * frames * 256


@pytest.mark.parametrize(
    "payload",
    [
        '["helo world", "hello world"]',
        '{"input": ["helo world", "hello world"], "output": "hello world"}',
        '{"input": ["a"]}\n{"input": ["b", "c"]}\n',
        '[["a"], ["b", "c"]]',
    ],
)
def test_correct_reads_json_from_stdin_or_a_file(capsys, monkeypatch, tiny_dir, tmp_path, payload):
    import io

    expected = payload.count('"input"') or (2 if payload.startswith("[[") else 1)
    monkeypatch.setattr("sys.stdin", io.StringIO(payload))
    assert main(["correct", "--model", str(tiny_dir), "--adapters", "none"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == expected
    (tmp_path / "nbest.json").write_text(payload)
    assert (
        main(["correct", str(tmp_path / "nbest.json"), "--model", str(tiny_dir), "--adapters", "none"]) == 0
    )
    assert len(capsys.readouterr().out.splitlines()) == expected


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("", "empty input"),
        ("{not json", "not JSON"),
        ("[1, 2]", "list of strings"),
        ("42", "list of strings"),
    ],
)
def test_correct_bad_input(capsys, monkeypatch, tiny_dir, payload, message):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(payload))
    assert main(["correct", "--model", str(tiny_dir), "--adapters", "none"]) == EXIT_USER_ERROR
    _one_line_error(capsys, "correct", message)


def test_silence_transcribes_to_an_empty_line(capsys, tiny_dir, tmp_path):
    path = _write(tmp_path / "silence.wav", np.zeros(16000, np.float32))
    assert main(["transcribe", path, "--model", str(tiny_dir), "--adapters", "none"]) == 0
    assert capsys.readouterr().out == "\n"


def test_a_wrong_or_missing_adapter_is_one_line(capsys, tiny_dir, tmp_path):
    from unispeech.model.adapters import add_task_adapter, save_task_adapter
    from unispeech.testing import tiny_model

    other, _ = tiny_model(projector_stack=2)  # another base
    add_task_adapter(other, "asr")
    save_task_adapter(other, "asr", tmp_path / "adapters" / "asr")
    audio = _write(tmp_path / "a.wav", np.full(8000, 0.1, np.float32))
    args = ["transcribe", audio, "--model", str(tiny_dir)]
    assert main([*args, "--adapters", str(tmp_path / "adapters")]) == EXIT_USER_ERROR
    _one_line_error(capsys, "transcribe", "projector_stack=2")
    assert main([*args, "--adapters", str(tmp_path / "nowhere")]) == EXIT_USER_ERROR
    _one_line_error(capsys, "transcribe", "no task adapter folders (asr, tts, ger) in")


def test_an_adapter_folder_of_another_task_is_one_line(capsys, tiny_dir, tmp_path):
    from unispeech.model.adapters import add_task_adapter, save_task_adapter
    from unispeech.testing import tiny_model

    model, _ = tiny_model()
    add_task_adapter(model, "tts")
    folder = save_task_adapter(model, "tts", tmp_path / "adapters" / "asr")  # TTS placed as asr/
    audio = _write(tmp_path / "a.wav", np.full(8000, 0.1, np.float32))
    args = ["transcribe", audio, "--model", str(tiny_dir), "--adapters", str(folder.parent)]
    assert main(args) == EXIT_USER_ERROR
    _one_line_error(capsys, "transcribe", f"the adapter at {folder} holds task 'tts', not 'asr'")


def test_transcribe_with_the_ctc_head_of_the_asr_adapter(capsys, tiny_dir, tmp_path):
    from tests.conftest import speech_clip
    from unispeech.model.adapters import add_task_adapter, save_task_adapter
    from unispeech.model.ctc import CtcHead
    from unispeech.tasks.decoding import NO_CTC_HEAD
    from unispeech.testing import tiny_model

    model, _ = tiny_model()
    add_task_adapter(model, "asr")
    model.ctc = CtcHead(range(3, 259), model.config.text_config.hidden_size)  # every byte token
    save_task_adapter(model, "asr", tmp_path / "adapters" / "asr")
    audio = _write(tmp_path / "a.wav", speech_clip(0.5, 16000))
    args = ["transcribe", audio, "--json", "--model", str(tiny_dir)]

    def transcript(*flags: str) -> str:
        assert main([*args, "--adapters", str(tmp_path / "adapters"), *flags]) == 0
        return json.loads(capsys.readouterr().out)["text"]

    assert transcript("--speculative") == transcript(), "joint greedy, drafted"
    assert transcript("--speculative", "--ctc-weight", "0") == transcript("--ctc-weight", "0"), "LLM alone"
    assert isinstance(transcript("--ctc-weight", "0.5", "--beam-size", "2"), str)
    assert main([*args, "--adapters", "none", "--speculative"]) == EXIT_USER_ERROR
    _one_line_error(capsys, "transcribe", NO_CTC_HEAD)
    assert main([*args, "--adapters", "none", "--ctc-weight", "1"]) == EXIT_USER_ERROR
    _one_line_error(capsys, "transcribe", "ctc_weight must be in [0, 1)")


def test_data_import_validate_and_split(capsys, tmp_path):
    from tests.conftest import noise_clip

    folder = tmp_path / "lj"
    (folder / "wavs").mkdir(parents=True)
    for index in range(4):
        soundfile.write(folder / "wavs" / f"X-{index}.wav", noise_clip(0.2, 22050, index), 22050)
    rows = [f"X-{i}|Text {i}|text {i}" for i in range(5)]  # X-4 has no audio
    (folder / "metadata.csv").write_text("\n".join(rows) + "\n")
    manifest = tmp_path / "out" / "lj.jsonl"
    assert main(["data", "import", "ljspeech", str(folder), "--manifest", str(manifest)]) == 0
    assert "4 utterances written" in capsys.readouterr().out
    assert main(["data", "validate", "--manifest", str(manifest)]) == 0
    (folder / "wavs" / "X-0.wav").unlink()
    assert main(["data", "validate", "--manifest", str(manifest)]) == 1
    assert "missing-audio" in capsys.readouterr().out
    assert (
        main(["data", "split", "--manifest", str(manifest), "--by", "utterance", "--dev-fraction", "0.5"])
        == 0
    )
    out = capsys.readouterr().out
    assert "lj.train.jsonl" in out and "lj.dev.jsonl" in out


def test_data_synth_renders_a_small_corpus(capsys, tmp_path):
    from unispeech.data.synthetic import espeak_available

    if not espeak_available():
        pytest.skip("espeak-ng is not installed")
    (tmp_path / "text.txt").write_text("First sentence here.\nA second one.\n")
    args = ["data", "synth", "--text", str(tmp_path / "text.txt"), "--out", str(tmp_path / "corpus")]
    assert main([*args, "--voices", "2", "--count", "4", "--workers", "2"]) == 0
    assert "4 utterances in" in capsys.readouterr().out
    assert main([*args, "--voices", "2", "--count", "4", "--workers", "2"]) == 0
    assert "0 rendered now, 4 already there" in capsys.readouterr().out


def test_data_nbest_of_a_missing_manifest(capsys, tmp_path):
    assert (
        main(["data", "nbest", "--manifest", str(tmp_path / "none.jsonl"), "-o", str(tmp_path / "o.jsonl")])
        == 2
    )
    _one_line_error(capsys, "data", "no such manifest")


def test_data_nbest_stats_of_hand_computed_lists(capsys, tmp_path):
    (tmp_path / "a.jsonl").write_text('{"input": ["the cat sat", "a cat sat"], "output": "the cat sat"}\n')
    hyporadise = '[{"input": ["a dog", "the dog"], "output": "the dog"}]'  # a JSON list, not lines
    (tmp_path / "b.json").write_text(hyporadise)
    assert main(["data", "nbest-stats", str(tmp_path / "a.jsonl"), str(tmp_path / "b.json")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("1 lists, 2.00 hypotheses each; 1-best WER 0.00 %, oracle best-of-N WER 0.00 %")
    assert lines[1].endswith("1-best WER 50.00 %, oracle best-of-N WER 0.00 %")
    assert lines[2] == "all: 2 lists, 2.00 hypotheses each; 1-best WER 20.00 %, oracle best-of-N WER 0.00 %"
