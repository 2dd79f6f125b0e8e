"""Task sequences and the task registry.

Every task is one sequence of positions through the backbone; this module says which positions,
in what order, where the loss is taken and which positions attend bidirectionally:

    ASR  [bos] <asr_start> speech×N <asr_end> [language] transcript [eos]   loss on transcript + eos
    GER  ([bos] <asr_start> speech×N <asr_end>) prompt correction [eos]    loss on correction + eos
         (the prompt lists the N-best hypotheses, HyPoradise style; the speech is optional)
    TTS  [bos] text prompt-mel×Pp <tts_start> <time> mel×P              flow-matching loss on mel
         (the text is the prompt's transcript then the text to speak; the prompt's clean mel is
          bidirectional inside itself and never sees what follows; <time> and the P generated mel
          positions form the second bidirectional span, since they all change at every ODE step)

Everything before `<time>` is a causal prefix of the span, the same at every ODE step (so it is
computed once). The TTS text condition is every position that has seen the text: the text, the
prompt and `<tts_start>`; the prompt condition is the prompt and `<tts_start>` (which has seen
it). Classifier-free guidance hides a dropped condition's positions from the span (hiding the
text tokens alone would not do: deeper layers after them carry what they read from the text).

A position is text (a token id), a `Marker`, a speech embedding (from the projector) or a mel
patch (from flow matching). The processor counts and tokenizes what one sample's sequence holds
into a `Layout`, the same for every task; `TASKS` maps each task's name (`ASR`, `TTS`, `GER`) to
its adapter name, its builder of a `Layout`, whether it hears its audio and whether that speech
attends bidirectionally, so that none of them can drift from the others. A fourth task is one
more entry here, a builder, and a sample class whose `task` names it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum

from unispeech.model.markers import NO_MARKER, Marker

IGNORE_INDEX = -100  # label of positions without a loss (PyTorch's cross-entropy default)


class PositionKind(IntEnum):
    TEXT = 0
    MARKER = 1
    SPEECH = 2
    MEL = 3
    PROMPT = 4  # a TTS prompt's mel patch: clean, never generated


@dataclass
class Sequence:
    """One sample's positions, built left to right; `pad_id` fills token ids of non-text positions."""

    pad_id: int
    token_ids: list[int] = field(default_factory=list)
    kinds: list[PositionKind] = field(default_factory=list)
    marker_ids: list[int] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    bidirectional: list[bool] = field(default_factory=list)
    text_condition: list[bool] = field(default_factory=list)  # positions that carry the TTS text
    prompt_condition: list[bool] = field(default_factory=list)  # positions that carry the TTS prompt

    def __len__(self) -> int:
        return len(self.kinds)

    def _append(
        self,
        count: int,
        kind: PositionKind,
        token_ids: list[int] | None = None,
        marker: int = NO_MARKER,
        learn: bool = False,
        bidirectional: bool = False,
        text_condition: bool = False,
        prompt_condition: bool = False,
    ) -> None:
        ids = token_ids if token_ids is not None else [self.pad_id] * count
        self.token_ids += ids
        self.kinds += [kind] * count
        self.marker_ids += [marker] * count
        self.labels += ids if learn else [IGNORE_INDEX] * count
        self.bidirectional += [bidirectional] * count
        self.text_condition += [text_condition] * count
        self.prompt_condition += [prompt_condition] * count

    def text(self, token_ids: list[int], learn: bool = False, text_condition: bool = False) -> None:
        """Text tokens; `learn` puts them in the loss, `text_condition` marks them as TTS text (below)."""
        self._append(len(token_ids), PositionKind.TEXT, token_ids, learn=learn, text_condition=text_condition)

    def marker(
        self,
        marker: Marker,
        bidirectional: bool = False,
        text_condition: bool = False,
        prompt_condition: bool = False,
    ) -> None:
        self._append(
            1,
            PositionKind.MARKER,
            marker=int(marker),
            bidirectional=bidirectional,
            text_condition=text_condition,
            prompt_condition=prompt_condition,
        )

    def speech(self, count: int, bidirectional: bool = False) -> None:
        self._append(count, PositionKind.SPEECH, bidirectional=bidirectional)

    def mel(self, count: int, bidirectional: bool = False) -> None:
        self._append(count, PositionKind.MEL, bidirectional=bidirectional)

    def prompt(self, count: int, bidirectional: bool = False) -> None:
        """A TTS prompt's mel patches: they carry the text they have seen and the prompt."""
        self._append(
            count,
            PositionKind.PROMPT,
            bidirectional=bidirectional,
            text_condition=True,
            prompt_condition=True,
        )


