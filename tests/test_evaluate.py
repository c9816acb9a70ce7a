import shutil

import numpy as np
import pytest
import torch
from conftest import write_bad_uhsr_files

from spikeclip_lite import evaluate, io, metrics, models, samples
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


def test_uhsr_dataset_split(folder):
    train = evaluate.UHSRDataset(folder, "train")
    test = evaluate.UHSRDataset(folder, "test")
    assert len(train) == 2 and len(test) == 1
    vox, label = test[0]
    assert vox.shape == (50, 224, 224) and label == 3
    with pytest.raises(ValueError, match="split"):
        evaluate.UHSRDataset(folder, "val")


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


# -- the official protocol, ground truth, images, honest n/a (issue 14) -------------------------------------


def _spikezoo_folder(root, n=2, size=48, frames=201):
    """A tiny Spike-Zoo layout: spike/NAME.dat + gt/NAME.png (the true frame at the middle of a moving scene)."""
    from PIL import Image

    from spikeclip_lite import data, physics

    (root / "spike").mkdir(parents=True)
    (root / "gt").mkdir()
    for i in range(n):
        sc = data.make_scene(40 + i, size=size, motion=True, n_frames=frames)
        io.write_dat(root / "spike" / f"scene{i}.dat", physics.simulate(sc.video, None, seed=i))
        gt = (sc.video[frames // 2] * 255).round().astype(np.uint8)
        Image.fromarray(gt, mode="L").save(root / "gt" / f"scene{i}.png")
    return root


def test_spikezoo_layout_is_scored_against_its_ground_truth(tmp_path, clip):
    root = _spikezoo_folder(tmp_path / "zoo")
    assert [p.name for p in io.find_streams(root)] == ["scene0.dat", "scene1.dat"]
    kw = dict(classes="course", height=48, width=48, progress=False, use_pyiqa=False)
    r = evaluate.evaluate(root, "tfp", clip, **kw)
    f = r["files"][0]
    spikes = io.read_dat(root / "spike" / "scene0.dat", 48, 48)
    gt = io.read_ground_truth(root / "spike" / "scene0.dat")
    raw = torch.as_tensor(evaluate.baselines.tfp(torch.from_numpy(spikes))).float()
    assert f["psnr"] == pytest.approx(float(metrics.psnr(raw.clamp(0, 1).numpy(), gt)), abs=1e-4)
    assert f["ssim"] == pytest.approx(float(metrics.ssim_uniform(raw.clamp(0, 1).numpy(), gt)), abs=1e-4)
    assert f["aligned_psnr"] > f["psnr"]  # the gain/offset fit can only help
    s = r["summary"]
    assert s["psnr"] is not None and s["zero_shot_accuracy"] is None and "label" in s["notes"]["zero_shot_accuracy"]
    assert s["lpips"] is None and "lpips" in s["notes"]  # not installed here: reported, with the reason
    # --tfp-window: 41 frames around the key frame follow the motion better than all 201 frames
    w = evaluate.evaluate(root, "tfp", clip, tfp_window=41, **kw)
    assert w["summary"]["tfp_window"] == 41 and w["summary"]["aligned_psnr"] > s["aligned_psnr"] + 1
    with pytest.raises(ValueError, match="odd number of frames"):
        evaluate.evaluate(root, "tfp", clip, tfp_window=40, **kw)


def test_uhsr_ground_truth_inside_the_file_or_beside_it(tmp_path, rng, clip):
    spk = (rng.random((200, 250, 250)) < 0.05).astype(np.uint8)
    gt = (rng.random((250, 250)) * 255).astype(np.uint8)
    np.savez_compressed(tmp_path / "0.npz", spk=spk, label=np.array(1), gt=gt)
    io.write_uhsr(tmp_path / "1.npz", spk, 2)  # no ground truth
    got = io.read_ground_truth(tmp_path / "0.npz")
    assert got.shape == (224, 224) and np.allclose(got, gt[13:237, 13:237] / 255)
    assert io.read_ground_truth(tmp_path / "1.npz") is None
    r = evaluate.evaluate(tmp_path, "tfi", clip, classes="course", progress=False, use_pyiqa=False)
    with_gt, without = r["files"]
    assert with_gt["psnr"] is not None and without["psnr"] is None
    sample = evaluate.evaluate(samples.DEFAULT_DIR / "star_moving_lowlight_uhsr.npz", "tfp", clip, "course")
    assert sample["files"][0]["aligned_psnr"] is not None  # the course's sample: its _gt.npz beside it
    car = samples.DEFAULT_DIR / "car_moving_lowlight.dat"  # a .dat with its _gt.npz beside it
    assert io.read_ground_truth(car).shape == (128, 128)
    np.savez_compressed(tmp_path / "2.npz", spk=spk, label=np.array(1), gt=np.full((250, 250), 2.0, np.float32))
    with pytest.raises(ValueError, match=r"2.npz.*\[0, 1\]"):
        evaluate.evaluate(tmp_path, "tfi", clip, classes="course", progress=False, use_pyiqa=False)


def test_official_protocol_scores_the_raw_output_and_saves_the_display_image(tmp_path, clip):
    from PIL import Image

    torch.manual_seed(0)
    lrn = models.LRN()
    star = samples.DEFAULT_DIR / "star_moving_lowlight_uhsr.npz"
    spikes, _ = io.read_uhsr(star)
    rec = evaluate.reconstruct(spikes, "lrn", lrn)
    assert float(rec.raw.max()) < 0.2  # an untrained LRN's raw output is dim …
    assert 0 <= rec.display.min() and float(rec.display.max()) == 1  # … the display image is stretched
    r = evaluate.evaluate(star, "lrn", clip, lrn, "course", progress=False, use_pyiqa=False, save_images=tmp_path)
    raw_q = float(clip.quality_score(rec.raw[None, None])[0])
    assert r["files"][0]["clip_quality"] == pytest.approx(raw_q, abs=1e-5) and r["summary"]["scored_image"] == "raw"
    png = np.asarray(Image.open(tmp_path / "star_moving_lowlight_uhsr_lrn.png")).astype(np.float32) / 255
    assert np.abs(png - rec.display.numpy()).max() <= 0.5 / 255 + 1e-6


def test_accuracy_is_na_when_the_clip_does_not_know_the_class_names(folder, clip, monkeypatch):
    r = evaluate.evaluate(folder, "tfp", clip, classes="ucaltech", progress=False, use_pyiqa=False)
    s = r["summary"]
    assert s["zero_shot_accuracy"] is None and "does not know" in s["notes"]["zero_shot_accuracy"]
    assert all(f["correct"] is None for f in r["files"])
    table = evaluate.format_summary([s])
    assert "| n/a |" in table and "does not know" in table and "0.000" not in table.split("\n")[2].split("|")[3]
    monkeypatch.setitem(__import__("sys").modules, "pyiqa", None)  # import fails: pyiqa missing
    s2 = evaluate.evaluate(folder, "tfp", clip, classes="course", progress=False)["summary"]
    assert s2["niqe"] is None and "not installed" in s2["notes"]["niqe"]
    assert isinstance(s2["zero_shot_accuracy"], float)  # the course's classes: the teaching CLIP knows them


def test_offline_real_clip_is_a_one_line_error(folder, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(SystemExit) as stop:
        main(["evaluate", "--data", str(folder), "--clip", "ViT-B-32", "--out", str(tmp_path / "r.json")])
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and len(err.splitlines()) == 1 and "load_clip('teaching')" in err


def test_reflect_padding_removes_the_lrn_border_frame():
    """A uniform stream: with zero padding the border pixels differ from the centre; with reflect padding
    (20 px, cropped back) the output is uniform up to the network's receptive field."""
    torch.manual_seed(0)
    lrn = models.LRN()
    spikes = np.zeros((200, 64, 64), np.uint8)
    spikes[::4] = 1  # every pixel fires every 4th frame
    zero, refl = evaluate.run_lrn(lrn, spikes, "zero"), evaluate.run_lrn(lrn, spikes, "reflect")
    assert zero.shape == refl.shape == (64, 64)
    centre = float(zero[32, 32])
    assert abs(float(zero[0].mean()) - centre) > 1e-3
    assert float((refl - centre).abs().max()) < 1e-4
    with pytest.raises(ValueError, match="pad is one of"):
        evaluate.run_lrn(lrn, spikes, "circular")
