"""The classical rows of a mode's results table, without training anything: TFP, TFI, TFI smoothed
(:func:`baselines.smoothed`) and the flat-image floor, on that mode's test (or validation) scenes, scored
by the judge as the pipeline scores them. For the side-by-side tables of notebook 06 and the README, where
a run's own table predates the smoothed baseline.

Run: ``python benchmarks/classical_table.py --mode long [--split test] [--out DIR] [--set KEY=VALUE …]``
(the scenes are cached under ``DIR/data`` as the pipeline caches them; full mode's 400 test scenes at 128²
take a few minutes).
"""

from __future__ import annotations

import argparse

import torch

from spikeclip_lite import settings
from spikeclip_lite.pipeline import Run, evaluate_methods, format_table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mode", choices=sorted(settings.PRESETS), default="fast")
    ap.add_argument("--split", choices=("test", "val"), default="test")
    ap.add_argument("--out", default="outputs/classical")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="other settings, as the pipeline's")
    args = ap.parse_args()
    cfg = settings.configure(args.mode, args.set, settings.FLAGS, clip="teaching", device="cpu")
    run = Run(cfg, f"{args.out}/{args.mode}", progress=True)
    scenes = run.eval_set(args.split)
    flat = scenes.gt.mean(dim=(1, 2), keepdim=True).expand_as(scenes.gt).clone()  # each image's mean
    recons = run.test_reconstructions(include=(), split=args.split)  # the classical methods only
    recons["flat (the floor)"] = flat
    table = evaluate_methods(recons, scenes, run.judge, None, classes=run.classes)
    print(f"{args.mode} mode, {len(scenes)} {args.split} scenes at {cfg.size}²:")
    print(format_table(table))


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()
