import logging
from collections import Counter

import pytest
import soundfile
import torch

from tests.conftest import noise_clip
from unispeech.audio.features import load_audio
from unispeech.data.manifest import Utterance, read_manifest, write_manifest
from unispeech.data.nbest import NbestItem
from unispeech.data.phoneme_durations import AlignedClip, even_durations, write_durations
from unispeech.model.encoder import EncodedSpeech
from unispeech.model.phonemes import phoneme_units
from unispeech.model.processor import AsrSample, GerSample, TtsSample
from unispeech.training.buckets import BucketSettings
from unispeech.training.data import BatchStream, TrainingData
from unispeech.training.feature_cache import FeatureCache
from unispeech.training.recipes import recipe_from_dict

# (file, samples, sample rate, text): whole milliseconds at 16 kHz, other rates, and 3999 samples,
# whose `dur` (0.250 s, to the millisecond) reaches one mel frame further than the file does
CLIPS = [
    ("a.wav", 8000, 16000, "hello world"),
    ("b.wav", 19200, 16000, "a somewhat longer transcript, with punctuation."),
    ("c.wav", 3999, 16000, "edge"),
    ("d.wav", 30000, 22050, "twenty-two kilohertz"),
    ("e.wav", 11111, 8000, "eight"),
    ("f.wav", 50000, 44100, "Grüße, 世界"),
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Clips under audio/, a manifest without durations under lists/ with the clips' phoneme
    durations beside it (characters spread evenly), an N-best file under nbest/."""
    root = tmp_path_factory.mktemp("corpus")
    (root / "audio").mkdir()
    for index, (name, samples, rate, _) in enumerate(CLIPS):
        soundfile.write(
            root / "audio" / name, noise_clip(samples / rate + 0.01, rate, seed=index)[:samples], rate
        )
    utterances = [Utterance(f"../audio/{name}", text, lang="de") for name, _, _, text in CLIPS]
    manifest = write_manifest(root / "lists" / "train.jsonl", utterances)
    aligned = []
    for name, _, _, text in CLIPS:
        frames = len(load_audio(root / "audio" / name, 22050)) // 256
        aligned.append(AlignedClip(f"../audio/{name}", text.lower(), even_durations(len(text) + 2, frames)))
    write_durations(_durations(manifest), aligned)
    (root / "nbest").mkdir()
    items = [
        NbestItem([text.upper(), text, f"{text} uh"], text, f"../audio/{name}") for name, _, _, text in CLIPS
    ]
    items.append(NbestItem(["no audio here"], "no audio here"))
    nbest = root / "nbest" / "train.nbest.jsonl"
    nbest.write_text("".join(item.to_json() + "\n" for item in items), encoding="utf-8")
    return manifest, nbest


def _durations(manifest):
    return manifest.parent / "durations.jsonl"


def _recipe(sources, task=None, **fields):
    task = task or sources[0]["task"]
    return recipe_from_dict({"task": task, "sources": sources, **fields})


def _real_length(processor, sample):
    return processor([sample])["input_ids"].shape[1]


def test_durations_are_read_and_unusable_examples_dropped(tiny_sdpa, tmp_path, caplog):
    _, processor = tiny_sdpa
    for name, seconds in [("short.wav", 0.5), ("medium.wav", 1.2), ("long.wav", 2.5), ("wordy.wav", 0.4)]:
        soundfile.write(tmp_path / name, noise_clip(seconds, 16000), 16000)
    manifest = write_manifest(
        tmp_path / "train.jsonl",
        [
            Utterance("short.wav", "short"),
            Utterance("medium.wav", "medium"),
            Utterance("long.wav", "too long a clip"),
            Utterance("wordy.wav", "far too many words " * 20),
            Utterance("short.wav", "a wrong dur is believed", dur=9.0),
        ],
    )
    assert all(utterance.dur is None for utterance in read_manifest(manifest)[:4])
    recipe = _recipe(
        [{"task": "asr", "manifest": str(manifest), "max_seconds": 2}], batch={"max_positions": 256}
    )
    with caplog.at_level(logging.WARNING, logger="unispeech.training.data"):
        data = TrainingData(recipe, processor)
    assert [example.text for example in data.sources[0]] == ["short", "medium"]
    assert [example.audio for example in data.sources[0]] == [
        str(tmp_path / name) for name in ("short.wav", "medium.wav")
    ]
    assert data.dropped == Counter({"train: longer than 2 s": 2, "train: longer than batch.max_positions": 1})
    assert "left out of training" in caplog.text
    too_strict = _recipe([{"task": "asr", "manifest": str(manifest), "max_seconds": 0.1}])
    with pytest.raises(ValueError, match="source train has no usable examples"):
        TrainingData(too_strict, processor)


@pytest.mark.parametrize(
    ("task", "options", "low", "high"),
    [
        ("asr", {}, 0, 1),
        ("asr", {"language_hint": True}, 0, 1),
        ("ger", {"with_audio": True}, 0, 1),
        ("ger", {}, 3, 3),  # counts bos, asr_start, asr_end it does not have
        ("tts", {}, 0, 2),  # counts a marker too many, ±1 mel frame from dur's rounding
    ],
)
def test_estimated_lengths_never_fall_short_of_the_real_ones(tiny_sdpa, corpus, task, options, low, high):
    """The estimate is exact, up to what `dur`'s rounding to the millisecond adds at a frame's edge;
    it must never be short, or a batch could exceed `batch.max_positions`."""
    _, processor = tiny_sdpa
    manifest, nbest = corpus
    source = {
        "task": task,
        **options,
        **({"nbest": str(nbest)} if task == "ger" else {"manifest": str(manifest)}),
        **({"durations": str(_durations(manifest))} if task == "tts" else {}),
    }
    data = TrainingData(_recipe([source], batch={"max_positions": 100_000}), processor)
    examples, samples = data.samples(0, list(range(len(data.sources[0]))))
    assert len(examples) == len(CLIPS) + (task == "ger")
    pairs = zip(examples, samples, strict=True)
    over = [example.length - _real_length(processor, sample) for example, sample in pairs]
    assert all(low <= extra <= high for extra in over[: len(CLIPS)]), over
    if task != "tts":
        # a whole number of milliseconds at 16 kHz is exact, the 3999-sample clip one more
        assert over[:3] == [low, low, high]
    if task == "ger":
        assert over[-1] == 3, "the item without audio is a GER sample without speech"


def test_a_language_hint_is_written_and_counted(tiny_sdpa, corpus):
    _, processor = tiny_sdpa
    manifest, _ = corpus
    data = TrainingData(
        _recipe([{"task": "asr", "manifest": str(manifest), "language_hint": True}]), processor
    )
    plain = TrainingData(_recipe([{"task": "asr", "manifest": str(manifest)}]), processor)
    [example], [sample] = data.samples(0, [0])
    assert example.language == "de" and sample.language == "de"
    assert plain.samples(0, [0])[1][0].language is None
    assert example.length - plain.sources[0][0].length == len(processor.tokenize("[de] "))


def test_a_ger_source_reads_its_nbest_file_and_finds_audio_beside_it(tiny_sdpa, corpus):
    _, processor = tiny_sdpa
    _, nbest = corpus
    data = TrainingData(_recipe([{"task": "ger", "nbest": str(nbest), "with_audio": True}]), processor)
    first, last = data.sources[0][0], data.sources[0][-1]
    assert (
        first.hypotheses == ("HELLO WORLD", "hello world", "hello world uh") and first.text == "hello world"
    )
    assert first.audio == str(nbest.parent / "../audio/a.wav") and last.audio is None
    assert data.audio_files() == sorted(str(nbest.parent / f"../audio/{name}") for name, *_ in CLIPS)
    _, samples = data.samples(0, [0, len(CLIPS)])
    assert all(isinstance(sample, GerSample) for sample in samples)
    assert processor(samples)["input_features"].shape[0] == 1, "one of the two has audio"
    deaf = TrainingData(_recipe([{"task": "ger", "nbest": str(nbest)}]), processor)
    assert all(example.audio is None for example in deaf.sources[0]) and deaf.audio_files() == []
    assert deaf.transcripts() == []


def test_a_joint_recipe_keeps_one_list_per_source(tiny_sdpa, corpus):
    _, processor = tiny_sdpa
    manifest, nbest = corpus
    sources = [
        {"task": "asr", "manifest": str(manifest)},
        {"task": "tts", "manifest": str(manifest), "durations": str(_durations(manifest))},
        {"task": "ger", "nbest": str(nbest)},
    ]
    data = TrainingData(_recipe(sources, task="joint"), processor)
    assert [len(examples) for examples in data.sources] == [len(CLIPS), len(CLIPS), len(CLIPS) + 1]
    tasks = [{example.task for example in examples} for examples in data.sources]
    assert tasks == [{"asr"}, {"tts"}, {"ger"}]
    assert data.transcripts() == [text for *_, text in CLIPS]
    assert data.audio_files() == sorted(str(manifest.parent / f"../audio/{name}") for name, *_ in CLIPS)
    assert isinstance(data.samples(1, [0])[1][0], TtsSample)


def test_tts_examples_carry_their_units_durations_and_a_prompt_split(tiny_sdpa, corpus, tmp_path):
    _, processor = tiny_sdpa
    manifest, _ = corpus
    partial = tmp_path / "durations.jsonl"
    partial.write_text("".join(_durations(manifest).read_text().splitlines(keepends=True)[1:]))
    partial.write_text(partial.read_text().replace("../audio/", str(manifest.parent.parent / "audio") + "/"))
    source = {"task": "tts", "manifest": str(manifest), "durations": str(partial)}
    data = TrainingData(_recipe([source], batch={"max_positions": 100_000}), processor)
    assert len(data.sources[0]) == len(CLIPS) - 1, "the clip without durations is left out"
    assert data.dropped == {f"train: no durations in {partial}": 1}
    _, samples = data.samples(0, list(range(len(CLIPS) - 1)))
    assert [sample.units[1:-1] for sample in samples] == [
        tuple(phoneme_units(text.lower()))[1:-1] for *_, text in CLIPS[1:]
    ]
    assert all(0 <= s.prompt_frames <= 0.3 * sum(s.durations) for s in samples)
    assert len({s.prompt_frames for s in samples}) > 1, "each clip draws its own prompt"
    _, again = data.samples(0, list(range(len(CLIPS) - 1)))
    assert [s.prompt_frames for s in again] == [s.prompt_frames for s in samples], "seeded by the batch"


STREAM_SETTINGS = BucketSettings(max_positions=300, max_samples=4, window=16)


def _stream(seed=0, weights=(1.0, 1.0), sizes=(37, 11)):
    """A stream over two sources of made-up lengths 20..109."""
    lengths = [
        [20 + (7 * index + 13 * source) % 90 for index in range(size)] for source, size in enumerate(sizes)
    ]
    return BatchStream(lengths, list(weights), STREAM_SETTINGS, seed)


def _take(stream, count):
    return [next(stream) for _ in range(count)]


def test_the_stream_is_a_function_of_its_seed():
    assert _take(_stream(seed=3), 80) == _take(_stream(seed=3), 80)
    assert _take(_stream(seed=4), 80) != _take(_stream(seed=3), 80)


def test_seek_continues_where_a_fresh_stream_would_be():
    expected = _take(_stream(seed=5), 90)
    stream = _stream(seed=5)
    _take(stream, 40)
    for position in [0, 1, 7, 33, 89, 12]:  # forwards and back, across epochs of both sources
        stream.seek(position)
        assert stream.position == position
        assert next(stream) == expected[position]
        assert stream.position == position + 1
    assert _take(stream, 20) == expected[13:33]


def test_sources_are_drawn_by_weight():
    draws = Counter(source for source, _ in _take(_stream(weights=(3.0, 1.0)), 2000))
    assert abs(draws[0] / 2000 - 0.75) < 0.05


def test_every_example_appears_once_per_epoch_of_its_source():
    sizes = (37, 11)
    stream = _stream(seed=2, sizes=sizes)
    taken = {0: [], 1: []}
    for source, batch in _take(stream, 120):
        assert len(batch) <= 4
        taken[source].append(batch)
    for source, size in enumerate(sizes):
        epochs, indices = [], []
        for batch in taken[source]:
            indices += batch
            if len(indices) >= size:
                assert len(indices) == size, "a batch never spans two epochs"
                epochs.append(indices)
                indices = []
        assert len(epochs) >= 3
        assert all(sorted(epoch) == list(range(size)) for epoch in epochs)
        assert epochs[0] != epochs[1], "each epoch has its own order"


def test_training_data_streams_its_recipe(tiny_sdpa, corpus):
    _, processor = tiny_sdpa
    manifest, nbest = corpus
    recipe = _recipe(
        [{"task": "asr", "manifest": str(manifest)}, {"task": "ger", "nbest": str(nbest), "weight": 3}],
        task="joint",
        seed=11,
        batch={"max_positions": 400, "max_samples": 3},
    )
    data = TrainingData(recipe, processor)
    batches = _take(data.stream(), 40)
    assert batches == _take(data.stream(), 40)
    for source, indices in batches:
        lengths = [data.sources[source][index].length for index in indices]
        assert len(lengths) <= 3 and (len(lengths) == 1 or len(lengths) * max(lengths) <= 400)


def test_samples_carry_cached_encoder_states_that_give_the_same_loss(tiny_sdpa, corpus, tmp_path):
    model, processor = tiny_sdpa
    manifest, _ = corpus
    tts_source = {"task": "tts", "manifest": str(manifest), "durations": str(_durations(manifest))}
    data = TrainingData(
        _recipe([{"task": "asr", "manifest": str(manifest)}, tts_source], task="joint"), processor
    )
    cache = FeatureCache(tmp_path / "cache", model.encoder)
    with pytest.raises(RuntimeError, match="fill the cache first"):
        data.samples(0, [0], cache)
    assert cache.fill(data.audio_files(), processor, show_progress=False) == len(CLIPS)
    examples, cached = data.samples(0, [1, 3, 0], cache)
    assert [example.text for example in examples] == [CLIPS[i][3] for i in (1, 3, 0)]
    assert all(isinstance(sample, AsrSample) and isinstance(sample.audio, EncodedSpeech) for sample in cached)
    batch = processor(cached)
    assert "input_features" not in batch and batch["encoder_states"].shape[0] == 3
    assert batch["encoder_lengths"].tolist() == [len(sample.audio.states) for sample in cached]
    _, recorded = data.samples(0, [1, 3, 0])
    fresh = processor(recorded)
    torch.testing.assert_close(batch["input_ids"], fresh["input_ids"])
    with torch.no_grad():
        torch.testing.assert_close(model(**batch).loss, model(**fresh).loss, rtol=1e-3, atol=1e-3)
    [tts] = data.samples(1, [0], cache)[1]
    assert isinstance(tts, TtsSample) and tts.audio == examples[2].audio, "TTS reads its recording"
    with pytest.raises(ValueError, match="mixes recordings and EncodedSpeech"):
        processor([cached[0], recorded[1]])


def test_a_ger_source_listens_to_the_perturbed_clip_the_recogniser_heard(tiny_sdpa, corpus):
    _, processor = tiny_sdpa
    _, nbest = corpus
    (clean, *_), (perturbed, *_) = CLIPS[:2]
    item = NbestItem(["a b", "a be"], "a b", f"../audio/{clean}", heard=f"../audio/{perturbed}")
    path = nbest.parent / "heard.nbest.jsonl"
    path.write_text(item.to_json() + "\n", encoding="utf-8")
    data = TrainingData(_recipe([{"task": "ger", "nbest": str(path), "with_audio": True}]), processor)
    assert data.sources[0][0].audio == str(nbest.parent / f"../audio/{perturbed}")
