"""Command line: ``python -m spikeclip_lite <command>``.

- ``course [--full] [--out DIR] [--only NAME …] [--set KEY=VALUE …]``: execute the course notebooks headless
  into DIR; ``--set`` goes to the notebooks that train (04–07, their ``SETTINGS`` parameter).
- ``samples [--out DIR]``: regenerate the files in ``data_samples/``.
- ``pipeline [--fast|--full|--long] [--clip auto|teaching|ViT-B-32] [--device D] [--out DIR] [--eval-split val]
  [--set KEY=VALUE …]``: SpikeCLIP end to end; every other setting is a ``--set`` key.
- ``evaluate --data DIR_OR_FILE [--method tfp tfi tfstp lrn] [--weights FILE|released]``: the paper's
  evaluation (CLIP zero-shot accuracy, CLIP quality, no-reference IQA) on recordings.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

#: Pipeline flags that became ``--set`` keys (one spelling per setting), for a helpful error.
_SETTINGS_NOW = {
    "--data": "data_dir",
    "--classes": "classes",
    "--dataset": "dataset",
    "--cifar-root": "cifar_root",
    "--download": "download",
    "--judge": "judge",
}
_EXAMPLE = {
    "data_dir": "data/ucaltech",
    "classes": "ucaltech",
    "dataset": "cifar10",
    "cifar_root": "data/cifar10",
    "download": "true",
    "judge": "RN50:openai",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="spikeclip_lite", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_course = sub.add_parser("course", help="execute the notebooks headless into --out")
    p_course.add_argument("--full", action="store_true", help="full mode (sized for a GPU); default is fast mode")
    p_course.add_argument("--device", default="auto")
    p_course.add_argument("--out", type=Path, default=Path("outputs"))
    p_course.add_argument("--only", nargs="*", help="substrings of notebook names to run")
    p_course.add_argument(
        "--set",
        nargs="+",
        action="extend",
        default=[],
        metavar="KEY=VALUE",
        help="settings for the notebooks that train (04–07), as the pipeline's --set",
    )
    p_samples = sub.add_parser("samples", help="regenerate data_samples/")
    p_samples.add_argument("--out", type=Path, default=None)
    p_pipe = sub.add_parser("pipeline", help="train the three SpikeCLIP stages and evaluate them")
    mode = p_pipe.add_mutually_exclusive_group()
    mode.add_argument("--fast", action="store_true", help="small CPU settings (the default)")
    mode.add_argument("--full", action="store_true", help="full settings, sized for one GPU")
    mode.add_argument("--long", action="store_true", help="a longer CPU run (30–65 min, 2 cores) standing in for full")
    p_pipe.add_argument("--clip", default="auto", help="guiding CLIP: auto, teaching or ViT-B-32")
    p_pipe.add_argument("--device", default="auto")
    p_pipe.add_argument("--out", type=Path, default=Path("outputs/pipeline"))
    p_pipe.add_argument(
        "--eval-split",
        default="test",
        choices=["test", "val"],
        help="score the test scenes (default) or the validation scenes (tune settings on these)",
    )
    p_pipe.add_argument(
        "--set",
        nargs="+",
        action="extend",
        default=[],
        metavar="KEY=VALUE",
        help="change any other setting (settings.PipelineConfig), e.g. --set steps_coarse=1000 "
        "defences.anchor=0.5 dataset=cifar10 data_dir=PATH judge=RN50:openai",
    )
    p_eval = sub.add_parser("evaluate", help="reconstruct recordings and score them like the paper")
    p_eval.add_argument("--data", type=Path, required=True, help="a .npz/.dat file or a folder of them")
    p_eval.add_argument("--method", nargs="+", default=["tfp", "tfi"], choices=["tfp", "tfi", "tfstp", "lrn"])
    p_eval.add_argument("--weights", default=None, help="LRN checkpoint for --method lrn, or 'released'")
    p_eval.add_argument("--classes", default="ucaltech", choices=["ucaltech", "ucifar", "course"])
    p_eval.add_argument("--clip", default="auto")
    p_eval.add_argument("--device", default="auto")
    p_eval.add_argument("--skip-bad", action="store_true", help="skip (and list) unreadable files")
    p_eval.add_argument("--height", type=int, default=250)
    p_eval.add_argument("--width", type=int, default=400)
    p_eval.add_argument("--header-columns", type=int, default=0)
    p_eval.add_argument(
        "--tfp-window",
        type=int,
        default=None,
        metavar="N",
        help="TFP over N frames (odd) centred on the middle frame; default: all frames (SpikeCLIP's TFP). "
        "Spike-Zoo uses 41",
    )
    p_eval.add_argument(
        "--pad",
        default="zero",
        choices=["zero", "reflect"],
        help="LRN padding: zero (the released weights, the official numbers) or reflect (20 px, Spike-Zoo's; "
        "use it for the course's own networks, trained mirrored: setting pad)",
    )
    p_eval.add_argument("--save-images", type=Path, default=None, metavar="DIR", help="write every image as a PNG")
    p_eval.add_argument("--out", type=Path, default=Path("outputs/evaluate.json"))
    argv = sys.argv[1:] if argv is None else argv
    moved = [a.split("=")[0] for a in argv if a.split("=")[0] in _SETTINGS_NOW] if argv[:1] == ["pipeline"] else []
    if moved:
        key = _SETTINGS_NOW[moved[0]]
        parser.error(f"{moved[0]} is a setting now: use --set {key}=VALUE (e.g. --set {key}={_EXAMPLE[key]})")
    args = parser.parse_args(argv)

    if args.command == "course":
        from .course import run_notebooks

        print(f"Running the course notebooks ({'full' if args.full else 'fast'} mode) into {args.out}/")
        times = run_notebooks(args.out, fast=not args.full, device=args.device, only=args.only, settings=args.set)
        print(
            f"Done: {len(times)} notebooks, {sum(times.values()):.0f} s. Executed notebooks and figures are in "
            f"{args.out.resolve()}/ (timings in timings.json)."
        )
        return 0
    if args.command == "pipeline":
        from .pipeline import format_fine_choice, format_paired, format_table, format_time_split, run_pipeline
        from .settings import FLAGS, changes, configure

        mode = "full" if args.full else "long" if args.long else "fast"
        try:
            cfg = configure(mode, args.set, flags=FLAGS, clip=args.clip, device=args.device)
        except ValueError as err:
            parser.error(str(err))
        changed = ", ".join(f"{k}={v!r}" for k, v in changes(cfg, mode).items()) or "none"
        print(f"SpikeCLIP pipeline ({mode} settings) → {args.out}/\nchanged from the {mode} preset: {changed}")
        result = run_pipeline(cfg, args.out, split=args.eval_split, mode=mode)
        if args.eval_split == "val":
            print("Scores on the VALIDATION scenes (for tuning; the test set was not touched):")
        print(format_table(result["table"]))
        if result["paired"]:
            print(format_paired(result["paired"]))
        choice = format_fine_choice(result["histories"].get("fine", {}))
        if choice:
            print(choice)
        print(format_time_split(result["time_split"], result["gpu_utilisation"]))
        print(
            f"guide CLIP: {result['settings']['guide_clip']}, judge: {result['settings']['judge_clip']}; "
            f"{result['wall_seconds']:.0f} s. Metrics: {args.out / 'metrics.json'}, figures: {args.out}/*.png"
        )
        return 0
    if args.command == "evaluate":
        from .clip import ClipUnavailableError, load_clip
        from .evaluate import evaluate, format_summary, write_results
        from .models import load_lrn

        lrn = None
        if "lrn" in args.method:
            if args.weights is None:
                parser.error("--method lrn needs --weights FILE (or --weights released)")
            if args.weights == "released":
                from .hub import fetch

                weights = fetch("lrn_caltech")
            else:
                weights = Path(args.weights)
            lrn = load_lrn(weights)
        try:
            clip = load_clip(args.clip, device=args.device)
        except ClipUnavailableError as err:
            parser.exit(2, f"error: {err}\n")
        if lrn is not None:
            lrn = lrn.to(clip.device)
        results = {
            m: evaluate(
                args.data,
                m,
                clip,
                lrn,
                args.classes,
                args.skip_bad,
                args.height,
                args.width,
                args.header_columns,
                tfp_window=args.tfp_window,
                pad=args.pad,
                save_images=args.save_images,
            )
            for m in args.method
        }
        print(format_summary([r["summary"] for r in results.values()]))
        for m, r in results.items():
            for bad in r["skipped"]:
                print(f"skipped ({m}): {bad['file']}: {bad['error']}")
        write_results(results, args.out)
        saved = f"; images in {args.save_images}" if args.save_images else ""
        print(
            f"CLIP: {clip.name} (it scored each method's raw output, as the official evaluation does); "
            f"details in {args.out}{saved}"
        )
        return 0
    if args.command == "samples":
        from .samples import DEFAULT_DIR, make_samples

        for path in make_samples(args.out or DEFAULT_DIR):
            print(f"wrote {path}")
        return 0
    return 2  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
