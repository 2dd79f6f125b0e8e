import pytest
import torch

from unispeech.data.aligner import (
    AlignerConfig,
    PhonemeAligner,
    beta_binomial_log_prior,
    durations,
    hard_alignment,
)

pytest.importorskip("monotonic_align")


def test_mas_finds_the_best_monotonic_path_and_every_phoneme_gets_a_frame():
    log_probs = torch.full((2, 7, 3), -10.0)
    log_probs[0, 0:2, 0] = log_probs[0, 2:6, 1] = log_probs[0, 6, 2] = 0
    log_probs[1, :, 0] = 0  # the second clip (5 frames, 2 phonemes) would give all frames to one
    hard = hard_alignment(log_probs, torch.tensor([3, 2]), torch.tensor([7, 5]))
    assert durations(hard, torch.tensor([3, 2])) == [[2, 4, 1], [4, 1]]
    assert hard[1, 5:].sum() == 0 and hard[1, :, 2].sum() == 0  # padding stays out


def test_the_prior_favours_the_diagonal():
    prior = beta_binomial_log_prior(torch.tensor([4]), torch.tensor([40]), (40, 4), AlignerConfig())[0]
    assert prior[0].argmax() == 0 and prior[-1].argmax() == 3
    assert prior[20].argmax() in (1, 2)


def test_the_aligner_learns_durations_it_was_never_told():
    """Each phoneme id has its own mel pattern, held for a random number of frames: trained on
    the forward-sum and binarisation losses alone, the aligner's MAS path recovers those counts
    (a uniform split by phoneme count gets 31 % of them). Kernels of 1: the toy's segments are
    sharp, and wider kernels blur their boundaries by a frame."""
    generator = torch.Generator().manual_seed(0)
    patterns = torch.randn(20, 8, generator=generator) * 2
    phonemes = torch.stack([torch.randperm(17, generator=generator)[:6] + 3 for _ in range(8)])[..., None]
    counts = torch.randint(2, 7, (8, 6), generator=generator)
    mel = torch.zeros(8, int(counts.sum(1).max()), 8)
    for row in range(8):
        frames = patterns[phonemes[row, :, 0]].repeat_interleave(counts[row], dim=0)
        mel[row, : len(frames)] = frames + 0.1 * torch.randn(frames.shape, generator=generator)
    phoneme_lengths, mel_lengths = torch.full((8,), 6), counts.sum(1)
    torch.manual_seed(0)
    aligner = PhonemeAligner(
        AlignerConfig(symbols=20, phoneme_channels=32, mel_bins=8, attention_channels=16, kernel_size=1)
    )
    optimizer = torch.optim.Adam(aligner.parameters(), lr=3e-3)
    for step in range(400):
        log_probs = aligner(phonemes, phoneme_lengths, mel, mel_lengths)
        loss = aligner.forward_sum_loss(log_probs, phoneme_lengths, mel_lengths)
        if step >= 200:
            loss = loss + aligner.binarization_loss(
                log_probs, hard_alignment(log_probs, phoneme_lengths, mel_lengths)
            )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        log_probs = aligner(phonemes, phoneme_lengths, mel, mel_lengths)
    found = torch.tensor(durations(hard_alignment(log_probs, phoneme_lengths, mel_lengths), phoneme_lengths))
    assert (found == counts).float().mean() > 0.95
