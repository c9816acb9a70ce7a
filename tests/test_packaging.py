import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parent.parent


def _norm(req: str) -> str:
    return re.sub(r"\s+", "", req).lower().replace("_", "-")


def test_environment_yml_matches_pyproject():
    py = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_norm(r) for r in py["dependencies"] + py["optional-dependencies"]["dev"]}
    env = (ROOT / "environment.yml").read_text()
    pip_section = env.split("- pip:", 1)[1]
    listed = {_norm(line.strip()[2:]) for line in pip_section.splitlines() if line.strip().startswith("- ")}
    assert listed == wanted, f"only in pyproject: {wanted - listed}; only in environment.yml: {listed - wanted}"


def test_runtime_constraints_are_ranges():
    py = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for req in py["dependencies"]:
        assert "==" not in req, f"pin {req} as a range for users"


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make test" in ci and "HF_HUB_OFFLINE=1" in ci and "SPIKECLIP_FAST=1" in ci
    assert "make test" in readme and "make run" in readme


@pytest.mark.parametrize("where", [".venv", "not/made/yet/.venv"])
def test_install_stops_at_once_when_the_disk_is_too_full(tmp_path, where):
    """A torch install on a full disk fails 47 s in with Errno 28; the Makefile checks first and says why
    (measuring the nearest folder that exists when the venv's own folders are not made yet)."""
    venv = tmp_path / where
    run = subprocess.run(
        ["make", "-C", str(ROOT), "install", f"VENV={venv}", "MIN_FREE_GB=1000000"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode != 0
    assert "GB free where" in run.stderr and "MIN_FREE_GB" in run.stderr, run.stderr
    assert not venv.exists() and not (tmp_path / "not").exists(), "the check must come before the venv is made"


@pytest.mark.parametrize("target", ["run", "lab", "samples"])
def test_make_run_installs_what_it_needs_and_not_the_test_tools(tmp_path, target):
    """`make run` installs the runtime only (10 s less of the first command); the tests' tools come with
    `make test` (and `make install`)."""
    plan = {}
    for t in (target, "test", "install"):
        run = subprocess.run(
            ["make", "-n", "-C", str(ROOT), t, f"VENV={tmp_path / '.venv'}"], capture_output=True, text=True, timeout=60
        )
        assert run.returncode == 0, run.stderr
        plan[t] = run.stdout
    assert "pip install -q -e ." in plan[target] and "[dev]" not in plan[target], plan[target]
    assert "ipykernel install" in plan[target]  # `make lab`'s kernel
    for t in ("test", "install"):
        assert "pip install -q -e '.[dev]'" in plan[t], plan[t]


def test_the_wheel_carries_the_teaching_clips_and_builds_without_warnings(tmp_path):
    """A plain `pip install` (not editable) must ship the offline CLIPs; setuptools' deprecation warnings
    (a TOML-table license, a data folder missing from `packages`) were a wall of text in every install."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "spikeclip_lite", src / "spikeclip_lite", ignore=shutil.ignore_patterns("__pycache__"))
    run = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--no-build-isolation", "-w", tmp_path, src],
        capture_output=True,
        text=True,
        timeout=300,
    )
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-3000:]
    # -v: pip shows the backend's output (warnings included) on success too
    assert "running bdist_wheel" in log, log[-3000:]
    assert not re.search(r"DeprecationWarning|BuildBackendWarning|deprecated", log), log[-3000:]
    (wheel,) = tmp_path.glob("spikeclip_lite-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assets = {p.name for p in (ROOT / "spikeclip_lite" / "assets").iterdir()}
    assert assets and {f"spikeclip_lite/assets/{a}" for a in assets} <= names, sorted(names)
    assert "spikeclip_lite/teaching_clip.py" in names
