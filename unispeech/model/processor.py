"""The processor: raw samples → one padded batch of model inputs.

`UnispeechLMProcessor` owns the tokenizer and the feature extraction, and lays every sample out
with its task's sequence builder (`sequences.TASKS`). A batch may mix tasks. For each sample it
makes the Whisper spectrogram of the audio when the task hears it (16 kHz, for the encoder), counts
positions with `lengths.py`, and asks the sample for its `Layout` (each sample class tokenizes its
own text; a TTS sample also makes its mels at the vocoder's rate); then it pads everything (right
for training, left for decoding) into a `BatchFeature`:

    input_ids, attention_mask, marker_ids, labels         (B, L)  per position
    speech_mask, mel_mask, prompt_mask, bidirectional_mask,
    text_condition_mask, prompt_condition_mask              (B, L) bool position flags
    input_features (A, M, F), feature_lengths (A,)          Whisper log-mel of the A samples with speech
    encoder_states (A, T, E), encoder_lengths (A,)          instead, when the samples carry `EncodedSpeech`
    mel (S, F, M), mel_lengths (S,)                         vocoder log-mel to generate (zeros at inference)
    frame_units (S, F, W)                                   the phoneme unit of each of those frames
    prompt_mel (S, Fp, M), prompt_frames (S,)               the prompts' vocoder log-mel (whole patches)
    units (S, N, W), unit_durations (S, N), unit_lengths (S,)  each sample's units and their frames

Samples with speech and TTS samples keep their batch order inside `input_features` and `mel`.
"""

from __future__ import annotations

from collections.abc import Sequence as SequenceOf
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoTokenizer, BatchFeature, PreTrainedTokenizerBase

from unispeech.audio.features import (
    WHISPER_CHUNK_SAMPLES,
    WHISPER_SAMPLE_RATE,
    AudioSource,
    load_audio,
    vocoder_log_mel,
    whisper_log_mel,
)
from unispeech.model.configuration import UnispeechLMConfig
from unispeech.model.encoder import EncodedSpeech
from unispeech.model.lengths import mel_patches, projector_tokens, speech_tokens, whisper_mel_frames
from unispeech.model.markers import NO_MARKER
from unispeech.model.phonemes import frame_units, unit_tensor
from unispeech.model.sequences import (
    ASR,
    GER,
    IGNORE_INDEX,
    TTS,
    Layout,
    PositionKind,
    Sequence,
    TokenIds,
    ger_prompt,
    get_task,
    language_prompt,
)

# The tensors a sample adds to the batch beside its sequence (TTS's mel and units), by name.
Tensors = dict[str, torch.Tensor]


@dataclass(frozen=True)
class AsrSample:
    """Speech to transcribe; `text` is the transcript to learn (None when decoding); `language`
    an optional hint (an ISO code such as "en") written before the transcript. `audio` may be
    `EncodedSpeech` (cached encoder output) instead of a recording."""

    audio: AudioSource | EncodedSpeech
    text: str | None = None
    sampling_rate: int | None = None  # needed for arrays; files carry their own
    language: str | None = None
    task = ASR

    def layout(self, processor: UnispeechLMProcessor, speech_tokens: int | None) -> tuple[Layout, Tensors]:
        """The speech, the language hint if any, then the transcript to learn."""
        hint = [] if self.language is None else processor.tokenize(language_prompt(self.language))
        target = None if self.text is None else processor.tokenize(self.text)
        return Layout(speech_tokens, hint, target), {}


