import json

import numpy as np
import pytest
import soundfile
import torch
import whisper
from whisper.model import ModelDimensions, Whisper

from unispeech.audio.features import load_audio
from unispeech.data.manifest import Utterance, write_manifest
from unispeech.data.nbest import (
    NbestItem,
    NbestOptions,
    error_rates,
    make_nbest_lists,
    parse_nbest,
    read_nbest,
    whisper_nbest,
)
from unispeech.data.perturbation import Augmentation
from unispeech.testing import noise

MULTILINGUAL_VOCAB = 51865  # openai-whisper picks its multilingual tokenizer from this size


@pytest.fixture(scope="module")
def tiny_whisper():
    torch.manual_seed(0)
    dims = ModelDimensions(
        n_mels=80,
        n_audio_ctx=1500,
        n_audio_state=16,
        n_audio_head=2,
        n_audio_layer=1,
        n_vocab=MULTILINGUAL_VOCAB,
        n_text_ctx=24,
        n_text_state=16,
        n_text_head=2,
        n_text_layer=1,
    )
    model = Whisper(dims).eval()
    with torch.no_grad():  # sharpen the random LM so that beams differ
        model.decoder.token_embedding.weight.mul_(40.0)
    return model


def test_the_first_hypothesis_is_whispers_own_choice(tiny_whisper):
    clips = [noise(0.8, 16000, seed=i) for i in range(2)]
    nbest = whisper_nbest(tiny_whisper, clips, NbestOptions(beam_size=4, language="en"))
    options = whisper.DecodingOptions(beam_size=4, language="en", without_timestamps=True, fp16=False)
    for clip, hypotheses in zip(clips, nbest, strict=True):
        mel = whisper.log_mel_spectrogram(torch.from_numpy(clip), padding=whisper.audio.N_SAMPLES)[:, :3000]
        assert 1 <= len(hypotheses) <= 4
        assert hypotheses[0] == whisper.decode(tiny_whisper, mel, options).text


def test_lists_are_written_in_the_hyporadise_shape(tiny_whisper, tmp_path):
    soundfile.write(tmp_path / "a.wav", noise(0.5, 16000), 16000)
    soundfile.write(tmp_path / "long.wav", noise(31.0, 16000), 16000)
    write_manifest(tmp_path / "m.jsonl", [Utterance("a.wav", "ref a"), Utterance("long.wav", "too long")])
    output = tmp_path / "out" / "n.jsonl"
    items = make_nbest_lists(
        tmp_path / "m.jsonl", output, tiny_whisper, NbestOptions(beam_size=2), progress=False
    )
    assert [item.output for item in items] == ["ref a"], "clips over 30 s are skipped"
    record = json.loads(output.read_text())
    assert set(record) == {"input", "output", "audio", "lang"} and record["audio"] == "../a.wav"
    assert read_nbest(output) == items


def test_an_augmented_clip_is_saved_as_the_recogniser_heard_it(tiny_whisper, tmp_path):
    """Audio-aware correction must hear the perturbed clip whisper decoded, not the clean one."""
    for name in ("a", "b"):
        soundfile.write(tmp_path / f"{name}.wav", noise(0.4, 16000, seed=ord(name)), 16000)
    write_manifest(tmp_path / "m.jsonl", [Utterance("a.wav", "ref a"), Utterance("b.wav", "ref b")])
    augmentation = Augmentation(probability=1.0, snr_db=(10, 10), speed=(0.9, 0.9))
    options = NbestOptions(beam_size=2, augmentation=augmentation)
    output = tmp_path / "n.jsonl"
    items = make_nbest_lists(tmp_path / "m.jsonl", output, tiny_whisper, options, progress=False)
    for item, name in zip(items, ("a", "b"), strict=True):
        assert item.audio == f"{name}.wav" and item.heard.startswith("n.heard/")
        assert item.heard_audio == item.heard
        heard, rate = soundfile.read(tmp_path / item.heard, dtype="float32")
        clean = load_audio(tmp_path / f"{name}.wav", 16000)
        assert rate == 16000
        perturbed = augmentation.apply(clean, f"{name}.wav")  # float64: saved to float32 precision
        np.testing.assert_allclose(heard, perturbed, rtol=0, atol=1e-6)
        assert len(heard) == pytest.approx(len(clean) / 0.9, abs=2)  # slowed down, not the clean clip
    assert read_nbest(output) == items
    clean_list = make_nbest_lists(tmp_path / "m.jsonl", tmp_path / "c.jsonl", tiny_whisper, progress=False)
    assert all(item.heard is None and item.heard_audio == item.audio for item in clean_list)


