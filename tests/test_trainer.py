"""The trainer on the tiny model: exact resume, SIGTERM, damaged checkpoints, QLoRA, two processes."""

import json
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import soundfile
import torch
from safetensors.torch import load_file, save_file

from unispeech.audio.features import load_audio
from unispeech.data.manifest import read_manifest
from unispeech.data.phoneme_durations import AlignedClip, even_durations, write_durations
from unispeech.model.adapters import load_task_adapter
from unispeech.model.phonemes import phoneme_units
from unispeech.testing import noise, tiny_model
from unispeech.training import trainer as trainer_module
from unispeech.training.checkpoints import (
    CHECKSUMS_FILE,
    STAGING_PREFIX,
    checkpoint_name,
    checkpoints,
    latest_checkpoint,
    verify,
)
from unispeech.training.recipes import Source, load_recipe, recipe_from_dict
from unispeech.training.trainer import (
    ADAPTER_FOLDER,
    BEST_ADAPTER_FOLDER,
    CARD_FILE,
    CHECKPOINT_FOLDER,
    METRICS_FILE,
    TRAINABLE_FILE,
    TRAINER_FILE,
    Trainer,
)
from unispeech.weights.cache import sha256_of

REPOSITORY = Path(__file__).resolve().parent.parent
WORDS = ["the", "cat", "sat", "on", "a", "mat", "and", "we", "saw", "it", "run", "far", "away"]


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("data")
    lines = []
    for i in range(12):
        soundfile.write(folder / f"{i}.wav", noise(0.5 + 0.1 * i, 16000, seed=i), 16000)
        text = " ".join(WORDS[(i + k) % len(WORDS)] for k in range(3 + i % 4))
        lines.append(json.dumps({"audio": f"{i}.wav", "text": text, "speaker": f"s{i % 3}"}))
    path = folder / "manifest.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def make_recipe(manifest: Path, output: Path, **fields):
    data = {
        "model": "tiny",
        "task": "asr",
        "output": str(output),
        "sources": [{"task": "asr", "manifest": str(manifest)}],
        "steps": 6,
        "batch": {"max_positions": 1024, "max_samples": 4, "window": 100},
        "optimizer": {"lr": 1e-3, "module_lr": 1e-3, "warmup_steps": 1},
        "ctc": {"warmup_steps": 2, "weight": 0.3},
        "grad_accumulation": 2,
        "checkpoint_every": 2,
        "log_every": 1,
        "feature_cache": str(output.parent / "features"),
        **fields,
    }
    return recipe_from_dict(data)


def trained_weights(output: Path) -> dict[str, torch.Tensor]:
    newest = checkpoints(output / CHECKPOINT_FOLDER)[-1][1]
    return load_file(newest / TRAINABLE_FILE)


def card_of(adapter: Path) -> dict:
    return json.loads((adapter / CARD_FILE).read_text())


def stop_at(step: int, signum: int = signal.SIGTERM):
    def on_step(current: int) -> None:
        if current == step:
            os.kill(os.getpid(), signum)

    return on_step


@pytest.mark.parametrize("time_masks", [{}, {"masks": 2, "max_fraction": 0.3}], ids=["plain", "time-masked"])
def test_stopped_and_resumed_run_equals_a_straight_run(manifest, tmp_path, time_masks):
    straight = make_recipe(manifest, tmp_path / "straight", time_masks=time_masks)
    assert Trainer(straight, show_progress=False).train().step == 6

    interrupted = make_recipe(manifest, tmp_path / "interrupted", time_masks=time_masks)
    result = Trainer(interrupted, show_progress=False, on_step=stop_at(3)).train()
    assert result.stopped and result.step == 3
    assert card_of(result.adapter)["steps"] == 3  # ready to try out
    assert [step for step, _ in checkpoints(tmp_path / "interrupted" / CHECKPOINT_FOLDER)] == [2, 3]
    resumed = Trainer(interrupted, resume=True, show_progress=False).train()
    assert resumed.step == 6 and not resumed.stopped

    expected, actual = trained_weights(tmp_path / "straight"), trained_weights(tmp_path / "interrupted")
    assert expected.keys() == actual.keys()
    assert any(name.startswith("model.ctc.") for name in expected)  # the CTC head is part of the run
    for name in expected:
        torch.testing.assert_close(actual[name], expected[name], rtol=1e-5, atol=1e-6, msg=name)
    # the metrics log holds each step once, the resumed steps included
    steps = [json.loads(line)["step"] for line in (tmp_path / "interrupted" / METRICS_FILE).open()]
    assert [s for s in steps if s] == sorted(set(steps)) == [1, 2, 3, 4, 5, 6]


