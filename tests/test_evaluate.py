import shutil

import numpy as np
import pytest
import torch
from conftest import write_bad_uhsr_files

from spikeclip_lite import evaluate, io, models, nriqa, samples
from spikeclip_lite.__main__ import main


@pytest.fixture
def folder(tmp_path, rng):
    d = tmp_path / "uhsr"
    d.mkdir()
    shutil.copy(samples.DEFAULT_DIR / "star_moving_lowlight_uhsr.npz", d / "0.npz")
    io.write_uhsr(d / "1.npz", (rng.random((200, 250, 250)) < 0.03).astype(np.uint8), 7)
    io.write_uhsr(d / "5000.npz", (rng.random((200, 250, 250)) < 0.03).astype(np.uint8), 3)
    return d


@pytest.fixture(scope="module")
def clip():
    from spikeclip_lite.clip import load_clip

    return load_clip("teaching", device="cpu")


def test_evaluate_folder_with_baselines(folder, clip):
    r = evaluate.evaluate(folder, "tfp", clip, classes="course", progress=False)
    assert [f["file"] for f in r["files"]] == ["0.npz", "1.npz", "5000.npz"]
    s = r["summary"]
    assert s["files"] == 3 and 0 <= s["zero_shot_accuracy"] <= 1 and 0 <= s["clip_quality"] <= 1
    assert s["pyiqa"] != "ok" or "niqe" in s  # unavailable offline: says why


def test_corrupt_file_fails_unless_skipped(folder, clip):
    (folder / "2.npz").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="2.npz"):
        evaluate.evaluate(folder, "tfi", clip, progress=False)
    r = evaluate.evaluate(folder, "tfi", clip, skip_bad=True, progress=False)
    assert r["summary"]["files"] == 3 and [s["file"] for s in r["skipped"]] == ["2.npz"]


def test_lrn_method_and_dat_files(tmp_path, clip):
    torch.manual_seed(0)
    w = models.save_lrn(models.LRN(), tmp_path / "lrn.pth")
    lrn = models.load_lrn(w)
    r = evaluate.evaluate(samples.DEFAULT_DIR / "star_moving_lowlight_uhsr.npz", "lrn", clip, lrn, progress=False)
    assert r["summary"]["files"] == 1
    dat = evaluate.evaluate(
        samples.DEFAULT_DIR / "car_moving_lowlight.dat",
        "tfp",
        clip,
        height=128,
        width=128,
        progress=False,
        use_pyiqa=False,
    )
    assert dat["files"][0]["label"] is None and dat["summary"]["zero_shot_accuracy"] is None
    with pytest.raises(ValueError, match="needs weights"):
        evaluate.evaluate(
            samples.DEFAULT_DIR / "car_moving_lowlight.dat", "lrn", clip, height=128, width=128, progress=False
        )


def _released_style_state_dict():
    block = lambda i, o: torch.nn.Sequential(torch.nn.Conv2d(i, o, 3, 1, 1), torch.nn.ReLU())  # noqa: E731
    net = torch.nn.Sequential(
        block(50, 64), block(64, 128), block(128, 64), block(64, 16), torch.nn.Conv2d(16, 1, 3, 1, 1)
    )
    return net.state_dict()


@pytest.mark.parametrize("wrap", ["plain", "state_dict", "module"])
def test_load_lrn_handles_released_layouts(tmp_path, wrap):
    sd = _released_style_state_dict()
    if wrap == "state_dict":
        sd = {"state_dict": sd}
    elif wrap == "module":
        sd = {f"module.{k}": v for k, v in sd.items()}
    torch.save(sd, tmp_path / "ckpt.pth")
    lrn = models.load_lrn(tmp_path / "ckpt.pth")
    assert models.count_parameters(lrn) == 185_889


def test_load_lrn_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        models.load_lrn(tmp_path / "none.pth")
    torch.save({"0.0.weight": torch.zeros(3)}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="not an LRN"):
        models.load_lrn(tmp_path / "bad.pth")
    (tmp_path / "junk.pth").write_bytes(b"junk")
    with pytest.raises(ValueError, match="not a readable"):
        models.load_lrn(tmp_path / "junk.pth")


def test_uhsr_dataset_split(folder):
    train = evaluate.UHSRDataset(folder, "train")
    test = evaluate.UHSRDataset(folder, "test")
    assert len(train) == 2 and len(test) == 1
    vox, label = test[0]
    assert vox.shape == (50, 224, 224) and label == 3
    with pytest.raises(ValueError, match="split"):
        evaluate.UHSRDataset(folder, "val")


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


def _cli_evaluate(folder, out, *extra: str) -> int:
    """``python -m spikeclip_lite evaluate`` on ``folder`` with the teaching CLIP and the course's classes."""
    args = ["evaluate", "--data", str(folder), "--clip", "teaching", "--classes", "course", "--out", str(out)]
    return main([*args, *extra])


def test_cli_evaluate(folder, tmp_path, capsys):
    out = tmp_path / "res.json"
    assert _cli_evaluate(folder, out, "--method", "tfp", "tfi") == 0
    text = capsys.readouterr().out
    assert "| tfp |" in text and "| tfi |" in text and out.exists()


def test_skip_bad_skips_every_unreadable_recording_and_scores_the_rest(folder, clip, rng, tmp_path):
    reasons = write_bad_uhsr_files(folder, rng)
    io.write_uhsr(folder / "7.npz", (rng.random((200, 250, 250)) < 0.03).astype(np.uint8), 500)  # label out of range
    r = evaluate.evaluate(folder, "tfp", clip, classes="course", skip_bad=True, progress=False)
    skipped = {s["file"]: s["error"] for s in r["skipped"]}
    assert set(skipped) == {*reasons, "7.npz"} and "label 500" in skipped["7.npz"]
    assert all(why in skipped[name] for name, why in reasons.items())
    assert r["summary"]["files"] == 3  # the good recordings are still scored
    out = tmp_path / "res.json"
    assert _cli_evaluate(folder, out, "--skip-bad") == 0
    assert out.exists()
