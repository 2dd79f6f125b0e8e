import pytest

from unispeech.model.markers import NO_MARKER, Marker
from unispeech.model.sequences import (
    IGNORE_INDEX,
    TASKS,
    Layout,
    PositionKind,
    TokenIds,
    build_synthesis,
    build_transcript,
    ger_prompt,
    get_task,
)

K = PositionKind

IDS = TokenIds(bos=1, eos=2, pad=0)


def test_asr_layout_and_labels():
    sequence = build_transcript(IDS, Layout(speech_tokens=3, target=[7, 8]), bidirectional_speech=False)
    assert sequence.kinds == [
        K.TEXT,
        K.MARKER,
        K.SPEECH,
        K.SPEECH,
        K.SPEECH,
        K.MARKER,
        K.TEXT,
        K.TEXT,
        K.TEXT,
    ]
    assert sequence.token_ids == [1, 0, 0, 0, 0, 0, 7, 8, 2]
    assert sequence.marker_ids == [
        NO_MARKER,
        Marker.ASR_START,
        *[NO_MARKER] * 3,
        Marker.ASR_END,
        *[NO_MARKER] * 3,
    ]
    assert sequence.labels == [IGNORE_INDEX] * 6 + [7, 8, 2]
    assert not any(sequence.bidirectional)


def test_asr_for_decoding_stops_after_the_speech():
    sequence = build_transcript(IDS, Layout(speech_tokens=2), bidirectional_speech=False)
    assert sequence.marker_ids[-1] == Marker.ASR_END and set(sequence.labels) == {IGNORE_INDEX}


def test_tts_layout_spans_and_conditions():
    sequence = build_synthesis(
        IDS, Layout(text=[5, 6, 7], prompt_patches=2, mel_patches=4), bidirectional_speech=True
    )
    assert sequence.kinds[:4] == [PositionKind.TEXT] * 4
    assert sequence.kinds[4:6] == [PositionKind.PROMPT] * 2
    assert sequence.marker_ids[6:8] == [Marker.TTS_START, Marker.TIME]
    assert sequence.kinds[8:] == [PositionKind.MEL] * 4
    # two spans, the prompt's and the generated one's, kept apart by the causal <tts_start>
    assert sequence.bidirectional == [False] * 4 + [True] * 2 + [False] + [True] * 5
    assert sequence.text_condition == [False] + [True] * 6 + [False] * 5, "bos stays visible"
    assert sequence.prompt_condition == [False] * 4 + [True] * 3 + [False] * 5
    assert set(sequence.labels) == {IGNORE_INDEX}


def test_tts_without_bos_or_prompt():
    ids = TokenIds(bos=None, eos=2, pad=0)
    sequence = build_synthesis(ids, Layout(text=[5], mel_patches=1), bidirectional_speech=True)
    assert sequence.token_ids[0] == 5 and PositionKind.PROMPT not in sequence.kinds
    assert sequence.prompt_condition == [False, True, False, False]


def test_registry():
    assert TASKS["tts"].bidirectional_speech and not TASKS["asr"].bidirectional_speech
    assert get_task("asr").adapter_name == "asr"
    assert not TASKS["ger"].bidirectional_speech
    assert [name for name, task in TASKS.items() if task.hears_audio] == ["asr", "ger"]
    assert all(name == task.name for name, task in TASKS.items())
    with pytest.raises(ValueError, match="unknown task 'vc'; known tasks: asr, tts, ger"):
        get_task("vc")


def test_asr_language_prompt_is_not_learned():
    sequence = build_transcript(
        IDS, Layout(speech_tokens=1, text=[9, 9], target=[7]), bidirectional_speech=False
    )
    assert sequence.token_ids[-4:] == [9, 9, 7, 2]
    assert sequence.labels[-4:] == [IGNORE_INDEX, IGNORE_INDEX, 7, 2]


def test_ger_with_and_without_speech():
    text_only = build_transcript(IDS, Layout(text=[1, 5, 6], target=[7]), bidirectional_speech=False)
    assert text_only.token_ids == [1, 5, 6, 7, 2]
    assert text_only.labels == [IGNORE_INDEX] * 3 + [7, 2]
    with_speech = build_transcript(IDS, Layout(speech_tokens=2, text=[5]), bidirectional_speech=False)
    assert with_speech.kinds[:5] == [K.TEXT, K.MARKER, K.SPEECH, K.SPEECH, K.MARKER]
    assert with_speech.token_ids[-1] == 5 and set(with_speech.labels) == {IGNORE_INDEX}


def test_ger_prompt_lists_best_then_others():
    prompt = ger_prompt(["best one", "second", "third"])
    assert prompt.index("best one") < prompt.index("second") < prompt.index("third")
    assert "(none)" in ger_prompt(["only"])
    with pytest.raises(ValueError, match="at least one hypothesis"):
        ger_prompt([])
