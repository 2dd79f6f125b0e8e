import torch

from unispeech.model.projector import SpeechProjector


def test_stacks_frames_and_keeps_real_lengths():
    projector = SpeechProjector(encoder_size=6, hidden_size=10, output_size=8, stack=4)
    states = torch.randn(2, 9, 6)
    embeddings, lengths = projector(states, torch.tensor([9, 5]), 1.0)
    assert embeddings.shape == (2, 3, 8)
    assert lengths.tolist() == [3, 2]


def test_frames_past_the_end_do_not_matter():
    projector = SpeechProjector(encoder_size=6, hidden_size=10, output_size=8, stack=4)
    states = torch.randn(1, 9, 6)
    changed = states.clone()
    changed[0, 5:] = 50.0
    lengths = torch.tensor([5])
    torch.testing.assert_close(projector(states, lengths, 1.0)[0], projector(changed, lengths, 1.0)[0])
    alone, _ = projector(states[:, :5], lengths, 1.0)
    torch.testing.assert_close(projector(states, lengths, 1.0)[0][:, :2], alone)


def test_one_embedding_is_one_normalised_mlp_of_stacked_frames():
    projector = SpeechProjector(encoder_size=3, hidden_size=5, output_size=4, stack=2)
    states = torch.randn(1, 4, 3)
    embeddings, _ = projector(states, torch.tensor([4]), 0.5)
    second = states[0, 2:4].reshape(-1)
    mlp = projector.linear_out(torch.nn.functional.gelu(projector.linear_in(second)))
    torch.testing.assert_close(embeddings[0, 1], 0.5 * mlp / mlp.pow(2).mean().sqrt(), rtol=1e-4, atol=1e-6)


def test_embeddings_come_out_at_the_asked_rms_however_large_the_input():
    projector = SpeechProjector(encoder_size=6, hidden_size=10, output_size=8, stack=2)
    embeddings, _ = projector(1000 * torch.randn(1, 8, 6), torch.tensor([8]), 0.13)
    rms = embeddings.pow(2).mean(dim=-1).sqrt()  # (1, 4)
    torch.testing.assert_close(rms, torch.full_like(rms, 0.13), rtol=1e-3, atol=0)
