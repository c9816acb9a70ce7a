"""Plain, slow, obviously-correct versions of the fast code, for tests and ``make bench``.

Read these first if the vectorised versions look like magic: each one is the textbook
definition written as loops. Never use them for real work.
"""

from __future__ import annotations

import numpy as np


def simulate_stepwise(intensity: np.ndarray, n_frames: int, threshold: float, a0: np.ndarray) -> np.ndarray:
    """Integrate-and-fire, one frame at a time (ideal sensor, subtractive reset).

    Args:
        intensity: (H, W) static light in [0, 1].
        n_frames: T.
        threshold: θ.
        a0: (H, W) initial accumulator in [0, θ).

    Returns:
        (T, H, W) uint8 spikes.
    """
    acc = a0.astype(np.float64).copy()
    q = np.minimum(intensity.astype(np.float64), threshold)
    out = np.zeros((n_frames, *intensity.shape), dtype=np.uint8)
    for t in range(n_frames):
        acc += q
        fire = acc >= threshold
        out[t][fire] = 1
        acc[fire] -= threshold
    return out


def decode_dat_bitwise(raw: bytes, height: int, width: int) -> np.ndarray:
    """Decode a ``.dat`` byte string bit by bit (docs/facts.md §2): bit b of byte k is pixel 8k+b.

    Returns (T, H, W) uint8 with rows flipped back upright.
    """
    frame_bytes = height * width // 8
    n = len(raw) // frame_bytes
    out = np.zeros((n, height * width), dtype=np.uint8)
    for f in range(n):
        base = f * frame_bytes
        for k in range(frame_bytes):
            byte = raw[base + k]
            if byte:
                for b in range(8):
                    out[f, 8 * k + b] = (byte >> b) & 1
    return out.reshape(n, height, width)[:, ::-1, :]


def tfi_framewise(spikes: np.ndarray, center: int, half_window: int) -> np.ndarray:
    """TFI by walking frame by frame away from the key frame (docs/facts.md §3).

    Looks back from ``center`` (inclusive) and forward from ``center + 1`` until a spike
    or the window edge (clamped to the stream), then returns 1 / interval.
    """
    T = spikes.shape[0]
    lo, hi = max(center - half_window, 0), min(center + half_window, T - 1)
    before = np.full(spikes.shape[1:], lo, dtype=np.int64)
    after = np.full(spikes.shape[1:], hi, dtype=np.int64)
    found = np.zeros(spikes.shape[1:], dtype=bool)
    for t in range(center, lo - 1, -1):
        hit = (spikes[t] > 0) & ~found
        before[hit] = t
        found |= hit
    found[:] = False
    for t in range(center + 1, hi + 1):
        hit = (spikes[t] > 0) & ~found
        after[hit] = t
        found |= hit
    return 1.0 / np.maximum(after - before, 1)


def tfi_pixelwise(spikes: np.ndarray, center: int, half_window: int) -> np.ndarray:
    """TFI the textbook way: for every pixel, walk frame by frame to the nearest spikes."""
    T, H, W = spikes.shape
    lo, hi = max(center - half_window, 0), min(center + half_window, T - 1)
    out = np.zeros((H, W))
    for y in range(H):
        for x in range(W):
            before = center
            while before > lo and not spikes[before, y, x]:
                before -= 1
            after = center + 1
            while after < hi and not spikes[after, y, x]:
                after += 1
            out[y, x] = 1.0 / max(min(after, hi) - before, 1)
    return out
