"""Tiny helpers so every public function accepts numpy arrays *and* torch tensors.

Each algorithm is written once, in torch. A numpy input is converted on the way in
and the result converted back on the way out, so a numpy user never sees a tensor.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

ArrayLike = np.ndarray | torch.Tensor


def to_torch(x: ArrayLike, name: str = "input") -> tuple[torch.Tensor, bool]:
    """Return ``(tensor, was_numpy)``; raise a clear error for other types."""
    if isinstance(x, torch.Tensor):
        return x, False
    if isinstance(x, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(x)), True
    raise TypeError(f"{name} must be a numpy array or a torch tensor, got {type(x).__name__}")


def back(x: torch.Tensor, was_numpy: bool) -> Any:
    """Undo :func:`to_torch`: numpy in → numpy out."""
    return x.detach().cpu().numpy() if was_numpy else x


def check_finite(x: torch.Tensor, name: str) -> None:
    """Raise ``ValueError`` if a float tensor holds NaN or inf."""
    if x.is_floating_point() and not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or inf values; clean the input first")


def check_binary(x: torch.Tensor, name: str = "spikes") -> None:
    """Raise ``ValueError`` unless every value is 0 or 1 (one cheap pass for uint8, none for bool)."""
    if x.dtype == torch.bool or x.numel() == 0:
        return
    ok = bool(x.amax() <= 1) if x.dtype == torch.uint8 else bool(((x == 0) | (x == 1)).all())
    if not ok:
        bad = x[(x != 0) & (x != 1)].flatten()[:5].tolist()
        raise ValueError(f"{name} must contain only 0 and 1; found values such as {bad}")


def check_ndim(x: torch.Tensor, ndims: tuple[int, ...], name: str, layout: str) -> None:
    """Raise ``ValueError`` unless ``x.ndim`` is one of ``ndims``."""
    if x.ndim not in ndims:
        raise ValueError(f"{name} must have shape {layout}, got shape {tuple(x.shape)}")
