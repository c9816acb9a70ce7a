"""Device placement, checked on a CPU-only machine: the model is put on a *fake* CUDA device
(``torch``'s FakeTensorMode computes shapes and devices without a GPU and raises on the same
cross-device mix a real GPU would), the data stays on the CPU as in the notebooks."""

import numpy as np
import pytest
import torch
from conftest import make_tiny_clip
from torch._subclasses.fake_tensor import FakeTensorDeviceMismatchError, FakeTensorMode

from spikeclip_lite import data, models, train

CUDA = torch.device("cuda")


@pytest.fixture
def fake_cuda():
    with FakeTensorMode(allow_non_fake_inputs=True) as mode:
        yield mode


def _to_fake_cuda(module: torch.nn.Module) -> torch.nn.Module:
    """``module.to("cuda")`` inside FakeTensorMode (``Module.to`` cannot swap real tensors for fake ones):
    every parameter and buffer replaced by a fake CUDA tensor of its shape and dtype."""
    for mod in module.modules():
        for k, p in mod._parameters.items():
            if p is not None:
                mod._parameters[k] = torch.nn.Parameter(torch.empty_like(p, device=CUDA), p.requires_grad)
        for k, b in mod._buffers.items():
            if b is not None:
                mod._buffers[k] = torch.empty_like(b, device=CUDA)
    return module


@pytest.fixture
def clip_on_fake_cuda():
    """A tiny CLIP whose model sits on (fake) CUDA, as ``load_clip(device="cuda")`` would place it."""
    clip = make_tiny_clip()  # built for real, then moved inside the fake mode
    _ = clip.logit_scale  # a Python number, read once from the real weights
    with FakeTensorMode(allow_non_fake_inputs=True):
        _to_fake_cuda(clip.model)
        clip.device = CUDA
        yield clip


def test_fake_cuda_catches_the_mix_notebook_03_hit(clip_on_fake_cuda):
    """The check is meaningful: logits live on the model's device and comparing them with CPU labels
    raises here exactly as it did on the H100 (notebook 03, cell 9)."""
    clip = clip_on_fake_cuda
    images = torch.rand(4, 1, 64, 64)
    labels = torch.arange(4)
    logits = clip.logits(images, clip.class_features(data.CLASSES))
    assert logits.device.type == "cuda"
    with pytest.raises(FakeTensorDeviceMismatchError):
        _ = logits.argmax(1) == labels


def test_scores_come_back_on_the_callers_device(clip_on_fake_cuda):
    clip = clip_on_fake_cuda
    images = torch.from_numpy(np.random.default_rng(0).random((4, 64, 64), dtype=np.float32)).unsqueeze(1)
    labels = torch.arange(4)
    probs = clip.zero_shot(images, data.CLASSES)
    assert probs.device.type == "cpu" and probs.shape == (4, len(data.CLASSES))
    correct = probs.argmax(1) == labels  # notebook 03's accuracy(): no device error
    assert correct.device.type == "cpu"
    assert clip.quality_score(images).device.type == "cpu"


@pytest.mark.filterwarnings("ignore:CUDA is not available")  # autocast off under fake CUDA
def test_reconstruct_returns_cpu_images_from_a_gpu_network(fake_cuda):
    lrn = _to_fake_cuda(models.LRN())
    out = train.reconstruct(lrn, torch.rand(3, 50, 16, 16, dtype=torch.float16))
    assert out.device.type == "cpu" and out.shape == (3, 16, 16)


def test_full_mode_trains_under_bf16_autocast_channels_last_and_fused_adam(tmp_path, monkeypatch):
    """What only CUDA runs, rehearsed on the CPU: every stage under bf16 autocast (``train.autocast``), the
    LRN in channels_last (``train.on_device``) and Adam's fused kernel. A float32/bf16 mix that a GPU run
    would trip over (an in-place write, a ``torch.where``, a comparison) fails here first."""
    import math
    from dataclasses import replace

    from spikeclip_lite import pipeline, settings

    calls = []

    def bf16_autocast(dev):
        calls.append(dev.type)
        return torch.autocast("cpu", dtype=torch.bfloat16)

    real_on_device, real_adam = train.on_device, torch.optim.Adam

    def channels_last(lrn, train_set, cfg):
        model, data_ = real_on_device(lrn, train_set, cfg)
        lrn.to(memory_format=torch.channels_last)
        return model, data_

    def fused_adam(*args, fused=None, **kwargs):
        calls.append("fused")
        return real_adam(*args, fused=True, **kwargs)

    monkeypatch.setattr(train, "autocast", bf16_autocast)
    monkeypatch.setattr(train, "on_device", channels_last)
    monkeypatch.setattr(torch.optim, "Adam", fused_adam)
    real_forward = models.LRN.forward

    def forward(self, *args, **kwargs):
        out = real_forward(self, *args, **kwargs)
        calls.append(out.dtype)
        return out

    monkeypatch.setattr(models.LRN, "forward", forward)
    cfg = replace(
        settings.FULL, size=32, n_train=8, n_val=4, n_test=4, n_hq=8, batch=4, steps_coarse=4, steps_prompts=3,
        steps_fine=3, steps_supervised=3, warmup_steps=2, crop=16, supervised_crop=16, clip="teaching", device="cpu",
    )  # fmt: skip
    result = pipeline.run_pipeline(cfg, tmp_path, progress=False)
    assert calls.count("fused") >= 3 and calls.count("cpu") >= 6, calls  # coarse, fine, bound, and their validations
    assert calls.count(torch.bfloat16) >= 3 * 2, "the LRN did not run under bf16 autocast"
    for method in ("coarse", "fine", "supervised"):
        for part in ("static", "moving"):
            row = result["table"][method][part]
            assert all(math.isfinite(row[k]) for k in ("psnr", "aligned_psnr", "ssim", "texture")), (method, row)
    fine = result["histories"]["fine"]
    assert fine["val_score"] and all(math.isfinite(v) for v in fine["val_score"])


def test_bf16_only_on_gpus_that_compute_in_it(monkeypatch):
    """Colab's free T4 (compute capability 7.5) only emulates bf16: the stages run there in fp32, and in bf16
    on an A100/H100 (8.0+); never on the CPU."""
    assert train.autocast_dtype(torch.device("cpu")) is None
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    for capability, expected in (((7, 5), None), ((8, 0), torch.bfloat16), ((9, 0), torch.bfloat16)):
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None, c=capability: c)
        assert train.autocast_dtype(CUDA) is expected, capability
