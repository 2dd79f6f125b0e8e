"""The Python API: load a model once, then transcribe, speak and correct with it.

`load("smol")` assembles the base model (`weights/pretrained.py`) and loads the task adapters
shipped for it (`adapters/smol/<task>/`, see `weights.cache.adapter_dir`). A `Unispeech` object
serves all three tasks: each call switches to its task's adapter when one is loaded, and runs the
bare base model otherwise (which has not learned that task: its output is then not meaningful).
Run-time options are frozen dataclasses (`TranscriptionOptions`, `SynthesisOptions`,
`CorrectionOptions`); change one with `dataclasses.replace`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence as SequenceOf
from pathlib import Path

import numpy as np

from unispeech.audio.features import AudioSource
from unispeech.audio.vocoder import Vocoder
from unispeech.model.adapters import check_adapter_task, load_task_adapter, loaded_tasks, set_task
from unispeech.model.modeling import UnispeechLMModel
from unispeech.model.processor import UnispeechLMProcessor
from unispeech.model.sequences import ASR, GER, TASKS, TTS
from unispeech.tasks.correction import CorrectionOptions, correct
from unispeech.tasks.synthesis import SynthesisOptions, speak, split_sentences
from unispeech.tasks.transcription import Transcription, TranscriptionOptions, transcribe
from unispeech.weights.cache import MODELS, adapter_dir
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
        """The tasks whose adapters are loaded."""
        return loaded_tasks(self.model)

    def load_adapter(self, path: str | Path, task: str | None = None) -> str:
        """Load a task adapter folder (checked against this base model); returns its task. A
        registry `task` (one of `TASKS`) refuses a folder that holds another task."""
        return load_task_adapter(self.model, path, task)

    def set_task(self, task: str | None) -> None:
        """Make `task`'s adapter active, or `None` for the bare base model."""
        set_task(self.model, task)

    def _use(self, task: str) -> None:
        if task in self.tasks:
            set_task(self.model, task)
        else:
            if task not in self._warned:
                logger.warning("no %r adapter is loaded: the base model has not learned this task", task)
                self._warned.add(task)
            set_task(self.model, None)

    def transcribe(
        self,
        audio: AudioSource | SequenceOf[AudioSource],
        options: TranscriptionOptions = TranscriptionOptions(),
        sampling_rate: int | None = None,
        progress: bool = False,
    ) -> Transcription | list[Transcription]:
        """Transcribe one recording (a path or an array at `sampling_rate`) or a list of them."""
        self._use(ASR)
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
            prompt_text = self.transcribe(prompt, sampling_rate=prompt_sampling_rate).text
            if not prompt_text:
                raise ValueError("the voice prompt could not be transcribed (silent?): pass its transcript")
        self._use(TTS)
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


def load(
    name_or_path: str | Path = "smol",
    adapters: str | Path | None = "shipped",
    attn_implementation: str = "sdpa",
) -> Unispeech:
    """A model by name (from the weight cache) or from a saved folder, with its task adapters:
    `"shipped"` loads those shipped for a named model that exist (`weights.cache.adapter_dir`), a
    path loads every task folder under it (`<path>/asr/` must hold an ASR adapter, and so on),
    `None` none."""
    if adapters not in (None, "shipped"):
        tasks = [task for task in TASKS if (Path(adapters) / task).is_dir()]
        if not tasks:
            raise FileNotFoundError(f"no task adapter folders ({', '.join(TASKS)}) in {adapters}")
        for task in tasks:  # a folder of the wrong task is refused before the model loads
            check_adapter_task(Path(adapters) / task, task)
    parts = load_parts(name_or_path, attn_implementation)
    speech = Unispeech(parts.model, parts.processor, parts.vocoder)
    if adapters is not None:
        for task in TASKS:
            if adapters == "shipped":
                if str(name_or_path) not in MODELS:
                    break
                folder = adapter_dir(str(name_or_path), task)
            else:
                folder = Path(adapters) / task
            if folder.is_dir():
                speech.load_adapter(folder, task)
        set_task(speech.model, None)
    return speech
