"""Training and test sets for SpikeCLIP's stages: low-light spike streams of procedural scenes.

A :class:`SpikeSet` holds, per scene, the 50-channel voxels the LRN reads, the classical
reconstructions (TFP over 200 frames, TFI at frame 100), the ground truth at the key frame
(used only for evaluation and the supervised upper bound), the label and whether it moves.

The **HQ set** for prompt learning is clean scenes from *other* seeds: unpaired, never the
ground truth of a training stream.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from . import baselines, data, models, physics

__all__ = ["SpikeSet", "make_spike_set", "make_hq_images", "normalise_rate", "SPLITS"]

#: Seed ranges of the splits (scenes never overlap between splits).
SPLITS = {"train": 3_000_000, "val": 4_000_000, "test": 5_000_000, "hq": 6_000_000, "hq_test": 7_000_000}


def normalise_rate(img: torch.Tensor, q: float = 0.995) -> torch.Tensor:
    """Scale each image (…, H, W) by its ``q`` quantile into [0, 1] (a rate image's scale is free)."""
    flat = img.flatten(-2)
    hi = torch.quantile(flat.float(), q, dim=-1).clamp_min(1e-6)
    return (img / hi[..., None, None]).clamp(0, 1)


@dataclass
class SpikeSet:
    """N scenes. voxels (N, 50, H, W) float16; tfp, tfi, gt (N, H, W) float32 in [0, 1];
    labels (N,) int64; moving (N,) bool."""

    voxels: torch.Tensor
    tfp: torch.Tensor
    tfi: torch.Tensor
    gt: torch.Tensor
    labels: torch.Tensor
    moving: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, idx: torch.Tensor | slice) -> SpikeSet:
        return SpikeSet(*(getattr(self, f)[idx] for f in ("voxels", "tfp", "tfi", "gt", "labels", "moving")))


def make_spike_set(
    n: int,
    split: str = "train",
    size: int = 64,
    moving_fraction: float = 0.5,
    noise: str = "low_light",
    n_frames: int = 200,
    progress: bool = True,
) -> SpikeSet:
    """Simulate ``n`` scenes of ``split`` (deterministic: seeds ``SPLITS[split] + i``).

    Exactly ``round(n·moving_fraction)`` scenes move, spread evenly (every other one at 0.5).
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {sorted(SPLITS)}")
    n_moving = round(n * moving_fraction)
    vox, tfp, tfi, gt, labels, moving = [], [], [], [], [], []
    for i in tqdm(range(n), desc=f"simulating {split} set", disable=not progress):
        seed = SPLITS[split] + i
        move = (i + 1) * n_moving // n > i * n_moving // n
        sc = data.make_scene(seed, size=size, motion=move, n_frames=n_frames)
        spk = torch.from_numpy(physics.simulate(sc.light(), None if move else n_frames, seed=seed, noise=noise))
        vox.append(models.voxelize(spk).half())
        tfp.append(normalise_rate(baselines.tfp(spk)))
        tfi.append(normalise_rate(baselines.tfi(spk)))
        gt.append(torch.from_numpy(sc.image))
        labels.append(sc.label)
        moving.append(move)
    return SpikeSet(
        torch.stack(vox),
        torch.stack(tfp),
        torch.stack(tfi),
        torch.stack(gt),
        torch.tensor(labels),
        torch.tensor(moving),
    )


def make_hq_images(n: int, size: int = 64, split: str = "hq") -> torch.Tensor:
    """Clean, unpaired high-quality images (N, H, W) from the ``"hq"`` (or ``"hq_test"``) seed range."""
    if split not in ("hq", "hq_test"):
        raise ValueError(f"HQ images come from split 'hq' or 'hq_test', not {split!r}")
    return torch.from_numpy(np.stack([data.make_scene(SPLITS[split] + i, size=size).image for i in range(n)]))
