"""CLIP loading (offline), grey normalisation, prompt embeddings, and the shipped teaching CLIPs."""

import json
import shutil
import time
import warnings

import numpy as np
import open_clip
import pytest
import torch

from spikeclip_lite import clip as C
from spikeclip_lite import data, teaching_clip


@pytest.fixture(scope="module")
def guide():
    return C.load_clip("teaching", device="cpu")


@pytest.fixture(scope="module")
def judge():
    return C.load_clip("teaching", device="cpu", judge=True)


@pytest.fixture(scope="module")
def held_out():
    return teaching_clip.held_out_set(60, seed_base=teaching_clip.TEST_SEEDS + 500)


def test_grey_stats_of_openai_clip():
    m, s = C.grey_stats(open_clip.constants.OPENAI_DATASET_MEAN, open_clip.constants.OPENAI_DATASET_STD)
    assert m == pytest.approx(0.45924, abs=1e-5) and s == pytest.approx(0.17597, abs=1e-5)


def test_teaching_clip_uses_the_papers_grey_normalisation(guide):
    assert guide.teaching and guide.image_size == teaching_clip.IMAGE_SIZE
    assert guide.grey_mean == pytest.approx(0.45924, abs=1e-5) and guide.grey_std == pytest.approx(0.17597, abs=1e-5)


def test_preprocess_is_differentiable_and_resizes(guide):
    x = torch.rand(2, 1, 100, 120, requires_grad=True)
    y = guide.preprocess(x)
    assert y.shape == (2, 3, guide.image_size, guide.image_size)
    guide.encode_image(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="grey"):
        guide.preprocess(torch.rand(2, 3, 64, 64))


def test_model_parameters_are_frozen(guide):
    assert not any(p.requires_grad for p in guide.model.parameters())


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


def test_guide_and_judge_are_different_models(guide, judge):
    x = torch.rand(3, 1, 64, 64)
    assert not torch.allclose(guide.encode_image(x), judge.encode_image(x), atol=1e-3)


def _check_embeddings_path(clip):
    texts = ["image of a star", "a noisy photo", "X X X X"]
    emb, tokens = clip.token_embeddings(texts)
    assert emb.shape[:2] == tokens.shape and emb.shape[2] == clip.token_width
    direct = clip.encode_text(texts)
    via = clip.encode_embeddings(emb, tokens)
    torch.testing.assert_close(via, direct, atol=1e-5, rtol=1e-4)
    # gradients reach learnable prompt vectors
    learn = emb.clone().requires_grad_(True)
    clip.encode_embeddings(learn, tokens)[:, 0].sum().backward()
    assert learn.grad is not None and learn.grad.abs().sum() > 0


def test_prompt_embeddings_teaching(guide, judge):
    _check_embeddings_path(guide)
    _check_embeddings_path(judge)


def test_prompt_embeddings_vit_b32_layout():
    """The real model's text tower (random weights: no download here) takes the same path."""
    model = open_clip.create_model("ViT-B-32", device="cpu")
    clip = C.wrap_model(model, "ViT-B-32", "ViT-B-32/random", torch.device("cpu"), teaching=False)
    assert clip.image_size == 224 and clip.grey_mean == pytest.approx(0.45924, abs=1e-5)
    _check_embeddings_path(clip)


