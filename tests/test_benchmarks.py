"""The diagnostic scripts under benchmarks/ that docs and notebooks quote, run on tiny settings."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_script(*args: str) -> str:
    done = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_classical_table_prints_the_smoothed_baseline_and_the_floor(tmp_path):
    out = run_script(
        "benchmarks/classical_table.py", "--mode", "fast", "--out", str(tmp_path), "--set", "n_test=4", "size=32"
    )
    rows = {line.split("|")[1].strip() for line in out.splitlines() if line.startswith("| ") and "---" not in line}
    assert {"TFP", "TFI", "TFI smoothed", "flat (the floor)"} <= rows
    assert "4 test scenes at 32²" in out


def test_fidelity_fit_compares_the_targets():
    out = run_script(
        "benchmarks/fidelity_fit.py", "--steps", "25", "--scenes", "8", "--val-scenes", "4", "--targets", "rate,tfi"
    )
    lines = out.splitlines()
    for name in ("rate", "tfi"):
        at = next(i for i, line in enumerate(lines) if line.startswith(f"{name} ") and " L1 " in line)
        scored = lines[at + 1].split()  # target A / B | C / D · fitted A / B | C / D
        numbers = [float(x) for x in scored if x.replace(".", "", 1).isdigit()]
        assert scored[0] == "target" and "fitted" in scored and len(numbers) == 8, lines[at + 1]


def test_texture_tradeoff_traces_each_family_and_writes_its_files(tmp_path):
    settings = ["n_test=6", "size=32", "n_train=4", "batch=2", "steps_supervised=2"]
    args = ["benchmarks/texture_tradeoff.py", "--out", str(tmp_path), "--networks", "supervised", "--set", *settings]
    refused = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert refused.returncode == 2 and "not trained in" in refused.stderr  # never trains behind the user's back
    out = run_script(*args, "--train-missing")
    assert "fast mode, 6 test scenes" in out
    assert "TFI blurred (moving): σ=2 " in out and "supervised (moving): σ=2 " in out
    assert out.count("TFI blurred: best ") == 2  # moving and static
    stem = tmp_path / "texture_tradeoff-fast-test"
    assert stem.with_suffix(".png").stat().st_size > 1000
    res = json.loads(stem.with_suffix(".json").read_text())
    assert [r["label"] for r in res["supervised"]] == [
        "σ=2",
        "σ=1.5",
        "σ=1",
        "σ=0.5",
        "a=0",
        "a=0.5",
        "a=1",
        "a=2",
        "a=4",
    ]
    assert "supervised (moving)" in run_script(*args)  # trained now: no flag needed
