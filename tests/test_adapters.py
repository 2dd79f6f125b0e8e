import json

import pytest
import torch

from tests.conftest import noise_clip
from unispeech.model.adapters import (
    ADAPTER_CONFIG_FILE,
    ADAPTER_WEIGHTS_FILE,
    METADATA_FILE,
    TASK_MODULES_FILE,
    AdapterError,
    AdapterMismatchError,
    active_task,
    add_task_adapter,
    default_lora_config,
    load_task_adapter,
    loaded_tasks,
    save_task_adapter,
    set_task,
)
from unispeech.model.ctc import CtcHead
from unispeech.model.processor import AsrSample
from unispeech.testing import tiny_model, tts_sample

SMALL_LORA_RANK = 4
TRAINING_NOISE = 0.05  # scale of the random "training" updates: enough to move every output


def _tiny(**overrides):
    """A tiny model with the same base weights every time (so fresh models share one base)."""
    torch.manual_seed(0)
    return tiny_model(**overrides)


@pytest.fixture
def tiny():
    return _tiny()


def _batch(processor):
    return processor(
        [
            AsrSample(noise_clip(0.5, 16000, 1), "hello world", 16000),
            tts_sample(noise_clip(0.3, 22050, 2), "speak this", processor.config, 22050),
        ]
    )


@torch.no_grad()
def _outputs(model, batch) -> dict[str, torch.Tensor]:
    """The summed loss (text + TTS), the TTS loss and the hidden states, under one fixed
    flow-matching draw."""
    example = model.flow.draw(
        model.flow.normalize(batch["mel"]), batch["mel_lengths"], torch.Generator().manual_seed(0)
    )
    output = model(**batch, flow_example=example)
    return {"loss": output.loss, "tts_loss": output.tts_loss, "hidden": output.last_hidden_state}


def _assert_equal(actual: dict, expected: dict) -> None:
    for key in expected:
        assert torch.equal(actual[key], expected[key]), key


def _assert_differs(actual: dict, expected: dict) -> None:
    assert (actual["hidden"] - expected["hidden"]).abs().max() > 1e-3


@torch.no_grad()
def _train(model, task: str, seed: int) -> None:
    """Stand in for training: move the task's LoRA (lora_B too, so it is no no-op) and its modules."""
    generator = torch.Generator().manual_seed(seed)

    def nudge(parameter: torch.Tensor) -> None:
        parameter.add_(TRAINING_NOISE * torch.randn(parameter.shape, generator=generator))

    for name, parameter in model.backbone.named_parameters():
        if "lora_" in name and f".{task}." in name:
            nudge(parameter)
    for module in {"asr": ("projector", "markers"), "tts": ("flow", "markers")}[task]:
        for parameter in getattr(model, module).parameters():
            nudge(parameter)


def _module_state(model, module: str) -> dict[str, torch.Tensor]:
    return {key: value.clone() for key, value in getattr(model, module).state_dict().items()}


def _assert_module(model, module: str, expected: dict[str, torch.Tensor]) -> None:
    state = getattr(model, module).state_dict()
    assert all(torch.equal(state[key], value) for key, value in expected.items()), module


def _small_lora(model):
    config = default_lora_config(model)
    config.r, config.lora_alpha = SMALL_LORA_RANK, 2 * SMALL_LORA_RANK
    return config


def test_the_default_lora_targets_the_backbones_attention_projections(tiny):
    model, _ = tiny
    config = default_lora_config(model)
    assert set(config.target_modules) == {"q_proj", "k_proj", "v_proj", "o_proj"}
    assert (config.r, config.lora_alpha, config.lora_dropout) == (16, 32, 0.05)


