import dataclasses
import logging

import numpy as np
import pytest
import torch

from tests.conftest import noise_clip
from unispeech.audio.features import AudioError, MelSettings
from unispeech.audio.vocoder import GriffinLim, Vocoder
from unispeech.data.phoneme_durations import even_durations
from unispeech.model.flow import FlowMatching, FlowMatchingExample
from unispeech.model.phonemes import Phonemizer, phoneme_units
from unispeech.model.processor import TtsSample
from unispeech.tasks.synthesis import (
    MAX_SENTENCE_CHARACTERS,
    MIN_SECONDS_PER_BYTE,
    MIN_SPEECH_SECONDS,
    FullSequenceVelocity,
    PrefixCachedVelocity,
    SynthesisOptions,
    TextRatioDuration,
    cross_fade,
    generate_mel,
    match_voice,
    predicted_frames,
    sentence_durations,
    speak,
    split_sentences,
)
from unispeech.testing import tiny_model

PROMPT_SECONDS = 0.5
PROMPT_TEXT = "a prompt"  # 8 bytes: 0.0625 s a byte, above the ratio rule's floor
RATE = 22050
HOP = 256
FRAME_RATE = RATE / HOP
FAST = SynthesisOptions(steps=3, start_time=0.0)  # the whole ODE, from noise
THREE_SENTENCES = "The first sentence is here. A second one follows! And is there a third?"


class FrameMeanVocoder(Vocoder):
    """Each frame's mean log-mel held for `hop` samples: instant, deterministic, mel-dependent."""

    def __init__(self, mel_settings: MelSettings):
        super().__init__()
        self.mel_settings = mel_settings

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        self._check_mel(mel)
        return mel.mean(dim=1).repeat_interleave(self.hop_length, dim=-1).float()  # (B, F · hop)


def _awake(patch_size: int = 1):
    """A tiny model whose zero-initialised mel input and adaLN get random weights, so velocities
    depend on the noisy mel, the condition and the time (an untrained head ignores all three)."""
    torch.manual_seed(0)
    model, processor = tiny_model(mel_patch_size=patch_size)
    with torch.no_grad():
        for layer in (model.flow.mel_input.linear, model.flow.output_norm.modulation[1]):
            layer.weight.normal_(std=0.05)
            layer.bias.normal_(std=0.05)
    return model, processor


@pytest.fixture(scope="module")
def tts():
    return _awake()


@pytest.fixture(scope="module")
def griffin_lim(tts):
    return GriffinLim(tts[1].config.mel_settings, n_iter=2)


@pytest.fixture(scope="module")
def frame_mean(tts):
    return FrameMeanVocoder(tts[1].config.mel_settings)


@pytest.fixture
def prompt():
    return noise_clip(PROMPT_SECONDS, RATE)


def _prompt_frames(prompt: np.ndarray) -> int:
    return len(prompt) // HOP


def _frames(model, sentences: list[str], prompt: np.ndarray, prompt_text: str, options) -> list[int]:
    """The frames `speak` gives each sentence (overlaps included), found as it finds them."""
    *units, prompt_units = Phonemizer().units([*sentences, prompt_text], options.language)
    durations = sentence_durations(
        model, units, prompt_units, _prompt_frames(prompt), options, FRAME_RATE, _overlap_frames(options)
    )
    return [sum(sentence) for sentence in durations]


def _inference_sample(prompt: np.ndarray, text: str, frames: int) -> TtsSample:
    """The prompt, then `text` (its characters as units) spread over `frames` frames."""
    units = phoneme_units(text.lower())
    return TtsSample(
        prompt, f"{PROMPT_TEXT} {text}", tuple(units), even_durations(len(units), frames), None, RATE
    )


def _overlap_frames(options: SynthesisOptions) -> int:
    return round(options.cross_fade * FRAME_RATE)


# ---------------------------------------------------------------------------------------------------
# The velocity network: cache and guidance wiring


