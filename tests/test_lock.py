"""`.ci/lock.py`: the lock of tested versions, written from an environment and checked against it."""

import importlib.util
from pathlib import Path

import pytest

LOCK_SCRIPT = Path(__file__).resolve().parents[1] / ".ci" / "lock.py"


@pytest.fixture(scope="module")
def lock():
    spec = importlib.util.spec_from_file_location("lock", LOCK_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_an_environment_matches_its_own_lock(lock, tmp_path):
    path = tmp_path / "constraints.txt"
    lock.write(path)
    assert lock.check(path) == 0
    assert "torch" in lock.read_lock(path) and "+" not in lock.read_lock(path)["torch"]


def test_drift_is_named_package_by_package(lock, tmp_path, capsys):
    path = tmp_path / "constraints.txt"
    lock.write(path)
    versions = lock.read_lock(path)
    lines = [f"{name}=={version}" for name, version in versions.items() if name != "jiwer"]
    lines = ["peft==0.0.1" if line.startswith("peft==") else line for line in lines]
    path.write_text("\n".join(lines) + "\n")
    assert lock.check(path) == 1
    error = capsys.readouterr().err
    assert f"peft {versions['peft']} (lock: 0.0.1)" in error
    assert f"jiwer {versions['jiwer']} (not in the lock)" in error
    assert "bash .ci/update-lock" in error


def test_a_malformed_line_is_refused(lock, tmp_path):
    path = tmp_path / "constraints.txt"
    path.write_text("# comment\ntorch>=2\n")
    with pytest.raises(SystemExit, match="expected NAME==VERSION"):
        lock.read_lock(path)