def test_a_fresh_adapter_is_trainable_and_a_no_op_until_trained(tiny):
    model, processor = tiny
    batch = _batch(processor)
    base = _outputs(model, batch)
    add_task_adapter(model, "asr")
    assert active_task(model) == "asr" and loaded_tasks(model) == ["asr"]
    assert not any(module.training for module in model.modules()), "new LoRA layers follow eval mode"
    _assert_equal(_outputs(model, batch), base)

    trainable = {name for name, parameter in model.named_parameters() if parameter.requires_grad}
    assert any(".lora_B.asr." in name for name in trainable)
    assert all("lora_" in name for name in trainable if name.startswith("backbone."))  # base frozen
    assert all(p.requires_grad for m in (model.projector, model.markers) for p in m.parameters())

    _train(model, "asr", seed=1)
    trained = _outputs(model, batch)
    _assert_differs(trained, base)
    set_task(model, None)
    assert active_task(model) is None
    _assert_equal(_outputs(model, batch), base)
    set_task(model, "asr")
    _assert_equal(_outputs(model, batch), trained)


def test_save_then_load_into_a_fresh_model_gives_the_same_outputs(tiny, tmp_path):
    model, processor = tiny
    batch = _batch(processor)
    add_task_adapter(model, "asr", lora=_small_lora(model))
    _train(model, "asr", seed=1)
    expected = _outputs(model, batch)
    folder = save_task_adapter(model, "asr", tmp_path / "smol" / "asr")

    assert sorted(file.name for file in folder.iterdir()) == sorted(
        [ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, TASK_MODULES_FILE, METADATA_FILE]
    )
    metadata = json.loads((folder / METADATA_FILE).read_text())
    assert metadata["task"] == "asr" and metadata["task_modules"] == ["projector", "markers"]
    assert metadata["base"]["hidden_size"] == 64 and metadata["base"]["projector_stack"] == 4
    assert metadata["dtype"] == "float32"

    fresh, _ = _tiny()
    assert load_task_adapter(fresh, folder) == "asr"
    assert active_task(fresh) == "asr"
    _assert_equal(_outputs(fresh, batch), expected)
    assert not any(p.requires_grad for name, p in fresh.backbone.named_parameters() if "lora_" in name)


def test_switching_between_two_loaded_tasks_is_exact(tiny, tmp_path):
    model, processor = tiny
    batch = _batch(processor)
    base = _outputs(model, batch)
    base_projector, base_flow = _module_state(model, "projector"), _module_state(model, "flow")
    for seed, task in enumerate(["asr", "tts"], start=1):
        add_task_adapter(model, task, lora=_small_lora(model))
        _train(model, task, seed)
        save_task_adapter(model, task, tmp_path / task)

    fresh, _ = _tiny()
    load_task_adapter(fresh, tmp_path / "asr")
    asr, asr_projector, asr_markers = (
        _outputs(fresh, batch),
        *(_module_state(fresh, m) for m in ("projector", "markers")),
    )
    load_task_adapter(fresh, tmp_path / "tts")
    tts, tts_flow, tts_markers = (
        _outputs(fresh, batch),
        *(_module_state(fresh, m) for m in ("flow", "markers")),
    )
    assert loaded_tasks(fresh) == ["asr", "tts"] and active_task(fresh) == "tts"
    _assert_differs(asr, tts)
    _assert_differs(asr, base)

    for task, expected in [
        ("asr", asr),
        ("asr", asr),
        ("tts", tts),
        ("asr", asr),
        (None, base),
        (None, base),
        ("tts", tts),
    ]:
        set_task(fresh, task)
        assert active_task(fresh) == task
        _assert_equal(_outputs(fresh, batch), expected)
        if task == "asr":  # its modules in place, the others as in the base
            _assert_module(fresh, "projector", asr_projector)
            _assert_module(fresh, "markers", asr_markers)
            _assert_module(fresh, "flow", base_flow)
        elif task == "tts":
            _assert_module(fresh, "flow", tts_flow)
            _assert_module(fresh, "markers", tts_markers)
            _assert_module(fresh, "projector", base_projector)
        else:
            _assert_module(fresh, "projector", base_projector)
            _assert_module(fresh, "flow", base_flow)


