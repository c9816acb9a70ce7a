import re
import subprocess
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
