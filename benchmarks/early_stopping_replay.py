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
first rule named.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import fields, replace
from pathlib import Path

from spikeclip_lite.train import Defences, replay_early_stopping


def rules(tolerances: list[float]) -> dict[str, dict[str, object]]:
    """Rule name → the ``Defences`` fields it changes: "last" at each tolerance, then "best"."""
    out: dict[str, dict[str, object]] = {f"last ±{t:g}": {"pick": "last", "score_tolerance": t} for t in tolerances}
    out["best"] = {"pick": "best"}
    return out


def replay(folder: Path, changes: dict[str, dict[str, object]]) -> tuple[dict[str, tuple[int, float]], int]:
    """Rule → (step kept, validation aligned PSNR gain over step 0), and the step the run itself kept."""
    path = folder / "metrics.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run the pipeline into {folder} first")
    metrics = json.loads(path.read_text())
    history = metrics["histories"]["fine"]
    if "val_aligned_psnr" not in history:
        raise ValueError(f"{path}: the fine stage logged no validation aligned PSNR (validation without truth?)")
    known = {f.name for f in fields(Defences)}
    own = Defences(**{k: v for k, v in metrics["settings"]["defences"].items() if k in known})
    psnr = history["val_aligned_psnr"]
    out = {}
    for name, change in changes.items():
        step = replay_early_stopping(history, replace(own, **change))
        out[name] = (step, psnr[history["val_step"].index(step)] - psnr[0])
    return out, int(history["best_step"][0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", type=Path, help="pipeline output folders (each with metrics.json)")
    ap.add_argument("--tolerance", nargs="+", type=float, default=[2.0, 0.03, 0.0], help="score tolerances")
    args = ap.parse_args()
    changes = rules(args.tolerance)
    names = list(changes)
    print("validation aligned PSNR over the coarse network (step 0), dB, at the step each rule keeps")
    print("| run | the run kept | " + " | ".join(names) + " |")
    print("|---|---|" + "---|" * len(names))
    gains: dict[str, list[float]] = {n: [] for n in names}
    for folder in args.runs:
        result, kept = replay(folder, changes)
        cells = [f"{result[n][0]}: {result[n][1]:+.2f}" for n in names]
        print(f"| {folder} | {kept} | " + " | ".join(cells) + " |")
        for n in names:
            gains[n].append(result[n][1])
    first = gains[names[0]]
    for n in names[1:]:
        diffs = [g - f for g, f in zip(gains[n], first, strict=True)]
        print(f"{n} − {names[0]}: mean {sum(diffs) / len(diffs):+.3f} dB, worst {min(diffs):+.3f}")


if __name__ == "__main__":
    main()
