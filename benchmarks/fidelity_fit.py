"""Can the LRN match its fidelity target at all? The diagnostic behind fast mode's choice of target.

Trains a fresh LRN on nothing but the L1 to a target (no CLIP, no class loss) and prints the L1 as it goes,
for four targets built from fast mode's 96 training scenes (64², low light):

- ``tfi, own scale``: TFI as the spike sets store it, each image divided by its own 99.5 % quantile;
- ``smoothed rate, own scale``: the firing rate of the middle 48 frames, smoothed by 1 px, each image on
  its own scale the same way;
- ``smoothed rate, one gain``: the same rates on one gain for the whole set (:func:`train.rate_gain`);
- ``ground truth``: for reference (what the supervised bound fits).

A network that sees 11×11 pixels cannot know an image's brightest pixel, so a target scaled per image asks
for a gain it cannot see. Run: ``python benchmarks/fidelity_fit.py [--steps 200] [--scenes 96]`` (about
3 min on 2 cores).
"""

from __future__ import annotations

import argparse

import torch

from spikeclip_lite import models, train
from spikeclip_lite.spike_data import make_spike_set, normalise_rate


def fit(name: str, make_target, data, steps: int, batch: int = 8, seed: int = 0) -> list[float]:
    """Train a fresh LRN on L1 to ``make_target(idx, voxels)`` for ``steps`` steps; the L1 every 25 steps."""
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
    window = [sum(trace[i : i + 25]) / 25 for i in range(0, steps - 24, 25)]
    print(f"{name:28s} " + " ".join(f"{v:.3f}" for v in window))
    return window


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--scenes", type=int, default=96, help="training scenes (96: fast mode's, same seeds)")
    args = ap.parse_args()
    if args.steps < 25:
        ap.error("--steps must be at least 25 (the L1 is averaged over each 25 steps)")
    data = make_spike_set(args.scenes, "train", 64, progress=False)
    gain = train.rate_gain(data, 24, 1.0)

    def rate(vox: torch.Tensor) -> torch.Tensor:  # the target of fast mode's coarse stage, before its gain
        return train.smoothed_rate(vox, 24, 1.0)

    print(f"mean L1 over each 25 steps (of {args.steps}); one gain = {gain:.2f}")
    results = {
        "tfi, own scale": fit("tfi, own scale", lambda i, v: data.tfi[i].unsqueeze(1), data, args.steps),
        "smoothed rate, own scale": fit(
            "smoothed rate, own scale", lambda i, v: normalise_rate(rate(v)), data, args.steps
        ),
        "smoothed rate, one gain": fit(
            "smoothed rate, one gain", lambda i, v: (gain * rate(v)).clamp(0, 1), data, args.steps
        ),
        "ground truth": fit("ground truth", lambda i, v: data.gt[i].unsqueeze(1), data, args.steps),
    }
    own, one = results["smoothed rate, own scale"][-1], results["smoothed rate, one gain"][-1]
    print(f"last 25 steps: own scale {own:.3f}, one gain {one:.3f} ({own / one:.1f}× lower with one gain)")


if __name__ == "__main__":
    main()
