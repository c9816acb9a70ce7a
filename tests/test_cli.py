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


def test_mode_is_fast_without_cuda_and_full_with_it(monkeypatch, capsys):
    from spikeclip_lite.course import resolve_fast

    monkeypatch.delenv("SPIKECLIP_FAST", raising=False)
    assert resolve_fast(None, cuda=False) is True
    said = capsys.readouterr().out
    assert "FAST mode (no CUDA GPU here)" in said and "FAST = False" in said  # says how to switch
    assert resolve_fast(None, cuda=True) is False
    assert "FULL mode (a CUDA GPU is available)" in capsys.readouterr().out


def test_mode_follows_the_environment_then_the_notebook(monkeypatch):
    from spikeclip_lite.course import resolve_fast

    monkeypatch.setenv("SPIKECLIP_FAST", "0")
    assert resolve_fast(None, cuda=False, say=False) is False  # asked for full mode on a CPU: honoured
    monkeypatch.setenv("SPIKECLIP_FAST", "1")
    assert resolve_fast(None, cuda=True, say=False) is True
    assert resolve_fast(False, cuda=False, say=False) is False  # the notebook's own FAST wins
    monkeypatch.setenv("SPIKECLIP_FAST", "yes")
    with pytest.raises(ValueError, match="SPIKECLIP_FAST must be 0"):
        resolve_fast(None, say=False)
    with pytest.raises(TypeError, match="FAST must be None, True or False"):
        resolve_fast("False", say=False)  # type: ignore[arg-type]
