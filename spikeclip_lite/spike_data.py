"""Training and test sets for SpikeCLIP's stages: low-light spike streams of procedural scenes.

A :class:`SpikeSet` holds, per scene, the spike stream **as the camera stores it** (1 bit per pixel and
frame, packed 8 frames to a byte), the classical reconstructions (TFP over 200 frames, TFI and TFSTP at
frame 100), the ground truth at the key frame (used only for evaluation and the supervised upper
bound), the label and whether it moves. The 50-channel voxels the LRN reads are computed from the bits
when a batch is drawn, on the device that trains (:meth:`SpikeSet.voxel_batch`): exact small integers,
so they are bit-identical to voxelising the unpacked stream.

The **HQ set** for prompt learning is clean scenes from *other* seeds: unpaired, never the
ground truth of a training stream.
"""

from __future__ import annotations

import multiprocessing
import os
import zipfile
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, fields
from functools import partial
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from . import baselines, data, io, models, physics
from ._tensor import check_binary
from .checkpoints import CorruptCheckpointError, atomic_write, load_or_set_aside, unreadable

__all__ = [
    "SpikeSet",
    "pack_spikes",
    "unpack_spikes",
    "voxels_from_packed",
    "make_spike_set",
    "load_or_make",
    "simulated_split",
    "recorded_split",
    "DATA_VERSION",
    "resolve_workers",
    "spike_set_from_images",
    "spike_set_from_uhsr",
    "make_hq_images",
    "normalise_rate",
    "SPLITS",
]

#: Version of the simulated sets and their cache file: bump when either changes (old caches are then
#: ignored). 3: packed bits in ``.npz`` (1 bit per pixel-frame) instead of float16 voxels in ``.pt``.
DATA_VERSION = 3

#: Seed ranges of the splits (scenes never overlap between splits).
SPLITS = {"train": 3_000_000, "val": 4_000_000, "test": 5_000_000, "hq": 6_000_000, "hq_test": 7_000_000}


def normalise_rate(img: torch.Tensor, q: float = 0.995) -> torch.Tensor:
    """Scale each image (…, H, W) by its ``q`` quantile into [0, 1] (a rate image's scale is free)."""
    flat = img.flatten(-2)
    hi = torch.quantile(flat.float(), q, dim=-1).clamp_min(1e-6)
    return (img / hi[..., None, None]).clamp(0, 1)