def test_the_run_learns_and_its_adapter_loads(manifest, tmp_path):
    recipe = make_recipe(manifest, tmp_path / "run", steps=12, ctc={"warmup_steps": 0, "weight": 0.0})
    result = Trainer(recipe, show_progress=False).train()
    records = [json.loads(line) for line in (tmp_path / "run" / METRICS_FILE).open()]
    first, last = records[0]["text_loss/asr"], records[-1]["text_loss/asr"]
    assert last < first
    assert all(0 <= r["padded_fraction"] < 1 and r["tokens_per_second"] > 0 for r in records)

    model, _ = tiny_model()
    assert load_task_adapter(model, result.adapter) == "asr"
    saved = load_file(result.adapter / "task_modules.safetensors")
    assert saved["projector.linear_in.weight"].dtype == torch.float16
    torch.testing.assert_close(
        model.projector.linear_in.weight,
        trained_weights(tmp_path / "run")["model.projector.linear_in.weight"],
        rtol=1e-3,
        atol=1e-3,
    )


def test_time_masks_change_what_the_model_hears(manifest, tmp_path):
    def first_loss(name: str, **fields) -> float:
        recipe = make_recipe(manifest, tmp_path / name, steps=1, grad_accumulation=1, **fields)
        Trainer(recipe, show_progress=False).train()
        return json.loads((tmp_path / name / METRICS_FILE).open().readline())["text_loss/asr"]

    no_ctc = {"warmup_steps": 0, "weight": 0.0}
    plain, again = first_loss("plain", ctc=no_ctc), first_loss("again", ctc=no_ctc)
    masked = first_loss("masked", ctc=no_ctc, time_masks={"masks": 4, "max_fraction": 0.5})
    assert plain == again != masked


def test_the_constant_schedule_warms_up_first(manifest, tmp_path):
    no_ctc = {"warmup_steps": 0, "weight": 0.0}
    optimizer = {"lr": 1e-3, "module_lr": 2e-3, "warmup_steps": 2, "schedule": "constant"}
    recipe = make_recipe(manifest, tmp_path / "run", steps=4, ctc=no_ctc, optimizer=optimizer)
    Trainer(recipe, show_progress=False).train()
    records = [json.loads(line) for line in (tmp_path / "run" / METRICS_FILE).open()]
    assert [r["lr"] for r in records] == pytest.approx([5e-4, 1e-3, 1e-3, 1e-3])


def test_a_run_can_start_from_a_saved_adapter(manifest, tmp_path):
    """`init_from`: with learning rates of zero, the run's adapter is the one it started from."""
    no_ctc = {"warmup_steps": 0, "weight": 0.0}
    first = Trainer(make_recipe(manifest, tmp_path / "first", steps=2, ctc=no_ctc), show_progress=False)
    start = first.train().adapter
    frozen = {"lr": 0.0, "module_lr": 0.0, "warmup_steps": 0}
    recipe = make_recipe(
        manifest, tmp_path / "second", steps=1, ctc=no_ctc, optimizer=frozen, init_from=str(start)
    )
    result = Trainer(recipe, show_progress=False).train()
    for file in ("adapter_model.safetensors", "task_modules.safetensors"):
        expected, actual = load_file(start / file), load_file(result.adapter / file)
        assert expected.keys() == actual.keys()
        assert any(value.abs().sum() > 0 for value in expected.values())
        for name in expected:
            torch.testing.assert_close(actual[name], expected[name], msg=name)