@dataclass(frozen=True)
class TokenIds:
    """The tokenizer's special ids a sequence needs."""

    bos: int | None
    eos: int
    pad: int


def language_prompt(language: str) -> str:
    """The text that tells the ASR task which language to write, right after the speech."""
    return f"[{language}] "


def ger_prompt(hypotheses: list[str]) -> str:
    """The N-best correction instruction, HyPoradise style: the best hypothesis, then the others."""
    if not hypotheses:
        raise ValueError("N-best correction needs at least one hypothesis")
    others = "\n".join(hypotheses[1:]) or "(none)"
    return (
        "Below is the best hypothesis transcribed by a speech recognition system, and the other "
        "hypotheses. Revise it, using words that occur in the other hypotheses, into the true "
        f"transcription.\n\n### Best hypothesis:\n{hypotheses[0]}\n\n### Other hypotheses:\n{others}\n\n"
        "### Transcription:\n"
    )


@dataclass(frozen=True)
class Layout:
    """What one sample's sequence holds, counted and tokenized by the processor.

    `speech_tokens` speech embeddings (None: the sample has no speech); `text` the tokens before
    what is learned: ASR's language hint, GER's prompt listing the hypotheses (with its own start
    token), TTS's text (the prompt's transcript, then the text to speak); `target` the tokens to
    learn (None when decoding: the sequence stops where decoding starts); TTS's `prompt_patches`
    mel patches of the voice prompt and `mel_patches` to generate."""

    speech_tokens: int | None = None
    text: list[int] = field(default_factory=list)
    target: list[int] | None = None
    prompt_patches: int = 0
    mel_patches: int = 0


def build_transcript(ids: TokenIds, layout: Layout, bidirectional_speech: bool) -> Sequence:
    """ASR and GER: the speech if any (bos, `<asr_start>`, speech, `<asr_end>`), the text, then
    the target (ASR's transcript, GER's correction) and eos."""
    sequence = Sequence(ids.pad)
    if layout.speech_tokens is not None:
        if ids.bos is not None:
            sequence.text([ids.bos])
        sequence.marker(Marker.ASR_START)
        sequence.speech(layout.speech_tokens, bidirectional=bidirectional_speech)
        sequence.marker(Marker.ASR_END)
    sequence.text(layout.text)
    if layout.target is not None:
        sequence.text([*layout.target, ids.eos], learn=True)
    return sequence


def build_synthesis(ids: TokenIds, layout: Layout, bidirectional_speech: bool) -> Sequence:
    """TTS: the text (prompt transcript + text to speak), the prompt's mel, then the time token
    and the generated mel span."""
    sequence = Sequence(ids.pad)
    if ids.bos is not None:
        sequence.text([ids.bos])
    sequence.text(layout.text, text_condition=True)
    sequence.prompt(layout.prompt_patches, bidirectional=bidirectional_speech)
    sequence.marker(Marker.TTS_START, text_condition=True, prompt_condition=True)
    sequence.marker(Marker.TIME, bidirectional=bidirectional_speech)
    sequence.mel(layout.mel_patches, bidirectional=bidirectional_speech)
    return sequence


@dataclass(frozen=True)
class Task:
    """A task's adapter name, sequence builder, whether it hears its sample's audio (encoded by
    Whisper and projected: ASR's and GER's; TTS's audio is the voice prompt, made mel), attention
    over its speech, and the model's submodules it trains beside its LoRA adapter (saved with it).
    `optional_modules` are trained and saved too when the model has them (ASR's CTC head: None
    unless a run trains one)."""

    name: str
    adapter_name: str
    build: Callable[[TokenIds, Layout, bool], Sequence]
    hears_audio: bool
    bidirectional_speech: bool
    task_modules: tuple[str, ...]
    optional_modules: tuple[str, ...] = ()


ASR, TTS, GER = "asr", "tts", "ger"  # the task names
TASKS: dict[str, Task] = {
    ASR: Task(
        ASR,
        "asr",
        build_transcript,
        hears_audio=True,
        bidirectional_speech=False,
        task_modules=("projector", "markers"),
        optional_modules=("ctc",),
    ),
    TTS: Task(
        TTS,
        "tts",
        build_synthesis,
        hears_audio=False,
        bidirectional_speech=True,
        task_modules=("flow", "markers"),
    ),
    GER: Task(
        GER,
        "ger",
        build_transcript,
        hears_audio=True,
        bidirectional_speech=False,
        task_modules=("projector", "markers"),
    ),
}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}")
    return TASKS[name]
