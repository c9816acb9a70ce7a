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
