"""No-reference image quality: noise σ, sharpness, and pyiqa's metrics when present."""

import numpy as np
import pytest
import torch

from spikeclip_lite import evaluate, nriqa


def test_noise_and_sharpness_measures(rng):
    flat = np.full((64, 64), 0.5, np.float32)
    noisy = flat + 0.1 * rng.standard_normal((64, 64)).astype(np.float32)
    assert float(nriqa.noise_sigma(flat)[0]) < 1e-6
    assert float(nriqa.noise_sigma(noisy)[0]) == pytest.approx(0.1, rel=0.1)
    edge = np.zeros((64, 64), np.float32)
    edge[:, 32:] = 1
    blurred = np.convolve(edge[0], np.ones(9) / 9, mode="same")[None].repeat(64, 0).astype(np.float32)
    assert float(nriqa.sharpness(edge)[0]) > float(nriqa.sharpness(blurred)[0])
    with pytest.raises(ValueError, match="NaN"):
        nriqa.noise_sigma(np.full((8, 8), np.nan, np.float32))


def test_pyiqa_unavailable_is_reported(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_pyiqa(name, *a, **k):
        if name == "pyiqa":
            raise ImportError("no pyiqa")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_pyiqa)
    scores, why = nriqa.pyiqa_scores(np.zeros((1, 16, 16), np.float32))
    assert scores is None and "not installed" in why


def test_pyiqa_metrics_run_when_present_and_each_failure_is_named(monkeypatch, tmp_path):
    import sys
    import types

    from spikeclip_lite import hub

    seen, paths = [], {}

    def create_metric(name, device="cpu", as_loss=False, pretrained_model_path=None):
        if name == "liqe":
            raise FileNotFoundError("liqe weights not cached")
        paths[name] = pretrained_model_path
        return lambda x: (seen.append(x.clone()), x.mean(dim=(1, 2, 3)))[1]

    monkeypatch.setitem(sys.modules, "pyiqa", types.SimpleNamespace(create_metric=create_metric))
    imgs = torch.full((2, 16, 16), 1.5)  # raw, above 1: passed unclamped, as the official evaluation does
    # NIQE and BRISQUE take their model files from the verified cache; not pinned yet, they are n/a with why
    scores, status = nriqa.pyiqa_scores(imgs, evaluate.PYIQA_METRICS)
    assert set(scores) == {"clipiqa"} and "liqe" in status and "not cached" in status
    assert "niqe: its model file is not available (UnpinnedFileError" in status and "brisque:" in status
    assert seen[0].shape == (2, 3, 16, 16) and float(seen[0].max()) == 1.5
    # once a file is in the verified cache, pyiqa is handed that file (no download of its own)
    monkeypatch.setattr(hub, "fetch", lambda name, progress=True: tmp_path / f"{name}.bin")
    scores, status = nriqa.pyiqa_scores(imgs, ("niqe", "brisque", "clipiqa"))
    assert set(scores) == {"niqe", "brisque", "clipiqa"} and status == "ok"
    assert paths == {
        "niqe": str(tmp_path / "pyiqa_niqe.bin"),
        "brisque": str(tmp_path / "pyiqa_brisque.bin"),
        "clipiqa": None,
    }
