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


def test_course_passes_settings_to_the_notebooks_that_train(tmp_path, monkeypatch, capsys):
    """`course --set KEY=VALUE …` reaches 04–07's SETTINGS parameter (and no other notebook); papermill is
    replaced by a recorder, so nothing executes."""
    import papermill

    seen: dict[str, dict] = {}
    monkeypatch.setattr(
        papermill, "execute_notebook", lambda src, dst, parameters, **kw: seen.update({src: parameters})
    )
    assert main(["course", "--out", str(tmp_path), "--set", "n_train=16", "steps_coarse=10"]) == 0
    by_number = {name.rsplit("/", 1)[-1][:2]: p for name, p in seen.items()}
    assert sorted(by_number) == ["01", "02", "03", "04", "05", "06", "07"]
    for number, p in by_number.items():
        if number >= "04":
            assert p["SETTINGS"] == "n_train=16 steps_coarse=10", number
        else:
            assert "SETTINGS" not in p, number  # 01–03 train nothing: no such parameter


def test_course_refuses_a_bad_setting_before_any_notebook_runs(tmp_path, monkeypatch):
    import papermill

    from spikeclip_lite.course import run_notebooks

    monkeypatch.setattr(papermill, "execute_notebook", lambda *a, **kw: pytest.fail("a notebook started"))
    with pytest.raises(ValueError, match="n_tran"):
        run_notebooks(tmp_path / "out", fast=False, settings=["n_tran=16"])
    with pytest.raises(ValueError, match="seed is a notebook parameter \\(SEED\\)"):
        run_notebooks(tmp_path / "out", fast=False, settings=["seed=1"])  # the notebooks seed from SEED
    assert not (tmp_path / "out").exists()


def test_course_without_papermill_says_how_to_install_it(tmp_path, monkeypatch):
    """`make run` installs the runtime only; running the course headless then names the missing tool."""
    import sys

    from spikeclip_lite.course import run_notebooks

    monkeypatch.setitem(sys.modules, "papermill", None)  # `import papermill` raises ImportError
    with pytest.raises(ImportError, match=r"papermill.*pip install -e '\.\[dev\]'"):
        run_notebooks(tmp_path / "out", fast=True, only=["01_"])
    assert not (tmp_path / "out").exists()
