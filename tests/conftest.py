import matplotlib

matplotlib.use("Agg")  # unit tests only; notebook kernels are separate processes

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
