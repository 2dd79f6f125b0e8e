import pytest

from unispeech.cli import EXIT_USER_ERROR, main


def test_check_runs_a_training_step_of_the_tiny_model(capsys):
    assert main(["check", "--model", "tiny", "--seconds", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "tiny (random weights)" in out
    assert "1 ASR + 1 TTS sample of 0.5 s" in out and "losses         ASR" in out


def test_bad_input_is_one_line_on_stderr_and_a_non_zero_exit(capsys):
    assert main(["check", "--model", "tiny", "--seconds", "0"]) == EXIT_USER_ERROR
    captured = capsys.readouterr()
    assert captured.err == "unispeech check: error: audio is empty (0 samples)\n"
    assert "Traceback" not in captured.err + captured.out


def test_unknown_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["transcribe-everything"])
    assert exit_info.value.code == EXIT_USER_ERROR
