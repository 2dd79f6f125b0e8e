import dataclasses

import numpy as np
import pytest
import torch

import unispeech.api
from tests.conftest import noise_clip, speech_clip
from unispeech.api import Unispeech, load
from unispeech.model.adapters import AdapterMismatchError, active_task, add_task_adapter, save_task_adapter
from unispeech.tasks.decoding import DecodingOptions
from unispeech.tasks.synthesis import SynthesisOptions
from unispeech.tasks.transcription import TranscriptionOptions
from unispeech.testing import tiny_model

FAST = TranscriptionOptions(decoding=DecodingOptions(max_new_tokens=4))


@pytest.fixture(scope="module")
def speech(tiny_dir):
    return load(tiny_dir)


def test_one_or_many_recordings(speech):
    clips = [speech_clip(0.3, 16000, seed=1), speech_clip(0.5, 16000, seed=2)]
    many = speech.transcribe(clips, FAST, sampling_rate=16000)
    one = speech.transcribe(clips[1], FAST, sampling_rate=16000)
    assert len(many) == 2 and many[1].text == one.text


def test_one_or_many_nbest_lists(speech):
    many = speech.correct([["a b", "a c"], ["d"]])
    one = speech.correct(["d"])
    assert len(many) == 2 and many[1] == one


def test_speak_returns_audio_at_the_vocoders_rate(speech):
    audio = speech.speak("hi", noise_clip(0.5, 22050), "ab", SynthesisOptions(steps=1, duration=0.5), 22050)
    assert audio.dtype == np.float32 and speech.sample_rate == 22050
    assert abs(len(audio) - 0.5 * 22050) <= 256


def test_a_prompt_that_transcribes_to_nothing_needs_its_text(speech):
    with pytest.raises(ValueError, match=r"could not be transcribed .* pass its transcript"):
        speech.speak("hello", np.zeros(22050, np.float32), None, SynthesisOptions(steps=1), 22050)


def test_adapters_load_from_a_folder_and_each_call_uses_its_task(tiny_dir, tmp_path):
    model, _ = tiny_model()
    model.load_state_dict(load(tiny_dir, adapters=None, weight_format="fp32").model.state_dict())
    for task in ("asr", "ger"):
        add_task_adapter(model, task)
        save_task_adapter(model, task, tmp_path / task)
    speech = load(tiny_dir, adapters=tmp_path)
    assert speech.tasks == ["asr", "ger"]
    seen = []
    original = Unispeech._use

    def spy(self, task, language=None):
        served = original(self, task, language)
        seen.append((task, active_task(self.model)))
        return served

    Unispeech._use = spy
    try:
        speech.transcribe(speech_clip(0.3, 16000), FAST, sampling_rate=16000)
        speech.correct(["a"])
        speech.speak("x", noise_clip(0.3, 22050), "y", SynthesisOptions(steps=1, duration=0.2), 22050)
    finally:
        Unispeech._use = original
    assert seen == [("asr", "asr"), ("ger", "ger"), ("tts", None)], "no tts adapter: the bare base model"


def save_adapters(tiny_dir, folder, subfolders):
    """Adapters of the tiny model, each freshly made, saved under `folder` (`asr`, `de/asr` ...)."""
    base = load(tiny_dir, adapters=None, weight_format="fp32").model.state_dict()
    for subfolder in subfolders:
        model, _ = tiny_model()
        model.load_state_dict(base)
        task = subfolder.rsplit("/", 1)[-1]
        add_task_adapter(model, task)
        save_task_adapter(model, task, folder / subfolder)


def test_each_call_picks_the_adapter_of_its_language(tiny_dir, tmp_path, monkeypatch, caplog):
    """English adapters sit in the folder, German ones in de/; a call's language picks one, and a
    language without an adapter for the task gets the English one, with a warning."""
    save_adapters(tiny_dir, tmp_path, ["asr", "tts", "de/asr"])
    speech = load(tiny_dir, adapters=tmp_path, languages=("en", "de"))
    assert sorted(speech.tasks) == ["asr", "asr-de", "tts"] and speech.languages == ["en", "de"]
    again = load(tiny_dir, adapters=tmp_path, languages=("de", "de"))  # English comes too, each once
    assert sorted(again.tasks) == sorted(speech.tasks) and again.languages == ["en", "de"]
    seen, hints = [], []
    original, transcribe = Unispeech._use, unispeech.api.transcribe

    def spy(self, task, language=None):
        served = original(self, task, language)
        seen.append(active_task(self.model))
        return served

    def hint_spy(model, processor, clips, options, *args):
        hints.append(options.language)
        return transcribe(model, processor, clips, options, *args)

    monkeypatch.setattr(Unispeech, "_use", spy)
    monkeypatch.setattr(unispeech.api, "transcribe", hint_spy)
    clip = speech_clip(0.3, 16000)
    for language in (None, "en", "de", "fr"):
        speech.transcribe(clip, dataclasses.replace(FAST, language=language), sampling_rate=16000)
    speech.speak(
        "x", noise_clip(0.3, 22050), "y", SynthesisOptions(steps=1, duration=0.2, language="de"), 22050
    )
    assert seen == ["asr", "asr", "asr-de", "asr", "tts"]
    assert hints == [None, None, "de", None], "only German's own adapter learned with a language hint"
    warnings = [record.getMessage() for record in caplog.records if record.levelname == "WARNING"]
    assert "no 'asr' adapter is loaded for 'fr': the English one serves" in warnings
    assert "no 'tts' adapter is loaded for 'de': the English one serves" in warnings


