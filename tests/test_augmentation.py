import pytest
import torch

from unispeech.training.augmentation import TimeMasking, mask_time


def _masked(states: torch.Tensor) -> torch.Tensor:
    return (states == 0).all(dim=-1)  # (B, T)


def test_no_masks_is_the_identity():
    states = torch.randn(2, 50, 8)
    assert mask_time(states, torch.tensor([50, 30]), TimeMasking(), torch.Generator()) is states


def test_masks_stay_inside_each_clip_and_within_their_limits():
    states = torch.randn(64, 200, 4) + 10  # never zero by chance
    lengths = torch.randint(5, 201, (64,))
    settings = TimeMasking(masks=2, max_frames=20, max_fraction=0.1)
    masked = _masked(mask_time(states, lengths, settings, torch.Generator().manual_seed(0)))
    for row, length in zip(masked, lengths, strict=True):
        limit = min(20, int(length * 0.1))
        assert row.sum() <= 2 * limit
        assert not row[length:].any()  # padding untouched (the projector zeroes it anyway)
    assert masked.any()  # something was masked


def test_the_same_generator_state_masks_the_same_frames():
    states, lengths = torch.randn(4, 100, 3) + 10, torch.tensor([100, 80, 60, 40])
    settings = TimeMasking(masks=3)
    first = mask_time(states, lengths, settings, torch.Generator().manual_seed(7))
    again = mask_time(states, lengths, settings, torch.Generator().manual_seed(7))
    assert torch.equal(first, again)


@pytest.mark.parametrize("settings", [{"masks": -1}, {"max_frames": -2}, {"max_fraction": 1.5}])
def test_bad_settings_are_refused(settings):
    with pytest.raises(ValueError):
        TimeMasking(**settings)