def test_a_head_that_cannot_spell_the_transcripts_is_continued_with_the_tokens_it_lacks(manifest, tmp_path):
    """`init_from` an adapter whose head lacks one of the run's tokens: the run continues that head,
    extended by the token, instead of starting a new one."""
    aid = {"ctc": {"warmup_steps": 0, "weight": 0.3}}
    first = make_recipe(manifest, tmp_path / "first", steps=1, **aid)
    start = Trainer(first, show_progress=False).train().adapter
    weights = load_file(start / "task_modules.safetensors")
    known = weights["ctc.token_ids"]
    weights |= {"ctc.token_ids": known[:-1], "ctc.bias": weights["ctc.bias"][:-1]}  # one token lost
    save_file(weights, start / "task_modules.safetensors")
    second = make_recipe(manifest, tmp_path / "second", steps=1, init_from=str(start), **aid)
    Trainer(second, show_progress=False).train()
    saved = load_file(tmp_path / "second" / ADAPTER_FOLDER / "task_modules.safetensors")
    assert saved["ctc.token_ids"].tolist() == known.tolist() and saved["ctc.bias"].shape == known.shape


def test_the_ctc_head_ships_with_the_adapter(manifest, tmp_path):
    recipe = make_recipe(manifest, tmp_path / "run", steps=3, save_dtype="float32")
    result = Trainer(recipe, show_progress=False).train()
    saved = load_file(result.adapter / "task_modules.safetensors")
    trained = trained_weights(tmp_path / "run")
    for name in ("log_scale", "bias", "blank.weight", "blank.bias"):
        torch.testing.assert_close(saved[f"ctc.{name}"], trained[f"model.ctc.{name}"], msg=name)
    model, processor = tiny_model()
    load_task_adapter(model, result.adapter)
    transcripts = [json.loads(line)["text"] for line in manifest.open()]
    spoken = sorted({token for text in transcripts for token in processor.tokenize(text)})
    assert model.ctc.token_ids.tolist() == spoken


def _rename_ctc_weights_as_before(checkpoint: Path) -> None:
    """Make a checkpoint look like one written before the head moved into the model: `ctc.*`."""
    weights = load_file(checkpoint / TRAINABLE_FILE)
    renamed = {
        name.removeprefix("model.") if name.startswith("model.ctc.") else name: value
        for name, value in weights.items()
    }
    save_file(renamed, checkpoint / TRAINABLE_FILE)
    _reseal(checkpoint)


def _reseal(checkpoint: Path) -> None:
    """Checksums for a checkpoint's files as they are now, as the trainer writes them."""
    checksums = {
        file.name: sha256_of(file) for file in sorted(checkpoint.iterdir()) if file.name != CHECKSUMS_FILE
    }
    (checkpoint / CHECKSUMS_FILE).write_text(json.dumps(checksums))
    assert verify(checkpoint) is None


def test_a_run_with_the_old_ctc_names_resumes_and_a_finished_run_writes_its_adapter_again(manifest, tmp_path):
    recipe = make_recipe(manifest, tmp_path / "run")
    assert Trainer(recipe, show_progress=False, on_step=stop_at(3)).train().step == 3
    _rename_ctc_weights_as_before(checkpoints(tmp_path / "run" / CHECKPOINT_FOLDER)[-1][1])
    assert Trainer(recipe, resume=True, show_progress=False).train().step == 6
    final = trained_weights(tmp_path / "run")
    assert any(name.startswith("model.ctc.") for name in final)

    _rename_ctc_weights_as_before(checkpoints(tmp_path / "run" / CHECKPOINT_FOLDER)[-1][1])
    shutil.rmtree(tmp_path / "run" / ADAPTER_FOLDER)  # as if written by a trainer without the head
    metrics = (tmp_path / "run" / METRICS_FILE).read_text()
    result = Trainer(recipe, resume=True, show_progress=False).train()
    assert result.step == 6 and not result.stopped
    assert (tmp_path / "run" / METRICS_FILE).read_text() == metrics, "nothing trained"
    saved = load_file(result.adapter / "task_modules.safetensors")
    torch.testing.assert_close(saved["ctc.bias"].float(), final["model.ctc.bias"], rtol=1e-3, atol=1e-3)