def test_choosing_the_active_task_again_moves_no_weights(tiny, tmp_path, monkeypatch):
    from unispeech.model import adapters

    model, _ = tiny
    add_task_adapter(model, "asr", lora=_small_lora(model))
    save_task_adapter(model, "asr", tmp_path / "asr")
    fresh, _ = _tiny()
    load_task_adapter(fresh, tmp_path / "asr")
    moved = []
    original = adapters._put_module_weights
    monkeypatch.setattr(adapters, "_put_module_weights", lambda *a: moved.append(a[1]) or original(*a))
    set_task(fresh, "asr")
    assert moved == [], "one clip transcribed after another switches nothing"
    set_task(fresh, None)
    assert moved, "the bare base model puts the base modules back"
    moved.clear()
    set_task(fresh, None)
    assert moved == []


@torch.no_grad()
def test_task_modules_trained_in_place_survive_a_switch(tiny):
    model, _ = tiny
    add_task_adapter(model, "asr", lora=_small_lora(model))
    add_task_adapter(model, "tts", lora=_small_lora(model))
    set_task(model, "asr")
    model.projector.linear_in.weight.add_(1.0)  # as an optimiser step would
    trained = _module_state(model, "projector")
    set_task(model, "tts")
    assert not torch.equal(model.projector.linear_in.weight, trained["linear_in.weight"])
    set_task(model, "asr")
    _assert_module(model, "projector", trained)


def test_an_unknown_task_is_refused_with_the_loaded_ones(tiny):
    model, _ = tiny
    with pytest.raises(ValueError, match=r"task 'asr' has no adapter on this model; loaded tasks: none"):
        set_task(model, "asr")
    add_task_adapter(model, "asr", lora=_small_lora(model))
    add_task_adapter(model, "tts", lora=_small_lora(model))
    with pytest.raises(ValueError, match=r"task 'ger' has no adapter on this model; loaded tasks: asr, tts"):
        set_task(model, "ger")
    with pytest.raises(ValueError, match=r"task 'asr' already has an adapter"):
        add_task_adapter(model, "asr")
    with pytest.raises(ValueError, match=r"not task modules of this model: encoder"):
        add_task_adapter(model, "ger", modules=["projector", "encoder"])


def test_a_loaded_adapter_stays_frozen_unless_loaded_trainable(tiny, tmp_path):
    model, _ = tiny
    add_task_adapter(model, "asr", lora=_small_lora(model))
    save_task_adapter(model, "asr", tmp_path / "asr")

    def lora_trainable(model) -> set[bool]:
        return {p.requires_grad for name, p in model.backbone.named_parameters() if ".lora_A.asr." in name}

    frozen, _ = _tiny()
    load_task_adapter(frozen, tmp_path / "asr")
    set_task(frozen, None)
    set_task(frozen, "asr")  # peft's set_adapter would make it trainable
    assert lora_trainable(frozen) == {False}
    trainable, _ = _tiny()
    load_task_adapter(trainable, tmp_path / "asr", trainable=True)
    assert lora_trainable(trainable) == {True}


def test_loading_a_task_again_replaces_it(tiny, tmp_path):
    model, processor = tiny
    batch = _batch(processor)
    add_task_adapter(model, "asr", lora=_small_lora(model))
    _train(model, "asr", seed=1)
    save_task_adapter(model, "asr", tmp_path / "first")
    _train(model, "asr", seed=2)
    second = _outputs(model, batch)
    save_task_adapter(model, "asr", tmp_path / "second")

    fresh, _ = _tiny()
    load_task_adapter(fresh, tmp_path / "first")
    load_task_adapter(fresh, tmp_path / "second")
    assert loaded_tasks(fresh) == ["asr"]
    _assert_equal(_outputs(fresh, batch), second)
    assert load_task_adapter(fresh, tmp_path / "first", task="asr_first") == "asr_first"
    assert loaded_tasks(fresh) == ["asr", "asr_first"]


