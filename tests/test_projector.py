import torch

from unispeech.projector import SpeechProjector


def test_stacks_frames_and_keeps_real_lengths():
    projector = SpeechProjector(encoder_size=6, hidden_size=10, output_size=8, stack=4)
    states = torch.randn(2, 9, 6)
    embeddings, lengths = projector(states, torch.tensor([9, 5]))
    assert embeddings.shape == (2, 3, 8)
    assert lengths.tolist() == [3, 2]


def test_frames_past_the_end_do_not_matter():
    projector = SpeechProjector(encoder_size=6, hidden_size=10, output_size=8, stack=4)
    states = torch.randn(1, 9, 6)
    changed = states.clone()
    changed[0, 5:] = 50.0
    lengths = torch.tensor([5])
    torch.testing.assert_close(projector(states, lengths)[0], projector(changed, lengths)[0])
    alone, _ = projector(states[:, :5], lengths)
    torch.testing.assert_close(projector(states, lengths)[0][:, :2], alone)


def test_one_embedding_is_one_mlp_of_stacked_frames():
    projector = SpeechProjector(encoder_size=3, hidden_size=5, output_size=4, stack=2)
    states = torch.randn(1, 4, 3)
    embeddings, _ = projector(states, torch.tensor([4]))
    second = states[0, 2:4].reshape(-1)
    expected = projector.linear_out(torch.nn.functional.gelu(projector.linear_in(second)))
    torch.testing.assert_close(embeddings[0, 1], expected)
