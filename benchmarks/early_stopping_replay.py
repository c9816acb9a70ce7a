"""Early stopping's rules replayed on finished pipeline runs' validation logs: no training, no weights.

The fine stage validates every 10 steps and logs the judge's score, its accuracy and the high-frequency share
(what early stopping may read) and, where the validation scenes have a ground truth, aligned PSNR (what it may
never read). The scores do not depend on the rule, which only chooses the weights kept, so one run's log says
which step every rule would keep and what that step scored on validation
(:func:`spikeclip_lite.train.replay_early_stopping`). Choose a rule here, on validation logs, before any test
scene is scored with it:

``python benchmarks/early_stopping_replay.py outputs/long_s0 outputs/proxy400_s2 … [--tolerance 2 0.03 0]``

Each run is replayed under its own defences (``metrics.json``'s settings) with ``pick`` and ``score_tolerance``
changed. Prints one row per run: for each rule, the step kept and its validation aligned PSNR over the coarse
network's (step 0), moving and static scenes together; then each rule's mean and worst difference from the
first rule named. ``--plot FILE.png`` draws each run's two curves (the judge's score, which the rules read, and
aligned PSNR, which they may not) with each rule's kept step marked.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import fields, replace
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from spikeclip_lite.train import Defences, check_early_stopping, replay_early_stopping  # noqa: E402


def rules(tolerances: list[float]) -> dict[str, dict[str, object]]:
    """Rule name → the ``Defences`` fields it changes: "last" at each tolerance (the latest candidate whose score
    is at most that far below the best candidate's), then "best"."""
    out: dict[str, dict[str, object]] = {}
    for t in dict.fromkeys(tolerances):  # each once, in the order given
        try:
            check_early_stopping(Defences(pick="last", score_tolerance=t))
        except ValueError as e:
            raise SystemExit(f"--tolerance: {e} (the judge's score's range)") from None
        out[f"last tol {t:g}"] = {"pick": "last", "score_tolerance": t}
    out["best"] = {"pick": "best"}
    return out


def replay(folder: Path, changes: dict[str, dict[str, object]]) -> tuple[dict[str, tuple[int, float]], dict]:
    """Rule → (step kept, validation aligned PSNR gain over step 0), and the run's fine-stage history. Each rule
    is the run's own defences with the rule's fields changed; a warning says when the run's own defences do not
    replay to the step it kept (a run older than some setting, which then takes today's default)."""
    path = folder / "metrics.json"
    if not path.is_file():
        raise SystemExit(f"{path} is missing: run the pipeline into {folder} first")
    metrics = json.loads(path.read_text())
    history = metrics.get("histories", {}).get("fine") or {}
    steps, psnr = history.get("val_step") or [], history.get("val_aligned_psnr") or []
    if not steps or steps[0] != 0 or len(psnr) != len(steps):
        raise SystemExit(f"{path}: no fine-stage validation log from step 0 with aligned PSNR at every step")
    known = {f.name for f in fields(Defences)}
    own = Defences(**{k: v for k, v in metrics["settings"]["defences"].items() if k in known})
    try:
        own_step = replay_early_stopping(history, own)
        out = {}
        for name, change in changes.items():
            step = replay_early_stopping(history, replace(own, **change))
            out[name] = (step, psnr[steps.index(step)] - psnr[0])
    except ValueError as err:
        raise SystemExit(f"{path}: {err}") from None
    kept = history.get("best_step")
    if kept and int(kept[0]) != own_step:
        print(f"warning: {folder}'s own defences replay to step {own_step}, not the step it kept ({int(kept[0])})")
    return out, history


def plot(results: list[tuple[Path, dict[str, tuple[int, float]], dict]], path: Path) -> None:
    """One panel per run: validation aligned PSNR over step 0 (left axis) and the judge's score (right axis)
    against the fine step; a dotted line at each rule's kept step."""
    cols = min(len(results), 2)
    rows = -(-len(results) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.5 * cols, 3.4 * rows), squeeze=False)
    for ax in axes.flat[len(results) :]:
        ax.axis("off")
    for ax, (folder, result, history) in zip(axes.flat, results, strict=False):
        steps, psnr = history["val_step"], history["val_aligned_psnr"]
        ax.plot(steps, [p - psnr[0] for p in psnr], color="C0", label="aligned PSNR − coarse (dB)")
        ax.set_xlabel("fine step")
        ax.set_title(str(folder), fontsize=9)
        twin = ax.twinx()
        twin.plot(steps, history["val_score"], color="C1", lw=0.8, label="judge score")
        for i, (name, (step, _)) in enumerate(result.items()):
            ax.axvline(step, color=f"C{i + 2}", ls=":", lw=1.2, label=f"{name}: step {step}")
        ax.legend(fontsize=7, loc="lower right", framealpha=0.9)
        twin.legend(fontsize=7, loc="upper right", framealpha=0.9)
    fig.suptitle("validation: what each rule keeps (the rules read the judge's score only)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", type=Path, help="pipeline output folders (each with metrics.json)")
    ap.add_argument("--tolerance", nargs="+", type=float, default=[2.0, 0.03, 0.0], help="score tolerances")
    ap.add_argument("--plot", type=Path, help="write the runs' validation curves with the kept steps here (.png)")
    args = ap.parse_args()
    changes = rules(args.tolerance)
    names = list(changes)
    print("validation aligned PSNR over the coarse network (step 0), dB, at the step each rule keeps")
    print("| run | the run kept | " + " | ".join(names) + " |")
    print("|---|---|" + "---|" * len(names))
    gains: dict[str, list[float]] = {n: [] for n in names}
    results = []
    for folder in args.runs:
        result, history = replay(folder, changes)
        results.append((folder, result, history))
        cells = [f"{result[n][0]}: {result[n][1]:+.2f}" for n in names]
        kept = history.get("best_step")  # absent when the run's early stopping was off
        print(f"| {folder} | {int(kept[0]) if kept else '–'} | " + " | ".join(cells) + " |")
        for n in names:
            gains[n].append(result[n][1])
    first = gains[names[0]]
    for n in names[1:]:
        diffs = [g - f for g, f in zip(gains[n], first, strict=True)]
        print(f"{n} − {names[0]}: mean {sum(diffs) / len(diffs):+.3f} dB, worst {min(diffs):+.3f}")
    if args.plot:
        plot(results, args.plot)
        print(f"curves: {args.plot}")


if __name__ == "__main__":
    main()