@dataclass(frozen=True)
class TtsSample:
    """Speech, the text it says, and its phoneme units with their frames.

    Training: `audio` is the whole clip, `units` and `durations` cover all of it (the aligner's,
    `data/phoneme_durations.py`), its first `prompt_frames` (rounded down to whole mel patches) are
    the prompt and the rest is generated. Inference (`prompt_frames=None`): `audio` is the prompt
    (its first frames trimmed to whole patches), and `units`/`durations` are those of the speech
    to generate after it. `text` is the prompt's transcript and then the text to speak."""

    audio: AudioSource
    text: str
    units: tuple[tuple[int, ...], ...]
    durations: tuple[int, ...]
    prompt_frames: int | None = None
    sampling_rate: int | None = None
    task = TTS

    def layout(self, processor: UnispeechLMProcessor, speech_tokens: int | None) -> tuple[Layout, Tensors]:
        """The text, the prompt's mel patches and those to generate; the mels and units as tensors
        (`_TTS_COLUMNS`)."""
        text = processor.tokenize(self.text.strip())
        if not text:
            raise ValueError("TTS needs text to speak, got an empty string")
        if not self.units:
            raise ValueError("TTS needs the phoneme units of the speech to make, got none")
        if min(self.durations, default=0) < 1:
            raise ValueError(f"every phoneme unit needs at least one frame, got durations {self.durations}")
        patch = processor.config.mel_patch_size
        mel = processor.vocoder_features(self.audio, self.sampling_rate)  # (G, M)
        units = frame_units(self.units, self.durations)  # (F or G, W)
        if self.prompt_frames is None:  # inference: the audio is the prompt, the units what follows
            prompt = mel[len(mel) % patch :]
            target = mel.new_zeros(len(units), mel.shape[1])
        else:
            if len(units) != len(mel):
                raise ValueError(
                    f"the durations cover {len(units)} mel frames but the clip has {len(mel)}: "
                    "align the clip again (unispeech data align)"
                )
            if not 0 <= self.prompt_frames < len(mel):
                raise ValueError(f"prompt_frames must be in [0, {len(mel)}), got {self.prompt_frames}")
            cut = self.prompt_frames // patch * patch
            prompt, target, units = mel[:cut], mel[cut:], units[cut:]
        layout = Layout(
            text=text, prompt_patches=len(prompt) // patch, mel_patches=mel_patches(len(target), patch)
        )
        tensors = {
            "mel": target,
            "frame_units": units,
            "prompt_mel": prompt,
            "units": unit_tensor(self.units),
            "unit_durations": torch.tensor(self.durations),
        }
        return layout, tensors


@dataclass(frozen=True)
class GerSample:
    """An N-best list to correct, best first; `text` is the correction to learn (None when
    decoding); `audio` optionally lets the model listen too."""

    hypotheses: tuple[str, ...]
    text: str | None = None
    audio: AudioSource | EncodedSpeech | None = None
    sampling_rate: int | None = None
    task = GER

    def layout(self, processor: UnispeechLMProcessor, speech_tokens: int | None) -> tuple[Layout, Tensors]:
        """The speech if any, the prompt listing the hypotheses, then the correction to learn."""
        target = None if self.text is None else processor.tokenize(self.text)
        return Layout(speech_tokens, processor.ger_prompt_ids(self.hypotheses), target), {}


Sample = AsrSample | TtsSample | GerSample


class UnispeechLMProcessor:
    def __init__(self, tokenizer: PreTrainedTokenizerBase, config: UnispeechLMConfig):
        if tokenizer.eos_token_id is None:
            raise ValueError("the tokenizer has no eos token: the model could not learn where text ends")
        self.tokenizer = tokenizer
        self.config = config
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.token_ids = TokenIds(bos=tokenizer.bos_token_id, eos=tokenizer.eos_token_id, pad=pad)

    @classmethod
    def from_pretrained(cls, path: str | Path) -> UnispeechLMProcessor:
        return cls(AutoTokenizer.from_pretrained(path), UnispeechLMConfig.from_pretrained(path))

    def save_pretrained(self, path: str | Path) -> None:
        self.tokenizer.save_pretrained(path)
        self.config.save_pretrained(path)

    def tokenize(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def ger_prompt_ids(self, hypotheses: SequenceOf[str]) -> list[int]:
        """The correction prompt, as a user turn of the tokenizer's chat template when it has one
        (instruction-tuned backbones then start from their own format), else after bos."""
        text = ger_prompt(list(hypotheses))
        if self.tokenizer.chat_template:
            messages = [{"role": "user", "content": text}]
            rendered = self.tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, tokenize=False
            )
            return self.tokenize(rendered)
        start = [] if self.token_ids.bos is None else [self.token_ids.bos]
        return start + self.tokenize(text)

    def speech_features(self, audio: AudioSource, sampling_rate: int | None) -> tuple[torch.Tensor, int]:
        """Whisper log-mel `(M, F)` of one clip and its real frame count `F_real`.

        F = F_real (the true length), or 3000 (30 s) in full-context mode."""
        samples = load_audio(audio, WHISPER_SAMPLE_RATE, sampling_rate)
        if len(samples) > WHISPER_CHUNK_SAMPLES:
            raise ValueError(
                f"a clip of {len(samples) / WHISPER_SAMPLE_RATE:.1f} s exceeds the encoder's "
                f"{WHISPER_CHUNK_SAMPLES // WHISPER_SAMPLE_RATE} s: split long audio into windows first"
            )
        n_mels = self.config.encoder_config.n_mels
        frames = whisper_mel_frames(len(samples))
        if self.config.encoder_full_context:
            padding = WHISPER_CHUNK_SAMPLES - len(samples)
            mel = whisper_log_mel(samples, n_mels, padding=padding)
            return mel[:, : whisper_mel_frames(WHISPER_CHUNK_SAMPLES)], frames
        return whisper_log_mel(samples, n_mels), frames

    def vocoder_features(self, audio: AudioSource, sampling_rate: int | None) -> torch.Tensor:
        """Vocoder log-mel `(F, M)` of one clip."""
        settings = self.config.mel_settings
        return vocoder_log_mel(load_audio(audio, settings.sample_rate, sampling_rate), settings).T

    def __call__(self, samples: SequenceOf[Sample], padding_side: str = "right") -> BatchFeature:
        """One batch of `samples` of any tasks: each sample's audio, when its task hears it, made
        Whisper features (or taken as `EncodedSpeech`), its `layout` built by its task's builder."""
        if not samples:
            raise ValueError("no samples to process")
        if padding_side not in ("left", "right"):
            raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
        sequences, features, feature_lengths, encoded = [], [], [], []
        tts: dict[str, list[torch.Tensor]] = {name: [] for name in _TTS_COLUMNS}
        for sample in samples:
            task = get_task(sample.task)
            tokens = None
            if task.hears_audio and isinstance(sample.audio, EncodedSpeech):
                encoded.append(sample.audio.states)
                tokens = projector_tokens(sample.audio.states.shape[0], self.config.projector_stack)
            elif task.hears_audio and sample.audio is not None:
                mel, frames = self.speech_features(sample.audio, sample.sampling_rate)
                tokens = speech_tokens(frames, self.config.projector_stack)
                features.append(mel)
                feature_lengths.append(frames)
            layout, tensors = sample.layout(self, tokens)
            sequences.append(task.build(self.token_ids, layout, task.bidirectional_speech))
            for name, value in tensors.items():
                tts[name].append(value)
        if features and encoded:
            raise ValueError("a batch mixes recordings and EncodedSpeech: give one kind of speech input")
        batch = _pad_sequences(sequences, padding_side)
        if encoded:
            batch["encoder_states"] = _pad_stack(encoded)  # (A, T, E)
            batch["encoder_lengths"] = torch.tensor([len(states) for states in encoded])
        if features:
            batch["input_features"] = _pad_stack([f.T for f in features]).transpose(1, 2)  # (A, M, F)
            batch["feature_lengths"] = torch.tensor(feature_lengths)
        if tts["mel"]:
            for name, lengths in _TTS_COLUMNS.items():
                batch[name] = _pad_stack(tts[name])
                if lengths is not None:
                    batch[lengths] = torch.tensor([len(value) for value in tts[name]])
        return BatchFeature(batch)


