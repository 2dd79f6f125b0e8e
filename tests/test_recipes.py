import json
from pathlib import Path

import pytest
import yaml

from unispeech.training.buckets import BucketSettings
from unispeech.training.recipes import Recipe, Source, apply_override, load_recipe, recipe_from_dict

CONFIGS = sorted((Path(__file__).parents[1] / "train" / "configs").glob("*.yaml"))


def _recipe(**fields):
    return {"task": "asr", "sources": [{"task": "asr", "manifest": "train.jsonl"}], **fields}


def test_the_tiny_config_is_among_the_shipped_ones():
    assert "tiny.yaml" in [config.name for config in CONFIGS]


@pytest.mark.parametrize("config", CONFIGS, ids=[config.name for config in CONFIGS])
def test_shipped_configs_load(config):
    recipe = load_recipe(config)
    assert isinstance(recipe, Recipe) and recipe.sources
    assert recipe_from_dict(recipe.to_dict()) == recipe


def test_the_tiny_config_and_its_overrides(tmp_path):
    config = CONFIGS[[config.name for config in CONFIGS].index("tiny.yaml")]
    recipe = load_recipe(config, ["sources.0.manifest=elsewhere/m.jsonl", "steps=20", "batch.window=7"])
    assert recipe.model == "tiny" and recipe.task == "asr"
    assert recipe.sources == (Source("asr", manifest="elsewhere/m.jsonl"),)
    assert recipe.steps == 20 and recipe.batch == BucketSettings(max_positions=2048, max_samples=4, window=7)
    assert recipe.ctc.warmup_steps < recipe.steps and recipe.tasks == ("asr",)


def test_defaults_fill_what_the_file_leaves_out():
    recipe = recipe_from_dict(_recipe())
    assert recipe.batch == BucketSettings() and recipe.optimizer.betas == (0.9, 0.999)
    assert recipe.sources[0].weight == 1.0 and recipe.sources[0].label == "train"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"stesp": 5}, r"unknown field\(s\) in recipe: stesp; known: model, task"),
        (
            {"batch": {"max_positons": 5, "foo": 1}},
            r"unknown field\(s\) in recipe\.batch: foo, max_positons;",
        ),
        ({"optimizer": {"learning_rate": 1}}, r"in recipe\.optimizer: learning_rate"),
        (
            {"sources": [{"task": "asr", "manifest": "a"}, {"task": "asr", "manifest": "b", "bar": 1}]},
            r"unknown field\(s\) in recipe\.sources\[1\]: bar",
        ),
        ({"batch": 4096}, r"recipe\.batch must be a mapping, got 4096"),
        ({"sources": {"task": "asr"}}, r"recipe\.sources must be a list"),
        ({"sources": []}, "at least one entry in sources"),
        ({"task": "translate"}, r"task must be one of asr, tts, ger, joint, got 'translate'"),
        (
            {"sources": [{"task": "s2t", "manifest": "a"}]},
            r"source task must be one of asr, tts, ger, got 's2t'",
        ),
        (
            {"sources": [{"task": "tts", "manifest": "voices.jsonl"}]},
            r"a asr adapter cannot learn from a tts source \(voices\); use task: joint",
        ),
        ({"task": "ger", "sources": [{"task": "ger", "manifest": "m.jsonl"}]}, "a ger source needs `nbest:`"),
        ({"sources": [{"task": "asr", "nbest": "n.jsonl"}]}, "a asr source needs `manifest:`"),
        (
            {"sources": [{"task": "asr", "manifest": "m.jsonl", "weight": -1, "name": "mine"}]},
            r"source weights must be positive, got -1.0 \(mine\)",
        ),
        ({"sources": [{"task": "asr", "manifest": "m.jsonl", "weight": 0}]}, "must be positive, got 0"),
        ({"steps": 0}, "steps must be at least 1, got 0"),
        ({"grad_accumulation": -2}, "grad_accumulation must be at least 1, got -2"),
        ({"batch": {"window": 0}}, "window must be at least 1, got 0"),
        ({"precision": "int8"}, "precision must be one of auto, fp32, bf16, fp16, got 'int8'"),
        ({"optimizer": {"schedule": "step"}}, "schedule must be one of cosine, linear, constant, got 'step'"),
        ({"steps": 10, "ctc": {"warmup_steps": 10}}, r"ctc.warmup_steps \(10\) must be below steps \(10\)"),
        ({"steps": 10, "ctc": {"warmup_steps": 11}}, r"ctc.warmup_steps \(11\) must be below steps \(10\)"),
        (
            {
                "task": "tts",
                "sources": [{"task": "tts", "manifest": "m", "durations": "d"}],
                "ctc": {"weight": 0.3},
            },
            "the CTC alignment aid needs an asr source",
        ),
        (
            {"task": "joint", "sources": [{"task": "ger", "nbest": "n"}], "ctc": {"warmup_steps": 5}},
            "the CTC alignment aid needs an asr source",
        ),
        ({"time_masks": {"masks": 2}, "cache_features": False}, "time_masks fall on cached encoder states"),
        ({"time_masks": {"max_fraction": 2}}, r"max_fraction must lie in \[0, 1\]"),
        (
            {"task": "tts", "sources": [{"task": "tts", "manifest": "voices.jsonl"}]},
            r"a tts source needs `durations:` .*, voices has none",
        ),
        ({"dev": {"every": 10, "limit": 5, "manifest": None, "x": 1}}, r"recipe\.dev: x"),
        ({"lora": {"rank": 8, "nonsense": True}}, r"recipe\.lora: nonsense"),
    ],
)
def test_bad_recipes_are_refused_by_name(fields, message):
    with pytest.raises(ValueError, match=message):
        recipe_from_dict(_recipe(**fields))