def test_a_language_without_adapters_is_served_by_the_english_ones(tiny_dir, tmp_path, caplog):
    save_adapters(tiny_dir, tmp_path, ["asr"])
    speech = load(tiny_dir, adapters=tmp_path, languages=("en", "fr"))
    assert speech.tasks == ["asr"]
    assert f"no adapters for 'fr' in {tmp_path / 'fr'}: the English ones serve it" in caplog.messages


def test_a_wrong_task_in_a_language_folder_is_refused_before_the_model_loads(tiny_dir, tmp_path, monkeypatch):
    save_adapters(tiny_dir, tmp_path, ["asr", "de/tts"])
    (tmp_path / "de" / "asr").symlink_to(tmp_path / "de" / "tts")  # a TTS adapter placed as de/asr/
    monkeypatch.setattr("unispeech.api.load_parts", lambda *a, **k: pytest.fail("the model was loaded"))
    with pytest.raises(AdapterMismatchError, match="holds task 'tts', not 'asr'"):
        load(tiny_dir, adapters=tmp_path, languages=("en", "de"))


def test_many_lists_need_one_recording_each(speech):
    with pytest.raises(ValueError, match="2 N-best lists need a list of as many recordings"):
        speech.correct([["a"], ["b"]], audio=noise_clip(0.3, 16000))


def test_text_with_nothing_to_speak_fails_before_the_prompt_is_transcribed(speech, monkeypatch):
    def must_not_transcribe(*args, **kwargs):
        raise AssertionError("the prompt was transcribed for text with nothing to speak")

    monkeypatch.setattr(speech, "transcribe", must_not_transcribe)
    for text in ("🎉🎉", "\x00\x07"):
        with pytest.raises(ValueError, match=r"has no letter or digit .*: nothing to speak"):
            speech.speak(text, noise_clip(0.5, 22050), None, SynthesisOptions(steps=1), 22050)


@pytest.mark.parametrize(
    "nbest", [42, None, "one string", [1, 2], [["a b"], 3], [["a b", 2]], {"input": ["a b"]}]
)
def test_correct_says_what_it_takes(speech, nbest):
    with pytest.raises(ValueError) as raised:
        speech.correct(nbest)
    assert str(raised.value).startswith(
        "correct takes an N-best list (a list of strings, best first) or a list of such lists, "
        f"got {type(nbest).__name__} "
    )


def test_an_adapter_folder_of_another_task_is_refused_before_the_model_loads(tiny_dir, tmp_path, monkeypatch):
    model, _ = tiny_model()
    add_task_adapter(model, "tts")
    folder = save_task_adapter(model, "tts", tmp_path / "asr")  # the TTS adapter placed as asr/
    message = f"the adapter at {folder} holds task 'tts', not 'asr': give a folder that holds task 'asr'"

    def must_not_load(*args, **kwargs):
        raise AssertionError("the model was loaded before the adapters were checked")

    with monkeypatch.context() as patched:
        patched.setattr("unispeech.api.load_parts", must_not_load)
        with pytest.raises(AdapterMismatchError) as raised:
            load(tiny_dir, adapters=tmp_path)
    assert str(raised.value) == message
    speech = load(tiny_dir, adapters=None, weight_format="fp32")  # adapters load later
    with pytest.raises(AdapterMismatchError) as raised:
        speech.load_adapter(folder, "asr")
    assert str(raised.value) == message and speech.tasks == []


@pytest.fixture(scope="module")
def shipped():
    """`smol` with the adapters shipped in adapters/smol/ (real weights)."""
    return load("smol")


@pytest.mark.real
def test_the_shipped_asr_adapter_transcribes_the_bundled_sample(shipped):
    from unispeech.evaluation.metrics import word_error_rate
    from unispeech.samples import LJSPEECH_SAMPLE

    smol = shipped
    assert "asr" in smol.tasks, "adapters/smol/asr is shipped"
    text = smol.transcribe(LJSPEECH_SAMPLE.path).text
    assert word_error_rate([LJSPEECH_SAMPLE.text], [text]) == 0.0, text


