"""Can the LRN match its fidelity target at all, and how good is what it learns? The diagnostic behind the
coarse stage's choice of target.

Trains a fresh LRN on nothing but the L1 to a target (no CLIP, no class loss) on fast mode's 96 training
scenes (64², low light), prints the L1 as it goes, then scores the network and the target itself on fast
mode's first 48 validation scenes (aligned PSNR / texture ratio, moving | static). Targets:

- ``tfi-own``: TFI as the spike sets store it, each image divided by its own 99.5 % quantile;
- ``rate-own``: the firing rate of the middle 48 frames, smoothed by 1 px, each image on its own scale;
- ``rate``: the same rates on one gain for the whole set (:func:`train.rate_gain`);
- ``tfi``: TFI from the bits, smoothed by 1 px, on one gain for the whole set (:func:`train.tfi_one_gain`,
  the presets' target); ``tfi-1.5`` and ``tfi-0``: the same smoothed by 1.5 px, or not at all;
- ``gt``: the ground truth, for reference (what the supervised bound fits).

A network that sees 11×11 pixels cannot know an image's brightest pixel, so a target scaled per image asks
for a gain it cannot see. Run: ``python benchmarks/fidelity_fit.py [--steps 300] [--targets rate,tfi]``
(about 1–1.5 min per target on 2 cores).
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable

import torch

from spikeclip_lite import metrics, models, train
from spikeclip_lite.spike_data import SpikeSet, make_spike_set, normalise_rate

TARGETS = ("tfi-own", "rate-own", "rate", "tfi", "tfi-1.5", "tfi-0", "gt")


def fit(make_target: Callable, data: SpikeSet, steps: int, batch: int = 8, seed: int = 0) -> tuple[models.LRN, list]:
    """A fresh LRN trained on the L1 to ``make_target(idx, voxels)`` for ``steps`` steps (fast mode's coarse
    optimiser: Adam, lr 1e-3, batch 8) → (the network, the mean L1 of every 25 steps)."""
    torch.manual_seed(seed)
    lrn = models.LRN()
    opt = torch.optim.Adam(lrn.parameters(), lr=1e-3, weight_decay=1e-3)
    gen = torch.Generator().manual_seed(seed)
    trace = []
    for _ in range(steps):
        idx = torch.randint(0, len(data), (batch,), generator=gen)
        vox = data.voxel_batch(idx)
        loss = (lrn(vox) - make_target(idx, vox)).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        trace.append(float(loss.detach()))
    return lrn.eval(), [sum(trace[i : i + 25]) / 25 for i in range(0, steps - 24, 25)]


def scores(images: torch.Tensor, val: SpikeSet) -> str:
    """Aligned PSNR / texture ratio of images (N, H, W), moving | static."""
    psnr, tex, mv = metrics.aligned_psnr(images, val.gt), metrics.texture_ratio(images, val.gt), val.moving
    return f"{psnr[mv].mean():.2f} / {tex[mv].mean():.2f} | {psnr[~mv].mean():.2f} / {tex[~mv].mean():.2f}"


def targets(data: SpikeSet) -> dict[str, Callable]:
    """Each target's ``make(idx, voxels) → (B, 1, H, W)`` for the scenes ``idx`` of ``data``."""
    gain = train.rate_gain(data, 24, 1.0)

    def rate(vox: torch.Tensor) -> torch.Tensor:  # the smoothed rate, before its gain
        return train.smoothed_rate(vox, 24, 1.0)

    @functools.cache
    def tfi(sigma: float) -> torch.Tensor:  # (N, 1, H, W), computed once, when a target first asks
        return train.tfi_one_gain(data, sigma)

    return {
        "tfi-own": lambda i, v: data.tfi[i].unsqueeze(1),
        "rate-own": lambda i, v: normalise_rate(rate(v)),
        "rate": lambda i, v: (gain * rate(v)).clamp(0, 1),
        "tfi": lambda i, v: tfi(1.0)[i],
        "tfi-1.5": lambda i, v: tfi(1.5)[i],
        "tfi-0": lambda i, v: tfi(0.0)[i],
        "gt": lambda i, v: data.gt[i].unsqueeze(1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=300, help="training steps per target (fast mode's coarse stage: 300)")
    ap.add_argument("--scenes", type=int, default=96, help="training scenes (96: fast mode's, same seeds)")
    ap.add_argument("--val-scenes", type=int, default=48, help="validation scenes scored (48: fast tuning's)")
    ap.add_argument("--targets", default=",".join(TARGETS), help=f"comma-separated, of {', '.join(TARGETS)}")
    args = ap.parse_args()
    chosen = args.targets.split(",")
    if args.steps < 25:
        ap.error("--steps must be at least 25 (the L1 is averaged over each 25 steps)")
    if unknown := [t for t in chosen if t not in TARGETS]:
        ap.error(f"unknown target(s) {unknown}; choose from {', '.join(TARGETS)}")
    data = make_spike_set(args.scenes, "train", 64, progress=False)
    val = make_spike_set(args.val_scenes, "val", 64, progress=False)
    make, make_val = targets(data), targets(val)
    vox_val = val.voxel_batch(slice(0, len(val)))
    print(f"{args.steps} steps; mean L1 over each 25 steps, then aligned PSNR / texture ratio on {len(val)} validation")
    print("scenes, moving | static, of the target itself and of the fitted network")
    for name in chosen:
        lrn, l1 = fit(make[name], data, args.steps)
        with torch.no_grad():
            out = torch.cat([lrn(vox_val[i : i + 16]) for i in range(0, len(val), 16)])[:, 0].clamp(0, 1)
        itself = make_val[name](torch.arange(len(val)), vox_val)[:, 0]
        print(f"{name:9s} L1 {' '.join(f'{v:.3f}' for v in l1)}")
        print(f"{'':9s} target {scores(itself, val)} · fitted {scores(out, val)}")


if __name__ == "__main__":
    main()