# -- 1 bit per pixel-frame -----------------------------------------------------------------------
def pack_spikes(spikes: torch.Tensor) -> torch.Tensor:
    """Spikes (…, T, H, W) of 0/1 → (…, T/8, H, W) uint8: frame ``8k + j`` is bit ``j`` of byte ``k``.

    T must be a multiple of 8 (the course's streams have 200 frames)."""
    check_binary(spikes)
    T = spikes.shape[-3]
    if T % 8:
        raise ValueError(f"a stream of {T} frames cannot be packed 8 frames to a byte; use a multiple of 8 (e.g. 200)")
    s = spikes.to(torch.uint8).reshape(*spikes.shape[:-3], T // 8, 8, *spikes.shape[-2:])
    weights = (1 << torch.arange(8, dtype=torch.uint8, device=s.device)).view(8, 1, 1)
    return (s * weights).sum(dim=-3, dtype=torch.uint8)


def unpack_spikes(packed: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`pack_spikes`: (…, T/8, H, W) uint8 → (…, T, H, W) uint8 of 0/1."""
    if packed.dtype != torch.uint8 or packed.ndim < 3:
        raise ValueError(f"packed spikes must be uint8 (…, T/8, H, W), got {packed.dtype} {tuple(packed.shape)}")
    shifts = torch.arange(8, dtype=torch.uint8, device=packed.device).view(8, 1, 1)
    return ((packed.unsqueeze(-3) >> shifts) & 1).flatten(-4, -3)


def voxels_from_packed(packed: torch.Tensor, bins: int = 50) -> torch.Tensor:
    """Voxels straight from packed bits: (…, T/8, H, W) uint8 → (…, bins, H, W) float32, equal to
    ``models.voxelize(unpack_spikes(packed), bins)``.

    With four frames per bin (200 frames, 50 bins) each byte holds two bins, one per half (nibble):
    counting a nibble's set bits needs no unpacking."""
    T = 8 * packed.shape[-3]
    if T % bins or T // bins != 4:
        return models.voxelize(unpack_spikes(packed), bins)
    halves = torch.stack((packed & 15, packed >> 4), dim=-3)  # (…, T/8, 2, H, W): bins 2k and 2k + 1
    counts = (halves & 1) + (halves >> 1 & 1) + (halves >> 2 & 1) + (halves >> 3)
    return counts.flatten(-4, -3).float()


@dataclass
class SpikeSet:
    """N scenes. spikes (N, T/8, H, W) uint8, the streams packed 8 frames to a byte (:func:`pack_spikes`);
    tfp, tfi, tfstp, gt (N, H, W) float32 in [0, 1] (gt is NaN for real recordings, which have none);
    labels (N,) int64; moving (N,) bool."""

    spikes: torch.Tensor
    tfp: torch.Tensor
    tfi: torch.Tensor
    tfstp: torch.Tensor
    gt: torch.Tensor
    labels: torch.Tensor
    moving: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, idx: torch.Tensor | slice) -> SpikeSet:
        return SpikeSet(*(getattr(self, f.name)[idx] for f in fields(self)))

    def to(self, device: str | torch.device) -> SpikeSet:
        """The set on ``device`` (a training stage keeps its data where it trains)."""
        return SpikeSet(*(getattr(self, f.name).to(device) for f in fields(self)))

    @property
    def has_ground_truth(self) -> bool:
        return bool(torch.isfinite(self.gt).all())

    @property
    def n_frames(self) -> int:
        return 8 * self.spikes.shape[1]

    def stream(self, i: int) -> torch.Tensor:
        """Scene ``i``'s spike stream (T, H, W) uint8 of 0/1."""
        return unpack_spikes(self.spikes[i])

    def voxel_batch(self, idx: torch.Tensor | slice, device: str | torch.device = "cpu") -> torch.Tensor:
        """Voxels (B, 50, H, W) float32 on ``device`` of the scenes ``idx``, computed there from the bits."""
        return voxels_from_packed(self.spikes[idx].to(device))

    @property
    def voxels(self) -> torch.Tensor:
        """Every scene's voxels (N, 50, H, W) float16 (values 0–4, exact), computed from the bits on each
        access: for figures and small sets; training draws batches with :meth:`voxel_batch`."""
        return torch.cat([self.voxel_batch(slice(i, i + 64)).half() for i in range(0, len(self), 64)])

    # -- the cache file: plain arrays, no pickle -------------------------------------------------------
    def save(self, path: Path | str) -> None:
        """Write the set to ``path`` (``.npz``, uncompressed) atomically."""
        arrays = {f.name: getattr(self, f.name).cpu().numpy() for f in fields(self)}
        atomic_write(path, lambda f: np.savez(f, **arrays))

    @classmethod
    def load(cls, path: Path | str) -> SpikeSet:
        """Read a set written by :meth:`save` (``allow_pickle=False``: the file cannot run code).

        Raises:
            CorruptCheckpointError: the file is cut short, damaged, or not a spike set."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                missing = [f.name for f in fields(cls) if f.name not in z.files]
                if missing:
                    raise CorruptCheckpointError(f"{path} lacks {missing}: not a spike set. Delete it to rebuild.")
                s = cls(**{f.name: torch.from_numpy(z[f.name]) for f in fields(cls)})
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
            raise unreadable(path, err) from err
        n = len(s.labels)
        if (
            s.spikes.dtype != torch.uint8
            or s.spikes.ndim != 4
            or any(len(getattr(s, f.name)) != n for f in fields(cls))
        ):
            raise CorruptCheckpointError(f"{path}: arrays of inconsistent shapes or types. Delete it to rebuild.")
        return s

    @property
    def nbytes(self) -> int:
        """Bytes the set's arrays take (what its cache file holds, less a few hundred bytes of headers)."""
        return sum(getattr(self, f.name).numel() * getattr(self, f.name).element_size() for f in fields(self))


def load_or_make(path: Path | str, make: Callable[[], SpikeSet]) -> SpikeSet:
    """The set cached at ``path``, or ``make()`` written there first. A cache that cannot be read is moved
    aside to ``*.corrupt`` with a warning and rebuilt."""
    cached = load_or_set_aside(path, load=SpikeSet.load)
    if cached is not None:
        return cached
    spike_set = make()
    spike_set.save(path)
    return spike_set


def _record(spk: torch.Tensor, gt: torch.Tensor, label: int, move: bool) -> tuple:
    """One scene's row of a SpikeSet: computed where the spikes are (GPU or CPU), stored on the CPU."""
    return (
        pack_spikes(spk).cpu(),
        normalise_rate(baselines.tfp(spk)).cpu(),
        normalise_rate(baselines.tfi(spk)).cpu(),
        normalise_rate(baselines.tfstp(spk)).cpu(),
        gt.cpu(),
        int(label),
        bool(move),
    )


def _stack(rows: list[tuple]) -> SpikeSet:
    """SpikeSet from rows made by :func:`_record`."""
    cols = list(zip(*rows, strict=True))
    names = [f.name for f in fields(SpikeSet)]
    return SpikeSet(
        **{
            k: torch.tensor(v) if k in ("labels", "moving") else torch.stack(v)
            for k, v in zip(names, cols, strict=True)
        }
    )


def _sense(
    light: torch.Tensor, image: torch.Tensor, label: int, seed: int, move: bool, n_frames: int, noise: str
) -> tuple:
    """Simulate the sensor looking at ``light`` (a still (H, W) or a video (T, H, W)) and reduce the
    stream to a SpikeSet row (:func:`_record`) whose ground truth is ``image``."""
    spk = physics.simulate(light, None if move else n_frames, seed=seed, noise=noise)
    return _record(spk, image, label, move)


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {sorted(SPLITS)}")


def _moving_mask(n: int, fraction: float) -> list[bool]:
    """Which of n scenes move: exactly ``round(n·fraction)``, spread evenly (every other one at 0.5)."""
    k = round(n * fraction)
    return [(i + 1) * k // n > i * k // n for i in range(n)]


def resolve_workers(workers: int) -> int:
    """``-1`` (auto) → one worker per spare CPU core (at most 16), none on a machine with ≤ 2 cores."""
    if workers >= 0:
        return workers
    cores = os.cpu_count() or 1
    return 0 if cores <= 2 else min(16, cores - 1)


def _render(job: tuple) -> tuple:
    """Worker/main: (seed, size, move, n_frames) → (light, image, label) as numpy arrays."""
    seed, size, move, n_frames = job[:4]
    sc = data.make_scene(seed, size=size, motion=move, n_frames=n_frames)
    return sc.light(), sc.image, sc.label


def _render_and_record(job: tuple) -> tuple:
    """Worker: render, simulate and reduce one scene on the CPU."""
    seed, _, move, n_frames, noise = job
    light, image, label = _render(job)
    return _sense(torch.from_numpy(light), torch.from_numpy(image), label, seed, move, n_frames, noise)


def _worker_init() -> None:
    torch.set_num_threads(1)  # one core per worker process


def make_spike_set(
    n: int,
    split: str = "train",
    size: int = 64,
    moving_fraction: float = 0.5,
    noise: str = "low_light",
    n_frames: int = 200,
    progress: bool = True,
    device: str | torch.device = "cpu",
    workers: int = 0,
) -> SpikeSet:
    """Simulate ``n`` scenes of ``split`` (deterministic: seeds ``SPLITS[split] + i``).

    Exactly ``round(n·moving_fraction)`` scenes move, spread evenly (every other one at 0.5).

    Speed (so that data generation does not starve a GPU): ``workers`` processes render the scenes
    (``-1``: one per spare core, see :func:`resolve_workers`). The sensor is simulated and the
    voxels/baselines computed on ``device``: on a GPU in this process, on the CPU inside the
    workers. Every path gives the same set for the same device type (seeds are per scene); a GPU's
    random numbers differ from the CPU's, so its set is an equivalent draw, not the same one.
    The set itself is stored on the CPU.
    """
    _check_split(split)
    dev = torch.device(device)
    workers = resolve_workers(workers)
    moving = _moving_mask(n, moving_fraction)
    jobs = [(SPLITS[split] + i, size, moving[i], n_frames, noise) for i in range(n)]
    bar = partial(tqdm, total=n, desc=f"simulating {split} set", disable=not progress)

    def on_device(rendered: Iterable[tuple]) -> Iterator[tuple]:
        for (seed, _, move, _, _), (light, image, label) in zip(jobs, rendered, strict=True):
            yield _sense(torch.from_numpy(light).to(dev), torch.from_numpy(image), label, seed, move, n_frames, noise)

    if workers == 0:
        return _stack(list(bar(on_device(map(_render, jobs)))))
    ctx = multiprocessing.get_context("spawn")  # no fork: safe beside CUDA and OpenMP thread pools
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_init) as pool:
        if dev.type == "cpu":
            rows = list(bar(pool.map(_render_and_record, jobs, chunksize=4)))
        else:
            rows = list(bar(on_device(pool.map(_render, jobs, chunksize=4))))
    return _stack(rows)


def spike_set_from_images(
    images: torch.Tensor,
    labels: torch.Tensor,
    split: str = "train",
    moving_fraction: float = 0.5,
    noise: str = "low_light",
    n_frames: int = 200,
    progress: bool = True,
    device: str | torch.device = "cpu",
) -> SpikeSet:
    """Simulate spike streams of given still images (N, H, W) in [0, 1] (e.g. CIFAR-10, see
    :mod:`.cifar`). Moving scenes are camera pans (:func:`data.pan_video`) through the image at
    the key frame; seeds ``SPLITS[split] + i`` and ``device`` as in :func:`make_spike_set`."""
    _check_split(split)
    if images.ndim != 3 or len(images) != len(labels):
        raise ValueError(f"images must be (N, H, W) with one label each, got {tuple(images.shape)} and {len(labels)}")
    n = len(images)
    moving = _moving_mask(n, moving_fraction)
    items = []
    for i in tqdm(range(n), desc=f"simulating {split} set", disable=not progress):
        seed = SPLITS[split] + i
        img = images[i].float().to(device)
        light = data.pan_video(img, seed, n_frames) if moving[i] else img
        items.append(_sense(light, img, int(labels[i]), seed, moving[i], n_frames, noise))
    return _stack(items)


def spike_set_from_uhsr(files: list[Path], progress: bool = True) -> SpikeSet:
    """Real recordings (UHSR ``.npz``, cropped to 224×224, the central 200 frames). No ground truth:
    ``gt`` is NaN and ``moving`` is False (unknown)."""
    items = []
    for path in tqdm(files, desc="reading recordings", disable=not progress):
        spk, label = io.read_uhsr(path, crop=True)
        T = spk.shape[0]
        if T < 200:
            raise ValueError(f"{path}: {T} frames; SpikeCLIP's voxels need 200")
        spk = torch.from_numpy(np.ascontiguousarray(spk[(T - 200) // 2 : (T - 200) // 2 + 200]))
        items.append(_record(spk, torch.full(spk.shape[1:], float("nan")), label, False))
    return _stack(items)


def simulated_split(
    split: str,
    n: int,
    size: int,
    cache_dir: Path | str,
    images: Callable[[], tuple[torch.Tensor, torch.Tensor]] | None = None,
    name: str = "images",
    device: str | torch.device = "cpu",
    workers: int = 0,
    progress: bool = True,
) -> SpikeSet:
    """A run's simulated split, simulated once and then read from ``cache_dir``: procedural scenes
    (:func:`make_spike_set`), or the scenes of given still images (:func:`spike_set_from_images`), where
    ``images() → (images (n, H, W), labels (n,))`` is called only when the cache lacks the split and
    ``name`` names them in the cache (e.g. ``"cifar10"``). Simulated on ``device``; a GPU's random numbers
    differ from the CPU's, so its sets are cached under their own name (an equivalent draw)."""
    dev = torch.device(device)
    prefix = "" if images is None else f"{name}-"
    suffix = "" if dev.type == "cpu" else f"-{dev.type}"
    path = Path(cache_dir) / f"{prefix}{split}-n{n}-s{size}-v{DATA_VERSION}{suffix}.npz"

    def make() -> SpikeSet:
        if images is None:
            return make_spike_set(n, split, size, progress=progress, device=dev, workers=workers)
        pictures, labels = images()
        return spike_set_from_images(pictures, labels, split, progress=progress, device=dev)

    return load_or_make(path, make)


def recorded_split(folder: Path | str, split: str, n: int, n_train: int, progress: bool = True) -> SpikeSet:
    """A run's split of real UHSR recordings (``0.npz`` …): train = the first ``n`` train-split files,
    val = the ``n`` after the first ``n_train``, test = the first ``n`` test-split files."""
    files = io.uhsr_files(folder, "test" if split == "test" else "train")
    start = n_train if split == "val" else 0
    chosen = files[start : start + n]
    if not chosen:
        raise ValueError(f"{folder} has no files left for the {split} split")
    return spike_set_from_uhsr(chosen, progress=progress)


def make_hq_images(n: int, size: int = 64, split: str = "hq") -> torch.Tensor:
    """Clean, unpaired high-quality images (N, H, W) from the ``"hq"`` (or ``"hq_test"``) seed range."""
    if split not in ("hq", "hq_test"):
        raise ValueError(f"HQ images come from split 'hq' or 'hq_test', not {split!r}")
    return torch.from_numpy(np.stack([data.make_scene(SPLITS[split] + i, size=size).image for i in range(n)]))