@pytest.mark.parametrize("guidance_strength", [0.0, 2.0])
@pytest.mark.parametrize("patch_size", [1, 3])
def test_the_prefix_cache_equals_recomputing_every_step(prompt, guidance_strength, patch_size):
    model, processor = _awake(patch_size)
    units = phoneme_units("cache me if you can.")
    mels = [
        generate_mel(
            model,
            processor,
            prompt,
            PROMPT_TEXT,
            "Cache me if you can.",
            units,
            even_durations(len(units), 40),
            SynthesisOptions(
                steps=4, guidance_strength=guidance_strength, use_prefix_cache=cached, start_time=0
            ),
            torch.Generator().manual_seed(0),
        )
        for cached in (True, False)
    ]
    assert mels[0].shape == (40, 80)
    torch.testing.assert_close(mels[0], mels[1], atol=1e-5, rtol=1e-5)


def test_the_cached_path_gives_the_same_audio(tts, frame_mean, prompt):
    audio = [
        speak(
            *tts,
            frame_mean,
            THREE_SENTENCES,
            prompt,
            PROMPT_TEXT,
            dataclasses.replace(FAST, use_prefix_cache=cached),
            RATE,
        )
        for cached in (True, False)
    ]
    np.testing.assert_allclose(audio[0], audio[1], atol=1e-5)


