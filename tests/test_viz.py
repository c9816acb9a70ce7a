"""Figures: rasters keep their pixels, image grids have one panel per image."""

import matplotlib.pyplot as plt
import numpy as np
import pytest

from spikeclip_lite import data, viz


def test_raster_pixels_are_sorted_by_their_light_and_reproducible():
    img = data.make_scene(4, size=32).image
    rows = viz.raster_pixels(img.shape, n_pixels=10, seed=0, order_by=img)
    assert len(rows) == 10 and [img[p] for p in rows] == sorted(img[p] for p in rows)
    assert rows == viz.raster_pixels(img.shape, n_pixels=10, seed=0, order_by=img)


def test_show_images_draws_one_panel_per_image_and_titles_them():
    imgs = [np.zeros((8, 8)), np.ones((8, 8)), np.eye(8)]
    fig = viz.show_images(imgs, ["a", "b", "c"], ncols=2)
    titled = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titled == ["a", "b", "c"]
    plt.close(fig)
    with pytest.raises(ValueError, match="3 images but 1 titles"):
        viz.show_images(imgs, ["only one title"])