@pytest.fixture
def saved_asr(tiny, tmp_path):
    model, _ = tiny
    add_task_adapter(model, "asr", lora=_small_lora(model))
    _train(model, "asr", seed=1)
    return save_task_adapter(model, "asr", tmp_path / "asr")


def test_an_adapter_from_another_base_is_refused_naming_each_field(saved_asr):
    other, _ = _tiny(projector_stack=2)
    with pytest.raises(AdapterMismatchError, match=r"projector_stack=4; this model has projector_stack=2"):
        load_task_adapter(other, saved_asr)
    assert loaded_tasks(other) == []

    metadata = json.loads((saved_asr / METADATA_FILE).read_text())
    metadata["base"].update(hidden_size=576, num_hidden_layers=30)  # as if trained on smol
    (saved_asr / METADATA_FILE).write_text(json.dumps(metadata))
    model, _ = _tiny()
    with pytest.raises(AdapterMismatchError) as raised:
        load_task_adapter(model, saved_asr)
    assert str(raised.value) == (
        f"adapter 'asr' at {saved_asr} was trained on a base with hidden_size=576, num_hidden_layers=30; "
        "this model has hidden_size=64, num_hidden_layers=2"
    )
    assert isinstance(raised.value, ValueError)


def test_the_fingerprint_holds_only_the_fields_an_adapters_modules_read(saved_asr, tmp_path):
    metadata = json.loads((saved_asr / METADATA_FILE).read_text())
    assert "projector_stack" in metadata["base"] and "mel_patch_size" not in metadata["base"]
    other_patch, _ = _tiny(mel_patch_size=2)
    assert load_task_adapter(other_patch, saved_asr) == "asr"  # ASR never reads the mel patches

    model, _ = _tiny()
    add_task_adapter(model, "tts", lora=_small_lora(model))
    saved_tts = save_task_adapter(model, "tts", tmp_path / "tts")
    other_stack, _ = _tiny(projector_stack=2)
    assert load_task_adapter(other_stack, saved_tts) == "tts"  # TTS never reads the projector
    with pytest.raises(AdapterMismatchError, match=r"mel_patch_size=4; this model has mel_patch_size=2"):
        load_task_adapter(other_patch, saved_tts)


def test_an_adapter_of_another_task_is_refused_as_that_task(saved_asr, tmp_path):
    model, _ = _tiny()
    add_task_adapter(model, "tts", lora=_small_lora(model))
    saved_tts = save_task_adapter(model, "tts", tmp_path / "tts")
    fresh, _ = _tiny()
    for folder, held, asked in (
        (saved_tts, "tts", "asr"),
        (saved_asr, "asr", "ger"),
        (saved_asr, "asr", "tts"),
    ):
        with pytest.raises(AdapterMismatchError) as raised:
            load_task_adapter(fresh, folder, task=asked)
        assert str(raised.value) == (
            f"the adapter at {folder} holds task {held!r}, not {asked!r}: "
            f"give a folder that holds task {asked!r}"
        )
    assert loaded_tasks(fresh) == [], "refused before the model is touched"
    assert load_task_adapter(fresh, saved_asr, task="asr") == "asr"
    assert load_task_adapter(fresh, saved_tts, task="tts_spare") == "tts_spare", "a free name takes any task"


def test_a_joint_adapter_serves_the_tasks_whose_modules_it_holds(tmp_path):
    model, _ = _tiny()
    add_task_adapter(model, "joint", lora=_small_lora(model), modules=("projector", "markers", "flow"))
    full = save_task_adapter(model, "joint", tmp_path / "joint")
    set_task(model, None)
    add_task_adapter(model, "joint_text", lora=_small_lora(model), modules=("projector", "markers"))
    speech_only = save_task_adapter(model, "joint_text", tmp_path / "joint_text")
    fresh, _ = _tiny()
    for task in ("asr", "tts", "ger"):
        assert load_task_adapter(fresh, full, task=task) == task
    other, _ = _tiny()
    assert load_task_adapter(other, speech_only, task="ger") == "ger"
    with pytest.raises(
        AdapterMismatchError, match=r"holds task 'joint_text' without the flow a 'tts' adapter needs"
    ):
        load_task_adapter(other, speech_only, task="tts")