def test_dev_wer_by_ctc_during_the_warm_up_then_by_joint_decoding(manifest, tmp_path):
    """After the warm-up the dev clips are decoded as users get them: jointly, the run having a head."""
    recipe = make_recipe(
        manifest, tmp_path / "run", steps=4, dev={"manifest": str(manifest), "every": 2, "limit": 3}
    )
    Trainer(recipe, show_progress=False).train()
    records = [json.loads(line) for line in (tmp_path / "run" / METRICS_FILE).open()]
    dev = [r for r in records if "dev_wer" in r]
    assert [(r["step"], r["dev_decoder"]) for r in dev] == [(2, "ctc"), (4, "joint")]
    assert all(r["dev_wer"] >= 0 for r in dev)
    assert {"matched", "mismatched"} == set(dev[1]["dev_loss"])


def test_the_best_dev_adapter_is_kept_and_remembered_over_a_resume(manifest, tmp_path, monkeypatch):
    """`best-adapter` holds the adapter of the lowest dev WER so far; a resumed run knows that WER
    from its card and does not replace it with a worse one."""
    rates = iter([0.6, 0.4, 0.5])  # dev WER at steps 2, 4 and 6
    monkeypatch.setattr(trainer_module, "word_error_rate", lambda *args: next(rates))
    recipe = make_recipe(
        manifest,
        tmp_path / "run",
        ctc={"warmup_steps": 0, "weight": 0.3},
        dev={"manifest": str(manifest), "every": 2, "limit": 2},
    )
    assert Trainer(recipe, show_progress=False, on_step=stop_at(4)).train().stopped
    best = tmp_path / "run" / BEST_ADAPTER_FOLDER
    assert {key: card_of(best)[key] for key in ("steps", "dev_wer")} == {"steps": 4, "dev_wer": 0.4}
    saved = (best / "adapter_model.safetensors").read_bytes()

    assert Trainer(recipe, resume=True, show_progress=False).train().step == 6
    assert card_of(best)["steps"] == 4 and (best / "adapter_model.safetensors").read_bytes() == saved
    assert card_of(tmp_path / "run" / ADAPTER_FOLDER)["steps"] == 6
    assert load_task_adapter(tiny_model()[0], best) == "asr"


def test_dev_decodes_with_the_language_hint_the_recipe_trains_with(manifest, tmp_path, monkeypatch):
    """A recipe trained with language hints is scored with them: each dev clip decoded with its own
    language before the transcript, as training wrote it."""
    from unispeech.training import trainer

    german = manifest.parent / "de.jsonl"  # beside the clips it names
    german.write_text(
        "".join(
            json.dumps({**json.loads(line), "lang": "de"}) + "\n"
            for line in manifest.read_text().splitlines()
        )
    )
    hints = []
    original = trainer.transcribe

    def spy(model, processor, audios, options):
        hints.append(options.language)
        return original(model, processor, audios, options)

    monkeypatch.setattr(trainer, "transcribe", spy)
    for hinted in (True, False):
        source = {"task": "asr", "manifest": str(german), "language_hint": hinted}
        recipe = make_recipe(
            manifest,
            tmp_path / f"run-{hinted}",
            steps=2,
            sources=[source],
            ctc={"warmup_steps": 0, "weight": 0.3},
            dev={"manifest": str(german), "every": 2, "limit": 2},
        )
        Trainer(recipe, show_progress=False).train()
    assert hints == ["de", None]


def test_a_damaged_latest_checkpoint_is_passed_over(manifest, tmp_path, caplog):
    recipe = make_recipe(manifest, tmp_path / "run")
    assert Trainer(recipe, show_progress=False, on_step=stop_at(4, signal.SIGINT)).train().stopped  # Ctrl-C
    newest = checkpoints(tmp_path / "run" / CHECKPOINT_FOLDER)[-1][1]
    weights = newest / TRAINABLE_FILE
    weights.write_bytes(weights.read_bytes()[:-16] + b"\0" * 16)
    caplog.set_level("INFO")
    assert Trainer(recipe, resume=True, show_progress=False).train().step == 6
    assert "skipping the checkpoint of step 4" in caplog.text
    assert "resumed from" in caplog.text and "step-00000002" in caplog.text


