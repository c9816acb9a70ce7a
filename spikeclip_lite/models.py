"""SpikeCLIP's reconstruction network (docs/facts.md §4): voxels in, one grey image out.

``voxelize`` sums each group of consecutive frames (200 frames → 50 channels, values 0–4).
``LRN`` ("lightweight reconstruction network") is five 3×3 convolutions, 50→64→128→64→16→1,
ReLU after the first four, no normalisation, no output activation: 185,889 parameters.
Its state-dict keys (``0.0.weight`` … ``3.0.bias``, ``4.weight``, ``4.bias``) are those of the
authors' released checkpoint, which loads with ``strict=True``.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ._tensor import ArrayLike, back, check_binary, to_torch
from .checkpoints import atomic_write

__all__ = [
    "voxelize",
    "voxel_rate",
    "LRN",
    "PADS",
    "RECEPTIVE_RADIUS",
    "N_PARAMS",
    "count_parameters",
    "save_lrn",
    "load_lrn",
]

#: Parameters of the LRN (docs/facts.md §4).
N_PARAMS = 185_889


def voxelize(spikes: ArrayLike, bins: int = 50) -> ArrayLike:
    """Sum groups of T / ``bins`` consecutive frames: (…, T, H, W) 0/1 → (…, bins, H, W) float32.

    200 frames and 50 bins give four frames per channel (values 0–4), as in SpikeCLIP.
    """
    s, was_numpy = to_torch(spikes, "spikes")
    if s.ndim < 3:
        raise ValueError(f"spikes must have shape (…, T, H, W), got {tuple(s.shape)}")
    T = s.shape[-3]
    if bins < 1 or T % bins:
        raise ValueError(f"{T} frames cannot be split into {bins} equal bins; use T divisible by bins (e.g. 200/50)")
    check_binary(s)
    v = s.to(torch.float32).reshape(*s.shape[:-3], bins, T // bins, *s.shape[-2:]).sum(dim=-3)
    return back(v, was_numpy)


def voxel_rate(voxels: torch.Tensor, half_window: int, frames_per_bin: int = 4) -> torch.Tensor:
    """TFP from voxels: the firing rate over the middle ``2·half_window`` frames (rounded to whole bins),
    (B, bins, H, W) → (B, 1, H, W) in spikes per frame. A linear function of the voxels, so an LRN can
    represent it exactly (it cannot represent TFI's spike-timing search as easily)."""
    if voxels.ndim != 4:
        raise ValueError(f"voxels must have shape (B, bins, H, W), got {tuple(voxels.shape)}")
    mid, k = voxels.shape[1] // 2, max(1, round(half_window / frames_per_bin))
    if k > mid:
        raise ValueError(f"half_window {half_window} frames is longer than the stream's half ({mid * frames_per_bin})")
    return voxels[:, mid - k : mid + k].sum(1, keepdim=True) / (2 * k * frames_per_bin)


#: How the LRN computes its outer pixels (:class:`LRN`'s ``pad``).
PADS = ("zero", "reflect")
#: Pixels each side an output pixel sees: one per 3×3 convolution (five).
RECEPTIVE_RADIUS = 5


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, 1, 1), nn.ReLU(inplace=True))