def test_a_missing_or_incomplete_folder_is_refused(saved_asr, tmp_path):
    model, _ = _tiny()
    with pytest.raises(FileNotFoundError, match=r"no adapter folder at .*nowhere"):
        load_task_adapter(model, tmp_path / "nowhere")
    (saved_asr / METADATA_FILE).unlink()  # a plain peft folder, say
    with pytest.raises(
        FileNotFoundError, match=rf"not a complete unispeech adapter: {METADATA_FILE} missing"
    ):
        load_task_adapter(model, saved_asr)
    assert loaded_tasks(model) == []


@pytest.mark.parametrize("damaged", [ADAPTER_WEIGHTS_FILE, TASK_MODULES_FILE, METADATA_FILE])
def test_a_damaged_file_is_refused_before_the_model_changes(saved_asr, damaged):
    file = saved_asr / damaged
    file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])  # a truncated copy
    model, processor = _tiny()
    batch = _batch(processor)
    base = _outputs(model, batch)
    with pytest.raises(AdapterError, match=rf"cannot read .*{damaged}.*damaged"):
        load_task_adapter(model, saved_asr)
    assert loaded_tasks(model) == []
    _assert_equal(_outputs(model, batch), base)


def test_lora_weights_that_do_not_fit_their_config_are_refused(saved_asr):
    from safetensors.torch import load_file, save_file

    tensors = load_file(saved_asr / ADAPTER_WEIGHTS_FILE)
    del tensors[next(key for key in tensors if "lora_B" in key)]  # a silent no-op layer otherwise
    save_file(tensors, saved_asr / ADAPTER_WEIGHTS_FILE)
    model, _ = _tiny()
    with pytest.raises(AdapterError, match=r"do not match adapter_config.json: missing"):
        load_task_adapter(model, saved_asr)
    assert loaded_tasks(model) == []


def test_a_half_precision_save_is_smaller_and_loads_close(tiny, tmp_path):
    model, processor = tiny
    batch = _batch(processor)
    add_task_adapter(model, "tts", lora=_small_lora(model))
    _train(model, "tts", seed=3)
    expected = _outputs(model, batch)
    full = save_task_adapter(model, "tts", tmp_path / "fp32")
    half = save_task_adapter(model, "tts", tmp_path / "fp16", dtype=torch.float16)
    for file in (ADAPTER_WEIGHTS_FILE, TASK_MODULES_FILE):
        assert (half / file).stat().st_size < 0.6 * (full / file).stat().st_size, file
    assert json.loads((half / METADATA_FILE).read_text())["dtype"] == "float16"

    fresh, _ = _tiny()
    load_task_adapter(fresh, half)
    assert fresh.flow.mel_output.weight.dtype == torch.float32
    assert all(p.dtype == torch.float32 for p in fresh.backbone.parameters())
    actual = _outputs(fresh, batch)
    for key in expected:
        torch.testing.assert_close(actual[key], expected[key], atol=2e-3, rtol=2e-3)
    with pytest.raises(ValueError, match=r"dtype must be one of float32, float16, bfloat16"):
        save_task_adapter(model, "tts", tmp_path / "int8", dtype=torch.int8)


def test_a_model_with_adapters_refuses_save_pretrained(tmp_path):
    model, _ = tiny_model()
    set_task(model, None)
    model.save_pretrained(tmp_path / "bare")  # no adapter ever loaded: an ordinary base model
    add_task_adapter(model, "asr")
    with pytest.raises(ValueError, match=r"carries task adapters: save them with .*save_task_adapter"):
        model.save_pretrained(tmp_path / "wrapped")


def test_a_new_adapter_trains_only_its_lora_and_task_modules():
    model, _ = tiny_model()
    add_task_adapter(model, "ger")
    trainable = {name.split(".")[0] for name, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"backbone", "projector", "markers"}
    lora_only = [n for n, p in model.backbone.named_parameters() if p.requires_grad]
    assert lora_only and all("lora_" in name for name in lora_only)