@pytest.mark.real
def test_the_shipped_tts_adapter_speaks_words_whisper_hears(shipped):
    """With the shipped defaults (the phoneme prior, deterministic), in the bundled clip's voice:
    whisper-base hears "Hello there." word for word (measured; longer sentences still lose a word
    or two, adapters/smol/tts/README.md)."""
    from unispeech.audio.features import load_audio
    from unispeech.evaluation.metrics import word_error_rate
    from unispeech.samples import LJSPEECH_SAMPLE
    from unispeech.weights.pretrained import load_whisper

    smol = shipped
    audio = smol.speak("Hello there.", LJSPEECH_SAMPLE.path, LJSPEECH_SAMPLE.text)
    heard = load_whisper("smol").transcribe(
        load_audio(audio, 16000, smol.sample_rate), language="en", fp16=False
    )
    assert word_error_rate(["Hello there."], [heard["text"]]) == 0.0, heard["text"]


@pytest.mark.real
def test_the_german_adapters_beside_the_english_ones_change_nothing_english(shipped):
    """Installed beside the English adapters (adapters/smol/de/), the German ones serve German
    calls, and the English adapters' speech and transcripts stay bit for bit what they were."""
    from unispeech.samples import LJSPEECH_SAMPLE

    both = load("smol", languages=("en", "de"))
    assert {"tts-de", "asr-de"} <= set(both.tasks)
    sample = (LJSPEECH_SAMPLE.path, LJSPEECH_SAMPLE.text)
    english = both.speak("Hello there.", *sample)
    np.testing.assert_array_equal(english, shipped.speak("Hello there.", *sample))
    assert both.transcribe(LJSPEECH_SAMPLE.path) == shipped.transcribe(LJSPEECH_SAMPLE.path)
    german = SynthesisOptions(language="de")
    both.speak("Guten Tag.", *sample, german)
    assert active_task(both.model) == "tts-de"
    both.transcribe(LJSPEECH_SAMPLE.path, TranscriptionOptions(language="de"))
    assert active_task(both.model) == "asr-de"
    shipped.speak("Guten Tag.", *sample, german)
    assert active_task(shipped.model) == "tts", "no German adapter loaded: the English one serves"


@pytest.mark.real
def test_the_shipped_ger_adapter_copies_a_right_transcript_and_leaves_short_lists_alone(shipped):
    """A right 1-best stays (whisper-base's N-best list of an LJSpeech dev clip), and so does a
    one-item list: the previous adapter answered "hello world" with "seven"."""
    smol = shipped
    assert "ger" in smol.tasks, "adapters/smol/ger is shipped"
    sentence = "Here and there, a book is printed in France or Germany with some pretension to good taste."
    lists = [
        [sentence, sentence.replace("pretension", "pretention")],
        ["hello world"],
        ["helo world", "hello world"],
    ]
    copied, alone, short = smol.correct(lists)
    assert copied == sentence
    assert alone == "hello world"
    assert short in lists[2]


@pytest.mark.real
def test_the_shipped_tts_adapter_predicts_mel_velocities_better_than_the_bare_base(shipped):
    """The flow-matching and duration losses of the bundled clip (a training clip, with its
    aligned durations) under one fixed draw: the shipped TTS adapter must beat the untrained
    head it started from by a wide margin."""
    import torch

    from unispeech.data.phoneme_durations import read_durations
    from unispeech.model.adapters import set_task
    from unispeech.model.phonemes import phoneme_units
    from unispeech.model.processor import TtsSample
    from unispeech.samples import LJSPEECH_SAMPLE

    smol = shipped
    assert "tts" in smol.tasks, "adapters/smol/tts is shipped"
    [aligned] = read_durations(LJSPEECH_SAMPLE.durations).values()
    units = tuple(phoneme_units(aligned.phonemes))
    sample = TtsSample(
        LJSPEECH_SAMPLE.path, LJSPEECH_SAMPLE.text, units, aligned.durations, aligned.frames // 4
    )
    batch = smol.processor([sample])
    model = smol.model
    draw = model.flow.draw(
        model.flow.normalize(batch["mel"]), batch["mel_lengths"], torch.Generator().manual_seed(0)
    )
    draw.drop_text[:] = draw.drop_audio[:] = False
    losses = {}
    with torch.no_grad():
        for task in ("tts", None):
            set_task(model, task)
            output = model(**batch, flow_example=draw)
            losses[task] = (float(output.tts_loss), float(output.duration_loss))
    set_task(model, None)
    assert losses["tts"][0] < 0.8 * losses[None][0], losses
    assert losses["tts"][1] < 0.5 * losses[None][1], losses


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_the_three_tasks_run_on_cuda(tiny_dir):
    """A model moved to the GPU transcribes, speaks and corrects there, as on the CPU."""
    on_gpu = load(tiny_dir, weight_format="fp32")  # fp16 packing is for the CPU
    on_gpu.model.to("cuda")
    clip = speech_clip(0.5, 16000, seed=2)
    assert isinstance(on_gpu.transcribe(clip, FAST, sampling_rate=16000).text, str)
    audio = on_gpu.speak("hi", noise_clip(0.5, 22050), "ab", SynthesisOptions(steps=1, duration=0.5), 22050)
    assert audio.dtype == np.float32 and np.isfinite(audio).all()
    assert isinstance(on_gpu.correct(["a b", "a c"]), str)
