"""Where the fine stage gains and loses: the whole image against its interior, step by step, for each way the
LRN computes its outer pixels (:class:`spikeclip_lite.models.LRN`'s ``pad``).

Run after the pipeline, on its folder (the coarse network and the prompts load from its cache; a stage missing
there is an error unless ``--train-missing`` lets it train):
``python benchmarks/border_diagnosis.py --mode full --out outputs/proxy128 --set KEY=VALUE … --pads zero,reflect``
For each padding it trains the fine stage again from the coarse weights (no checkpoint, no early stopping:
every step runs) and prints its validation curve: aligned PSNR over the whole image and over the interior
(``--margin`` pixels in from every edge), the texture ratio and the judge's accuracy. The coarse network is
the same in every row; only the padding of the fine stage (its training, its anchor images and its outputs)
changes. Nothing uses the test scenes.
"""

from __future__ import annotations

import argparse
import copy
from dataclasses import replace

import torch

from spikeclip_lite import metrics, models, settings
from spikeclip_lite.pipeline import Run
from spikeclip_lite.train import StageConfig, train_fine


def curve(run: Run, pad: str, margin: int, steps: int, every: int) -> list[dict[str, float]]:
    """The fine stage's validation curve with the LRN padded by ``pad``: one dict per validated step."""
    cfg, val = run.cfg, run.val_set
    coarse = copy.deepcopy(run.coarse())
    coarse.pad = pad
    rows: list[dict[str, float]] = []

    def measure(net: torch.nn.Module) -> dict[str, float]:  # a row at step 0; later steps are relabelled
        s = run.validation_score("coarse", net)  # the coarse stage's presentation (standardised), as fine's
        x, gt, m = run.images("coarse", val, net), val.gt, margin
        inner = float(metrics.aligned_psnr(x[:, m:-m, m:-m], gt[:, m:-m, m:-m]).mean())
        rows.append(
            dict(step=0, whole=s["aligned_psnr"], interior=inner, texture=s["texture"], accuracy=s["judge_accuracy"])
        )
        return s

    measure(coarse)
    fine = copy.deepcopy(coarse)
    defences = replace(cfg.defences, early_stop=False, keep_accuracy=False, keep_texture=False)
    stage = StageConfig(steps, cfg.batch, cfg.lr_fine, seed=cfg.seed, device=str(run.device), progress=False)
    h = train_fine(
        fine,
        run.guide,
        run.prompts(run.coarse()),
        run.train_set,
        run.classes,
        stage,
        lam=cfg.lam,
        defences=defences,
        anchor_images=run.images("coarse", run.train_set, coarse),
        validate=measure,
        validate_every=every,
        scale=run.prompt_scale,
        native=run.native_quality,
        form=cfg.prompt_loss,
        class_enough=cfg.class_enough,
    )
    for row, step in zip(rows[1:], h["val_step"], strict=True):
        row["step"] = int(step)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mode", choices=sorted(settings.PRESETS), default="fast")
    ap.add_argument("--out", default="outputs/pipeline", help="the pipeline run's folder")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="the run's other settings")
    ap.add_argument("--pads", default="zero,reflect", help=f"the fine stage's paddings, among {models.PADS}")
    ap.add_argument("--margin", type=int, default=8, help="pixels left out at every edge for the interior")
    ap.add_argument("--steps", type=int, default=None, help="fine steps (default: the run's steps_fine)")
    ap.add_argument("--every", type=int, default=10, help="steps between validations")
    ap.add_argument("--train-missing", action="store_true", help="train a stage the folder lacks (slow)")
    ap.add_argument("--clip", default="teaching", help="the run's guide (--clip of the pipeline run)")
    args = ap.parse_args()
    cfg = settings.configure(args.mode, args.set, settings.FLAGS, clip=args.clip, device="cpu")
    pads = [p for p in args.pads.split(",") if p]
    if bad := [p for p in pads if p not in models.PADS]:
        ap.error(f"--pads: {bad} are not paddings; choose among {models.PADS}")
    if not 0 < 2 * args.margin < cfg.size:
        ap.error(f"--margin {args.margin} leaves no interior in {cfg.size}² images")
    run = Run(cfg, args.out, progress=False)
    missing = [n for n in ("coarse", "prompts") if not (run.stage_dir(n) / f"{n}.pt").is_file()]
    if missing and not args.train_missing:
        ap.error(
            f"{missing} not trained in {args.out} with these settings: run the pipeline first with the same --mode, "
            "--set and --clip (or pass --train-missing)"
        )
    steps = args.steps or cfg.steps_fine
    print(
        f"{args.mode} mode, coarse trained with pad={cfg.pad!r}; fine stage on {len(run.val_set)} validation "
        f"scenes, aligned PSNR dB (whole image | interior, {args.margin} px in) / texture / judge accuracy:"
    )
    for pad in pads:
        rows = curve(run, pad, args.margin, steps, args.every)
        print(f"  fine, pad={pad}:")
        for r in rows:
            print(
                f"    step {r['step']:3d}: {r['whole']:.2f} | {r['interior']:.2f} / {r['texture']:.2f} / "
                f"{r['accuracy']:.2f}"
            )
        best = max(rows, key=lambda r: r["whole"])
        start = rows[0]
        print(
            f"    best step {best['step']}: whole {best['whole'] - start['whole']:+.2f} dB, interior "
            f"{best['interior'] - start['interior']:+.2f} dB; last step: whole "
            f"{rows[-1]['whole'] - start['whole']:+.2f}, interior {rows[-1]['interior'] - start['interior']:+.2f}"
        )


if __name__ == "__main__":
    main()