@pytest.mark.parametrize("velocity_class", [PrefixCachedVelocity, FullSequenceVelocity])
def test_both_rows_are_the_training_forward_with_and_without_the_condition(tts, prompt, velocity_class):
    """Row 0 sees the text, the prompt and the phonemes; row 1 is the training-time text drop."""
    model, processor = tts
    batch = processor([_inference_sample(prompt, "and more", 20)])
    frames = batch["mel"].shape[1]
    x = torch.randn(1, frames, 80)
    time = 0.3
    with torch.inference_mode():
        conditional, unconditional = velocity_class(model, batch, guided=True)(x, time)
    for velocity, drop in ((conditional, False), (unconditional, True)):
        example = FlowMatchingExample(
            time=torch.tensor([time]),
            noisy=x,
            velocity=torch.zeros_like(x),
            frames=torch.ones(1, frames, dtype=torch.bool),
            drop_text=torch.tensor([drop]),
            drop_audio=torch.tensor([drop]),
        )
        with torch.inference_mode():
            hidden = model(**batch, flow_example=example).last_hidden_state
            expected = model.flow.velocity(
                hidden[batch["mel_mask"]][None], model.flow.time_embedding(example.time), frames
            )
        torch.testing.assert_close(velocity, expected, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(conditional, unconditional), "the condition must matter"


def test_without_guidance_only_the_conditional_row_runs(tts, prompt):
    model, processor = tts
    batch = processor([_inference_sample(prompt, "x", 5)])
    with torch.inference_mode():
        velocity = PrefixCachedVelocity(model, batch, guided=False)
        conditional, unconditional = velocity(torch.randn(1, 5, 80), 0.5)
    assert unconditional is None and conditional.shape[0] == 1


@pytest.mark.parametrize("cached", [True, False])
@pytest.mark.parametrize("guidance_strength", [0.0, 2.0])
def test_the_prefix_runs_once_per_sentence_not_once_per_step(
    tts, frame_mean, prompt, monkeypatch, cached, guidance_strength
):
    model, processor = tts
    calls = []  # (rows, queries, cached positions before the call)
    run_backbone = model.run_backbone

    def counting(inputs_embeds, attention_mask, *args, past_key_values=None, **kwargs):
        before = past_key_values.get_seq_length() if past_key_values is not None else None
        calls.append((inputs_embeds.shape[0], inputs_embeds.shape[1], before))
        return run_backbone(inputs_embeds, attention_mask, *args, past_key_values=past_key_values, **kwargs)

    monkeypatch.setattr(model, "run_backbone", counting)
    steps = 4
    options = SynthesisOptions(
        steps=steps, guidance_strength=guidance_strength, use_prefix_cache=cached, start_time=0
    )
    speak(model, processor, frame_mean, THREE_SENTENCES, prompt, PROMPT_TEXT, options, RATE)
    sentences = 3
    rows = 2 if guidance_strength else 1
    prefix_passes = [index for index, call in enumerate(calls) if call[2] == 0]
    if cached:
        assert len(prefix_passes) == sentences and len(calls) == sentences * (1 + steps)
        for index in prefix_passes:
            rows_then, prefix_length, _ = calls[index]
            assert rows_then == 1, "one prefix pass serves both rows"
            spans = calls[index + 1 : index + 1 + steps]
            assert spans == [(rows, spans[0][1], prefix_length)] * steps, "the span is cropped off each step"
    else:
        assert not prefix_passes and len(calls) == sentences * steps
        assert all(call[0] == rows and call[2] is None for call in calls)


@pytest.mark.parametrize("start_time", [1.0, 0.5])
def test_the_ode_starts_from_the_phoneme_prior(tts, prompt, start_time, monkeypatch):
    """At start time 1 the mel is the prior's, with no backbone pass; in between the ODE runs over
    the remaining time only, from noise mixed with the prior."""
    model, processor = tts
    units = phoneme_units("start here.")
    durations = even_durations(len(units), 30)
    batch = processor([_inference_sample(prompt, "start here.", 30)])
    prior = model.flow.phoneme_condition(batch["frame_units"], batch["mel_lengths"]).prior
    passes, times = [], []
    run_backbone, sample = model.run_backbone, FlowMatching.sample
    monkeypatch.setattr(model, "run_backbone", lambda *a, **k: passes.append(1) or run_backbone(*a, **k))

    def recording(velocity_fn, x, steps, schedule, strength, start_time):
        times.append(start_time)
        return sample(velocity_fn, x, steps, schedule, strength, start_time)

    monkeypatch.setattr(FlowMatching, "sample", staticmethod(recording))
    options = SynthesisOptions(steps=4, start_time=start_time, guidance_strength=0, voice_match=False)
    mel = generate_mel(model, processor, prompt, PROMPT_TEXT, "start here.", units, durations, options)
    if start_time == 1:
        torch.testing.assert_close(mel, model.flow.denormalize(prior[0]))
        assert not passes and not times
    else:
        assert times == [0.5] and len(passes) == 1 + 4, "the prefix once, then 4 steps over [0.5, 1]"
        assert not torch.allclose(mel, model.flow.denormalize(prior[0]))


def test_voice_matching_gives_the_mel_the_prompts_statistics(tts, prompt):
    """Each mel bin's mean and spread over time become the prompt's; the shape over time (which
    sound is where) is the prior's, bin by bin up to scale and shift."""
    model, processor = tts
    units = phoneme_units("start here.")
    durations = even_durations(len(units), 30)
    batch = processor([_inference_sample(prompt, "start here.", 30)])
    prompt_mel = batch["prompt_mel"][0, : int(batch["prompt_frames"][0])]  # (Fp, M)
    plain, matched = (
        generate_mel(
            model,
            processor,
            prompt,
            PROMPT_TEXT,
            "start here.",
            units,
            durations,
            SynthesisOptions(voice_match=on),
        )
        for on in (False, True)
    )
    torch.testing.assert_close(matched.mean(dim=0), prompt_mel.mean(dim=0), atol=1e-4, rtol=0)
    torch.testing.assert_close(
        matched.std(dim=0, correction=0), prompt_mel.std(dim=0, correction=0), atol=1e-4, rtol=1e-4
    )
    correlation = torch.corrcoef(torch.stack([plain[:, 0], matched[:, 0]]))[0, 1]
    assert correlation > 0.999 and not torch.allclose(plain, matched)


def test_a_constant_bin_takes_the_prompts_mean():
    mel = torch.zeros(5, 2)
    mel[:, 1] = torch.arange(5.0)
    prompt_mel = torch.tensor([[1.0, -1.0], [3.0, 1.0]])  # means 2, 0; spreads 1, 1
    out = match_voice(mel, prompt_mel)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out[:, 0], torch.full((5,), 2.0))
    torch.testing.assert_close(out[:, 1], (torch.arange(5.0) - 2) / 2**0.5)