def test_an_adapter_can_start_from_another_tasks_saved_adapter(saved_asr):
    """Audio-aware GER starts from the ASR adapter: same LoRA and projector, trainable, as `ger`."""
    model, _ = _tiny()
    add_task_adapter(model, "ger", lora=_small_lora(model), start_from=saved_asr)
    assert active_task(model) == "ger"
    reference, _ = _tiny()
    load_task_adapter(reference, saved_asr)
    _assert_module(model, "projector", _module_state(reference, "projector"))
    trainable = {name.split(".")[0] for name, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"backbone", "projector", "markers"}
    lora = [p.requires_grad for n, p in model.backbone.named_parameters() if ".lora_A.ger." in n]
    assert lora and all(lora)


def test_starting_from_an_adapter_of_another_shape_is_refused(saved_asr):
    model, _ = _tiny()
    with pytest.raises(AdapterMismatchError, match=rf"its r {SMALL_LORA_RANK} \(asked: 8\)"):
        lora = _small_lora(model)
        lora.r = 8
        add_task_adapter(model, "ger", lora=lora, start_from=saved_asr)
    with pytest.raises(
        AdapterMismatchError,
        match=r"task_modules \['projector', 'markers'\] \(asked: \['flow', 'markers'\]\)",
    ):
        add_task_adapter(model, "tts", lora=_small_lora(model), start_from=saved_asr)
    assert loaded_tasks(model) == []


# ------------------------------------------------------------------------------- the CTC head


def _give_ctc_head(model, token_ids, seed: int) -> None:
    """A trained-looking CTC head on the model, as the trainer sets one for the CTC aid."""
    model.ctc = CtcHead(token_ids, model.config.text_config.hidden_size)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.ctc.parameters():
            parameter.add_(TRAINING_NOISE * torch.randn(parameter.shape, generator=generator))


def _head_state(model) -> dict[str, torch.Tensor]:
    return {key: value.clone() for key, value in model.ctc.state_dict().items()}


def test_an_asr_adapter_carries_its_ctc_head_and_rebuilds_it_from_its_tensors(tiny, tmp_path):
    model, _ = tiny
    add_task_adapter(model, "asr", lora=_small_lora(model))
    assert model.ctc is None, "the base model has no CTC head"
    _give_ctc_head(model, [5, 9, 30, 41], seed=1)
    expected = _head_state(model)
    folder = save_task_adapter(model, "asr", tmp_path / "asr")
    assert json.loads((folder / METADATA_FILE).read_text())["task_modules"] == ["projector", "markers", "ctc"]

    fresh, _ = _tiny()
    load_task_adapter(fresh, folder)
    assert isinstance(fresh.ctc, CtcHead) and fresh.ctc.token_ids.tolist() == [5, 9, 30, 41]
    _assert_module(fresh, "ctc", expected)
    set_task(fresh, None)
    assert fresh.ctc is None, "the bare base has no head"
    set_task(fresh, "asr")
    _assert_module(fresh, "ctc", expected)


def test_heads_of_different_sizes_switch_with_their_adapters_and_one_without_leaves_none(tmp_path):
    model, _ = _tiny()
    add_task_adapter(model, "asr", lora=_small_lora(model))
    _give_ctc_head(model, [5, 9], seed=1)
    small = save_task_adapter(model, "asr", tmp_path / "small")
    _give_ctc_head(model, [5, 9, 30, 41, 77], seed=2)
    large = save_task_adapter(model, "asr", tmp_path / "large")
    model.ctc = None
    without = save_task_adapter(model, "asr", tmp_path / "without")
    assert json.loads((without / METADATA_FILE).read_text())["task_modules"] == ["projector", "markers"]

    fresh, _ = _tiny()
    load_task_adapter(fresh, small, task="asr_small")
    small_head = _head_state(fresh)
    load_task_adapter(fresh, large, task="asr_large")
    large_head = _head_state(fresh)
    load_task_adapter(fresh, without, task="asr")
    for task, expected in [("asr_small", small_head), ("asr", None), ("asr_large", large_head)]:
        set_task(fresh, task)
        if expected is None:
            assert fresh.ctc is None
        else:
            assert len(fresh.ctc.token_ids) == len(expected["token_ids"])
            _assert_module(fresh, "ctc", expected)


