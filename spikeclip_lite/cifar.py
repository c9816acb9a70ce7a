"""CIFAR-10 as SpikeCLIP training data: an option for users with internet and a real CLIP.

The paper trains on U-CIFAR, real spike recordings of CIFAR-10 images. This module gives the
simulated counterpart: CIFAR-10 images, converted to grey and upsampled, become the scenes the
spike camera sees (``spike_data.spike_set_from_images``).

torchvision downloads the archive and checks its MD5 (``download=True``); this module then reads
the unpacked python batches (``<root>/cifar-10-batches-py/``) itself, with an unpickler that
admits nothing but numpy arrays. A copy in the same on-disk format therefore loads offline, which
is how the tests check it (``write_cifar10_batches`` makes one).

Only the course's procedural world is known to the offline teaching CLIPs: on CIFAR-10 they
score at chance. Use it with ``--clip ViT-B-32`` and a real judge (``--set judge=RN50:openai``).
"""

from __future__ import annotations

import functools
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "cifar_split",
    "class_names",
    "DIRNAME",
    "CIFAR10",
    "load_cifar10",
    "download_cifar10",
    "grey_images",
    "write_cifar10_batches",
]

#: Folder that torchvision unpacks the archive into.
DIRNAME = "cifar-10-batches-py"
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILES = ("test_batch",)
META_FILE = "batches.meta"


@dataclass
class CIFAR10:
    """One split. images (N, 32, 32, 3) uint8 RGB; labels (N,) int64; classes index → name."""

    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.labels)


class _ArraysOnly(pickle.Unpickler):
    """Unpickles dicts, lists, strings, numbers and numpy arrays; refuses any other class."""

    _ALLOWED = {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("_codecs", "encode"),  # how protocol-2 pickles written by Python 3 store bytes
    }

    def find_class(self, module: str, name: str):  # noqa: ANN201 (pickle protocol)
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: a CIFAR-10 batch holds only arrays")


def _read(path: Path) -> dict[str, object]:
    """One pickled batch → dict with ``str`` keys."""
    try:
        with open(path, "rb") as f:
            raw = _ArraysOnly(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError) as err:
        raise ValueError(f"{path} is not a readable CIFAR-10 python batch ({err})") from err
    if not isinstance(raw, dict):
        raise ValueError(f"{path} is not a CIFAR-10 python batch (holds a {type(raw).__name__}, not a dict)")
    return {k.decode() if isinstance(k, bytes) else str(k): v for k, v in raw.items()}


def download_cifar10(root: Path | str) -> Path:
    """Download and unpack CIFAR-10 with torchvision (MD5-checked); returns the batches folder."""
    import torchvision

    torchvision.datasets.CIFAR10(str(root), train=True, download=True)
    return Path(root) / DIRNAME


