"""The teaching CLIPs: the shipped weights meet the course's thresholds, and the training tool works."""

import json

import numpy as np
import pytest
import torch

from spikeclip_lite import clip as C
from spikeclip_lite import data, teaching_clip


@pytest.fixture(scope="module")
def held_out():
    return teaching_clip.held_out_set(60, seed_base=teaching_clip.TEST_SEEDS + 500)


@pytest.mark.parametrize("which", ["guide", "judge"])
def test_teaching_clips_meet_the_course_thresholds(which, guide, judge, held_out):
    """Held-out scenes (seeds never used in training): zero-shot ≥ 90 %, quality ≥ 90 %."""
    clip = guide if which == "guide" else judge
    labels = torch.from_numpy(held_out["labels"])
    clean = torch.from_numpy(held_out["clean"]).unsqueeze(1)
    acc = float((clip.zero_shot(clean, data.CLASSES).argmax(1) == labels).float().mean())
    q_clean = clip.quality_score(clean)
    q_bad = clip.quality_score(torch.from_numpy(held_out["degraded"]).unsqueeze(1))
    quality = float(torch.cat([q_clean > 0.5, q_bad <= 0.5]).float().mean())
    assert acc >= 0.9, f"{which}: zero-shot accuracy {acc:.2f}"
    assert quality >= 0.9, f"{which}: quality discrimination {quality:.2f}"


def test_quality_score_ignores_brightness(guide, held_out):
    clean = held_out["clean"][:40]
    q = guide.quality_score(torch.from_numpy(clean).unsqueeze(1))
    q_shift = guide.quality_score(torch.from_numpy(teaching_clip.photometric_shift(clean)).unsqueeze(1))
    assert float((q - q_shift).abs().mean()) < 0.05


def test_shipped_weights_fit_the_budget():
    reg = json.loads(C.REGISTRY.read_text())
    sizes = [(C.ASSETS / reg[w]["file"]).stat().st_size for w in ("guide", "judge")]
    assert sum(sizes) <= 10_000_000, sizes
    assert reg["guide"]["seed"] != reg["judge"]["seed"] and reg["guide"]["arch"] != reg["judge"]["arch"]


def test_training_smoke_and_compact_round_trip(tmp_path):
    """A few steps of the real training script, saved compactly and reloaded through open_clip."""
    model, info = teaching_clip.train("guide", steps=3, batch=16, n_scenes=6, progress=False, device="cpu")
    assert np.isfinite(info["final_loss"]) and info["steps"] == 3
    path = tmp_path / "smoke.safetensors"
    sha = teaching_clip.save_compact(model, info["arch"], path, info)
    assert sha == teaching_clip.file_sha256(path)
    clip = C.load_teaching_clip(path=path, device="cpu")
    x = torch.rand(2, 1, 64, 64)
    ref = C.wrap_model(model, info["arch"], "fresh", torch.device("cpu"), True)
    torch.testing.assert_close(clip.encode_image(x), ref.encode_image(x), atol=2e-2, rtol=0)
    torch.testing.assert_close(
        clip.encode_text(["image of a star"]), ref.encode_text(["image of a star"]), atol=2e-2, rtol=0
    )
