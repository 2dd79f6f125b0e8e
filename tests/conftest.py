"""Shared test fixtures: offline mode, deterministic seeds, a tiny random model and test audio."""

import os

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="session", params=["sdpa", "eager"])
def tiny(request):
    """A tiny random model and processor, once per attention implementation."""
    from unispeech.testing import tiny_model

    torch.manual_seed(0)
    return tiny_model(attn_implementation=request.param)


@pytest.fixture(scope="session")
def tiny_sdpa():
    from unispeech.testing import tiny_model

    torch.manual_seed(0)
    return tiny_model()


def noise_clip(seconds: float, sample_rate: int, seed: int = 0) -> np.ndarray:
    """A deterministic clip of quiet noise, float32 mono."""
    return (0.1 * np.random.default_rng(seed).standard_normal(int(seconds * sample_rate))).astype(np.float32)