# ---------------------------------------------------------------------------------------------------
# Duration


@pytest.mark.parametrize("sentences", [1, 3])
def test_a_given_duration_is_the_output_length(tts, griffin_lim, prompt, sentences):
    text = " ".join(["Short.", "A much longer sentence than that.", "Mid length one."][:sentences])
    options = dataclasses.replace(FAST, duration=1.2)
    audio = speak(*tts, griffin_lim, text, prompt, PROMPT_TEXT, options, RATE)
    assert audio.dtype == np.float32
    assert len(audio) == round(1.2 * FRAME_RATE) * HOP


@pytest.mark.parametrize("speed", [1.0, 2.0, 0.8])
def test_the_predicted_duration_follows_the_prompt_rate_and_speed(tts, frame_mean, prompt, speed):
    """The predictor's frames for the text, times the prompt's real frames over the predictor's
    for its transcript, over speed: a prompt said twice as slowly gives twice the frames."""
    model, _ = tts
    text = "This sentence is long enough to be timed."
    units, prompt_units = Phonemizer().units([text, PROMPT_TEXT])
    predicted, for_prompt = predicted_frames(model, [units, prompt_units])
    for prompt_audio in (prompt, np.concatenate([prompt, prompt])):
        options = dataclasses.replace(FAST, speed=speed)
        audio = speak(*tts, frame_mean, text, prompt_audio, PROMPT_TEXT, options, RATE)
        rate = _prompt_frames(prompt_audio) / for_prompt.sum()
        assert len(audio) == round(predicted.sum() * rate / speed) * HOP


def test_short_text_is_guarded():
    rule = TextRatioDuration()
    assert rule(10.0, "x" * 1000, "Hi.") == MIN_SPEECH_SECONDS, "a slow prompt rate must not starve it"
    assert rule(1.0, "x" * 100, "y" * 100) == pytest.approx(100 * MIN_SECONDS_PER_BYTE), "per-byte floor"
    assert rule(3.0, "x" * 30, "y" * 100) == pytest.approx(10.0), "the plain ratio otherwise"
    assert rule(3.0, "x" * 30, "é" * 50) == pytest.approx(10.0), "bytes, not characters"


def test_a_duration_too_short_for_the_phonemes_is_refused(tts):
    sentences = [phoneme_units(text) for text in ("a", "b", "c")]  # 3 units each
    with pytest.raises(ValueError, match="fewer than the 9 phoneme units"):
        sentence_durations(
            tts[0], sentences, phoneme_units("x"), 50, SynthesisOptions(duration=0.08), FRAME_RATE, 13
        )


# ---------------------------------------------------------------------------------------------------
# Determinism


def test_the_seed_decides_the_output(tts, griffin_lim, prompt):
    def run(seed: int) -> np.ndarray:
        options = dataclasses.replace(FAST, seed=seed)
        return speak(*tts, griffin_lim, "Say it twice.", prompt, PROMPT_TEXT, options, RATE)

    first, again, other = run(0), run(0), run(1)
    np.testing.assert_array_equal(first, again)
    assert first.shape == other.shape and not np.allclose(first, other)


# ---------------------------------------------------------------------------------------------------
# Long text


