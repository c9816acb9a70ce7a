import pytest

from spikeclip_lite.__main__ import main


def test_samples_command_writes_manifest(tmp_path, capsys):
    assert main(["samples", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "manifest.json").exists()
    assert "manifest.json" in capsys.readouterr().out


def test_unknown_command_exits():
    with pytest.raises(SystemExit):
        main(["fly"])


def test_course_runner_executes_notebooks_with_parameters(tmp_path):
    """The machinery behind `make course` / `make test-gpu`: papermill with FAST/DEVICE/OUTPUT_DIR."""
    import json

    from spikeclip_lite.course import run_notebooks

    times = run_notebooks(tmp_path, fast=True, device="cpu", only=["01_"])
    assert list(times) == ["01_spike_camera_physics.ipynb"] and times["01_spike_camera_physics.ipynb"] > 0
    assert json.loads((tmp_path / "timings.json").read_text()) == times
    executed = json.loads((tmp_path / "01_spike_camera_physics.ipynb").read_text())
    injected = [c for c in executed["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert injected and 'DEVICE = "cpu"' in "".join(injected[0]["source"])
    assert (tmp_path / "01_spike_camera_physics" / "classes.png").exists()
