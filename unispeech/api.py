"""The Python API: load a model once, then transcribe, speak and correct with it.

`load("smol")` assembles the base model (`weights/pretrained.py`) and loads the task adapters
shipped for it (`adapters/smol/<task>/`, see `weights.cache.adapter_dir`). A `Unispeech` object
serves all three tasks: each call switches to its task's adapter when one is loaded, and runs the
bare base model otherwise (which has not learned that task: its output is then not meaningful).

Adapters are per language. Those directly in a folder of adapters are English
(`weights.cache.ADAPTER_LANGUAGE`); another language's sit in a folder named by its ISO code
(`adapters/smol/de/asr/`) and load under the name `asr-de` (`adapter_name`) beside the English
ones: `load("smol", languages=("en", "de"))`. Each call picks its adapter by its options'
`language` (`TranscriptionOptions(language="de")`, `SynthesisOptions(language="de")`); a language
without an adapter for the task falls back to the English one, with a warning once.

Run-time options are frozen dataclasses (`TranscriptionOptions`, `SynthesisOptions`,
`CorrectionOptions`); change one with `dataclasses.replace`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence as SequenceOf
from pathlib import Path

import numpy as np

from unispeech.audio.features import AudioSource
from unispeech.audio.vocoder import Vocoder
from unispeech.model.adapters import check_adapter_task, load_task_adapter, loaded_tasks, set_task
from unispeech.model.cpu_weights import DEFAULT_WEIGHT_FORMAT, check_weight_format, pack_fp16_weights
from unispeech.model.modeling import UnispeechLMModel
from unispeech.model.processor import UnispeechLMProcessor
from unispeech.model.sequences import ASR, GER, TASKS, TTS
from unispeech.tasks.correction import CorrectionOptions, correct
from unispeech.tasks.synthesis import SynthesisOptions, speak, split_sentences
from unispeech.tasks.transcription import Transcription, TranscriptionOptions, transcribe
from unispeech.weights.cache import ADAPTER_LANGUAGE, MODELS, adapter_subpath, model_adapters
from unispeech.weights.pretrained import load_parts

logger = logging.getLogger(__name__)


class Unispeech:
    """A unified speech model with its processor, vocoder and task adapters."""

    def __init__(self, model: UnispeechLMModel, processor: UnispeechLMProcessor, vocoder: Vocoder):
        self.model, self.processor, self.vocoder = model.eval(), processor, vocoder
        self._warned: set[str] = set()

    @property
    def sample_rate(self) -> int:
        """The rate of the audio `speak` returns."""
        return self.vocoder.sample_rate

    @property
    def tasks(self) -> list[str]:
        """The names the loaded adapters go by: their tasks (`asr`), and `asr-de` for another language."""
        return loaded_tasks(self.model)

    @property
    def languages(self) -> list[str]:
        """The languages the loaded adapters serve (ISO codes), English first: it serves every task
        without an adapter of its own in another language."""
        others = {name.partition("-")[2] for name in self.tasks} - {"", ADAPTER_LANGUAGE}
        return [ADAPTER_LANGUAGE, *sorted(others)]

    def load_adapter(
        self, path: str | Path, task: str | None = None, language: str = ADAPTER_LANGUAGE
    ) -> str:
        """Load a task adapter folder (checked against this base model); returns the name it is loaded
        under. A registry `task` (one of `TASKS`) refuses a folder that holds another task; in
        another `language` than English it loads as `adapter_name(task, language)`."""
        if task is None or language == ADAPTER_LANGUAGE:
            return load_task_adapter(self.model, path, task)
        check_adapter_task(path, task)
        return load_task_adapter(self.model, path, adapter_name(task, language))

    def set_task(self, task: str | None) -> None:
        """Make `task`'s adapter active, or `None` for the bare base model."""
        set_task(self.model, task)

    def _use(self, task: str, language: str | None = None) -> bool:
        """Make `task`'s adapter in `language` (None: English) active: the English one when the
        language has none, the bare base model when the task has none. True when the language's own
        adapter (not English's) serves."""
        name = adapter_name(task, language or ADAPTER_LANGUAGE)
        if name in self.tasks:
            set_task(self.model, name)
            return name != task
        if task in self.tasks:
            self._warn_once(name, "no %r adapter is loaded for %r: the English one serves", task, language)
            set_task(self.model, task)
        else:
            self._warn_once(task, "no %r adapter is loaded: the base model has not learned this task", task)
            set_task(self.model, None)
        return False

    def _warn_once(self, key: str, message: str, *args: object) -> None:
        if key not in self._warned:
            logger.warning(message, *args)
            self._warned.add(key)

    def transcribe(
        self,
        audio: AudioSource | SequenceOf[AudioSource],
        options: TranscriptionOptions = TranscriptionOptions(),
        sampling_rate: int | None = None,
        progress: bool = False,
    ) -> Transcription | list[Transcription]:
        """Transcribe one recording (a path or an array at `sampling_rate`) or a list of them.

        `options.language` picks the adapter, and it is written as the language hint only for a
        language's own adapter, which learned with it (`train/configs/new-language.yaml`); the
        English adapters learned without one."""
        if not self._use(ASR, options.language) and options.language is not None:
            options = dataclasses.replace(options, language=None)
        many = isinstance(audio, (list, tuple))
        results = transcribe(
            self.model, self.processor, audio if many else [audio], options, sampling_rate, progress
        )
        return results if many else results[0]

    def speak(
        self,
        text: str,
        prompt: AudioSource,
        prompt_text: str | None = None,
        options: SynthesisOptions = SynthesisOptions(),
        prompt_sampling_rate: int | None = None,
    ) -> np.ndarray:
        """`text` in the voice of the `prompt` recording, at `sample_rate`. Without `prompt_text`,
        the prompt is transcribed first."""
        split_sentences(text)  # text with nothing to speak fails before the prompt is transcribed
        if prompt_text is None:
            hearing = TranscriptionOptions(language=options.language)
            prompt_text = self.transcribe(prompt, hearing, sampling_rate=prompt_sampling_rate).text
            if not prompt_text:
                raise ValueError("the voice prompt could not be transcribed (silent?): pass its transcript")
        self._use(TTS, options.language)
        return speak(
            self.model, self.processor, self.vocoder, text, prompt, prompt_text, options, prompt_sampling_rate
        )

    def correct(
        self,
        nbest: SequenceOf[str] | SequenceOf[SequenceOf[str]],
        audio: AudioSource | SequenceOf[AudioSource | None] | None = None,
        options: CorrectionOptions = CorrectionOptions(),
        sampling_rate: int | None = None,
    ) -> str | list[str]:
        """Correct one N-best list (strings, best first) or a list of them; `audio` (one recording,
        or one per list) lets the model listen too."""
        lists, many = _nbest_lists(nbest)
        self._use(GER)
        if many and audio is not None and not isinstance(audio, (list, tuple)):
            raise ValueError(f"{len(lists)} N-best lists need a list of as many recordings, not one")
        audios = audio if many and audio is not None else [audio] * len(lists)
        results = correct(self.model, self.processor, lists, audios, options, sampling_rate)
        return results if many else results[0]