def load_cifar10(root: Path | str, train: bool = True, download: bool = False) -> CIFAR10:
    """Read the train (50,000) or test (10,000) split from ``<root>/cifar-10-batches-py/``.

    Args:
        root: folder holding (or to receive) ``cifar-10-batches-py/``.
        train: the five training batches, or the test batch.
        download: fetch the archive first if a batch is missing (needs internet).

    Raises:
        FileNotFoundError: a batch is missing and ``download`` is False.
        ValueError: a batch is not in the CIFAR-10 format (wrong keys, shapes, dtype or labels).
    """
    folder = Path(root) / DIRNAME
    names = (*(TRAIN_FILES if train else TEST_FILES), META_FILE)
    if download and not all((folder / n).is_file() for n in names):
        download_cifar10(root)
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{folder} lacks {', '.join(missing)}; pass download=True (needs internet) or unpack "
            f"cifar-10-python.tar.gz into {Path(root)}"
        )
    meta = _read(folder / META_FILE)
    classes = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in meta.get("label_names", []))
    if len(classes) != 10:
        raise ValueError(f"{folder / META_FILE}: expected 10 label_names, found {len(classes)}")
    images, labels = [], []
    for n in names[:-1]:
        batch = _read(folder / n)
        if "data" not in batch or "labels" not in batch:
            raise ValueError(f"{folder / n}: a CIFAR-10 batch needs 'data' and 'labels', found {sorted(batch)}")
        x, y = batch["data"], np.asarray(batch["labels"], dtype=np.int64)
        if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != 3072:
            got = f"{x.dtype} {x.shape}" if isinstance(x, np.ndarray) else type(x).__name__
            raise ValueError(f"{folder / n}: 'data' must be uint8 of shape (N, 3072), got {got}")
        if len(y) != len(x) or (len(y) and (y.min() < 0 or y.max() > 9)):
            raise ValueError(f"{folder / n}: {len(y)} labels in [0, 9] expected for {len(x)} images")
        images.append(x.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        labels.append(y)
    return CIFAR10(np.ascontiguousarray(np.concatenate(images)), np.concatenate(labels), classes)


def grey_images(images: np.ndarray, size: int = 64) -> torch.Tensor:
    """RGB uint8 (N, h, w, 3) → grey luminance (N, size, size) float32 in [0, 1] (bicubic, clamped)."""
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be (N, H, W, 3) RGB, got shape {images.shape}")
    rgb = torch.from_numpy(np.ascontiguousarray(images)).float() / 255
    grey = rgb @ torch.tensor([0.299, 0.587, 0.114])  # ITU-R BT.601 luma
    grey = F.interpolate(grey[:, None], size=(size, size), mode="bicubic", align_corners=False)[:, 0]
    return grey.clamp(0, 1)


def write_cifar10_batches(root: Path | str, n_train: int = 50, n_test: int = 20, seed: int = 0) -> Path:
    """Write a small **fabricated** CIFAR-10 copy in the real on-disk format (for offline tests).

    Images are random smooth blobs; labels cycle through the ten classes. Returns the folder.
    """
    rng = np.random.default_rng(seed)
    folder = Path(root) / DIRNAME
    folder.mkdir(parents=True, exist_ok=True)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

    def batch(n: int, offset: int) -> dict:
        coarse = rng.integers(0, 256, size=(n, 3, 4, 4)).astype(np.float32)
        img = F.interpolate(torch.from_numpy(coarse), size=(32, 32), mode="bilinear", align_corners=False)
        data = img.clamp(0, 255).to(torch.uint8).numpy().reshape(n, 3072)
        return {b"batch_label": b"fabricated", b"labels": [(offset + i) % 10 for i in range(n)], b"data": data}

    per = [n_train // 5 + (i < n_train % 5) for i in range(5)]
    offset = 0
    for name, n in zip(TRAIN_FILES, per, strict=True):
        (folder / name).write_bytes(pickle.dumps(batch(n, offset), protocol=2))
        offset += n
    (folder / TEST_FILES[0]).write_bytes(pickle.dumps(batch(n_test, 0), protocol=2))
    meta = {b"label_names": [n.encode() for n in names], b"num_cases_per_batch": max(per)}
    (folder / META_FILE).write_bytes(pickle.dumps(meta, protocol=2))
    return folder


@functools.lru_cache(maxsize=4)
def _load_cached(root: str, train: bool, download: bool) -> CIFAR10:
    return load_cifar10(root, train=train, download=download)


def cifar_split(
    root: Path | str, split: str, n: int, size: int, n_train: int, n_val: int, n_hq: int, download: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Grey images (n, size, size) and labels (n,) of a run's split. train = the first training images,
    val = the next ones, hq = the last ones (unpaired: never a training scene), test = the test batch.

    Raises:
        ValueError: the split has fewer images than the run asks for (named)."""
    c = _load_cached(str(root), split != "test", download)
    # train, val and hq are disjoint slices of the training images: together they must fit
    need, what = (n, "n_test") if split == "test" else (n_train + n_val + n_hq, "n_train + n_val + n_hq")
    if need > len(c):
        part = "test" if split == "test" else "training"
        raise ValueError(f"CIFAR-10 {part} split has {len(c)} images, fewer than {what} = {need}")
    start = {"train": 0, "val": n_train, "hq": len(c) - n, "test": 0}[split]
    return grey_images(c.images[start : start + n], size), torch.from_numpy(c.labels[start : start + n])


def class_names(root: Path | str, download: bool = False) -> tuple[str, ...]:
    """CIFAR-10's own class names, from the copy in ``root``."""
    return _load_cached(str(root), True, download).classes
