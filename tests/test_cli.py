import numpy as np
import pytest
import soundfile

from unispeech.cli import EXIT_USER_ERROR, main


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