def test_sentences_are_split_and_long_ones_cut():
    assert split_sentences("One. Two!  Three?\nFour… 五。六！七") == [
        "One.",
        "Two!",
        "Three?",
        "Four…",
        "五。",
        "六！",
        "七",
    ]
    assert split_sentences("Dr. No") == ["Dr.", "No"]  # abbreviations are not special-cased
    clause = "This clause is quite a bit longer than half, "
    pieces = split_sentences(clause * 3 + "end.", max_characters=60)
    assert pieces == [clause.strip()] * 2 + [clause + "end."], "cut after commas past half the length"
    words = " ".join(["word"] * 100)
    pieces = split_sentences(words, max_characters=42)
    assert all(len(piece) <= 42 for piece in pieces) and " ".join(pieces) == words, "cut at spaces"
    assert split_sentences("x" * 25, max_characters=10) == ["x" * 10, "x" * 10, "x" * 5], "hard cut"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "is empty or whitespace"),
        ("   \n\t ", "is empty or whitespace"),
        ("🎉🎉 🙂", "has no letter or digit"),
        ("\x00\x07\x1b\x7f", "has no letter or digit"),
        ("... ?! — ♪", "has no letter or digit"),
    ],
)
def test_nothing_to_speak(tts, griffin_lim, prompt, text, reason):
    with pytest.raises(ValueError, match=rf"^text .* {reason}.*: nothing to speak$"):
        speak(*tts, griffin_lim, text, prompt, PROMPT_TEXT, FAST, RATE)


def test_pieces_with_nothing_to_say_are_left_out():
    assert split_sentences("Hello there. 🎉🎉! Bye, 2 of you! ...") == ["Hello there.", "Bye, 2 of you!"]
    assert split_sentences("Ünïcödé 五 ٣") == ["Ünïcödé 五 ٣"], "letters and digits of any script"


def test_cross_fade_length_and_ramp():
    chunks = [np.ones(1000, np.float32), np.zeros(500, np.float32), np.ones(800, np.float32)]
    joined = cross_fade(chunks, 100)
    assert len(joined) == 2300 - 2 * 100
    ramp = joined[900:1000]
    assert np.all(np.diff(ramp) < 0) and 0 < ramp[-1] < ramp[0] < 1, "linear fade out of the first"
    np.testing.assert_array_equal(joined[:900], 1)
    constant = cross_fade([np.ones(300, np.float32)] * 4, 50)
    np.testing.assert_allclose(constant, 1, rtol=1e-6)  # the two fades sum to one
    assert len(cross_fade([np.ones(300, np.float32), np.ones(20, np.float32)], 50)) == 300, "clamped"
    assert len(cross_fade(chunks, 0)) == 2300


def test_sentences_are_joined_with_the_cross_fade(tts, frame_mean, prompt):
    options = dataclasses.replace(FAST, cross_fade=0.1)
    audio = speak(*tts, frame_mean, THREE_SENTENCES, prompt, PROMPT_TEXT, options, RATE)
    sentences = split_sentences(THREE_SENTENCES)
    assert len(sentences) == 3
    overlap = _overlap_frames(options)
    frames = _frames(tts[0], sentences, prompt, PROMPT_TEXT, options)
    assert len(audio) == (sum(frames) - 2 * overlap) * HOP


def test_ten_thousand_characters(tts, frame_mean, prompt, capsys):
    sentence = "The quick brown fox, who was rather tired, jumped over the lazy dog again. "
    rambling = " ".join(["and then"] * 60) + ". "
    text = ((sentence * 10 + rambling) * 20)[:10_000]
    options = SynthesisOptions(steps=1, guidance_strength=0, start_time=0)
    prompt_text = "a fast prompt transcript"
    audio = speak(*tts, frame_mean, text, prompt, prompt_text, options, RATE)
    sentences = split_sentences(text)
    assert len(sentences) > 100 and max(map(len, sentences)) <= MAX_SENTENCE_CHARACTERS
    overlap = _overlap_frames(options)
    frames = _frames(tts[0], sentences, prompt, prompt_text, options)
    assert len(audio) == (sum(frames) - (len(sentences) - 1) * overlap) * HOP
    assert np.isfinite(audio).all()
    progress = capsys.readouterr().err  # a sign of life, sentence by sentence
    assert "speaking" in progress and f"{len(sentences)}/{len(sentences)}" in progress