class Killed(BaseException):
    """Stands in for SIGKILL: no `except` in the trainer catches it, so nothing more is written."""


KILLED_STEP = 4  # the kill lands while the checkpoint of this step is written
KILLED_STAGING = f"{STAGING_PREFIX}{checkpoint_name(KILLED_STEP)}"


def _kill_after_writing_the_weights(monkeypatch):
    original = trainer_module.save_file

    def save_file(tensors, path, *args, **kwargs):
        original(tensors, path, *args, **kwargs)
        if Path(path).parent.name == KILLED_STAGING:
            raise Killed(f"after {Path(path).name}, before the optimiser state")

    monkeypatch.setattr(trainer_module, "save_file", save_file)


def _kill_on_replacing(name: str):
    """A kill at the `os.replace` that would rename `name` (in the killed step's staging folder)."""

    def inject(monkeypatch):
        original = os.replace

        def replace_file(source, destination, *args, **kwargs):
            source = Path(source)
            if source.name == name and KILLED_STAGING in (source.name, source.parent.name):
                raise Killed(f"before renaming {name}")
            return original(source, destination, *args, **kwargs)

        monkeypatch.setattr(os, "replace", replace_file)

    return inject


KILL_POINTS = {
    "between two files": _kill_after_writing_the_weights,
    "checksums half-written": _kill_on_replacing(f"{CHECKSUMS_FILE}.partial"),
    "sealed, not yet renamed": _kill_on_replacing(KILLED_STAGING),
}


@pytest.fixture(scope="module")
def straight_run(manifest, tmp_path_factory) -> dict[str, torch.Tensor]:
    """The trained weights of the recipe run straight through, unkilled."""
    output = tmp_path_factory.mktemp("straight") / "run"
    Trainer(make_recipe(manifest, output), show_progress=False).train()
    return trained_weights(output)


@pytest.mark.parametrize("point", KILL_POINTS)
def test_a_kill_while_a_checkpoint_is_written_is_resumed_exactly(
    manifest, tmp_path, monkeypatch, straight_run, point
):
    recipe = make_recipe(manifest, tmp_path / "run")  # checkpoints at steps 2, 4 and 6
    root = tmp_path / "run" / CHECKPOINT_FOLDER
    with monkeypatch.context() as patched:
        KILL_POINTS[point](patched)
        with pytest.raises(Killed):
            Trainer(recipe, show_progress=False).train()
    assert [step for step, _ in checkpoints(root)] == [2], "the checkpoint being written is none"
    assert (root / KILLED_STAGING).is_dir(), "the kill left the staging folder behind"
    assert latest_checkpoint(root).name == checkpoint_name(2)

    assert Trainer(recipe, resume=True, show_progress=False).train().step == 6
    published = checkpoints(root)
    assert [step for step, _ in published] == [2, 4, 6]
    assert all(verify(folder) is None for _, folder in published), "every checkpoint written again is sound"
    assert not list(root.glob(f"{STAGING_PREFIX}*"))
    actual = trained_weights(tmp_path / "run")
    assert actual.keys() == straight_run.keys()
    for name in straight_run:
        torch.testing.assert_close(actual[name], straight_run[name], rtol=1e-5, atol=1e-6, msg=name)
    steps = [json.loads(line)["step"] for line in (tmp_path / "run" / METRICS_FILE).open()]
    assert [s for s in steps if s] == sorted(set(steps)) == [1, 2, 3, 4, 5, 6]