def test_hyporadise_json_files_are_read_as_they_are(tmp_path):
    (tmp_path / "h.json").write_text(json.dumps([{"input": ["a", "b"], "output": "a"}]))
    assert read_nbest(tmp_path / "h.json") == [NbestItem(["a", "b"], "a")]
    (tmp_path / "bad.jsonl").write_text('{"input": "not a list", "output": "a"}\n')
    with pytest.raises(ValueError, match="item 1 is not"):
        read_nbest(tmp_path / "bad.jsonl")


@pytest.mark.parametrize(
    ("text", "lists"),
    [
        ('["a", "b"]', [["a", "b"]]),
        ('[["a"], ["b", "c"]]', [["a"], ["b", "c"]]),
        ('{"input": ["a"]}', [["a"]]),
        ('{"input": ["a"]}\n["b", "c"]\n', [["a"], ["b", "c"]]),
        ("", []),
    ],
)
def test_lists_to_correct_may_be_bare_or_objects(text, lists):
    assert [item.input for item in parse_nbest(text, "the input", references=False)] == lists


@pytest.mark.parametrize(
    ("text", "references", "message"),
    [
        ("{not json", False, "the input is not JSON or JSON lines"),
        ("[1, 2]", False, r"the input, item 1 is not an N-best list \(a list of strings or"),
        (
            '[["a"], []]',
            False,
            r"^the N-best list is empty: give at least one hypothesis \(the input, item 2\)$",
        ),
        ('["a", "b"]', True, r"the input, item 1 is not an N-best list \(\{\"input\""),
        ('{"input": ["a"]}', True, r'the input, item 1 has no "output" \(the reference\)'),
    ],
)
def test_malformed_lists_are_refused_with_the_item(text, references, message):
    with pytest.raises(ValueError, match=message):
        parse_nbest(text, "the input", references=references)


def test_a_stopped_run_resumes_where_it_stopped(tiny_whisper, tmp_path, monkeypatch):
    import unispeech.data.nbest as nbest_module

    for name in ("a", "b", "c"):
        soundfile.write(tmp_path / f"{name}.wav", noise(0.3, 16000, seed=ord(name)), 16000)
    utterances = [Utterance(f"{name}.wav", f"ref {name}") for name in ("a", "b", "c")]
    write_manifest(tmp_path / "m.jsonl", utterances)
    output = tmp_path / "n.jsonl"
    options = NbestOptions(beam_size=2, batch_size=1)
    first = make_nbest_lists(tmp_path / "m.jsonl", output, tiny_whisper, options, limit=2, progress=False)
    output.write_text(output.read_text() + '{"input": ["cut sh')  # a crash in the middle of a line
    decoded = []
    original = nbest_module.whisper_nbest

    def counting(model, audios, options):
        decoded.extend(audios)
        return original(model, audios, options)

    monkeypatch.setattr(nbest_module, "whisper_nbest", counting)
    every = make_nbest_lists(tmp_path / "m.jsonl", output, tiny_whisper, options, progress=False)
    assert len(decoded) == 1, "only the utterance not yet written is decoded"
    assert every[:2] == first and [item.output for item in every] == ["ref a", "ref b", "ref c"]
    assert read_nbest(output) == every


def test_error_rates_of_a_hand_computed_case():
    items = [
        NbestItem(["the cat sat", "the cat sad"], "the cat sat"),  # first right
        NbestItem(["a dog", "the dog"], "the dog"),  # first: 1 of 2 wrong; oracle right
        NbestItem([], "green tea"),  # no hypothesis: 2 deletions
    ]
    first, oracle = error_rates(items)
    assert first == pytest.approx((0 + 1 + 2) / 7)
    assert oracle == pytest.approx((0 + 0 + 2) / 7)
