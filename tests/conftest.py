"""Shared fixtures: a seeded generator and a tiny random CLIP of the teaching architecture."""

import matplotlib

matplotlib.use("Agg")  # unit tests only; notebook kernels are separate processes

import numpy as np  # noqa: E402
import open_clip  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from spikeclip_lite import clip as clip_mod  # noqa: E402
from spikeclip_lite.clip import Clip, wrap_model  # noqa: E402

#: Full mode's settings at a size 2 CPU cores train in seconds (128×128, native windows, its prompt loss, …):
#: `make test-full` runs notebooks 04–07 and benchmarks/gpu_check.sh with them.
SMALL_FULL = (
    "n_train=16 n_val=8 n_test=16 n_hq=16 batch=4 steps_coarse=10 warmup_steps=10 steps_prompts=5 steps_fine=10 "
    "steps_supervised=5"
)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def make_tiny_clip(seed: int = 0) -> Clip:
    """A randomly initialised teaching-architecture CLIP on the CPU (no weights needed)."""
    clip_mod.register_configs()
    torch.manual_seed(seed)
    model = open_clip.create_model("spikeclip-teaching-rn", device="cpu")
    return wrap_model(model, "spikeclip-teaching-rn", "random", torch.device("cpu"), teaching=True)


@pytest.fixture(scope="session")
def tiny_clip() -> Clip:
    return make_tiny_clip()


def write_bad_uhsr_files(d, rng) -> dict[str, str]:
    """Write the three kinds of bad UHSR recording that once escaped ``--skip-bad`` into ``d``;
    returns ``{file name: words of the error it must raise}``."""
    import io as pyio
    import zipfile

    from spikeclip_lite import io

    good = (rng.random((20, 250, 250)) < 0.05).astype(np.uint8)
    flipped = io.write_uhsr(d / "flipped.npz", good, 1)
    raw = bytearray(flipped.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # one flipped byte inside the compressed 'spk' member
    flipped.write_bytes(bytes(raw))
    np.save(d / "plain.npy", good)
    (d / "plain.npy").rename(d / "renamed.npz")
    header = pyio.BytesIO()  # a header claiming 10⁶ frames (58 GiB) over a few bytes of data
    np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False, "shape": (10**6, 250, 250)})
    with zipfile.ZipFile(d / "huge.npz", "w") as zf:
        zf.writestr("spk.npy", header.getvalue() + b"\x00" * 64)
        zf.writestr("label.npy", npy_bytes(np.array(1)))
    return {"flipped.npz": "CRC", "renamed.npz": "not a zip", "huge.npz": "claims 1000000 frames"}


def npy_bytes(a: np.ndarray) -> bytes:
    import io as pyio

    buf = pyio.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


@pytest.fixture(scope="session")
def tiny_set():
    """Eight simulated training scenes at 32² (four moving), 200 frames."""
    from spikeclip_lite.spike_data import make_spike_set

    return make_spike_set(8, "train", 32, progress=False)


@pytest.fixture(scope="session")
def guide() -> Clip:
    """The shipped teaching guide CLIP, on the CPU."""
    return clip_mod.load_clip("teaching", device="cpu")


@pytest.fixture(scope="session")
def judge() -> Clip:
    """The shipped teaching judge CLIP (the independent one), on the CPU."""
    return clip_mod.load_clip("teaching", device="cpu", judge=True)
