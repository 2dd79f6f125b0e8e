import pytest
import torch

from unispeech.model.configuration import UnispeechLMConfig
from unispeech.model.flow import FlowMatching, SwaySchedule, TimestepEmbedding


@pytest.fixture
def flow():
    return FlowMatching(UnispeechLMConfig.tiny(mel_patch_size=3))


def test_patches_round_trip(flow):
    mel = torch.randn(2, 7, 80)
    patches = flow.patchify(mel)
    assert patches.shape == (2, 3, 3 * 80)
    torch.testing.assert_close(patches[0, 1], mel[0, 3:6].reshape(-1))
    assert (patches[:, -1, 80:] == 0).all(), "the last patch is zero-padded"
    torch.testing.assert_close(flow.unpatchify(patches, 7), mel)


def test_normalisation_round_trips(flow):
    mel = torch.randn(3, 80) * 2 - 5
    torch.testing.assert_close(flow.denormalize(flow.normalize(mel)), mel)


def test_a_training_draw_follows_the_recipe(flow):
    mel = torch.randn(64, 40, 80)
    lengths = torch.randint(10, 41, (64,))
    example = flow.draw(mel, lengths, torch.Generator().manual_seed(0))
    t = example.time[:, None, None]
    noise = mel - example.velocity
    torch.testing.assert_close(example.noisy, (1 - t) * noise + t * mel)
    assert torch.equal(example.frames, torch.arange(40)[None] < lengths[:, None])
    assert example.drop_audio[example.drop_text].all(), "dropping the text drops the prompt too"
    assert 0 < example.drop_text.float().mean() < example.drop_audio.float().mean() < 0.9


def test_loss_is_the_mean_over_real_frames_only():
    predicted = torch.zeros(1, 3, 2)
    target = torch.tensor([[[1.0, 1.0], [2.0, 2.0], [10.0, 10.0]]])
    frames = torch.tensor([[True, True, False]])
    assert FlowMatching.loss(predicted, target, frames).item() == pytest.approx((1 + 4) / 2)


def test_an_untrained_head_starts_switched_off(flow):
    assert (flow.embed_prompt(torch.randn(1, 6, 80)) == 0).all()
    units = torch.zeros(1, 6, 4, dtype=torch.long)  # padding: no phonemes
    condition = flow.phoneme_condition(units, torch.tensor([6]))
    assert (flow.embed_target(torch.randn(1, 6, 80), condition, torch.tensor([True])) == 0).all()
    hidden = torch.randn(2, 4, 64)
    time_embedding = flow.time_embedding(torch.tensor([0.1, 0.9]))
    normalised = torch.nn.functional.layer_norm(hidden, (64,))
    torch.testing.assert_close(flow.output_norm(hidden, time_embedding), normalised)


def test_each_patch_carries_the_mean_of_its_frames_phonemes(flow):
    units = torch.tensor([[[5, 0, 0, 0]] * 3 + [[7, 9, 0, 0]] * 2])  # (1, 5, 4): 3 frames of 5, 2 of 7+9
    condition = flow.phoneme_condition(units, torch.tensor([5]))
    assert condition.prior.shape == (1, 5, 80)
    embeddings = flow.embed_target(torch.zeros(1, 5, 80), condition, torch.tensor([True]))  # (1, 2, D), p = 3
    table = flow.phonemes.table.weight
    torch.testing.assert_close(embeddings[0, 0], table[5])
    torch.testing.assert_close(embeddings[0, 1], 2 * (table[7] + table[9]) / 3)  # the padded frame adds 0
    unseen = flow.embed_target(torch.zeros(1, 5, 80), condition, torch.tensor([False]))
    assert (unseen == 0).all(), "guidance's unconditional row gets no phonemes"


