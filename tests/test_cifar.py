"""CIFAR-10 as training data: the reader on a fabricated copy in the real on-disk format, the
download path (torchvision replaced by a fake that writes the files), camera pans, and the
pipeline end to end with --set dataset=cifar10."""

import pickle
import sys
import types

import numpy as np
import pytest
import torch

from spikeclip_lite import cifar, data, spike_data
from spikeclip_lite.cifar import load_cifar10, write_cifar10_batches


def test_reads_fabricated_copy(tmp_path):
    write_cifar10_batches(tmp_path, n_train=23, n_test=7)
    train, test = load_cifar10(tmp_path), load_cifar10(tmp_path, train=False)
    assert train.images.shape == (23, 32, 32, 3) and train.images.dtype == np.uint8
    assert len(test) == 7 and test.labels.tolist() == [0, 1, 2, 3, 4, 5, 6]
    assert train.classes[0] == "airplane" and train.classes[-1] == "truck"
    # rows of 'data' are channel-planar (R plane, G plane, B plane): check the transpose
    raw = pickle.loads((tmp_path / cifar.DIRNAME / "data_batch_1").read_bytes(), encoding="bytes")
    first = raw[b"data"][0].reshape(3, 32, 32)
    np.testing.assert_array_equal(train.images[0, :, :, 1], first[1])


def test_missing_files_say_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="download=True"):
        load_cifar10(tmp_path)
    write_cifar10_batches(tmp_path, n_train=10, n_test=2)
    (tmp_path / cifar.DIRNAME / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match="data_batch_3"):
        load_cifar10(tmp_path)
    load_cifar10(tmp_path, train=False)  # the test split does not need it


def test_malformed_batches_are_refused(tmp_path):
    folder = write_cifar10_batches(tmp_path, n_train=10, n_test=4)
    bad = {b"data": np.zeros((4, 100), np.uint8), b"labels": [0, 1, 2, 3]}
    (folder / "test_batch").write_bytes(pickle.dumps(bad, protocol=2))
    with pytest.raises(ValueError, match=r"\(N, 3072\)"):
        load_cifar10(tmp_path, train=False)
    bad = {b"data": np.zeros((4, 3072), np.uint8), b"labels": [0, 1, 2, 12]}
    (folder / "test_batch").write_bytes(pickle.dumps(bad, protocol=2))
    with pytest.raises(ValueError, match=r"labels in \[0, 9\]"):
        load_cifar10(tmp_path, train=False)
    (folder / "test_batch").write_bytes(b"\x80\x02}q\x00")  # truncated pickle
    with pytest.raises(ValueError, match="not a readable CIFAR-10"):
        load_cifar10(tmp_path, train=False)


def test_unpickler_refuses_code(tmp_path):
    """A batch that would run code on load (pickle's classic hazard) is refused, not executed."""
    folder = write_cifar10_batches(tmp_path, n_train=10, n_test=4)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (folder / "test_batch").write_bytes(pickle.dumps({b"data": Evil()}, protocol=2))
    with pytest.raises(ValueError, match=r"refusing to load (__builtin__|builtins)\.print"):
        load_cifar10(tmp_path, train=False)


def test_download_goes_through_torchvision(tmp_path, monkeypatch):
    calls = []

    class FakeCIFAR10:  # stands in for torchvision.datasets.CIFAR10(root, train, download=True)
        def __init__(self, root, train=True, download=False):
            calls.append((root, train, download))
            write_cifar10_batches(root, n_train=10, n_test=5)

    fake = types.SimpleNamespace(datasets=types.SimpleNamespace(CIFAR10=FakeCIFAR10))
    monkeypatch.setitem(sys.modules, "torchvision", fake)
    test = load_cifar10(tmp_path, train=False, download=True)
    assert calls == [(str(tmp_path), True, True)] and len(test) == 5
    load_cifar10(tmp_path, download=True)  # complete now: no second download
    assert len(calls) == 1


def test_grey_images():
    rgb = np.zeros((2, 32, 32, 3), np.uint8)
    rgb[0, ..., 1] = 255  # pure green → luma 0.587
    g = cifar.grey_images(rgb, size=64)
    assert g.shape == (2, 64, 64) and g.dtype == torch.float32
    assert g[0].mean().item() == pytest.approx(0.587, abs=1e-3) and g[1].max() == 0
    with pytest.raises(ValueError, match="RGB"):
        cifar.grey_images(np.zeros((2, 32, 32), np.uint8))


def test_pan_video_key_frame_is_the_image():
    img = torch.rand(24, 24)
    video = data.pan_video(img, seed=3, n_frames=40)
    assert video.shape == (40, 24, 24) and 0 <= video.min() and video.max() <= 1
    torch.testing.assert_close(video[20], img, atol=1e-5, rtol=0)  # the middle frame: no shift
    assert (video[0] - video[-1]).abs().mean() > 0.05  # and it does move
    torch.testing.assert_close(video, data.pan_video(img, seed=3, n_frames=40))  # seeded
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        data.pan_video(torch.rand(2, 8, 8), seed=0)


def test_spike_set_from_images():
    images, labels = torch.rand(4, 16, 16), torch.tensor([3, 1, 4, 1])
    s = spike_data.spike_set_from_images(images, labels, "val", n_frames=200, progress=False)
    assert s.voxels.shape == (4, 50, 16, 16) and s.moving.tolist() == [False, True, False, True]
    torch.testing.assert_close(s.gt, images)
    assert s.labels.tolist() == [3, 1, 4, 1]
    with pytest.raises(ValueError, match="one label each"):
        spike_data.spike_set_from_images(images, labels[:3], progress=False)
