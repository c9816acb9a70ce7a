"""Shared fixtures: a seeded generator and a tiny random CLIP of the teaching architecture."""

import matplotlib

matplotlib.use("Agg")  # unit tests only; notebook kernels are separate processes

import numpy as np  # noqa: E402
import open_clip  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from spikeclip_lite import teaching_clip  # noqa: E402
from spikeclip_lite.clip import Clip, wrap_model  # noqa: E402


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def make_tiny_clip(seed: int = 0) -> Clip:
    """A randomly initialised teaching-architecture CLIP on the CPU (no weights needed)."""
    teaching_clip.register_configs()
    torch.manual_seed(seed)
    model = open_clip.create_model("spikeclip-teaching-rn", device="cpu")
    return wrap_model(model, "spikeclip-teaching-rn", "random", torch.device("cpu"), teaching=True)


@pytest.fixture(scope="session")
def tiny_clip() -> Clip:
    return make_tiny_clip()