def test_one_sentence_shows_no_progress_bar(tts, frame_mean, prompt, capsys):
    speak(*tts, frame_mean, "Just this.", prompt, PROMPT_TEXT, SynthesisOptions(steps=1), RATE)
    assert "speaking" not in capsys.readouterr().err


def test_text_over_the_cap_is_refused_before_any_work(tts, griffin_lim, prompt):
    options = SynthesisOptions(max_text_characters=20)
    with pytest.raises(ValueError, match="has 26 characters, more than max_text_characters=20"):
        speak(*tts, griffin_lim, "Twenty-six characters, ok.", prompt, PROMPT_TEXT, options, RATE)


# ---------------------------------------------------------------------------------------------------
# Inputs and options


def test_nan_prompt_audio_is_refused(tts, griffin_lim, prompt):
    prompt[100] = np.nan
    with pytest.raises(AudioError, match="NaN"):
        speak(*tts, griffin_lim, "Hello.", prompt, PROMPT_TEXT, FAST, RATE)


def test_a_prompt_needs_its_transcript(tts, griffin_lim, prompt):
    with pytest.raises(ValueError, match="prompt_text is empty"):
        speak(*tts, griffin_lim, "Hello.", prompt, "  ", FAST, RATE)


def test_the_vocoder_must_read_the_models_mel(tts, prompt):
    other = GriffinLim(MelSettings(sample_rate=16000, hop_length=200, n_fft=800, win_length=800))
    with pytest.raises(ValueError, match="the vocoder reads"):
        speak(*tts, other, "Hello.", prompt, PROMPT_TEXT, FAST, RATE)


def test_a_long_prompt_is_cut_with_a_warning(tts, frame_mean, caplog):
    long_prompt = noise_clip(2.0, RATE)
    options = dataclasses.replace(FAST, max_prompt_seconds=1.0)
    text = "Durations follow the prompt that was kept."
    with caplog.at_level(logging.WARNING, logger="unispeech.tasks.synthesis"):
        audio = speak(*tts, frame_mean, text, long_prompt, PROMPT_TEXT, options, RATE)
    assert "cut to its first 1.0 s" in caplog.text
    kept = long_prompt[: int(options.max_prompt_seconds * RATE)]
    assert len(audio) == sum(_frames(tts[0], [text], kept, PROMPT_TEXT, options)) * HOP


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"steps": 0}, "steps .* at least 1, got 0"),
        ({"start_time": 1.5}, r"start_time must be in \[0, 1\]"),
        ({"guidance_strength": -1.0}, "guidance_strength .* got -1.0"),
        ({"guidance_strength": float("nan")}, "guidance_strength .* got nan"),
        ({"sway": 1.5}, r"sway must be in \[-1, 1\].* got 1.5"),
        ({"speed": 0.0}, "speed must be .* > 0, got 0.0"),
        ({"duration": 0.0}, "duration must be None .* got 0.0"),
        ({"duration": 2.0, "speed": 1.5}, "give duration or speed, not both"),
        ({"seed": -1}, "seed must be in .* got -1"),
        ({"cross_fade": -0.1}, "cross_fade must be .* got -0.1"),
        ({"max_prompt_seconds": 0}, "max_prompt_seconds must be > 0, got 0"),
        ({"max_text_characters": 0}, "max_text_characters must be None or >= 1, got 0"),
    ],
)
def test_options_are_validated(changes, message):
    with pytest.raises(ValueError, match=message):
        SynthesisOptions(**changes)


def test_zero_is_a_value_not_unset():
    options = SynthesisOptions(guidance_strength=0, cross_fade=0, seed=0, sway=0)
    assert options.guidance_strength == 0 and options.cross_fade == 0 and options.schedule.coefficient == 0
