"""The diagnostic scripts under benchmarks/ that docs and notebooks quote, run on tiny settings."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SMALL_FULL

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


def test_early_stopping_replay_reads_each_rule_off_a_validation_log(tmp_path):
    """A run's log (a plateau, then a drift of the judge's score beyond its noise): "last tol 2" keeps the last step,
    "last tol 0.03" the last within 0.03 of the best, "best" the peak; the gains are the logged aligned PSNR's."""
    history = {
        "val_step": [0, 1, 11, 21, 31],
        "val_score": [1.0, 1.5, 1.48, 1.46, 1.4],
        "val_judge_accuracy": [0.9] * 5,
        "val_hf_share": [0.2, 0.1, 0.1, 0.1, 0.1],
        "val_aligned_psnr": [25.0, 25.5, 25.6, 25.4, 25.3],
        "best_step": [31.0],
    }
    defences = {"pick": "last", "score_tolerance": 2.0, "texture_margin": 0.05, "a_field_of_later_code": 1}
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.json").write_text(json.dumps({"histories": {"fine": history}, "settings": {"defences": defences}}))
    out = run_script("benchmarks/early_stopping_replay.py", str(run), "--plot", str(tmp_path / "curves.png"))
    assert f"| {run} | 31 | 31: +0.30 | 11: +0.60 | 1: +0.50 |" in out
    assert (tmp_path / "curves.png").stat().st_size > 10_000
    assert "last tol 0.03 − last tol 2: mean +0.300 dB, worst +0.300" in out
    assert "warning" not in out  # its own defences replay to the step it kept
    # a run whose kept step its own defences do not reproduce (an older run: a setting it lacked took today's default)
    older = {**defences, "score_tolerance": 0.03}
    (run / "metrics.json").write_text(json.dumps({"histories": {"fine": history}, "settings": {"defences": older}}))
    out = run_script("benchmarks/early_stopping_replay.py", str(run))
    assert f"warning: {run}'s own defences replay to step 11, not the step it kept (31)" in out
    done = subprocess.run(
        [sys.executable, "benchmarks/early_stopping_replay.py", str(tmp_path / "none")], cwd=ROOT, capture_output=True
    )
    assert done.returncode != 0 and b"metrics.json is missing" in done.stderr
    args = [sys.executable, "benchmarks/early_stopping_replay.py", str(run), "--tolerance", "-1"]
    bad = subprocess.run(args, cwd=ROOT, capture_output=True)
    assert bad.returncode != 0 and b"within 0" in bad.stderr


def test_bench_windows_times_the_step_three_ways_and_the_unpadded_one_changes_nothing(tmp_path):
    out = run_script(
        "benchmarks/bench_windows.py",
        "--size",
        "24",
        "--batch",
        "2",
        "--crop",
        "12",
        "--steps",
        "3",
        "--out",
        str(tmp_path),
    )
    rows = {r["variant"]: r for r in json.loads((tmp_path / "bench_windows.json").read_text())["rows"]}
    assert list(rows) == ["reference", "unpadded convolutions", "12² windows"] and "| 12² windows |" in out
    assert rows["reference"]["speedup"] == 1.0 and rows["reference"]["weight_diff"] == 0.0
    assert rows["unpadded convolutions"]["weight_diff"] < 1e-6  # the same training, less work
    assert rows["12² windows"]["weight_diff"] > 1e-4  # other pixels, other weights
    assert all(r["ms_per_step"] > 0 for r in rows.values())


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


