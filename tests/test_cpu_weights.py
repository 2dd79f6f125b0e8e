import pytest
import torch
from torch import nn

from unispeech.api import load
from unispeech.model.adapters import add_task_adapter, save_task_adapter, set_task
from unispeech.model.cpu_weights import is_packed, pack_fp16_weights
from unispeech.testing import tiny_model


def backbone_output(model, task, embeddings):
    set_task(model, task)
    with torch.inference_mode():
        hidden = model.backbone.get_decoder()(inputs_embeds=embeddings).last_hidden_state
        return model.backbone.get_output_embeddings()(hidden)  # (B, L, vocab)


def with_adapters(tasks):
    """The tiny model with a LoRA adapter per task, each moved away from its no-op start."""
    torch.manual_seed(0)
    model, _ = tiny_model()
    for task in tasks:
        add_task_adapter(model, task)
        for name, parameter in model.backbone.named_parameters():
            if "lora_B" in name and f".{task}." in name:
                nn.init.normal_(parameter, std=0.05)
    return model.eval()


def test_packing_keeps_every_adapter_and_what_it_computes():
    model = with_adapters(["asr", "tts"])
    embeddings = torch.randn(2, 5, model.config.text_config.hidden_size)
    before = {task: backbone_output(model, task, embeddings) for task in ("asr", "tts", None)}
    assert before["asr"].sub(before["tts"]).abs().max() > 1e-3, "the two adapters differ"
    frozen = sum(type(m) is nn.Linear and "lora_" not in n for n, m in model.backbone.named_modules())
    lora_weights = {n: p.clone() for n, p in model.backbone.named_parameters() if "lora_" in n}

    assert not is_packed(model)
    assert pack_fp16_weights(model) == frozen > 0
    assert is_packed(model) and pack_fp16_weights(model) == 0, "packing twice packs nothing"
    for task, expected in before.items():
        after = backbone_output(model, task, embeddings)
        assert torch.allclose(after, expected, atol=2e-3, rtol=1e-2), task
    after_lora = dict(model.backbone.named_parameters())
    assert all(torch.equal(after_lora[n], w) for n, w in lora_weights.items()), "LoRA's matrices stay"


def test_fp16_weights_are_what_load_gives_when_asked(tiny_dir, tmp_path):
    model = with_adapters(["asr", "ger"])
    model.load_state_dict(
        load(tiny_dir, adapters=None, weight_format="fp32").model.state_dict(), strict=False
    )
    for task in ("asr", "ger"):
        save_task_adapter(model, task, tmp_path / task)
    plain = load(tiny_dir, adapters=tmp_path, weight_format="fp32")
    packed = load(tiny_dir, adapters=tmp_path)  # fp16 is the default
    assert not is_packed(plain.model) and is_packed(packed.model) and packed.tasks == ["asr", "ger"]
    embeddings = torch.randn(1, 4, model.config.text_config.hidden_size)
    for task in ("asr", "ger"):
        expected = backbone_output(plain.model, task, embeddings)
        assert torch.allclose(backbone_output(packed.model, task, embeddings), expected, atol=2e-3, rtol=1e-2)


def test_an_unknown_weight_format_is_refused_before_the_model_loads(monkeypatch):
    monkeypatch.setattr("unispeech.api.load_parts", lambda *a: pytest.fail("the model loaded"))
    with pytest.raises(ValueError, match="weight_format must be one of fp32, fp16, got 'int3'"):
        load("smol", weight_format="int3")


def test_only_a_model_on_the_cpu_is_packed():
    model = with_adapters([])
    model.backbone.get_input_embeddings().to("meta")  # stands in for a GPU: one layer elsewhere
    with pytest.raises(ValueError, match="fp16 weight packing is for a model on the CPU, not on cpu, meta"):
        pack_fp16_weights(model)


def test_a_packed_model_takes_no_more_adapters(tiny_dir, tmp_path):
    model = with_adapters(["ger"])
    save_task_adapter(model, "ger", tmp_path / "ger")
    packed = load(tiny_dir, adapters=None, weight_format="fp16")
    with pytest.raises(ValueError, match=r"packed in fp16 .* adapters load before packing"):
        packed.load_adapter(tmp_path / "ger", "ger")
    with pytest.raises(ValueError, match=r"packed in fp16 .* adapters load before packing"):
        add_task_adapter(packed.model, "asr")
    assert packed.tasks == []
