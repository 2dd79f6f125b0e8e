import json
import logging

import pytest

from unispeech.training.checkpoints import (
    CHECKSUMS_FILE,
    checkpoint_name,
    checkpoints,
    latest_checkpoint,
    prune,
    publish,
    staging_folder,
    verify,
)


def _save(root, step, payload=None):
    staging = staging_folder(root, step)
    (staging / "trainable.safetensors").write_bytes(payload or bytes(range(256)) * 64)
    (staging / "trainer.json").write_text(json.dumps({"step": step}))
    return staging


def _flip_byte(file, offset=100):
    data = bytearray(file.read_bytes())
    data[offset] ^= 0xFF
    file.write_bytes(bytes(data))


def test_published_checkpoint_is_found_with_its_checksums(tmp_path):
    assert latest_checkpoint(tmp_path) is None
    assert latest_checkpoint(tmp_path / "absent") is None
    folder = publish(_save(tmp_path, 12))
    assert folder == tmp_path / checkpoint_name(12) == tmp_path / "step-00000012"
    assert latest_checkpoint(tmp_path) == folder
    assert set(json.loads((folder / CHECKSUMS_FILE).read_text())) == {"trainable.safetensors", "trainer.json"}
    assert not list(tmp_path.glob(".staging-*")), "published means renamed, nothing left behind"
    publish(_save(tmp_path, 100))
    assert latest_checkpoint(tmp_path).name == "step-00000100", "the newest by step, not by name"
    assert [step for step, _ in checkpoints(tmp_path)] == [12, 100]


def test_a_staging_folder_is_never_a_checkpoint(tmp_path):
    publish(_save(tmp_path, 1))
    staging = _save(tmp_path, 2)
    (staging / CHECKSUMS_FILE).write_text("{}")  # even one that looks sealed
    assert latest_checkpoint(tmp_path).name == "step-00000001"
    assert [step for step, _ in checkpoints(tmp_path)] == [1]


@pytest.mark.parametrize("damaged", ["trainable.safetensors", "trainer.json"])
def test_a_damaged_newest_checkpoint_falls_back_to_the_previous_one(tmp_path, caplog, damaged):
    previous = publish(_save(tmp_path, 1))
    newest = publish(_save(tmp_path, 2))
    _flip_byte(newest / damaged, offset=3)
    with caplog.at_level(logging.WARNING, logger="unispeech.training.checkpoints"):
        assert latest_checkpoint(tmp_path) == previous
    [record] = caplog.records
    assert "step 2" in record.getMessage() and f"{damaged} does not match its checksum" in record.getMessage()


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (lambda folder: (folder / CHECKSUMS_FILE).unlink(), f"no {CHECKSUMS_FILE}"),
        (
            lambda folder: (folder / CHECKSUMS_FILE).write_bytes(b"\xff{not json"),
            f"unreadable {CHECKSUMS_FILE}",
        ),
        (lambda folder: (folder / "trainer.json").unlink(), "trainer.json is missing"),
    ],
)
def test_incomplete_checkpoints_are_skipped(tmp_path, caplog, damage, problem):
    previous = publish(_save(tmp_path, 1))
    newest = publish(_save(tmp_path, 2))
    damage(newest)
    assert problem in verify(newest)
    assert verify(previous) is None
    with caplog.at_level(logging.WARNING, logger="unispeech.training.checkpoints"):
        assert latest_checkpoint(tmp_path) == previous
    assert problem in caplog.text
    damage(previous)
    assert latest_checkpoint(tmp_path) is None


def test_a_step_written_again_after_a_kill_starts_from_an_empty_staging_folder(tmp_path):
    killed = _save(tmp_path, 4, payload=b"killed attempt" * 100)
    (killed / "rng-1.pt").write_bytes(b"from the killed attempt")
    (killed / f"{CHECKSUMS_FILE}.partial").write_text("{}")  # killed inside publish
    assert list(staging_folder(tmp_path, 4, fresh=True).iterdir()) == []
    folder = publish(_save(tmp_path, 4))
    assert sorted(json.loads((folder / CHECKSUMS_FILE).read_text())) == [
        "trainable.safetensors",
        "trainer.json",
    ]
    assert verify(folder) is None


def test_publish_leaves_a_partial_checksum_file_out(tmp_path):
    staging = _save(tmp_path, 5)
    (staging / f"{CHECKSUMS_FILE}.partial").write_text("{}")  # an earlier publish killed half-way
    folder = publish(staging)
    assert f"{CHECKSUMS_FILE}.partial" not in json.loads((folder / CHECKSUMS_FILE).read_text())
    assert verify(folder) is None and latest_checkpoint(tmp_path) == folder


def test_a_file_added_after_publishing_is_not_checked(tmp_path):
    folder = publish(_save(tmp_path, 3))
    (folder / "notes.txt").write_text("not part of the checkpoint")
    assert verify(folder) is None


def test_prune_keeps_the_newest_and_removes_staging_leftovers(tmp_path):
    for step in (5, 10, 20, 40):
        publish(_save(tmp_path, step))
    _save(tmp_path, 60)  # a run killed while writing
    prune(tmp_path, keep=2)
    assert [step for step, _ in checkpoints(tmp_path)] == [20, 40]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["step-00000020", "step-00000040"]
    prune(tmp_path, keep=5)
    assert [step for step, _ in checkpoints(tmp_path)] == [20, 40]


def test_publishing_a_step_again_replaces_the_earlier_folder(tmp_path):
    first = publish(_save(tmp_path, 7, payload=b"first attempt" * 100))
    (first / "stale.bin").write_bytes(b"from the earlier attempt")
    second = publish(_save(tmp_path, 7, payload=b"second attempt" * 100))
    assert second == first
    assert (second / "trainable.safetensors").read_bytes() == b"second attempt" * 100
    assert not (second / "stale.bin").exists()
    assert verify(second) is None and latest_checkpoint(tmp_path) == second
    assert [step for step, _ in checkpoints(tmp_path)] == [7]
