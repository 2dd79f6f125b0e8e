"""Shared test fixtures: offline mode, deterministic seeds, a tiny random model and test audio.

Tests marked `real` use the real `smol` weights of `unispeech weights fetch`; without them they are
skipped, unless UNISPEECH_REQUIRE_REAL=1 (as in CI), where a missing cache is an error instead.
"""

import os

import pytest
import torch

from unispeech.testing import noise as noise_clip
from unispeech.testing import speech as speech_clip

__all__ = ["noise_clip", "speech_clip"]

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(min(2, os.cpu_count() or 1))


def pytest_collection_modifyitems(config, items):
    real = [item for item in items if "real" in item.keywords]
    if not real:
        return
    from unispeech.weights.cache import cache_dir, is_complete

    if is_complete(cache_dir("smol")):
        return
    missing = f"no complete smol cache at {cache_dir('smol')}: run `unispeech weights fetch`"
    if os.environ.get("UNISPEECH_REQUIRE_REAL") == "1":
        raise pytest.UsageError(missing)
    for item in real:
        item.add_marker(pytest.mark.skip(reason=missing))


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


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    """A tiny random model and its processor saved to a folder, as `save_pretrained` writes them."""
    from unispeech.testing import tiny_model

    torch.manual_seed(0)
    model, processor = tiny_model()
    folder = tmp_path_factory.mktemp("tiny-model")
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