def test_border_diagnosis_prints_whole_and_interior_curves_for_each_padding(tmp_path):
    settings = ["size=32", "n_train=4", "n_val=4", "n_hq=4", "batch=2", "steps_coarse=2", "steps_prompts=2"]
    args = ["benchmarks/border_diagnosis.py", "--out", str(tmp_path), "--steps", "4", "--every", "2", "--set"]
    args += settings
    refused = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert refused.returncode == 2 and "not trained in" in refused.stderr  # never trains behind the user's back
    out = run_script(*args, "--train-missing")
    assert "coarse trained with pad='reflect'" in out and "interior, 8 px in" in out
    for pad in ("zero", "reflect"):
        block = out.split(f"fine, pad={pad}:")[1].split("fine, pad=")[0]
        steps = [int(line.split()[1].rstrip(":")) for line in block.splitlines() if line.strip().startswith("step ")]
        assert steps == [0, 1, 3, 4], block  # the coarse network, then every 2 steps and the last
        assert "best step" in block
    bad = subprocess.run([sys.executable, *args, "--pads", "mirror"], cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode == 2 and "not paddings" in bad.stderr


def gpu_check(tmp_path: Path, timeout: int, **extra: str) -> subprocess.CompletedProcess:
    """benchmarks/gpu_check.sh on the CPU at the small full size, into ``tmp_path``/out and /work; ``extra`` adds to
    or overrides the script's variables (PARTS, the bench arguments, …)."""
    env = dict(
        os.environ,
        OUT=str(tmp_path / "out"),
        WORK=str(tmp_path / "work"),
        PY=sys.executable,
        DEVICE="cpu",
        SETTINGS=SMALL_FULL,
        INSTALL="0",  # the test's own environment, untouched
        JUPYTER_DATA_DIR=str(tmp_path / "jupyter"),  # its kernel registration stays in the test's folder
        HF_HUB_OFFLINE="1",
    )
    env.update(extra)
    script = ["bash", "benchmarks/gpu_check.sh"]
    return subprocess.run(script, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.fullmode
def test_gpu_check_rehearses_every_step_on_the_cpu(tmp_path):
    """benchmarks/gpu_check.sh, the one command a borrowed GPU runs, rehearsed on the CPU at a tiny size:
    every step runs and leaves the files the device tool brings back (at most 8, no data caches)."""
    import tarfile

    out = tmp_path / "out"
    done = gpu_check(
        tmp_path,
        900,
        BENCH_LRN_ARGS="--batches 1",
        BENCH_TRAIN_ARGS="--steps 2 --size 32 --batch 2",
        COURSE_ONLY="07",
        PARTS="pipeline tradeoff bench course",  # every part, whatever the caller's environment says
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    names = {p.name for p in out.iterdir()}
    assert names == {
        "gpu.txt",
        "bench.txt",
        "pipeline.txt",
        "metrics.json",
        "course.txt",
        "results.tar.gz",
        "course.tar.gz",
    }, names  # + gpu_util.csv where nvidia-smi runs: 8, the tool's limit
    gpu_log = (out / "gpu.txt").read_text()
    assert "no nvidia-smi here" in gpu_log
    assert "spikeclip_lite from: the Python environment as it is (INSTALL=0)" in gpu_log  # how it got the package
    # the parts in their order, the figures issue #11 waits for first, each with its seconds
    parts = [line.split(":")[0] for line in gpu_log.splitlines() if line.startswith("part ")]
    assert parts == ["part pipeline", "part tradeoff", "part bench", "part course"], gpu_log
    bench = (out / "bench.txt").read_text()
    assert "LRN inference at 250×400" in bench and "Training throughput at 32²" in bench
    pipeline_log = (out / "pipeline.txt").read_text()
    assert "| fine | moving |" in pipeline_log and "Exit status: 0" in pipeline_log  # /usr/bin/time -v
    assert "within 0.5–1.5" in pipeline_log  # the trade-off ran on the same stages
    assert "at the step each rule keeps" in pipeline_log and "last tol 0.03 − last tol 2: mean" in pipeline_log
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["mode"] == "full" and metrics["settings"]["n_train"] == 16 and metrics["settings"]["size"] == 128
    course_log = (out / "course.txt").read_text()
    assert "Done: 1 notebooks" in course_log and "07_real_data.ipynb:" in course_log  # its seconds
    with tarfile.open(out / "results.tar.gz") as tar:
        packed = tar.getnames()
    assert "course/pipeline/gallery.png" in packed and "course/pipeline/metrics.json" in packed
    assert "course/pipeline/early_stopping_replay.png" in packed
    assert "bench/bench_lrn_cpu.json" in packed and "bench/bench_train_cpu.json" in packed
    with tarfile.open(out / "course.tar.gz") as tar:  # the notebooks apart: one tarball stays small
        notebooks = tar.getnames()
    assert "course/07_real_data.ipynb" in notebooks and "course/timings.json" in notebooks
    assert not [n for n in notebooks if n.startswith("course/pipeline")], notebooks
    for names in (packed, notebooks):
        assert not [n for n in names if "/data/" in n or "/checkpoints/" in n], names


def test_gpu_check_refuses_an_unknown_part_and_a_tradeoff_without_stages(tmp_path):
    """A typo in PARTS, or the trade-off asked for before any pipeline ran, stops the script at once with a
    message naming the problem, before a lent GPU's minutes go into the wrong work."""

    def run(parts):
        return gpu_check(tmp_path, 120, PARTS=parts)

    typo = run("tradof pipeline")
    assert typo.returncode == 2 and "unknown part 'tradof'" in typo.stderr, typo.stderr
    alone = run("bench tradeoff")  # before the bench runs, not after it
    assert alone.returncode == 2 and "needs the pipeline's stages" in alone.stderr, alone.stderr
    empty = run(" ")
    assert empty.returncode == 2 and "names no part" in empty.stderr, empty.stderr
    assert not (tmp_path / "out").exists()  # each checked before anything ran
