"""What fast mode's training step costs, against the plain reference in the same run. Part of ``make bench``.

One step of a mirrored LRN (``pad="reflect"``): forward, L1 to a target, backward, Adam; at fast mode's
64², batch 8 (``--size``, ``--batch``). Three ways, the same weights and data:

- **reference**: pad every convolution by one pixel and crop the mirrored border off the output (how
  ``LRN.forward`` computed it until 2026-12-07: the 74² mirrored frame is convolved whole, its outer
  pixels then thrown away);
- **unpadded convolutions**: ``LRN.forward`` today, the same numbers without computing the cropped pixels;
- **32² windows**: ``train.random_windows`` + ``LRN(…, context=True)``, fast mode's coarse and supervised
  stages (``crop=32``): the per-pixel loss on a quarter of the pixels (the frame's centre counted more often
  than its edges, which fewer windows contain).

Prints ms per step, the speed-up over the reference, and how far each variant's weights are from the
reference's after ``--steps`` steps (windows train on other pixels: their weights differ by design). The
variants take turns step by step, so a machine whose speed drifts (shared 2-core machines do) slows each alike.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from spikeclip_lite import train
from spikeclip_lite.models import LRN, RECEPTIVE_RADIUS


def padded_and_cropped(lrn: LRN, vox: torch.Tensor) -> torch.Tensor:
    """The reference: every convolution zero-pads by one pixel on the mirrored frame, then the crop."""
    r, (h, w) = RECEPTIVE_RADIUS, vox.shape[-2:]
    return torch.nn.Sequential.forward(lrn, F.pad(vox, (r, r, r, r), mode="reflect"))[..., r : r + h, r : r + w]


class Variant:
    """One way of taking the step, with its own network and optimiser (the same starting weights)."""

    def __init__(self, name: str, crop: int) -> None:
        torch.manual_seed(0)
        self.name, self.crop, self.lrn = name, crop, LRN(pad="reflect")
        self.opt = torch.optim.Adam(self.lrn.parameters(), lr=1e-3, weight_decay=1e-3)
        self.gen = torch.Generator().manual_seed(0)
        self.times: list[float] = []

    def step(self, vox: torch.Tensor, target: torch.Tensor) -> None:
        t0 = time.perf_counter()
        if self.name == "reference":
            out, tgt = padded_and_cropped(self.lrn, vox), target
        elif self.name == "unpadded convolutions":
            out, tgt = self.lrn(vox), target
        else:
            windows, tgt = train.random_windows(vox, target, self.crop, self.gen)
            out = self.lrn(windows, context=True)
        loss = (out - tgt).abs().mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.times.append(time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--crop", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("outputs"), help="folder for the JSON of the table")
    args = parser.parse_args(argv)
    g = torch.Generator().manual_seed(0)
    vox = (torch.rand(args.batch, 50, args.size, args.size, generator=g) * 5).floor()  # 0–4 spikes per bin
    target = torch.rand(args.batch, 1, args.size, args.size, generator=g)
    name = f"CPU, {torch.get_num_threads()} threads, {torch.backends.cpu.get_cpu_capability()}"
    print(f"\nOne LRN training step at {args.size}², batch {args.batch}, {name}, torch {torch.__version__}\n")
    print("| variant | ms / step (median) | vs reference | largest weight difference from the reference |")
    print("|---|---|---|---|")
    variants = [Variant(v, args.crop) for v in ("reference", "unpadded convolutions", f"{args.crop}² windows")]
    for _ in range(args.steps + 1):  # the variants take turns, so a machine whose speed drifts slows each alike
        for v in variants:
            v.step(vox, target)
    rows, base = [], statistics.median(variants[0].times[1:])  # the first step carries the allocations
    ref_weights = variants[0].lrn.state_dict()
    for v in variants:
        sec = statistics.median(v.times[1:])
        diff = max(float((w - ref_weights[k]).abs().max()) for k, w in v.lrn.state_dict().items())
        rows.append(dict(variant=v.name, ms_per_step=sec * 1e3, speedup=base / sec, weight_diff=diff))
        print(f"| {v.name} | {sec * 1e3:.0f} | {base / sec:.2f}× | {diff:.1e} |")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_windows.json").write_text(json.dumps({"device": name, "rows": rows}, indent=2))
    return rows


if __name__ == "__main__":
    main()