def test_the_prior_mel_enters_through_the_condition_half(flow):
    torch.nn.init.normal_(flow.mel_input.linear.weight)
    units = torch.randint(3, 50, (1, 6, 4))
    condition = flow.phoneme_condition(units, torch.tensor([6]))
    seen, unseen = (
        flow.embed_target(torch.zeros(1, 6, 80), condition, torch.tensor([v])) for v in (True, False)
    )
    condition.prior = condition.prior + 1
    moved = flow.embed_target(torch.zeros(1, 6, 80), condition, torch.tensor([True]))
    assert (moved - seen).abs().max() > 1e-3, "the prior is an input"
    unseen_moved = flow.embed_target(torch.zeros(1, 6, 80), condition, torch.tensor([False]))
    torch.testing.assert_close(unseen, unseen_moved)  # hidden from the unconditional row


def test_the_duration_predictor_ignores_padding_and_its_loss_is_on_log_frames(flow):
    units = torch.randint(3, 50, (2, 6, 4))
    lengths = torch.tensor([6, 3])
    log_frames = flow.log_durations(units, lengths)
    assert log_frames.shape == (2, 6) and (log_frames[1, 3:] == 0).all()
    shorter = flow.log_durations(units[1:, :3], lengths[1:])
    torch.testing.assert_close(log_frames[1:, :3], shorter)
    durations = torch.tensor([[1, 2, 4, 8, 1, 1], [2, 2, 2, 99, 99, 99]])
    loss = FlowMatching.duration_loss(torch.zeros(2, 6), durations, lengths)
    expected = (torch.tensor([1.0, 2, 4, 8, 1, 1, 2, 2, 2]).log() ** 2).mean()
    torch.testing.assert_close(loss, expected)


def test_time_embedding_tells_times_apart():
    embedding = TimestepEmbedding(frequencies=33, hidden_size=8)
    out = embedding(torch.tensor([0.0, 0.5, 1.0]))
    assert out.shape == (3, 8)
    assert (out[0] - out[1]).abs().sum() > 1e-3


def test_sway_schedule():
    uniform = SwaySchedule(0.0).timesteps(4)
    torch.testing.assert_close(uniform, torch.linspace(0, 1, 5))
    swayed = SwaySchedule(-1.0).timesteps(16)
    assert swayed[0] == 0 and swayed[-1] == pytest.approx(1.0)
    assert (swayed.diff() > 0).all() and swayed[8] < 0.5, "more steps early on"
    with pytest.raises(ValueError, match="sway coefficient"):
        SwaySchedule(-2.0)
    with pytest.raises(ValueError, match="at least one step"):
        SwaySchedule().timesteps(0)


@pytest.mark.parametrize("steps", [1, 4, 32])
def test_euler_on_the_straight_path_lands_on_the_target(steps):
    target = torch.randn(2, 5, 80)
    noise = torch.randn(2, 5, 80)

    def velocity(x, t):  # the exact conditional field of the straight path towards `target`
        return (target - x) / (1 - t), None

    out = FlowMatching.sample(velocity, noise, steps, SwaySchedule(-1.0), guidance_strength=0.0)
    torch.testing.assert_close(out, target, atol=1e-4, rtol=1e-4)


def test_guidance_combines_conditional_and_unconditional():
    conditional, unconditional = torch.full((1, 2, 80), 1.0), torch.full((1, 2, 80), 0.25)
    seen = []

    def velocity(x, t):
        seen.append(t)
        return conditional, unconditional

    out = FlowMatching.sample(velocity, torch.zeros(1, 2, 80), 3, SwaySchedule(0.0), guidance_strength=2.0)
    torch.testing.assert_close(out, torch.full((1, 2, 80), 1.0 + 2.0 * 0.75))
    assert seen == pytest.approx([0, 1 / 3, 2 / 3])

    def conditional_only(x, t):
        return conditional, None

    with pytest.raises(ValueError, match="needs the unconditional"):
        FlowMatching.sample(conditional_only, torch.zeros(1, 2, 80), 3, guidance_strength=2.0)
