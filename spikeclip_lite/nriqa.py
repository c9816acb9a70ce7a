"""No-reference image quality: what the paper reports (NIQE, BRISQUE via ``pyiqa``) and two
simple measures that always work offline.

- :func:`noise_sigma` — Immerkær's fast noise estimate (1996): the residual of a Laplacian-
  difference mask, robust to image structure. Lower = less noise. Units: intensity (of [0, 1]).
- :func:`sharpness` — gradient energy (Tenengrad: mean squared gradient) after a light 3×3
  smoothing, so that pixel noise counts less as detail. Higher = crisper edges (a blurred edge
  spreads the same contrast over more pixels, which lowers the *squared* gradient).
- :func:`pyiqa_scores` — NIQE and BRISQUE from ``pyiqa`` when it is installed *and* its model
  files are available: fetched through the project's SHA-256-checked cache (:mod:`.hub`, entries
  ``pyiqa_niqe`` / ``pyiqa_brisque``) and handed to pyiqa; otherwise n/a with the reason.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from . import hub
from ._tensor import ArrayLike, check_finite, to_torch

__all__ = ["noise_sigma", "sharpness", "pyiqa_scores"]

_IMMERKAER = torch.tensor([[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]])


def _images(x: ArrayLike) -> torch.Tensor:
    t, _ = to_torch(x, "images")
    if t.ndim == 2:
        t = t[None]
    if t.ndim != 3:
        raise ValueError(f"images must be (H, W) or (N, H, W), got {tuple(t.shape)}")
    if min(t.shape[-2:]) < 3:
        raise ValueError(f"images must be at least 3×3, got {tuple(t.shape[-2:])}")
    t = t.float()
    check_finite(t, "images")
    return t[:, None]


def noise_sigma(images: ArrayLike) -> torch.Tensor:
    """Immerkær's noise standard deviation per image: (N, H, W) or (H, W) → (N,)."""
    x = _images(images)
    r = F.conv2d(x, _IMMERKAER.to(x)[None, None])
    h, w = r.shape[-2:]
    return math.sqrt(math.pi / 2) * r.abs().sum(dim=(1, 2, 3)) / (6 * h * w)


def sharpness(images: ArrayLike) -> torch.Tensor:
    """Mean squared gradient of the 3×3 box-smoothed image (Tenengrad): (N, H, W) → (N,)."""
    x = F.avg_pool2d(_images(images), 3, stride=1)
    gx = x[..., :, 1:] - x[..., :, :-1]
    gy = x[..., 1:, :] - x[..., :-1, :]
    return (gx[..., 1:, :] ** 2 + gy[..., :, 1:] ** 2).mean(dim=(1, 2, 3))


def pyiqa_scores(images: ArrayLike, metrics: tuple[str, ...] = ("niqe", "brisque")) -> tuple[dict | None, str]:
    """``({metric: (N,) scores}, status)`` from pyiqa, or ``(None, reason)`` when pyiqa is missing.

    The images are passed as given (the official evaluation feeds the raw network output, unclamped);
    grey is repeated to three channels. A metric that cannot run (pyiqa fetches its model files on first
    use, so offline only cached ones work) is left out of the dict and named in ``status`` with its
    error; ``status`` is "ok" when every metric ran. NIQE, BRISQUE: lower is better; LIQE, CLIP-IQA: higher.
    """
    try:
        import pyiqa  # optional extra: pip install 'spikeclip-lite[iqa]'
    except ImportError:
        return None, "pyiqa is not installed (pip install pyiqa)"
    x = _images(images).expand(-1, 3, -1, -1)
    out, failed = {}, []
    for name in metrics:
        try:
            weights = {}
            if f"pyiqa_{name}" in hub.REGISTRY:  # the paper's metrics: their file through the verified cache
                weights["pretrained_model_path"] = str(hub.fetch(f"pyiqa_{name}", progress=False))
            metric = pyiqa.create_metric(name, device="cpu", as_loss=False, **weights)
            with torch.no_grad():
                out[name] = metric(x).flatten().cpu()
        except (hub.UnpinnedFileError, hub.DownloadError, hub.HashMismatchError) as err:
            failed.append(f"{name}: its model file is not available ({type(err).__name__}: {err})")
        except Exception as err:  # pyiqa's own downloads offline (LIQE, CLIP-IQA), …
            failed.append(f"{name}: pyiqa could not run it ({type(err).__name__}: {err})")
    return out, "; ".join(failed) or "ok"
