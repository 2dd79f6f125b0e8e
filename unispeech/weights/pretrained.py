"""Pretrained models: assembling `smol` from its converted parts, and loading it back.

`convert_smol` turns the verified source files (`cache.fetch`) into the cache: SmolLM2 from GGUF
(transformers dequantises it), whisper-base from CTranslate2 (`ctranslate2.py`), HiFi-GAN from its
original checkpoint (`audio/vocoder.py`); `assemble` puts a causal LM and a Whisper encoder into one
`UnispeechLMModel` (the task modules start from a fixed seed until adapters are trained).
`load_parts("smol")` or `load_parts(path)` gives the assembled base back (model, processor,
vocoder); `load_whisper` gives the whole openai-whisper model, our reference transcriber and judge.
Other sources work the same way: any causal-LM directory or hub id as backbone, any openai-whisper
`.pt` or whisper safetensors file as encoder.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
import whisper
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase
from whisper.model import ModelDimensions, Whisper

from unispeech.audio.features import MelSettings
from unispeech.audio.vocoder import GriffinLim, HifiGan, Vocoder
from unispeech.model.configuration import UnispeechLMConfig
from unispeech.model.modeling import UnispeechLMModel
from unispeech.model.processor import UnispeechLMProcessor
from unispeech.weights.cache import (
    MODEL_DIR,
    MODELS,
    VOCODER_FILE,
    WHISPER_FILE,
    FetchedFiles,
    WeightsError,
    fetch,
    require,
)
from unispeech.weights.ctranslate2 import read_ctranslate2_model, whisper_checkpoint_from_ctranslate2

logger = logging.getLogger(__name__)

TASK_MODULE_SEED = 0  # the untrained projector, markers and flow head of a fresh base model
DIMS_METADATA_KEY = "dims"
ALIGNMENT_HEADS_METADATA_KEY = "alignment_heads"


@dataclass
class PretrainedParts:
    """An assembled model: the unified speech LM, its processor and the vocoder that voices its mels."""

    model: UnispeechLMModel
    processor: UnispeechLMProcessor
    vocoder: Vocoder


def assemble(
    backbone: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    whisper_checkpoint: dict,
    **config_overrides,
) -> tuple[UnispeechLMModel, UnispeechLMProcessor]:
    """A `UnispeechLMModel` made of a causal LM and the encoder of an openai-whisper checkpoint."""
    dims = whisper_checkpoint["dims"]
    encoder_config = {
        key: dims[key] for key in ("n_mels", "n_audio_ctx", "n_audio_state", "n_audio_head", "n_audio_layer")
    }
    # The backbone's load path (a temporary folder when converted) would end up in every adapter's
    # config as its base model, and peft would look for it at each save. A GGUF source is recorded
    # as a `quantization_config` although transformers has dequantised every weight: kept, it
    # makes every later load refuse a BitsAndBytesConfig (QLoRA).
    text_config = backbone.config.to_dict() | {"_name_or_path": ""}
    text_config.pop("quantization_config", None)
    config = UnispeechLMConfig(text_config=text_config, encoder_config=encoder_config, **config_overrides)
    with torch.random.fork_rng():
        torch.manual_seed(TASK_MODULE_SEED)
        model = UnispeechLMModel(config)
    model.backbone.load_state_dict(backbone.state_dict())
    model.encoder.load_whisper_state_dict(whisper_checkpoint["model_state_dict"])
    return model.eval(), UnispeechLMProcessor(tokenizer, config)


def convert_smol(files: FetchedFiles, staging: Path) -> None:
    """Convert the verified source files of `smol` into the cache layout under `staging`."""
    logger.info("converting SmolLM2 from GGUF")
    backbone = AutoModelForCausalLM.from_pretrained(
        files.gguf.parent, gguf_file=files.gguf.name, dtype=torch.float32
    )
    tokenizer = AutoTokenizer.from_pretrained(files.gguf.parent, gguf_file=files.gguf.name)
    logger.info("converting whisper-base from CTranslate2")
    checkpoint = whisper_checkpoint_from_ctranslate2(read_ctranslate2_model(files.whisper_parts))
    alignment_heads = json.loads(files.whisper_config.read_text()).get("alignment_heads", [])
    save_whisper(checkpoint, staging / WHISPER_FILE, alignment_heads)
    model, processor = assemble(backbone, tokenizer, checkpoint)
    model.save_pretrained(staging / MODEL_DIR)
    processor.save_pretrained(staging / MODEL_DIR)
    logger.info("converting HiFi-GAN")
    vocoder_path = staging / VOCODER_FILE
    vocoder_path.parent.mkdir(parents=True)
    HifiGan.from_checkpoint(files.hifigan).remove_weight_norm().save(vocoder_path)


CONVERTERS = {"smol": convert_smol}  # what turns each named model's verified files into its cache


def fetch_model(name: str = "smol", **options) -> Path:
    """Download, verify and convert `name` into the weight cache once (`cache.fetch` with the
    model's converter; `options` are fetch's); return its folder."""
    if name not in CONVERTERS:
        raise ValueError(f"unknown model {name!r}: one of {', '.join(CONVERTERS)}")
    return fetch(name, convert=CONVERTERS[name], **options)


def save_whisper(checkpoint: dict, path: Path, alignment_heads: list[list[int]] | None = None) -> None:
    """An openai-whisper checkpoint as one safetensors file, its dimensions in the metadata."""
    metadata = {
        DIMS_METADATA_KEY: json.dumps(checkpoint["dims"]),
        ALIGNMENT_HEADS_METADATA_KEY: json.dumps(alignment_heads or []),
    }
    state = {key: value.contiguous() for key, value in checkpoint["model_state_dict"].items()}
    save_file(state, path, metadata=metadata)


def load_whisper(name_or_path: str | Path = "smol", device: str = "cpu") -> Whisper:
    """The whole openai-whisper model: from the cache of `name`, a whisper safetensors file, or a `.pt`."""
    path = _folder(name_or_path) / WHISPER_FILE if str(name_or_path) in MODELS else Path(name_or_path)
    if path.suffix != ".safetensors":
        return whisper.load_model(str(path), device=device)
    try:
        with safe_open(path, framework="pt") as file:
            metadata = file.metadata() or {}
            state = {key: file.get_tensor(key) for key in file.keys()}  # noqa: SIM118 - safe_open is no dict
    except (SafetensorError, OSError) as error:
        raise WeightsError(f"cannot read whisper weights {path}: {error}") from None
    if DIMS_METADATA_KEY not in metadata:
        raise WeightsError(f"{path} has no whisper dimensions in its metadata: not saved by unispeech")
    model = Whisper(ModelDimensions(**json.loads(metadata[DIMS_METADATA_KEY])))
    model.load_state_dict(state)
    heads = json.loads(metadata.get(ALIGNMENT_HEADS_METADATA_KEY, "[]"))
    if heads:
        mask = torch.zeros(model.dims.n_text_layer, model.dims.n_text_head, dtype=torch.bool)
        mask[tuple(torch.tensor(heads).T)] = True
        model.register_buffer("alignment_heads", mask.to_sparse(), persistent=False)
    return model.to(device).eval()


GRIFFIN_LIM = "griffin-lim"


def load_vocoder(name_or_path: str | Path = "smol", mel_settings: MelSettings | None = None) -> Vocoder:
    """A vocoder: HiFi-GAN from the cache of `name`, from a folder holding `hifigan/`, or from a
    `.safetensors` file; or `"griffin-lim"` (no weights) for `mel_settings`."""
    if str(name_or_path) == GRIFFIN_LIM:
        return GriffinLim(mel_settings or MelSettings())
    path = _folder(name_or_path)
    path = path / VOCODER_FILE if path.is_dir() else path
    if not path.is_file():
        raise WeightsError(
            f"no vocoder at {path}; use a model name ({', '.join(MODELS)}), a folder or {GRIFFIN_LIM!r}"
        )
    try:
        vocoder = HifiGan.from_safetensors(path)
    except (SafetensorError, OSError) as error:
        raise WeightsError(f"cannot read the vocoder at {path}: {error}") from None
    if mel_settings is not None and vocoder.mel_settings != mel_settings:
        raise WeightsError(
            f"the vocoder at {path} reads {vocoder.mel_settings}, but the model makes {mel_settings}: "
            "they cannot be used together"
        )
    return vocoder.eval()


def load_parts(
    name_or_path: str | Path = "smol", attn_implementation: str = "sdpa", **model_kwargs
) -> PretrainedParts:
    """The assembled base model: `"smol"` from the cache, or a folder saved by `save_pretrained`
    (with, optionally, `hifigan/generator.safetensors`; Griffin-Lim stands in without one).
    `model_kwargs` go to `from_pretrained` (e.g. a `quantization_config` for QLoRA)."""
    folder = _folder(name_or_path)
    model_dir = folder / MODEL_DIR if (folder / MODEL_DIR).is_dir() else folder
    if not (model_dir / "config.json").is_file():
        raise WeightsError(f"no model at {model_dir} (no config.json); known names: {', '.join(MODELS)}")
    try:
        model = UnispeechLMModel.from_pretrained(
            model_dir, attn_implementation=attn_implementation, **model_kwargs
        ).eval()
        processor = UnispeechLMProcessor.from_pretrained(model_dir)
    except (SafetensorError, OSError) as error:
        raise WeightsError(f"cannot read the model at {model_dir}: {error}") from None
    has_vocoder = (folder / VOCODER_FILE).is_file()
    vocoder = load_vocoder(folder if has_vocoder else GRIFFIN_LIM, model.config.mel_settings)
    return PretrainedParts(model=model, processor=processor, vocoder=vocoder)


def _folder(name_or_path: str | Path) -> Path:
    """A model name's cache folder (checked complete), or the path as given."""
    return require(str(name_or_path)) if str(name_or_path) in MODELS else Path(name_or_path)
