"""Training throughput of the three LRN stages (samples per second), as the pipeline runs them and with
``torch.compile``. Part of ``make bench``; on a GPU, ``benchmarks/gpu_check.sh`` runs it at full mode's
size (128², batch 32) against issue #12's targets (coarse ≥ 4,000, fine ≥ 2,000, supervised ≥ 6,000).

Each stage runs ``--steps`` steps on random spike sets (the step, not the data, is measured) with the
shipped teaching guide; "steady" leaves out the first 10 steps (start-up: compilation, cuDNN autotuning).
The coarse stage runs the fidelity term alone, no CLIP, as every preset does, but on whole frames (the
supervised stage too): the frames issue #12's targets were set for. Fast and full mode now train both on windows
half the frame's side (``crop``, ``supervised_crop``: a quarter of the pixels a sample; ``bench_windows.py``
measures a window's step against a whole frame's). The fine stage runs without its validation (the pipeline
validates every 10 steps, on the judge).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch

from spikeclip_lite import data, train
from spikeclip_lite.clip import load_clip, resolve_device
from spikeclip_lite.models import LRN
from spikeclip_lite.prompts import PromptPair
from spikeclip_lite.settings import FULL
from spikeclip_lite.spike_data import SpikeSet, pack_spikes

#: Issue #12's targets on one H100 at 128², samples per second.
TARGETS = {"coarse": 4000, "fine": 2000, "supervised": 6000}


def random_set(n: int, size: int, seed: int = 0) -> SpikeSet:
    """``n`` scenes of random spikes (5 % per pixel-frame), random images and labels: the step's cost
    does not depend on what the spikes show."""
    g = torch.Generator().manual_seed(seed)
    spikes = pack_spikes((torch.rand(n, 200, size, size, generator=g) < 0.05).to(torch.uint8))
    img = lambda: torch.rand(n, size, size, generator=g)  # noqa: E731
    labels = torch.randint(0, len(data.CLASSES), (n,), generator=g)
    return SpikeSet(spikes, img(), img(), img(), img(), labels, torch.zeros(n, dtype=torch.bool))


def measure(stage: str, guide, train_set: SpikeSet, cfg: train.StageConfig) -> dict:
    torch.manual_seed(0)
    lrn = LRN(pad=FULL.pad)  # as the presets run it (every preset mirrors the border)
    if stage == "coarse":
        # as every preset runs it: the L1 to TFI on one gain alone (class_after ≥ steps: the guide is never called)
        h = train.train_coarse(
            lrn,
            guide,
            train_set,
            data.CLASSES,
            cfg,
            warmup_steps=cfg.steps,
            fidelity_floor=1.0,
            fidelity_target="tfi_gain",
            fidelity_denoise=1.0,
            class_after=cfg.steps,
        )
    elif stage == "fine":
        pair = PromptPair(guide)
        h = train.train_fine(lrn, guide, pair, train_set, data.CLASSES, cfg, anchor_images=train_set.tfi)
    else:
        h = train.train_supervised(lrn, train_set, cfg)
    return {"samples_per_s": h["samples_per_s"][0], "steady": h.get("steady_samples_per_s", [float("nan")])[0]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", type=Path, default=Path("outputs"), help="folder for the JSON of the table")
    parser.add_argument("--size", type=int, default=None, help="image size (default: 128 on a GPU, 64 on a CPU)")
    parser.add_argument("--batch", type=int, default=None, help="batch (default: 32 on a GPU, 8 on a CPU)")
    parser.add_argument("--steps", type=int, default=None, help="steps per stage (default: 200 GPU, 30 CPU)")
    parser.add_argument("--compile", action="store_true", help="also measure torch.compile (default on a GPU)")
    args = parser.parse_args()
    dev = resolve_device(args.device)
    gpu = dev.type == "cuda"
    size, batch = args.size or (128 if gpu else 64), args.batch or (32 if gpu else 8)
    steps = args.steps or (200 if gpu else 30)
    name = torch.cuda.get_device_name(dev) if gpu else f"CPU, {torch.get_num_threads()} threads"
    guide = load_clip("teaching", device=dev)
    train_set = random_set(max(4 * batch, 64), size)
    variants = {"as the pipeline runs": False} | ({"+ torch.compile": True} if gpu or args.compile else {})
    print(f"\nTraining throughput at {size}², batch {batch}, {steps} steps, {name}, torch {torch.__version__}\n")
    print("| stage | variant | samples / s (steady) | samples / s (all steps) | target |")
    print("|---|---|---|---|---|")
    rows = []
    for stage in ("coarse", "fine", "supervised"):
        for vname, compile_ in variants.items():
            with tempfile.TemporaryDirectory() as tmp:
                cfg = train.StageConfig(
                    steps, batch, 1e-4, device=str(dev), ckpt_dir=tmp, progress=False, compile=compile_
                )
                try:
                    r = measure(stage, guide, train_set, cfg)
                except Exception as err:  # e.g. a compiler missing on the machine
                    print(f"| {stage} | {vname} | failed: {type(err).__name__}: {str(err)[:80]} | | |")
                    continue
            target = TARGETS[stage] if gpu and size == 128 else None
            goal = "" if target is None else f"≥ {target:,} ({'met' if r['steady'] >= target else 'not met'})"
            rows.append(dict(stage=stage, variant=vname, **r))
            print(f"| {stage} | {vname} | {r['steady']:,.0f} | {r['samples_per_s']:,.0f} | {goal} |")
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    result = {"device": name, "size": size, "batch": batch, "steps": steps, "rows": rows}
    (out / f"bench_train_{dev.type}.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
