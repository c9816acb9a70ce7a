import numpy as np
import pytest

from spikeclip_lite import data


def test_at_least_ten_named_classes():
    assert len(data.CLASSES) >= 10 and len(set(data.CLASSES)) == len(data.CLASSES)
    for i, name in enumerate(data.CLASSES):
        sc = data.make_scene(i, label=name)
        assert sc.label == i and sc.name == name


def test_same_seed_same_scene_other_seed_other_scene():
    a, b, c = data.make_scene(5), data.make_scene(5), data.make_scene(6)
    assert np.array_equal(a.image, b.image) and a.label == b.label
    assert not np.array_equal(a.image, c.image)


def test_images_in_range_with_visible_object():
    for s in range(30):
        sc = data.make_scene(s, size=48)
        assert sc.image.shape == (48, 48) and sc.image.dtype == np.float32
        assert 0 <= sc.image.min() and sc.image.max() <= 1
        inside, outside = sc.image[sc.mask > 0.9], sc.image[sc.mask < 0.1]
        assert sc.mask.mean() > 0.03  # the object is there
        assert abs(inside.mean() - outside.mean()) > 0.1  # and it contrasts with the background


def test_moving_scene_is_a_video_through_the_key_frame():
    sc = data.make_scene(3, size=32, motion=True, n_frames=120)
    assert sc.video.shape == (120, 32, 32)
    np.testing.assert_allclose(sc.video[60], sc.image, atol=1e-5)
    assert np.abs(sc.video[0] - sc.video[-1]).mean() > 0.01  # it moves
    assert sc.light() is sc.video
    still = data.make_scene(3, size=32)
    assert still.video is None and still.light() is still.image


def test_make_scenes_batch():
    imgs, labels, vids = data.make_scenes([1, 2, 3], size=24, motion=True, n_frames=20)
    assert imgs.shape == (3, 24, 24) and labels.shape == (3,) and vids.shape == (3, 20, 24, 24)


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown class"):
        data.make_scene(0, label="dragon")
    with pytest.raises(ValueError, match="label"):
        data.make_scene(0, label=99)
    with pytest.raises(ValueError, match="size"):
        data.make_scene(0, size=4)