def test_a_head_trained_in_place_survives_a_switch_and_is_loaded_in_place_when_it_fits(tiny):
    """What was trained comes back; a head of the right size is loaded into, not replaced (an
    optimiser holds its parameters)."""
    model, _ = tiny
    add_task_adapter(model, "asr", lora=_small_lora(model))
    add_task_adapter(model, "tts", lora=_small_lora(model))
    set_task(model, "asr")
    _give_ctc_head(model, [5, 9, 30], seed=1)
    head, bias = model.ctc, model.ctc.bias
    with torch.no_grad():
        bias.add_(1.0)  # as an optimiser step would
    trained = _head_state(model)
    set_task(model, "tts")
    assert model.ctc is None
    set_task(model, "asr")
    assert model.ctc is not None and model.ctc is not head, "rebuilt after tts, which has none"
    _assert_module(model, "ctc", trained)
    rebuilt, rebuilt_bias = model.ctc, model.ctc.bias
    set_task(model, "asr")
    assert model.ctc is rebuilt and model.ctc.bias is rebuilt_bias, "loaded in place when the shapes fit"


def test_starting_from_an_adapter_takes_the_head_only_where_the_task_trains_one(saved_asr, tmp_path):
    with_head, _ = _tiny()
    add_task_adapter(with_head, "asr", lora=_small_lora(with_head))
    _give_ctc_head(with_head, [5, 9, 30], seed=1)
    head = _head_state(with_head)
    saved_with_head = save_task_adapter(with_head, "asr", tmp_path / "with_head")

    ger, _ = _tiny()
    add_task_adapter(ger, "ger", lora=_small_lora(ger), start_from=saved_with_head)
    assert ger.ctc is None, "GER trains no CTC head"
    ger_folder = save_task_adapter(ger, "ger", tmp_path / "ger")
    assert json.loads((ger_folder / METADATA_FILE).read_text())["task_modules"] == ["projector", "markers"]

    continued, _ = _tiny()
    add_task_adapter(continued, "asr", lora=_small_lora(continued), start_from=saved_with_head)
    _assert_module(continued, "ctc", head)
    assert all(p.requires_grad for p in continued.ctc.parameters()), "trainable, as the other modules"

    older, _ = _tiny()  # an ASR adapter saved without a head (as the shipped one)
    add_task_adapter(older, "asr", lora=_small_lora(older), start_from=saved_asr)
    assert older.ctc is None
    _give_ctc_head(older, [5, 9], seed=3)  # what the trainer does for the CTC aid
    folder = save_task_adapter(older, "asr", tmp_path / "older_with_head")
    assert json.loads((folder / METADATA_FILE).read_text())["task_modules"] == ["projector", "markers", "ctc"]


def test_a_damaged_ctc_head_is_refused_before_the_model_changes(tmp_path):
    from safetensors.torch import load_file, save_file

    model, _ = _tiny()
    add_task_adapter(model, "asr", lora=_small_lora(model))
    _give_ctc_head(model, [5, 9, 30], seed=1)
    folder = save_task_adapter(model, "asr", tmp_path / "asr")
    tensors = load_file(folder / TASK_MODULES_FILE)
    del tensors["ctc.bias"]
    save_file(tensors, folder / TASK_MODULES_FILE)
    fresh, _ = _tiny()
    with pytest.raises(AdapterError, match=r"does not fit this model: ctc\.\*: a CTC head's tensors are"):
        load_task_adapter(fresh, folder)
    assert loaded_tasks(fresh) == [] and fresh.ctc is None
