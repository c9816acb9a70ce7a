"""Pictures of spike streams and reconstructions (matplotlib only)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import animation

from ._tensor import ArrayLike, to_torch

__all__ = ["show_images", "show_frames", "spike_raster", "raster_pixels", "animate_stream", "as_numpy"]


def as_numpy(x: ArrayLike) -> np.ndarray:
    """Any array or tensor → a numpy array on the CPU."""
    t, _ = to_torch(x)
    return t.detach().cpu().float().numpy() if t.is_floating_point() else t.detach().cpu().numpy()


def show_images(
    images: Sequence[ArrayLike],
    titles: Sequence[str] | None = None,
    ncols: int | None = None,
    vmin: float | None = 0.0,
    vmax: float | None = 1.0,
    size: float = 2.4,
    suptitle: str | None = None,
    cmap: str = "gray",
    colorbar: str | None = None,
) -> plt.Figure:
    """A grid of images (each (H, W)) with optional titles. ``vmin=vmax=None`` autoscales each (and then
    hides how bright one is next to another: give a shared range where brightness is the lesson).

    ``colorbar``: a label (e.g. "spikes / frame") draws one colour bar for the shared range.
    """
    n = len(images)
    if n == 0:
        raise ValueError("show_images needs at least one image")
    if titles is not None and len(titles) != n:
        raise ValueError(f"show_images got {n} images but {len(titles)} titles: give one title per image")
    ncols = ncols or min(n, 6)
    nrows = -(-n // ncols)
    figsize = (size * ncols, size * nrows + (0.4 if suptitle else 0))
    fig, axes = plt.subplots(nrows, ncols, figsize=figsize, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            shown = ax.imshow(as_numpy(images[i]), cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
            if titles is not None:
                ax.set_title(titles[i], fontsize=9)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    if colorbar is not None:
        if vmin is None or vmax is None:
            raise ValueError("a shared colour bar needs a shared range: give vmin and vmax")
        fig.colorbar(shown, ax=axes.ravel().tolist(), fraction=0.02, pad=0.01, label=colorbar)
    return fig


def show_frames(spikes: ArrayLike, n: int = 8, start: int = 0, size: float = 1.8) -> plt.Figure:
    """The first ``n`` binary frames of a (T, H, W) stream from ``start``: what the sensor reads out."""
    s = as_numpy(spikes)
    frames = [s[t] for t in range(start, min(start + n, s.shape[0]))]
    return show_images(frames, [f"frame {start + i}" for i in range(len(frames))], ncols=len(frames), size=size)


def raster_pixels(
    shape: tuple[int, int], n_pixels: int = 12, seed: int = 0, order_by: ArrayLike | None = None
) -> list[tuple[int, int]]:
    """``n_pixels`` random ``(row, col)`` pixels of an (H, W) image, sorted by ``order_by`` (H, W)
    ascending (e.g. the light, so the order does not change with the sensor's settings)."""
    H, W = shape
    idx = np.random.default_rng(seed).choice(H * W, size=min(n_pixels, H * W), replace=False)
    pixels = [(int(i // W), int(i % W)) for i in idx]
    if order_by is not None:
        key = as_numpy(order_by)
        pixels.sort(key=lambda p: float(key[p]))
    return pixels


def spike_raster(
    spikes: ArrayLike,
    pixels: Sequence[tuple[int, int]] | None = None,
    n_pixels: int = 12,
    seed: int = 0,
    intensity: ArrayLike | None = None,
    ax: plt.Axes | None = None,
) -> plt.Axes:
    """Raster plot: one row per pixel, a tick per spike, time on the x axis.

    Args:
        spikes: (T, H, W) 0/1.
        pixels: ``(row, col)`` pairs to show; default ``n_pixels`` random ones, sorted by
            their spike count so bright pixels sit at the top.
        intensity: optional (H, W) light, shown in the row labels.
    """
    s = as_numpy(spikes)
    T, H, W = s.shape
    if pixels is None:
        pixels = raster_pixels((H, W), n_pixels, seed, order_by=s.sum(0))
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 0.3 * len(pixels) + 1))
    for row, (y, x) in enumerate(pixels):
        times = np.flatnonzero(s[:, y, x])
        ax.vlines(times, row + 0.6, row + 1.4, color="k", linewidth=1)
    light = None if intensity is None else as_numpy(intensity)
    labels = [f"({y},{x})" + ("" if light is None else f" I={float(light[y, x]):.2f}") for y, x in pixels]
    ax.set_yticks(np.arange(1, len(pixels) + 1), labels, fontsize=7)
    ax.set_xlim(-0.5, T - 0.5)
    ax.set_ylim(0.3, len(pixels) + 0.7)
    ax.set_xlabel("frame")
    ax.set_title("spike raster (one row per pixel)")
    return ax


def animate_stream(
    stream: ArrayLike,
    max_frames: int = 60,
    interval_ms: int = 60,
    title: str = "spike frames",
    running_mean: bool = True,
) -> animation.FuncAnimation:
    """An animation of a (T, H, W) stream (binary spikes or a video).

    ``running_mean``: beside each frame, the mean of all frames so far (a TFP that grows with time, on a
    fixed 0 … max scale), so the reader watches single noisy frames add up to an image.
    Show it in a notebook with ``IPython.display.HTML(anim.to_jshtml())``.
    """
    s = as_numpy(stream).astype(np.float32)
    n = min(max_frames, s.shape[0])
    means = np.cumsum(s[:n], axis=0) / np.arange(1, n + 1, dtype=np.float32)[:, None, None]
    fig, axes = plt.subplots(1, 2 if running_mean else 1, figsize=(6 if running_mean else 3, 3), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    im = axes[0, 0].imshow(s[0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    axes[0, 0].set_title(f"{title}: 0")
    if running_mean:
        im_mean = axes[0, 1].imshow(means[0], cmap="gray", vmin=0, vmax=max(float(means[-1].max()), 1e-3))
        axes[0, 1].set_title("mean of frames 0–0")

    def step(t: int) -> list:
        im.set_data(s[t])
        axes[0, 0].set_title(f"{title}: {t}")
        if running_mean:
            im_mean.set_data(means[t])
            axes[0, 1].set_title(f"mean of frames 0–{t}")
        return [im]

    anim = animation.FuncAnimation(fig, step, frames=n, interval=interval_ms, blit=False)
    plt.close(fig)
    return anim