def test_auto_falls_back_offline_quickly(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(C, "_openai_cached_file", lambda: None)

    def no_network(*a, **k):
        raise AssertionError("offline mode must not open a connection")

    monkeypatch.setattr(C.socket, "create_connection", no_network)
    t0 = time.perf_counter()
    with pytest.warns(UserWarning, match="TEACHING CLIP"):
        clip = C.load_clip("auto", device="cpu")
    assert clip.teaching and time.perf_counter() - t0 < 5
    t0 = time.perf_counter()
    with pytest.raises(C.ClipUnavailableError, match="HF_HUB_OFFLINE"):
        C.load_clip("ViT-B-32", device="cpu")
    assert time.perf_counter() - t0 < 5


def test_unreachable_hub_is_decided_fast(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(C, "_openai_cached_file", lambda: None)
    with socket_closed_port() as port:
        monkeypatch.setattr(C, "HUB_HOST", ("127.0.0.1", port))
        t0 = time.perf_counter()
        assert not C.hub_reachable(timeout=2.0)
        with pytest.raises(C.ClipUnavailableError, match="cannot be reached"):
            C.load_clip("ViT-B-32", device="cpu")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert C.load_clip("auto", device="cpu").teaching
        assert time.perf_counter() - t0 < 5


class socket_closed_port:
    """A loopback port with nothing listening (bind, read the port, close)."""

    def __enter__(self) -> int:
        import socket

        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        return self.port

    def __exit__(self, *exc) -> None:
        return None


def test_cached_openai_weights_are_found_without_network(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    import huggingface_hub.constants as hc

    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(tmp_path))
    repo = tmp_path / ("models--" + C.OPENAI_HF_REPO.replace("/", "--"))
    snap = repo / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    (snap / "open_clip_model.safetensors").write_bytes(b"fake")
    assert C._openai_cached_file() == str(snap / "open_clip_model.safetensors")


def test_arch_and_weights_file_pair_loads_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    teaching_clip.register_configs()
    entry = json.loads(teaching_clip.REGISTRY.read_text())["guide"]
    full = tmp_path / "full.pt"
    torch.save(teaching_clip._expand(teaching_clip.ASSETS / entry["file"], entry["arch"]), full)
    clip = C.load_clip((entry["arch"], str(full)), device="cpu")
    assert not clip.teaching and clip.name.endswith("full.pt")


def test_corrupt_weights_are_rejected(tmp_path, monkeypatch):
    assets = tmp_path / "assets"
    shutil.copytree(teaching_clip.ASSETS, assets)
    f = assets / json.loads((assets / "teaching_clip.json").read_text())["guide"]["file"]
    raw = bytearray(f.read_bytes())
    raw[-10] ^= 0xFF
    f.write_bytes(bytes(raw))
    monkeypatch.setattr(teaching_clip, "ASSETS", assets)
    monkeypatch.setattr(teaching_clip, "REGISTRY", assets / "teaching_clip.json")
    with pytest.raises(ValueError, match="corrupt"):
        teaching_clip.load_teaching_clip()


def test_shipped_weights_fit_the_budget():
    reg = json.loads(teaching_clip.REGISTRY.read_text())
    sizes = [(teaching_clip.ASSETS / reg[w]["file"]).stat().st_size for w in ("guide", "judge")]
    assert sum(sizes) <= 10_000_000, sizes
    assert reg["guide"]["seed"] != reg["judge"]["seed"] and reg["guide"]["arch"] != reg["judge"]["arch"]


def test_unknown_name():
    with pytest.raises(ValueError, match="unknown CLIP"):
        C.load_clip("ViT-Z-99", device="cpu")


def test_training_smoke_and_compact_round_trip(tmp_path):
    """A few steps of the real training script, saved compactly and reloaded through open_clip."""
    model, info = teaching_clip.train("guide", steps=3, batch=16, n_scenes=6, progress=False, device="cpu")
    assert np.isfinite(info["final_loss"]) and info["steps"] == 3
    path = tmp_path / "smoke.safetensors"
    sha = teaching_clip.save_compact(model, info["arch"], path, info)
    assert sha == teaching_clip.file_sha256(path)
    clip = teaching_clip.load_teaching_clip(path=path, device="cpu")
    x = torch.rand(2, 1, 64, 64)
    ref = C.wrap_model(model, info["arch"], "fresh", torch.device("cpu"), True)
    torch.testing.assert_close(clip.encode_image(x), ref.encode_image(x), atol=2e-2, rtol=0)
    torch.testing.assert_close(
        clip.encode_text(["image of a star"]), ref.encode_text(["image of a star"]), atol=2e-2, rtol=0
    )