def test_a_checkpoint_written_before_a_recipe_field_existed_resumes(manifest, tmp_path):
    """A field added since (here each source's `durations`) counts at its default, as the run had it;
    a field since removed is a change that stops the resume."""
    recipe = make_recipe(manifest, tmp_path / "run")
    Trainer(recipe, show_progress=False, on_step=stop_at(2)).train()
    checkpoint = checkpoints(tmp_path / "run" / CHECKPOINT_FOLDER)[-1][1]
    state = json.loads((checkpoint / TRAINER_FILE).read_text())
    for source in state["recipe"]["sources"]:
        del source["durations"]
    (checkpoint / TRAINER_FILE).write_text(json.dumps(state))
    _reseal(checkpoint)
    assert Trainer(recipe, resume=True, show_progress=False, on_step=stop_at(3)).train().step == 3

    checkpoint = checkpoints(tmp_path / "run" / CHECKPOINT_FOLDER)[-1][1]
    state = json.loads((checkpoint / TRAINER_FILE).read_text())
    state["recipe"]["sources"][0]["speakers"] = ["a"]  # a field this version does not know
    (checkpoint / TRAINER_FILE).write_text(json.dumps(state))
    _reseal(checkpoint)
    with pytest.raises(ValueError, match=r"the recipe changed since the checkpoint.*\(sources\)"):
        Trainer(recipe, resume=True, show_progress=False).train()


def test_resume_refuses_a_changed_recipe_and_a_fresh_run_refuses_old_checkpoints(manifest, tmp_path):
    recipe = make_recipe(manifest, tmp_path / "run")
    Trainer(recipe, show_progress=False, on_step=stop_at(2)).train()
    changed = replace(recipe, seed=1)
    with pytest.raises(ValueError, match=r"the recipe changed since the checkpoint.*seed"):
        Trainer(changed, resume=True, show_progress=False).train()
    with pytest.raises(FileExistsError, match="--resume"):
        Trainer(recipe, show_progress=False).train()
    longer = replace(recipe, steps=8)  # more steps is the same run, continued
    assert Trainer(longer, resume=True, show_progress=False).train().step == 8


