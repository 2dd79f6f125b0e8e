import math
import random

import pytest

from unispeech.training.buckets import BucketSettings, padded_fraction, plan_batches


def _log_uniform_lengths(count, low=20, high=600, seed=0):
    rng = random.Random(seed)
    return [round(math.exp(rng.uniform(math.log(low), math.log(high)))) for _ in range(count)]


def _padding_share(lengths, batches):
    """Padding over all positions of the plan, each batch costing `len × longest`."""
    positions = sum(len(batch) * max(lengths[index] for index in batch) for batch in batches)
    return 1 - sum(lengths[index] for batch in batches for index in batch) / positions


def _unbucketed(lengths, settings, seed):
    """Shuffled examples cut in order under the same budget, never sorted: what bucketing replaces."""
    order = list(range(len(lengths)))
    random.Random(seed).shuffle(order)
    batches, batch, longest = [], [], 0
    for index in order:
        wider = max(longest, lengths[index])
        if batch and (
            (len(batch) + 1) * wider > settings.max_positions or len(batch) == settings.max_samples
        ):
            batches.append(batch)
            batch, wider = [], lengths[index]
        batch.append(index)
        longest = wider
    return [*batches, batch]


@pytest.mark.parametrize(
    "settings", [BucketSettings(), BucketSettings(max_positions=500, max_samples=3, window=7)]
)
def test_every_index_once_and_every_batch_within_budget(settings):
    lengths = [*_log_uniform_lengths(1500), 5000, 9000]  # two longer than the budget of either setting
    batches = plan_batches(lengths, settings, seed=3)
    assert sorted(index for batch in batches for index in batch) == list(range(len(lengths)))
    for batch in batches:
        assert 1 <= len(batch) <= settings.max_samples
        if len(batch) > 1:
            assert len(batch) * max(lengths[index] for index in batch) <= settings.max_positions
    assert [9000] in [[lengths[index] for index in batch] for batch in batches], "too long: a batch alone"


def test_max_samples_binds_when_examples_are_short():
    batches = plan_batches([10] * 100, BucketSettings(max_positions=4096, max_samples=8, window=100), seed=0)
    assert sorted(len(batch) for batch in batches) == [4] + [8] * 12


def test_same_seed_same_plan_other_seed_other_order():
    lengths = _log_uniform_lengths(300)
    settings = BucketSettings(max_positions=2048, window=100)
    plan = plan_batches(lengths, settings, seed=7)
    assert plan_batches(lengths, settings, seed=7) == plan
    assert plan_batches(lengths, settings, seed="7/0/0") != plan
    other = plan_batches(lengths, settings, seed=8)
    assert other != plan
    assert sorted(index for batch in other for index in batch) == list(range(300))


def test_bucketing_keeps_padding_low_on_a_realistic_spread():
    lengths = _log_uniform_lengths(2000)
    settings = BucketSettings(max_positions=4096, max_samples=64, window=1000)
    bucketed = _padding_share(lengths, plan_batches(lengths, settings, seed=0))
    unbucketed = _padding_share(lengths, _unbucketed(lengths, settings, seed=0))
    small_window = _padding_share(lengths, plan_batches(lengths, BucketSettings(window=10), seed=0))
    assert bucketed < 0.10
    assert unbucketed > 0.40, "the same budget without sorting pads much more"
    assert bucketed < small_window < unbucketed, "a larger window sorts more examples together"


def test_a_window_of_one_makes_single_example_batches():
    batches = plan_batches(_log_uniform_lengths(50), BucketSettings(window=1), seed=0)
    assert all(len(batch) == 1 for batch in batches) and len(batches) == 50


@pytest.mark.parametrize(
    ("lengths", "fraction"),
    [([], 0.0), ([7], 0.0), ([5, 5, 5], 0.0), ([10, 5], 0.25), ([4, 1, 1, 2], 0.5), ([3, 0], 0.5)],
)
def test_padded_fraction(lengths, fraction):
    assert padded_fraction(lengths) == pytest.approx(fraction)


@pytest.mark.parametrize("name", ["max_positions", "max_samples", "window"])
@pytest.mark.parametrize("value", [0, -1])
def test_settings_below_one_are_rejected(name, value):
    with pytest.raises(ValueError, match=f"{name} must be at least 1, got {value}"):
        BucketSettings(**{name: value})
