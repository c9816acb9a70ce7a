"""Augmentations before CLIP: random geometry/photometry and native-resolution windows."""

import pytest
import torch

from spikeclip_lite.augment import augment, random_crop
from spikeclip_lite.train import quality_views


def test_random_crop_keeps_native_pixels():
    x = torch.arange(2 * 10 * 12, dtype=torch.float32).reshape(2, 1, 10, 12)
    crops = random_crop(x, 4, torch.Generator().manual_seed(0))
    assert crops.shape == (2, 1, 4, 4)
    for i in range(2):  # each window is a slice of its own image, not a resampled one
        found = [
            (t, l_) for t in range(7) for l_ in range(9) if torch.equal(crops[i, 0], x[i, 0, t : t + 4, l_ : l_ + 4])
        ]
        assert len(found) == 1


def test_random_crop_is_seeded_and_leaves_small_images_alone():
    x = torch.rand(3, 1, 32, 32)
    a = random_crop(x, 16, torch.Generator().manual_seed(5))
    b = random_crop(x, 16, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    assert random_crop(x, 32, torch.Generator()) is x
    with pytest.raises(ValueError, match="cannot crop 40×40 windows from 32×48"):
        random_crop(torch.rand(1, 1, 32, 48), 40, torch.Generator())


def test_quality_views_shrink_nothing():
    imgs = torch.rand(5, 96, 96)
    gen = torch.Generator().manual_seed(0)
    assert quality_views(imgs, 64, native=True, gen=gen).shape == (5, 1, 64, 64)
    assert torch.equal(quality_views(imgs, 64, native=False, gen=gen), imgs.unsqueeze(1))


def test_augment_stays_in_range_and_is_seeded():
    x = torch.rand(4, 1, 32, 32)
    a = augment(x, torch.Generator().manual_seed(1))
    assert a.shape == x.shape and float(a.min()) >= 0 and float(a.max()) <= 1
    assert torch.equal(a, augment(x, torch.Generator().manual_seed(1)))