def test_qlora_trains_a_step_with_a_4bit_backbone(manifest, tmp_path, tiny_dir):
    import bitsandbytes as bnb

    from unispeech.training.trainer import Trainer as QloraTrainer

    recipe = make_recipe(
        manifest,
        tmp_path / "run",
        model=str(tiny_dir),
        qlora=True,
        steps=2,
        ctc={"warmup_steps": 1, "weight": 0.3},
    )
    trainer = QloraTrainer(recipe, show_progress=False)
    loaded = []
    original = trainer._load_model
    trainer._load_model = lambda: loaded.append(original()) or loaded[-1]
    result = trainer.train()
    model = loaded[0][0]
    quantized = [name for name, m in model.named_modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert quantized and all(name.startswith("backbone.") for name in quantized)
    assert not any(isinstance(m, bnb.nn.Linear4bit) for m in model.encoder.modules())
    assert result.step == 2 and (result.adapter / "adapter_model.safetensors").is_file()


def test_qlora_on_the_in_memory_tiny_model_is_refused_not_ignored(manifest, tmp_path):
    recipe = make_recipe(manifest, tmp_path / "run", qlora=True, steps=2, ctc={"warmup_steps": 1})
    assert recipe.model == "tiny"
    with pytest.raises(ValueError, match="qlora: true needs a saved model"):
        Trainer(recipe, show_progress=False).train()
    assert not (tmp_path / "run" / CARD_FILE).exists()


def test_joint_recipe_trains_one_adapter_over_two_tasks(manifest, tmp_path):
    aligned = []  # stand-in durations: each transcript's characters spread over its clip's frames
    for utterance in read_manifest(manifest):
        frames = len(load_audio(utterance.path(manifest), 22050)) // 256
        units = len(phoneme_units(utterance.text))
        aligned.append(
            AlignedClip(str(utterance.path(manifest)), utterance.text, even_durations(units, frames))
        )
    durations = write_durations(tmp_path / "durations.jsonl", aligned)
    tts = Source("tts", manifest=str(manifest), durations=str(durations))
    recipe = make_recipe(
        manifest,
        tmp_path / "run",
        task="joint",
        sources=[Source("asr", manifest=str(manifest)), tts],
        ctc={"warmup_steps": 0, "weight": 0.0},
        steps=4,
    )
    result = Trainer(recipe, show_progress=False).train()
    metadata = json.loads((result.adapter / "unispeech_adapter.json").read_text())
    assert metadata["task"] == "joint"
    assert set(metadata["task_modules"]) == {"projector", "markers", "flow"}
    logged = set().union(*(json.loads(line) for line in (tmp_path / "run" / METRICS_FILE).open()))
    assert {"text_loss/asr", "tts_loss/tts", "duration_loss/tts"} <= logged


def test_the_shipped_tiny_recipe_trains_as_written(tmp_path, monkeypatch):
    """`unispeech train --config train/configs/tiny.yaml` from the repository root: its manifest
    is the bundled sample's (only where the run writes is moved here)."""
    from unispeech.data.manifest import read_manifest
    from unispeech.samples import LJSPEECH_SAMPLE

    monkeypatch.chdir(REPOSITORY)
    recipe = load_recipe(
        REPOSITORY / "train" / "configs" / "tiny.yaml",
        [f"output={tmp_path / 'run'}", f"feature_cache={tmp_path / 'features'}"],
    )
    [utterance] = read_manifest(recipe.sources[0].manifest)
    assert utterance.path(recipe.sources[0].manifest).samefile(LJSPEECH_SAMPLE.path)
    assert utterance.text == LJSPEECH_SAMPLE.text
    result = Trainer(recipe, show_progress=False).train()
    assert result.step == recipe.steps and (result.adapter / "unispeech_adapter.json").is_file()


def test_log_lines_combine_every_process():
    """Rank 0 saw two ASR batches, rank 1 one TTS batch: each loss is averaged over the batches
    that have it, positions are summed, the slowest process sets the time."""
    parts = [
        trainer_module._WindowPart(
            {"loss": 4.0, "text_loss/asr": 4.0}, {"loss": 2, "text_loss/asr": 2}, 90, 100, 2.0, 1.0
        ),
        trainer_module._WindowPart(
            {"loss": 1.0, "tts_loss/tts": 1.0}, {"loss": 1, "tts_loss/tts": 1}, 60, 100, 3.0, 2.0
        ),
    ]
    record = trainer_module._combine(parts)
    assert record["loss"] == pytest.approx(5 / 3)
    assert record["text_loss/asr"] == 2.0 and record["tts_loss/tts"] == 1.0
    assert record["tokens_per_second"] == pytest.approx(150 / 3.0)
    assert record["padded_fraction"] == pytest.approx(0.25)
    assert record["peak_memory_gb"] == 2.0
    assert trainer_module._combine(parts[:1])["tokens_per_second"] == pytest.approx(45.0)


def test_two_processes_under_accelerate_launch(manifest, tmp_path):
    # `--cpu` alone runs one process unless MPI is set up; `--multi_gpu` starts torchrun, and on a
    # machine without GPUs the trainer's processes meet over gloo
    config = tmp_path / "recipe.yaml"
    shutil.copy(REPOSITORY / "train" / "configs" / "tiny.yaml", config)
    recipe = load_recipe(config)  # the shipped tiny recipe, as the command below reads it
    assert recipe.model == "tiny"
    output = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "-m",
        "unispeech.interfaces.cli",
        "train",
        "--config",
        str(config),
        "--set",
        f"sources.0.manifest={manifest}",
        "--set",
        f"output={output}",
        "--set",
        f"feature_cache={tmp_path / 'features'}",
        "--set",
        "steps=4",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    finished = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert finished.returncode == 0, finished.stderr[-3000:]
    state = json.loads((checkpoints(output / CHECKPOINT_FOLDER)[-1][1] / "trainer.json").read_text())
    assert state["world_size"] == 2 and state["step"] == 4
    assert {"rng-0.pt", "rng-1.pt"} <= {
        p.name for p in checkpoints(output / CHECKPOINT_FOLDER)[-1][1].iterdir()
    }
    assert (output / ADAPTER_FOLDER / "unispeech_adapter.json").is_file()
    lines = [json.loads(line) for line in (output / METRICS_FILE).read_text().splitlines()]
    logged = [line["step"] for line in lines if "loss" in line]
    assert logged == sorted(set(logged)) and logged[-1] == 4  # one line a step, from the main process