def _pad_stack(tensors: list[torch.Tensor]) -> torch.Tensor:
    """Stack `(F_i, …)` tensors into `(N, max F_i, …)`, zero-padded at the end."""
    return torch.nn.utils.rnn.pad_sequence(tensors, batch_first=True)


def _pad_sequences(sequences: list[Sequence], padding_side: str) -> dict[str, torch.Tensor]:
    longest = max(len(sequence) for sequence in sequences)
    columns: dict[str, list[list]] = {name: [] for name in _COLUMNS}
    for sequence in sequences:
        pad = longest - len(sequence)
        rows = {
            "input_ids": (sequence.token_ids, sequence.pad_id),
            "attention_mask": ([1] * len(sequence), 0),
            "marker_ids": (sequence.marker_ids, NO_MARKER),
            "labels": (sequence.labels, IGNORE_INDEX),
            "speech_mask": ([kind == PositionKind.SPEECH for kind in sequence.kinds], False),
            "mel_mask": ([kind == PositionKind.MEL for kind in sequence.kinds], False),
            "prompt_mask": ([kind == PositionKind.PROMPT for kind in sequence.kinds], False),
            "bidirectional_mask": (sequence.bidirectional, False),
            "text_condition_mask": (sequence.text_condition, False),
            "prompt_condition_mask": (sequence.prompt_condition, False),
        }
        for name, (values, fill) in rows.items():
            padding = [fill] * pad
            columns[name].append(padding + values if padding_side == "left" else values + padding)
    return {name: torch.tensor(values, dtype=_COLUMNS[name]) for name, values in columns.items()}


_COLUMNS = {
    "input_ids": torch.long,
    "attention_mask": torch.long,
    "marker_ids": torch.long,
    "labels": torch.long,
    "speech_mask": torch.bool,
    "mel_mask": torch.bool,
    "prompt_mask": torch.bool,
    "bidirectional_mask": torch.bool,
    "text_condition_mask": torch.bool,
    "prompt_condition_mask": torch.bool,
}
# The TTS tensors of a batch, each padded and stacked, and the name of its lengths (if kept).
_TTS_COLUMNS = {
    "mel": "mel_lengths",
    "frame_units": None,
    "prompt_mel": "prompt_frames",
    "units": "unit_lengths",
    "unit_durations": None,
}