class LRN(nn.Sequential):
    """Lightweight reconstruction network: (B, 50, H, W) voxels → (B, 1, H, W) image.

    Fully convolutional (any H×W). Output is unbounded (no activation); callers clamp or
    normalise it. 185,616 MACs per pixel (9.31 GMAC at 224×224).

    ``pad``: how the outer pixels are computed. "zero" is the convolutions' own zero padding (the authors'
    network): the outer :data:`RECEPTIVE_RADIUS` pixels see zeros beyond the image, so the network can treat
    them unlike the rest, a frame that training moves as a side effect. "reflect" mirrors the voxels by that
    radius first and runs the convolutions unpadded, so the output is the frame's size: every pixel is then
    computed by the same function of the scene around it. No weights change; the same state dict loads either way.

    ``context=True`` (reflect only): the voxels are a window of a larger frame that already carries
    :data:`RECEPTIVE_RADIUS` pixels of that frame on each side (:func:`train.random_windows`); nothing is padded
    and the output is the frame's own output on the window's inner pixels, (B, 50, h+2r, w+2r) → (B, 1, h, w).
    """

    def __init__(self, in_channels: int = 50, pad: str = "zero") -> None:
        super().__init__(
            _block(in_channels, 64), _block(64, 128), _block(128, 64), _block(64, 16), nn.Conv2d(16, 1, 3, 1, 1)
        )
        if pad not in PADS:
            raise ValueError(f"pad is one of {PADS}, got {pad!r}")
        self.in_channels, self.pad = in_channels, pad

    def forward(self, voxels: torch.Tensor, context: bool = False) -> torch.Tensor:  # noqa: D102
        if voxels.ndim != 4 or voxels.shape[1] != self.in_channels:
            raise ValueError(f"LRN expects (B, {self.in_channels}, H, W) voxels, got {tuple(voxels.shape)}")
        r, (h, w) = RECEPTIVE_RADIUS, voxels.shape[-2:]
        if context:
            if self.pad != "reflect":
                raise ValueError("context=True needs pad='reflect': a zero-padded network's border pixels differ")
            if min(h, w) <= 2 * r:
                raise ValueError(f"a window with {r} px of context a side must be larger than {2 * r} px, got {h}×{w}")
            return self._unpadded(voxels)
        if self.pad == "zero":
            return super().forward(voxels)
        if min(h, w) <= r:
            raise ValueError(f"reflect padding by {r} px needs frames larger than that, got {h}×{w}")
        return self._unpadded(F.pad(voxels, (r, r, r, r), mode="reflect"))

    def _unpadded(self, x: torch.Tensor) -> torch.Tensor:
        """The five convolutions without their zero padding, each taking one pixel off every side:
        (B, 50, h+2r, w+2r) → (B, 1, h, w). On mirrored voxels this is the same function as padding every
        convolution and cropping r pixels off the output (equal up to float rounding), without computing the
        pixels cropped away (`benchmarks/bench_windows.py`: 1.07–1.11× a training step at 64² on 2 cores)."""
        for i, block in enumerate(self):
            conv = block if isinstance(block, nn.Conv2d) else block[0]
            x = F.conv2d(x, conv.weight, conv.bias)
            if i < len(self) - 1:
                x = F.relu(x, inplace=True)
        return x


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def save_lrn(lrn: LRN, path: str | os.PathLike) -> Path:
    """Save an LRN's state dict (the released checkpoint's format: a plain state dict), atomically."""
    path = Path(path)
    atomic_write(path, lambda f: torch.save({k: v.detach().cpu() for k, v in lrn.state_dict().items()}, f))
    return path


def load_lrn(path: str | os.PathLike, device: str | torch.device = "cpu", pad: str = "zero") -> LRN:
    """Load an LRN from ours or the authors' released checkpoint (``weights_only=True``, ``strict=True``).

    Accepts a plain state dict, one nested under ``"state_dict"``/``"model"``/``"modules"→"lrn"``
    (our stage checkpoints), and ``module.``-prefixed keys (DataParallel). A state dict holds no padding:
    ``pad`` is the one the network was trained with ("zero" for the released weights, the setting ``pad``,
    "reflect" by default, for the course's).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no LRN checkpoint at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"{path} is not a readable PyTorch checkpoint ({err})") from err
    if isinstance(state, dict) and "modules" in state and "lrn" in state["modules"]:
        state = state["modules"]["lrn"]
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
    if not isinstance(state, dict):
        raise ValueError(f"{path} does not hold a state dict (got {type(state).__name__})")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    lrn = LRN(pad=pad)
    try:
        lrn.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise ValueError(f"{path} is not an LRN checkpoint: {err}") from err
    return lrn.to(device).eval()
