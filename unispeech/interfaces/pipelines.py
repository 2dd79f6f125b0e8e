"""Hugging Face pipelines over the unified model: speech recognition, text-to-audio, N-best correction.

Importing this module registers three tasks with transformers, so that

    import unispeech.interfaces.pipelines
    asr = pipeline("unispeech-speech-recognition", model=MODEL_DIR)   # {"text", "chunks"?, "nbest"?}
    tts = pipeline("unispeech-text-to-audio", model=MODEL_DIR)        # {"audio", "sampling_rate"}
    ger = pipeline("unispeech-nbest-correction", model=MODEL_DIR)     # {"text"}

work like the stock ones (`MODEL_DIR` is any folder saved with `save_pretrained`, such as
`unispeech.weights.cache.cache_dir("smol") / "model"`; a model object with `tokenizer=` works too).
Each follows transformers' contract: `_sanitize_parameters` returns only what the caller passed,
`preprocess` normalises the input, `_forward` is the one model call (through the task functions of
`tasks/transcription.py`, `tasks/synthesis.py`, `tasks/correction.py`), `postprocess` returns a
plain dict. A pipeline over a named model's cached base (`smol`) verifies the cache
(`weights.cache.require`: a damaged one is refused) and loads the adapter shipped for its task, as
`unispeech.load` does; `adapter=PATH` loads another adapter folder of the pipeline's task instead
(one of another task is refused), `adapter=None` none.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
from transformers import AutoModel, AutoTokenizer, Pipeline
from transformers.pipelines import PIPELINE_REGISTRY

from unispeech.api import Unispeech
from unispeech.audio.features import WHISPER_SAMPLE_RATE, load_audio
from unispeech.model.processor import UnispeechLMProcessor
from unispeech.model.sequences import ASR, GER, TTS
from unispeech.tasks.correction import CorrectionOptions
from unispeech.tasks.decoding import DecodingOptions
from unispeech.tasks.synthesis import SynthesisOptions
from unispeech.tasks.transcription import TranscriptionOptions
from unispeech.weights.cache import MODEL_DIR, MODELS, VOCODER_FILE, adapter_dir, cache_dir, require
from unispeech.weights.pretrained import GRIFFIN_LIM, load_vocoder

SPEECH_RECOGNITION = "unispeech-speech-recognition"
TEXT_TO_AUDIO = "unispeech-text-to-audio"
NBEST_CORRECTION = "unispeech-nbest-correction"


SHIPPED = "shipped"  # the `adapter` argument's default: the adapter shipped for the task, if any


class _UnispeechPipeline(Pipeline):
    """Builds the processor and vocoder our task functions need from the model and tokenizer."""

    adapter_task: str  # the task whose shipped adapter the pipeline loads

    def __init__(self, model, tokenizer=None, vocoder=None, adapter: str | Path | None = SHIPPED, **kwargs):
        if tokenizer is None:
            tokenizer = AutoTokenizer.from_pretrained(model.name_or_path)
        super().__init__(model=model, tokenizer=tokenizer, **kwargs)
        named = _named_model(model.name_or_path)
        if named is not None:  # a damaged cache is refused, as `unispeech.load` refuses it
            require(named)
        if vocoder is None:
            vocoder = load_vocoder(_vocoder_beside(model.name_or_path), model.config.mel_settings)
        self.speech = Unispeech(model, UnispeechLMProcessor(tokenizer, model.config), vocoder)
        if adapter == SHIPPED:
            adapter = _shipped_adapter(model.name_or_path, self.adapter_task)
        if adapter is not None:  # loaded as the pipeline's task: a folder of another task is refused
            self.speech.load_adapter(adapter, self.adapter_task)


def _named_model(model_dir: str) -> str | None:
    """The named model (`smol`) whose cached base `model_dir` is, if it is one."""
    for name in MODELS:
        if Path(model_dir).resolve() == (cache_dir(name) / MODEL_DIR).resolve():
            return name
    return None


def _shipped_adapter(model_dir: str, task: str) -> Path | None:
    """The adapter shipped for `task`, when `model_dir` is the cached base of a named model."""
    name = _named_model(model_dir)
    folder = None if name is None else adapter_dir(name, task)
    return folder if folder is not None and folder.is_dir() else None


def _vocoder_beside(model_dir: str) -> str | Path:
    """HiFi-GAN saved in or beside the model folder (the cache's layout), else Griffin-Lim."""
    folder = Path(model_dir)
    for candidate in (folder, folder.parent):
        if (candidate / VOCODER_FILE).is_file():
            return candidate
    return GRIFFIN_LIM


def _options(options, **changes):
    """`options` with the fields the caller set (None means not set) replaced."""
    changes = {name: value for name, value in changes.items() if value is not None}
    return dataclasses.replace(options, **changes) if changes else options


def _audio(inputs: Any, sampling_rate: int | None) -> np.ndarray:
    """A path, an array (with `sampling_rate`) or the stock pipelines' `{"raw"|"array",
    "sampling_rate"}` dict, as 16 kHz mono float32."""
    if isinstance(inputs, dict):
        array = inputs.get("raw", inputs.get("array"))
        if array is None or "sampling_rate" not in inputs:
            raise ValueError("an audio dict needs 'raw' (or 'array') and 'sampling_rate'")
        return load_audio(array, WHISPER_SAMPLE_RATE, inputs["sampling_rate"])
    return load_audio(inputs, WHISPER_SAMPLE_RATE, sampling_rate)


class UnispeechSpeechRecognitionPipeline(_UnispeechPipeline):
    """Audio → `{"text"}`, plus `"chunks"` (text and timestamps per window) with
    `return_timestamps=True` and `"nbest"` (texts and scores) with `nbest=N`."""

    adapter_task = ASR

    def _sanitize_parameters(
        self, sampling_rate=None, return_timestamps=None, nbest=None, beam_size=None, language=None, **kwargs
    ):
        preprocess = {} if sampling_rate is None else {"sampling_rate": sampling_rate}
        forward = {}
        if nbest is not None or beam_size is not None or language is not None:
            decoding = DecodingOptions.for_n_best(nbest if nbest is not None else 1, beam_size)
            forward["options"] = _options(TranscriptionOptions(decoding=decoding), language=language)
        postprocess = {} if return_timestamps is None else {"return_timestamps": return_timestamps}
        if nbest is not None:
            postprocess["nbest"] = nbest
        return preprocess, forward, postprocess

    def preprocess(self, inputs, sampling_rate=None):
        return {"audio": _audio(inputs, sampling_rate)}

    def _forward(self, model_inputs, options=TranscriptionOptions()):
        return {"transcription": self.speech.transcribe(model_inputs["audio"], options, WHISPER_SAMPLE_RATE)}

    def postprocess(self, model_outputs, return_timestamps=False, nbest=None):
        transcription = model_outputs["transcription"]
        result: dict[str, Any] = {"text": transcription.text}
        if return_timestamps:
            result["chunks"] = [{"text": c.text, "timestamp": c.timestamp} for c in transcription.chunks]
        if nbest is not None:
            result["nbest"] = [{"text": h.text, "score": h.score} for h in transcription.hypotheses]
        return result


class UnispeechTextToAudioPipeline(_UnispeechPipeline):
    """Text → `{"audio", "sampling_rate"}` in the voice of `prompt` (a recording; its transcript
    `prompt_text`, else transcribed); `steps`, `guidance_strength`, `sway`, `speed`, `duration`
    and `seed` as in `SynthesisOptions`."""

    adapter_task = TTS

    def _sanitize_parameters(self, prompt=None, prompt_text=None, prompt_sampling_rate=None, **synthesis):
        preprocess = {}
        if prompt is not None:
            preprocess["prompt"] = prompt
        for name, value in (("prompt_text", prompt_text), ("prompt_sampling_rate", prompt_sampling_rate)):
            if value is not None:
                preprocess[name] = value
        unknown = set(synthesis) - {field.name for field in dataclasses.fields(SynthesisOptions)}
        if unknown:
            raise ValueError(f"unknown text-to-audio arguments: {sorted(unknown)}")
        forward = {"options": _options(SynthesisOptions(), **synthesis)} if synthesis else {}
        return preprocess, forward, {}

    def preprocess(self, text, prompt=None, prompt_text=None, prompt_sampling_rate=None):
        if prompt is None:
            raise ValueError("text-to-audio clones a voice: pass prompt= (a recording of that voice)")
        if not isinstance(text, str):
            raise ValueError(f"text-to-audio takes a string, got {type(text).__name__}")
        return {
            "text": text,
            "prompt": prompt,
            "prompt_text": prompt_text,
            "prompt_sampling_rate": prompt_sampling_rate,
        }

    def _forward(self, model_inputs, options=SynthesisOptions()):
        audio = self.speech.speak(
            model_inputs["text"],
            model_inputs["prompt"],
            model_inputs["prompt_text"],
            options,
            model_inputs["prompt_sampling_rate"],
        )
        return {"audio": audio}

    def postprocess(self, model_outputs):
        return {"audio": model_outputs["audio"], "sampling_rate": self.speech.sample_rate}


class UnispeechNbestCorrectionPipeline(_UnispeechPipeline):
    """An N-best list (strings, best first, or HyPoradise's `{"input": [...]}`) → `{"text"}`;
    a list of such lists → a list of results; `audio=` lets the model listen too."""

    adapter_task = GER

    def __call__(self, inputs, **kwargs):
        if isinstance(inputs, (list, tuple)) and all(isinstance(text, str) for text in inputs):
            inputs = {"input": list(inputs)}  # one N-best list, not a batch of strings
        elif isinstance(inputs, (list, tuple)):
            inputs = [{"input": list(item)} if isinstance(item, (list, tuple)) else item for item in inputs]
        return super().__call__(inputs, **kwargs)

    def _sanitize_parameters(self, audio=None, sampling_rate=None, beam_size=None, **kwargs):
        preprocess = {}
        if audio is not None:
            preprocess["audio"] = audio
        if sampling_rate is not None:
            preprocess["sampling_rate"] = sampling_rate
        forward = {}
        if beam_size is not None:
            decoding = _options(CorrectionOptions().decoding, beam_size=beam_size)
            forward["options"] = CorrectionOptions(decoding=decoding)
        return preprocess, forward, {}

    def preprocess(self, nbest, audio=None, sampling_rate=None):
        hypotheses = nbest.get("input") if isinstance(nbest, dict) else None
        if not isinstance(hypotheses, list) or not all(isinstance(text, str) for text in hypotheses):
            raise ValueError(
                f'give an N-best list as a list of strings or as {{"input": [strings]}}, got {nbest!r:.80}'
            )
        return {"nbest": hypotheses, "audio": None if audio is None else _audio(audio, sampling_rate)}

    def _forward(self, model_inputs, options=CorrectionOptions()):
        text = self.speech.correct(model_inputs["nbest"], model_inputs["audio"], options, WHISPER_SAMPLE_RATE)
        return {"text": text}

    def postprocess(self, model_outputs):
        return {"text": model_outputs["text"]}


PIPELINE_REGISTRY.register_pipeline(
    SPEECH_RECOGNITION,
    pipeline_class=UnispeechSpeechRecognitionPipeline,
    pt_model=AutoModel,
    type="multimodal",
)
PIPELINE_REGISTRY.register_pipeline(
    TEXT_TO_AUDIO, pipeline_class=UnispeechTextToAudioPipeline, pt_model=AutoModel, type="multimodal"
)
PIPELINE_REGISTRY.register_pipeline(
    NBEST_CORRECTION, pipeline_class=UnispeechNbestCorrectionPipeline, pt_model=AutoModel, type="multimodal"
)
