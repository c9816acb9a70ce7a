"""Augmentations of grey images (B, 1, H, W) in [0, 1] before a CLIP sees them.

- :func:`augment`     random geometry and photometry: trains the teaching CLIPs (so brightness cannot
  stand in for quality) and, in SpikeCLIP's stages, makes a guide harder to game.
- :func:`random_crop` a window of the CLIP's input size at the image's own resolution, so a CLIP whose
  input is smaller than the reconstruction still sees its pixels (shrinking hides pixel-level texture).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["augment", "random_crop"]


def augment(x: torch.Tensor, gen: torch.Generator, photometric: bool = True) -> torch.Tensor:
    """Random geometry (shift, scale, horizontal flip) and, if ``photometric``, random gain,
    offset, gamma and contrast of every image. (B, 1, H, W) → same, in [0, 1].

    The photometric part is the hardening: a clean image that is dark, washed out or
    contrasty is still "clean", so brightness cannot stand in for quality.
    """
    B, dev = x.shape[0], x.device
    # random parameters come from a CPU generator (reproducible on any device), then move to x's device
    u = lambda lo, hi: (lo + (hi - lo) * torch.rand(B, generator=gen)).to(dev)  # noqa: E731
    scale = u(0.85, 1.1)
    flip = torch.where(torch.rand(B, generator=gen) < 0.5, -1.0, 1.0).to(dev)
    theta = torch.zeros(B, 2, 3, device=dev)
    theta[:, 0, 0] = scale * flip
    theta[:, 1, 1] = scale
    theta[:, 0, 2] = u(-0.12, 0.12)
    theta[:, 1, 2] = u(-0.12, 0.12)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    if photometric:
        gamma = torch.exp(u(math.log(0.5), math.log(2.0))).view(B, 1, 1, 1)
        x = x.clamp(1e-4, 1) ** gamma
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * u(0.5, 1.4).view(B, 1, 1, 1) + mean * u(0.5, 1.3).view(B, 1, 1, 1)
        x = x + u(-0.15, 0.15).view(B, 1, 1, 1)
    return x.clamp(0, 1)


def random_crop(x: torch.Tensor, size: int, gen: torch.Generator) -> torch.Tensor:
    """One random ``size``×``size`` window of each image, at native resolution: (B, C, H, W) → (B, C, size, size).

    Images no larger than ``size`` are returned as they are. Offsets come from the CPU generator ``gen``
    (reproducible on any device).
    """
    B, _, H, W = x.shape
    if H <= size and W <= size:
        return x
    if H < size or W < size:
        raise ValueError(f"cannot crop {size}×{size} windows from {H}×{W} images")
    top = torch.randint(0, H - size + 1, (B,), generator=gen).tolist()
    left = torch.randint(0, W - size + 1, (B,), generator=gen).tolist()
    return torch.stack([x[i, :, t : t + size, l_ : l_ + size] for i, (t, l_) in enumerate(zip(top, left, strict=True))])