def test_a_joint_recipe_trains_every_task_of_its_sources():
    recipe = recipe_from_dict(
        _recipe(
            task="joint",
            sources=[
                {"task": "ger", "nbest": "n.jsonl", "weight": 0.5},
                {"task": "asr", "manifest": "a.jsonl"},
                {"task": "tts", "manifest": "t.jsonl", "durations": "d.jsonl"},
                {"task": "asr", "manifest": "b.jsonl", "name": "more"},
            ],
            ctc={"warmup_steps": 5, "weight": 0.1},
        )
    )
    assert recipe.tasks == ("ger", "asr", "tts")
    assert [source.label for source in recipe.sources] == ["n", "a", "t", "more"]


def test_overrides_reach_nested_mappings_and_list_items_with_yaml_types():
    data = _recipe(sources=[{"task": "asr", "manifest": "a"}, {"task": "asr", "manifest": "b"}])
    for override in [
        "steps=20",
        "batch.window=7",
        "lora.targets=[q_proj, v_proj]",
        "optimizer.betas=[0.8, 0.95]",
        "optimizer.lr=1.0e-4",
        "sources.1.weight=3",
        "sources.0.language_hint=true",
        "dev.manifest=dev.jsonl",
        "feature_cache=null",
        "output=runs/a=b",  # only the first `=` separates
    ]:
        apply_override(data, override)
    assert data["steps"] == 20 and data["batch"] == {"window": 7}
    assert data["lora"]["targets"] == ["q_proj", "v_proj"] and data["sources"][1]["weight"] == 3
    recipe = recipe_from_dict(data)
    assert recipe.steps == 20 and recipe.batch.window == 7 and recipe.batch.max_positions == 4096
    assert recipe.lora.targets == ("q_proj", "v_proj")
    assert recipe.optimizer.betas == (0.8, 0.95) and recipe.optimizer.lr == 1e-4
    assert [source.weight for source in recipe.sources] == [1.0, 3]
    assert recipe.sources[0].language_hint is True
    assert recipe.dev.manifest == "dev.jsonl" and recipe.feature_cache is None
    assert recipe.output == "runs/a=b"


def test_load_recipe_applies_overrides_before_checking(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(_recipe(steps=5, ctc={"warmup_steps": 5})))
    with pytest.raises(ValueError, match="must be below steps"):
        load_recipe(path)
    assert load_recipe(path, ["steps=6"]).steps == 6


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("steps", "an override is key=value"),
        ("=5", "an override is key=value"),
        ("steps=[1, 2", "not valid YAML"),
        ("sources.3.manifest=x", "cannot set 'sources.3.manifest'"),
        ("sources.first.manifest=x", "cannot set 'sources.first.manifest'"),
        ("steps.x=1", "cannot set 'steps.x'"),
    ],
)
def test_bad_overrides_raise(override, message):
    with pytest.raises(ValueError, match=message):
        apply_override(_recipe(steps=5), override)


def test_unreadable_recipe_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no recipe at"):
        load_recipe(tmp_path / "absent.yaml")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(ValueError, match="must hold a mapping of recipe fields, not list"):
        load_recipe(tmp_path / "list.yaml")
    (tmp_path / "broken.yaml").write_text("task: [asr\n")
    with pytest.raises(ValueError, match="is not valid YAML"):
        load_recipe(tmp_path / "broken.yaml")


def test_to_dict_round_trips_directly_and_through_json():
    recipe = recipe_from_dict(
        _recipe(
            task="joint",
            sources=[
                {"task": "asr", "manifest": "a", "weight": 2},
                {"task": "ger", "nbest": "n", "with_audio": True},
            ],
            lora={"targets": ["q_proj"]},
            batch={"max_positions": 1024},
            ctc={"warmup_steps": 3, "weight": 0.2},
        )
    )
    assert recipe_from_dict(recipe.to_dict()) == recipe
    assert recipe_from_dict(json.loads(json.dumps(recipe.to_dict()))) == recipe
    assert (
        recipe_from_dict(yaml.safe_load(yaml.safe_dump(json.loads(json.dumps(recipe.to_dict()))))) == recipe
    )


def test_float_fields_take_yaml_1_1_exponents_and_refuse_words():
    config = next(config for config in CONFIGS if config.name == "tiny.yaml")
    assert load_recipe(config, ["optimizer.lr=1e-4"]).optimizer.lr == pytest.approx(1e-4)
    with pytest.raises(ValueError, match=r"recipe\.optimizer\.lr must be a number"):
        load_recipe(config, ["optimizer.lr=fast"])


def test_whole_numbers_and_switches_are_type_checked():
    config = next(config for config in CONFIGS if config.name == "tiny.yaml")
    with pytest.raises(ValueError, match=r"recipe\.steps must be a whole number, got 'x'"):
        load_recipe(config, ["steps=x"])
    with pytest.raises(ValueError, match=r"recipe\.qlora must be true or false, got 1"):
        load_recipe(config, ["qlora=1"])
    with pytest.raises(ValueError, match=r"recipe\.batch\.max_samples must be a whole number, got 2\.5"):
        load_recipe(config, ["batch.max_samples=2.5"])


def test_broken_yaml_is_reported_on_one_line(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("model: tiny\nsources: [\n")
    with pytest.raises(ValueError, match=r"is not valid YAML: .*\(line 3, column 1\)") as raised:
        load_recipe(broken)
    assert "\n" not in str(raised.value)
