"""Full-reference image quality: PSNR, SSIM, PSNR after a gain/offset fit, and a texture ratio.

All take images (…, H, W) in [0, 1] (numpy or torch) and return one float per image
(a float for a single image, an array/tensor for a batch).

SpikeCLIP is trained without ground truth, so the brightness of its output is free:
``aligned_psnr`` first fits ``a·x + b`` to the reference by least squares (docs/facts.md §5).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._tensor import ArrayLike, back, check_finite, to_torch

__all__ = [
    "lowpass",
    "psnr",
    "ssim",
    "ssim_uniform",
    "aligned_psnr",
    "fit_gain_offset",
    "hf_share",
    "texture_ratio",
    "sharpen",
]


def lowpass(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of (B, 1, H, W) images with std ``sigma`` pixels (reflecting borders); 0 = identity."""
    if sigma <= 0:
        return x
    r = max(1, min(int(3 * sigma + 0.5), min(x.shape[-2:]) - 1))  # reflect padding needs r < H, W
    t = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = k / k.sum()
    x = F.pad(x, (r, r, r, r), mode="reflect")
    return F.conv2d(F.conv2d(x, k.view(1, 1, 1, -1)), k.view(1, 1, -1, 1))


def _pair(x: ArrayLike, ref: ArrayLike) -> tuple[torch.Tensor, torch.Tensor, bool]:
    a, was_numpy = to_torch(x, "image")
    b, _ = to_torch(ref, "reference")
    if a.shape != b.shape:
        raise ValueError(f"image and reference shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
    if a.ndim < 2:
        raise ValueError(f"images must have shape (…, H, W), got {tuple(a.shape)}")
    for t, what in ((a, "image"), (b, "reference")):
        if t.numel() == 0:
            raise ValueError(f"{what} is empty (shape {tuple(t.shape)}): nothing to score")
        if not t.is_floating_point():
            raise TypeError(f"{what} has dtype {t.dtype}; scores need float images in [0, 1] (for uint8 use img / 255)")
    a, b = a.double(), b.to(a.device).double()
    check_finite(a, "image")
    check_finite(b, "reference")
    return a, b, was_numpy


def _out(v: torch.Tensor, was_numpy: bool) -> ArrayLike | float:
    return float(v) if v.ndim == 0 else back(v.float(), was_numpy)


def psnr(x: ArrayLike, ref: ArrayLike, data_range: float = 1.0) -> ArrayLike | float:
    """Peak signal-to-noise ratio in dB, per image: 10·log10(range² / MSE)."""
    a, b, was_numpy = _pair(x, ref)
    mse = ((a - b) ** 2).mean(dim=(-2, -1)).clamp_min(1e-12)
    return _out(10 * torch.log10(data_range**2 / mse), was_numpy)


def fit_gain_offset(x: ArrayLike, ref: ArrayLike) -> ArrayLike:
    """Least-squares ``a·x + b ≈ ref`` per image; returns the fitted image (…, H, W)."""
    a, b, was_numpy = _pair(x, ref)
    xm, ym = a.mean(dim=(-2, -1), keepdim=True), b.mean(dim=(-2, -1), keepdim=True)
    cov = ((a - xm) * (b - ym)).mean(dim=(-2, -1), keepdim=True)
    var = ((a - xm) ** 2).mean(dim=(-2, -1), keepdim=True)
    gain = torch.where(var > 1e-12, cov / var.clamp_min(1e-12), torch.zeros_like(var))
    return back((gain * (a - xm) + ym).float(), was_numpy)


def aligned_psnr(x: ArrayLike, ref: ArrayLike, data_range: float = 1.0) -> ArrayLike | float:
    """PSNR after the best gain/offset ``a·x + b`` (brightness-free fidelity)."""
    return psnr(fit_gain_offset(x, ref), ref, data_range)


def _gaussian_window(size: int, sigma: float) -> torch.Tensor:
    """The 1-D Gaussian (size,) float64, summing to 1; the 2-D window is its outer product with itself."""
    g = torch.exp(-((torch.arange(size, dtype=torch.float64) - size // 2) ** 2) / (2 * sigma**2))
    return g / g.sum()


def _ssim(x: ArrayLike, ref: ArrayLike, window: torch.Tensor, data_range: float, cov: float) -> ArrayLike | float:
    """Mean SSIM map over the valid region, local statistics weighted by the separable window
    ``window`` (k,) ⊗ ``window`` (a row then a column convolution: the 2-D k×k window's numbers, k/2 times less
    work); ``cov`` scales the (co)variances (1 = population, N/(N−1) = sample)."""
    a, b, was_numpy = _pair(x, ref)
    H, W = a.shape[-2:]
    k = window.shape[-1]
    if min(H, W) < k:
        raise ValueError(f"SSIM needs images of at least {k}×{k}, got {H}×{W}")
    a4, b4, w = a.reshape(-1, 1, H, W), b.reshape(-1, 1, H, W), window.to(a)
    n = len(a4)  # the five local statistics in one call: means, then second moments
    local = F.conv2d(F.conv2d(torch.cat([a4, b4, a4 * a4, b4 * b4, a4 * b4]), w.view(1, 1, 1, k)), w.view(1, 1, k, 1))
    mu_a, mu_b, m_aa, m_bb, m_ab = local.split(n)
    saa = cov * (m_aa - mu_a**2)
    sbb = cov * (m_bb - mu_b**2)
    sab = cov * (m_ab - mu_a * mu_b)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * mu_a * mu_b + c1) * (2 * sab + c2)) / ((mu_a**2 + mu_b**2 + c1) * (saa + sbb + c2))
    return _out(s.mean(dim=(-3, -2, -1)).reshape(a.shape[:-2]), was_numpy)


def ssim(x: ArrayLike, ref: ArrayLike, data_range: float = 1.0, win: int = 11, sigma: float = 1.5) -> ArrayLike | float:
    """Structural similarity (Wang et al. 2004), Gaussian window 11×11, σ = 1.5, valid region."""
    return _ssim(x, ref, _gaussian_window(win, sigma), data_range, cov=1.0)


def ssim_uniform(x: ArrayLike, ref: ArrayLike, data_range: float = 1.0, win: int = 7) -> ArrayLike | float:
    """SSIM as scikit-image's ``structural_similarity`` computes it by default (the function Spike-Zoo
    scores with): a ``win``×``win`` *uniform* window, sample (N−1) covariances, the valid region.

    It differs from :func:`ssim` (Gaussian 11×11) on the same images, so a
    table must say which one it reports.
    """
    n = win * win
    return _ssim(x, ref, torch.full((win,), 1.0 / win, dtype=torch.float64), data_range, cov=n / (n - 1))


def _hf_share(a: torch.Tensor, sigma: float) -> torch.Tensor:
    """var(a − G_σ∗a) / var(a) of float64 images (…, H, W) → (…); 0 for flat images."""
    H, W = a.shape[-2:]
    if min(H, W) < 4:
        raise ValueError(f"images must be at least 4×4, got {H}×{W}")
    a4 = a.reshape(-1, 1, H, W)
    low = lowpass(a4, sigma)
    var = a4.var(dim=(-2, -1), unbiased=False)
    hf = (a4 - low).var(dim=(-2, -1), unbiased=False)
    return torch.where(var > 1e-12, hf / var.clamp_min(1e-12), torch.zeros_like(var)).reshape(a.shape[:-2])


def hf_share(x: ArrayLike, sigma: float = 1.0) -> ArrayLike | float:
    """Share of an image's variance at high spatial frequency: var(x − G_σ∗x) / var(x), per image.

    ``G_σ`` is a Gaussian low-pass of std ``sigma`` pixels (reflecting borders). Brightness- and
    gain-free: ``a·x + b`` has the same share. A flat image has share 0.
    """
    a, was_numpy = to_torch(x, "image")
    if a.ndim < 2:
        raise ValueError(f"images must have shape (…, H, W), got {tuple(a.shape)}")
    a = a.double()
    check_finite(a, "image")
    return _out(_hf_share(a, sigma), was_numpy)


def texture_ratio(x: ArrayLike, ref: ArrayLike, sigma: float = 1.0) -> ArrayLike | float:
    """High-frequency share of ``x`` relative to the reference's (:func:`hf_share`), per image.

    1.0: as much fine texture as the ground truth; above 1: extra texture or noise (a CLIP-fooling
    pattern, shot noise); below 1: over-smoothed. PSNR cannot tell these apart, and a CLIP may prefer either.
    """
    a, b, was_numpy = _pair(x, ref)
    return _out(_hf_share(a, sigma) / _hf_share(b, sigma).clamp_min(1e-12), was_numpy)


def sharpen(x: ArrayLike, amount: float, sigma: float = 1.0) -> ArrayLike:
    """Unsharp masking, ``x + amount·(x − G_σ∗x)``, of images (…, H, W): more fine detail, no new information.

    It raises :func:`hf_share` (and the texture ratio) for ``amount > 0`` without touching the image's
    low frequencies: the cheapest way to move a smooth estimate into a texture band. Not clipped.
    """
    a, was_numpy = to_torch(x, "image")
    if a.ndim < 2:
        raise ValueError(f"images must have shape (…, H, W), got {tuple(a.shape)}")
    if amount < 0:
        raise ValueError(f"amount must be ≥ 0 (0 = unchanged), got {amount}")
    if not a.is_floating_point():
        raise TypeError(f"image has dtype {a.dtype}; sharpen needs float images in [0, 1] (for uint8 use img / 255)")
    check_finite(a, "image")
    H, W = a.shape[-2:]
    flat = a.reshape(-1, 1, H, W)
    return back((flat + amount * (flat - lowpass(flat, sigma))).reshape(a.shape), was_numpy)
