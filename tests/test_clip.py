"""CLIP loading (offline), grey normalisation, prompt embeddings, and the shipped teaching CLIPs."""

import json
import shutil
import time
import warnings

import open_clip
import pytest
import torch

from spikeclip_lite import clip as C


def test_grey_stats_of_openai_clip():
    m, s = C.grey_stats(open_clip.constants.OPENAI_DATASET_MEAN, open_clip.constants.OPENAI_DATASET_STD)
    assert m == pytest.approx(0.45924, abs=1e-5) and s == pytest.approx(0.17597, abs=1e-5)


def test_teaching_clip_uses_the_papers_grey_normalisation(guide):
    assert guide.teaching and guide.image_size == C.IMAGE_SIZE
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
    monkeypatch.setattr(C, "openai_cached_file", lambda: None)

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
    monkeypatch.setattr(C, "openai_cached_file", lambda: None)
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
    assert C.openai_cached_file() == str(snap / "open_clip_model.safetensors")


def test_arch_and_weights_file_pair_loads_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    C.register_configs()
    entry = json.loads(C.REGISTRY.read_text())["guide"]
    full = tmp_path / "full.pt"
    torch.save(C.expand_compact(C.ASSETS / entry["file"], entry["arch"]), full)
    clip = C.load_clip((entry["arch"], str(full)), device="cpu")
    assert not clip.teaching and clip.name.endswith("full.pt")


def test_corrupt_weights_are_rejected(tmp_path, monkeypatch):
    assets = tmp_path / "assets"
    shutil.copytree(C.ASSETS, assets)
    f = assets / json.loads((assets / "teaching_clip.json").read_text())["guide"]["file"]
    raw = bytearray(f.read_bytes())
    raw[-10] ^= 0xFF
    f.write_bytes(bytes(raw))
    monkeypatch.setattr(C, "ASSETS", assets)
    monkeypatch.setattr(C, "REGISTRY", assets / "teaching_clip.json")
    with pytest.raises(ValueError, match="corrupt"):
        C.load_teaching_clip()


def test_unknown_name():
    with pytest.raises(ValueError, match="unknown CLIP"):
        C.load_clip("ViT-Z-99", device="cpu")
