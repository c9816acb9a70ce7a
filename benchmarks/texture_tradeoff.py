"""What a natural amount of texture costs in aligned PSNR (:mod:`spikeclip_lite.tradeoff`) on a trained
pipeline run's scenes.

Run after the pipeline, on its folder (the stages load from its cache; a stage missing there, e.g. because the
settings differ from the run's, is an error unless ``--train-missing`` lets it train):
``python benchmarks/texture_tradeoff.py --mode fast --out outputs/pipeline [--split test] [--set KEY=VALUE …]``
(``--mode long`` after ``pipeline --long``, which shares the folder: each stage is cached under its settings;
with the run's ``--set`` if it had any).
Prints every point and each family's best aligned PSNR inside and outside the texture band 0.5–1.5 on moving
and static scenes; writes ``texture_tradeoff-MODE-SPLIT.json`` and ``.png`` into the folder.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
from spikeclip_lite import settings, tradeoff  # noqa: E402
from spikeclip_lite.pipeline import Run  # noqa: E402

NETWORKS = ("coarse", "fine", "supervised")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mode", choices=sorted(settings.PRESETS), default="fast")
    ap.add_argument("--out", default="outputs/pipeline", help="the pipeline run's folder")
    ap.add_argument("--split", choices=("test", "val"), default="test")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="the run's other settings")
    ap.add_argument("--networks", default="coarse,fine,supervised", help=f"trained stages among {NETWORKS}")
    ap.add_argument("--train-missing", action="store_true", help="train a stage the folder lacks (slow)")
    ap.add_argument("--clip", default="teaching", help="the run's guide (--clip of the pipeline run)")
    ap.add_argument("--device", default="cpu", help="where the networks reconstruct (not part of any stage's key)")
    args = ap.parse_args()
    cfg = settings.configure(args.mode, args.set, settings.FLAGS, clip=args.clip, device=args.device)
    names = [n for n in args.networks.split(",") if n]
    if unknown := [n for n in names if n not in NETWORKS]:
        ap.error(f"--networks: {unknown} are not stages; choose among {NETWORKS}")
    run = Run(cfg, args.out, progress=True)
    missing = [n for n in names if not (run.stage_dir(n) / f"{n}.pt").is_file()]
    if missing and not args.train_missing:
        ap.error(
            f"{missing} not trained in {args.out} with these settings: run the pipeline first with the same --mode, "
            "--set and --clip (or pass --train-missing)"
        )
    scenes = run.eval_set(args.split)
    outputs = {name: run.images(name, scenes) for name in names}
    res = tradeoff.measure(tradeoff.families(scenes.tfi, outputs), scenes.gt, scenes.moving)
    n_mov = int(scenes.moving.sum())
    print(f"{args.mode} mode, {len(scenes)} {args.split} scenes ({n_mov} moving), aligned PSNR dB / texture ratio:")
    for fam, rows in res.items():
        part = "moving" if "moving" in rows[0] else "static"
        cells = " · ".join(f"{r['label']} {r[part]['aligned_psnr']:.2f}/{r[part]['texture']:.2f}" for r in rows)
        print(f"  {fam} ({part}): {cells}")
    for part in ("moving", "static"):
        if lines := tradeoff.format_summary(res, part).splitlines():
            print(f"{part}:\n" + "\n".join("  " + line for line in lines))
    stem = Path(args.out) / f"texture_tradeoff-{args.mode}-{args.split}"
    stem.with_suffix(".json").write_text(json.dumps(res, indent=1))
    fig = tradeoff.plot(res, f"{args.mode} mode, {args.split} scenes: fine detail against aligned PSNR")
    fig.savefig(stem.with_suffix(".png"), dpi=110)
    print(f"→ {stem}.json, {stem}.png")


if __name__ == "__main__":
    main()
