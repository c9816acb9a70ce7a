"""Notebook hygiene (fast) and execution with papermill in fast mode (slow)."""

import json
import os
import time
from pathlib import Path

import pytest

from spikeclip_lite.course import NOTEBOOKS, list_notebooks

BOOKS = list_notebooks()
TIMINGS = Path(__file__).resolve().parent.parent / "outputs" / "test-notebooks" / "timings.json"


def test_course_has_notebooks():
    names = [b.name for b in BOOKS]
    assert "01_spike_camera_physics.ipynb" in names and "02_tfp_tfi_baselines.ipynb" in names


@pytest.mark.parametrize("path", BOOKS, ids=lambda p: p.stem)
def test_notebook_is_clean_and_structured(path):
    nb = json.loads(path.read_text())
    cells = nb["cells"]
    for c in cells:
        if c["cell_type"] == "code":
            assert not c.get("outputs") and c.get("execution_count") is None, f"{path.name} has outputs"
    first = "".join(cells[0]["source"])
    assert cells[0]["cell_type"] == "markdown" and first.startswith("# ")
    assert "colab-badge.svg" in first and path.name in first, "Colab badge must link to this notebook"
    assert "What you will learn" in first
    setup = "".join(cells[1]["source"])
    assert "google.colab" in setup and "pip install" in setup
    tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    params = "".join(tagged[0]["source"])
    assert 'FAST = os.environ.get("SPIKECLIP_FAST", "0") == "1"' in params and "DEVICE" in params
    assert any("assert" in "".join(c["source"]) for c in cells if c["cell_type"] == "code"), "needs check cells"


@pytest.mark.notebook
@pytest.mark.parametrize("path", BOOKS, ids=lambda p: p.stem)
def test_notebook_executes_in_fast_mode(path, tmp_path):
    import papermill as pm

    out_dir = TIMINGS.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    fast = os.environ.get("SPIKECLIP_FAST", "1") == "1"
    t0 = time.perf_counter()
    pm.execute_notebook(
        str(path),
        str(out_dir / path.name),
        kernel_name="python3",
        cwd=str(NOTEBOOKS),
        # the notebooks' own default OUTPUT_DIR (../outputs): stages and data cached by one notebook are
        # reused by the next (and by the nbval pass), as they are for a reader going through the course
        parameters={"FAST": fast, "OUTPUT_DIR": str(TIMINGS.parent.parent)},
        progress_bar=False,
        execution_timeout=600,  # a hung cell fails the test instead of stalling CI
    )
    seconds = time.perf_counter() - t0
    times = json.loads(TIMINGS.read_text()) if TIMINGS.exists() else {}
    times[path.name] = round(seconds, 1)
    TIMINGS.write_text(json.dumps(times, indent=2))