def _nbest_lists(nbest: object) -> tuple[list, bool]:
    """`correct`'s input as a list of N-best lists, and whether it was many; a clear error for
    anything but a list of strings or a list of such lists, and for no hypothesis at all."""
    if isinstance(nbest, (list, tuple)) and not nbest:
        raise ValueError("the N-best list is empty: correct needs at least one hypothesis, best first")
    if isinstance(nbest, (list, tuple)):
        if all(isinstance(text, str) for text in nbest):
            return [nbest], False
        if all(isinstance(item, (list, tuple)) and all(isinstance(t, str) for t in item) for item in nbest):
            return list(nbest), True
    raise ValueError(
        "correct takes an N-best list (a list of strings, best first) or a list of such lists, "
        f"got {type(nbest).__name__} {nbest!r:.80}"
    )


def adapter_name(task: str, language: str) -> str:
    """The name `task`'s adapter in `language` is loaded under: the task for English, else
    `<task>-<language>` (`asr-de`)."""
    return task if language == ADAPTER_LANGUAGE else f"{task}-{language}"


def load(
    name_or_path: str | Path = "smol",
    adapters: str | Path | None = "shipped",
    attn_implementation: str = "sdpa",
    languages: SequenceOf[str] = (ADAPTER_LANGUAGE,),
    weight_format: str = DEFAULT_WEIGHT_FORMAT,
) -> Unispeech:
    """A model by name (from the weight cache) or from a saved folder, with its task adapters in
    English and each of `languages` (ISO codes): `"shipped"` loads those shipped for a named model that exist
    (`weights.cache.adapter_dir`), a path every task folder under it (`<path>/asr/` must hold an ASR
    adapter, `<path>/de/asr/` a German one: `weights.cache.adapter_subpath`), `None` none. A language
    without adapters is served by the English ones (a warning says so); a path without any task
    folder is refused, before the model loads. `weight_format="fp16"` (the default) packs the frozen
    backbone layers in half precision once the adapters are in, for faster CPU inference
    (`model.cpu_weights`); `"fp32"` keeps them as trained, for a model that moves to a GPU."""
    check_weight_format(weight_format)
    languages = (languages,) if isinstance(languages, str) else tuple(languages)
    languages = tuple(dict.fromkeys([ADAPTER_LANGUAGE, *languages]))  # English (it serves the rest) first
    if adapters == "shipped":
        root = model_adapters(str(name_or_path)) if str(name_or_path) in MODELS else None
    else:
        root = None if adapters is None else Path(adapters)
    folders: dict[tuple[str, str], Path] = {}  # (task, language) → its adapter folder
    for language in languages if root is not None else ():
        found = {(task, language): root / adapter_subpath(task, language) for task in TASKS}
        found = {key: folder for key, folder in found.items() if folder.is_dir()}
        if not found and language != ADAPTER_LANGUAGE:
            logger.warning("no adapters for %r in %s: the English ones serve it", language, root / language)
        folders.update(found)
    if adapters not in (None, "shipped") and not folders:
        raise FileNotFoundError(f"no task adapter folders ({', '.join(TASKS)}) in {adapters}")
    for (task, _), folder in folders.items():  # the wrong task is refused before the model loads
        check_adapter_task(folder, task)
    parts = load_parts(name_or_path, attn_implementation)
    speech = Unispeech(parts.model, parts.processor, parts.vocoder)
    for (task, language), folder in folders.items():
        speech.load_adapter(folder, task, language)
    set_task(speech.model, None)
    if weight_format == "fp16":
        pack_fp16_weights(speech.model)
    return speech
