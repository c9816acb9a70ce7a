"""Procedural scenes: grey images of ten object classes a real CLIP knows by name.

Every scene is a function of its seed: a textured object of one class (random pose,
scale, polarity and texture) on a cluttered, textured background, optionally moving
fast across the frame (a (T, H, W) video — the reason spike cameras exist).

Shapes are implicit functions on object coordinates (u, v) ∈ [-1, 1]² (v up), rendered
with 2× supersampling for anti-aliased edges.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from . import io

__all__ = ["CLASSES", "CLASS_LISTS", "Scene", "make_scene", "make_scenes", "class_index", "pan_video"]

Mask = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _disk(u: np.ndarray, v: np.ndarray, cx: float, cy: float, r: float) -> np.ndarray:
    return (u - cx) ** 2 + (v - cy) ** 2 <= r * r


def _box(u: np.ndarray, v: np.ndarray, x0: float, x1: float, y0: float, y1: float) -> np.ndarray:
    return (u >= x0) & (u <= x1) & (v >= y0) & (v <= y1)


def _polygon(u: np.ndarray, v: np.ndarray, pts: Sequence[tuple[float, float]]) -> np.ndarray:
    """Even-odd point-in-polygon test, vectorised over pixels."""
    inside = np.zeros(u.shape, dtype=bool)
    n = len(pts)
    for i in range(n):
        (x0, y0), (x1, y1) = pts[i], pts[(i + 1) % n]
        crosses = (y0 > v) != (y1 > v)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_at = x0 + (v - y0) * (x1 - x0) / (y1 - y0)
        inside ^= crosses & (u < x_at)
    return inside


def _star(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    ang = np.pi / 2 + np.arange(10) * np.pi / 5
    rad = np.where(np.arange(10) % 2 == 0, 0.95, 0.4)
    return _polygon(u, v, list(zip(rad * np.cos(ang), rad * np.sin(ang), strict=True)))


def _heart(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    x, y = 1.25 * u, 1.25 * v - 0.1
    return (x * x + y * y - 1) ** 3 - x * x * y**3 <= 0


def _moon(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return _disk(u, v, 0, 0, 0.9) & ~_disk(u, v, 0.42, 0.18, 0.74)


def _arrow(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return _box(u, v, -0.95, 0.2, -0.17, 0.17) | _polygon(u, v, [(0.1, -0.6), (0.95, 0), (0.1, 0.6)])


def _cross(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return _box(u, v, -0.24, 0.24, -0.92, 0.92) | _box(u, v, -0.92, 0.92, -0.24, 0.24)


def _ring(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return _disk(u, v, 0, 0, 0.92) & ~_disk(u, v, 0, 0, 0.55)


def _house(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    body = _box(u, v, -0.65, 0.65, -0.9, 0.12)
    roof = _polygon(u, v, [(-0.9, 0.1), (0.9, 0.1), (0, 0.92)])
    door = _box(u, v, -0.16, 0.16, -0.9, -0.35)
    window = _box(u, v, 0.25, 0.5, -0.25, 0.0)
    return (body | roof) & ~door & ~window


def _tree(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    trunk = _box(u, v, -0.12, 0.12, -0.95, -0.45)
    tiers = [
        _polygon(u, v, [(-w, y0), (w, y0), (0, y0 + h)])
        for w, y0, h in ((0.8, -0.5, 0.75), (0.62, -0.1, 0.65), (0.45, 0.3, 0.62))
    ]
    return trunk | tiers[0] | tiers[1] | tiers[2]


def _fish(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    body = ((u - 0.15) / 0.68) ** 2 + (v / 0.42) ** 2 <= 1
    tail = _polygon(u, v, [(-0.45, 0), (-0.95, 0.45), (-0.95, -0.45)])
    eye = _disk(u, v, 0.5, 0.1, 0.08)
    return (body | tail) & ~eye


def _car(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    body = _box(u, v, -0.95, 0.95, -0.35, 0.12)
    cabin = _polygon(u, v, [(-0.55, 0.1), (-0.35, 0.55), (0.3, 0.55), (0.55, 0.1)])
    window = _polygon(u, v, [(-0.4, 0.18), (-0.27, 0.45), (0.22, 0.45), (0.38, 0.18)])
    wheels = _disk(u, v, -0.55, -0.4, 0.24) | _disk(u, v, 0.55, -0.4, 0.24)
    hubs = _disk(u, v, -0.55, -0.4, 0.09) | _disk(u, v, 0.55, -0.4, 0.09)
    return ((body | cabin) & ~window | wheels) & ~hubs


#: name → (shape function, largest random rotation in degrees). Upright objects
#: (house, tree, car, fish) tilt only a little, symmetric ones spin freely.
_SHAPES: dict[str, tuple[Mask, float]] = {
    "star": (_star, 180),
    "heart": (_heart, 30),
    "moon": (_moon, 180),
    "arrow": (_arrow, 180),
    "cross": (_cross, 45),
    "ring": (_ring, 0),
    "house": (_house, 15),
    "tree": (_tree, 12),
    "fish": (_fish, 25),
    "car": (_car, 12),
}

#: The ten class names, index → name.
CLASSES: tuple[str, ...] = tuple(_SHAPES)
#: Class lists by dataset name (index → name): the course's scenes and the paper's two real datasets.
CLASS_LISTS: dict[str, tuple[str, ...]] = {
    "course": CLASSES,
    "ucaltech": io.UCALTECH_CLASSES,
    "ucifar": io.UCIFAR_CLASSES,
}


def class_index(name: str) -> int:
    """Index of a class name in :data:`CLASSES` (clear error for an unknown name)."""
    if name not in CLASSES:
        raise ValueError(f"unknown class {name!r}; the classes are {CLASSES}")
    return CLASSES.index(name)


@dataclass
class Scene:
    """One procedural scene.

    Attributes:
        image: (H, W) float32 in [0, 1], the scene at the key frame (the middle one).
        label: class index into :data:`CLASSES`.
        video: (T, H, W) float32 when the object moves, else ``None``.
        mask: (H, W) float32 object coverage in [0, 1] at the key frame.
        seed: the seed that made it.
    """

    image: np.ndarray
    label: int
    video: np.ndarray | None
    mask: np.ndarray
    seed: int

    @property
    def name(self) -> str:
        return CLASSES[self.label]

    def light(self) -> np.ndarray:
        """What the sensor sees: the video if the object moves, else the still image."""
        return self.video if self.video is not None else self.image


def _smooth_field(rng: np.random.Generator, n: int, scale: int) -> np.ndarray:
    """A smooth random field in [-1, 1] on an n×n grid (bicubic upsampled noise)."""
    coarse = torch.from_numpy(rng.standard_normal((1, 1, scale, scale)).astype(np.float32))
    field = F.interpolate(coarse, size=(n, n), mode="bicubic", align_corners=False)[0, 0].numpy()
    return field / (np.abs(field).max() + 1e-6)


def _texture(rng: np.random.Generator, n: int, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    """A random texture in roughly [-1, 1]: stripes, checks, blotches or a gradient."""
    kind = rng.integers(4)
    theta = rng.uniform(0, np.pi)
    if kind == 0:  # stripes
        f = rng.uniform(3, 8)
        return np.sin(np.pi * f * (xx * np.cos(theta) + yy * np.sin(theta)) + rng.uniform(0, 6.3))
    if kind == 1:  # checks
        f = rng.uniform(2, 5)
        return np.sign(np.sin(np.pi * f * xx + rng.uniform(0, 6.3)) * np.sin(np.pi * f * yy))
    if kind == 2:  # blotches
        return _smooth_field(rng, n, int(rng.integers(4, 9)))
    return xx * np.cos(theta) + yy * np.sin(theta)  # gradient


def make_scene(
    seed: int,
    size: int = 64,
    label: int | str | None = None,
    motion: bool = False,
    n_frames: int = 200,
    speed: float | None = None,
) -> Scene:
    """Render one scene; the same arguments always give the same scene.

    Args:
        seed: the scene's seed.
        size: H = W in pixels.
        label: class index or name; ``None`` draws one from the seed.
        motion: make a (T, H, W) video of the object sliding across a static background.
        n_frames: T for a moving scene.
        speed: object speed in pixels per frame (default: random in [0.08, 0.2]·size/64,
            i.e. the object travels 16–40 % of the frame in 200 frames).

    Returns:
        A :class:`Scene`.
    """
    if size < 16:
        raise ValueError(f"size must be at least 16 pixels, got {size}")
    rng = np.random.default_rng(int(seed))
    if label is None:
        label = int(rng.integers(len(CLASSES)))
    elif isinstance(label, str):
        label = class_index(label)
    elif not 0 <= int(label) < len(CLASSES):
        raise ValueError(f"label must be in [0, {len(CLASSES) - 1}], got {label}")
    label = int(label)
    shape_fn, max_rot = _SHAPES[CLASSES[label]]

    ss = 2  # supersampling
    n = size * ss
    c = (np.arange(n) + 0.5) / n * 2 - 1
    yy, xx = np.meshgrid(-c, c, indexing="ij")  # canvas coordinates, y up

    # Background: a level, a smooth gradient-like field and low-contrast clutter.
    bg_level = rng.uniform(0.2, 0.8)
    background = bg_level + 0.12 * _smooth_field(rng, n, int(rng.integers(2, 5)))
    for _ in range(int(rng.integers(2, 6))):
        cx, cy, r = rng.uniform(-1, 1), rng.uniform(-1, 1), rng.uniform(0.05, 0.25)
        blob = ((xx - cx) / r) ** 2 + ((yy - cy) / (r * rng.uniform(0.3, 1))) ** 2 <= 1
        background = background + rng.choice([-1, 1]) * rng.uniform(0.05, 0.15) * blob
    for _ in range(int(rng.integers(1, 4))):  # thin line segments
        t = rng.uniform(0, np.pi)
        d = xx * np.cos(t) + yy * np.sin(t) - rng.uniform(-0.8, 0.8)
        background = background + rng.uniform(-0.12, 0.12) * (np.abs(d) < rng.uniform(0.01, 0.03))

    # Object: contrasting level (random polarity) with its own texture.
    polarity = rng.choice([-1, 1])
    obj_level = np.clip(bg_level + polarity * rng.uniform(0.3, 0.5), 0.1, 0.95)
    if abs(obj_level - bg_level) < 0.25:
        obj_level = np.clip(bg_level - polarity * rng.uniform(0.3, 0.5), 0.05, 0.95)
    obj_value = obj_level + rng.uniform(0.04, 0.12) * _texture(rng, n, yy, xx)

    scale = rng.uniform(0.5, 0.75)
    rot = np.deg2rad(rng.uniform(-max_rot, max_rot))
    flip = -1.0 if rng.random() < 0.5 and label not in (class_index("arrow"),) else 1.0
    ox, oy = rng.uniform(-0.2, 0.2, size=2)

    if motion:
        speed_px = (rng.uniform(0.08, 0.2) * size / 64) if speed is None else float(speed)
        direction = rng.uniform(0, 2 * np.pi)
        # displacement over the whole stream, in canvas units (2 = full frame)
        travel = speed_px * n_frames * 2 / size
        dx, dy = travel * np.cos(direction), travel * np.sin(direction)
    else:
        dx = dy = 0.0

    def object_mask(shift: float) -> np.ndarray:
        """Supersampled coverage of the object displaced by ``shift``·(dx, dy)."""
        px, py = xx - (ox + shift * dx), yy - (oy + shift * dy)
        u = (np.cos(rot) * px + np.sin(rot) * py) / scale * flip
        v = (-np.sin(rot) * px + np.cos(rot) * py) / scale
        return shape_fn(u, v).astype(np.float32)

    def compose(mask_ss: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        img = background * (1 - mask_ss) + obj_value * mask_ss
        img = img.reshape(size, ss, size, ss).mean(axis=(1, 3))
        m = mask_ss.reshape(size, ss, size, ss).mean(axis=(1, 3))
        return np.clip(img, 0, 1).astype(np.float32), m.astype(np.float32)

    key_mask = object_mask(0.0)
    image, mask = compose(key_mask)
    video = None
    if motion:
        video = _moving_video(background, obj_value, key_mask, dx, dy, n_frames, size, ss)
    return Scene(image=image, label=label, video=video, mask=mask, seed=int(seed))


def _slide(layer: torch.Tensor, dx: float, dy: float, n_frames: int, padding: str) -> torch.Tensor:
    """Translate a (C, H, W) layer linearly through its own position: frame t shows it displaced by
    ``(t − T//2)/T · (dx, dy)`` in normalised image units (2 = full width; x right, y down).
    Bilinear resampling; ``padding`` as in ``grid_sample``. Returns (T, C, H, W)."""
    frac = (torch.arange(n_frames, dtype=torch.float32) - n_frames // 2) / n_frames
    # A translation: the identity's sampling grid plus each frame's shift (sample from x − shift). The same
    # grid, to the bit, as F.affine_grid with one translation matrix per frame, without its batched product.
    base = F.affine_grid(torch.eye(2, 3)[None], (1, *layer.shape), align_corners=False)  # (1, H, W, 2)
    grid = base + torch.stack([-frac * dx, -frac * dy], dim=-1)[:, None, None, :]  # (T, H, W, 2)
    src = layer.float()[None].expand(n_frames, -1, -1, -1)
    return F.grid_sample(src, grid, mode="bilinear", padding_mode=padding, align_corners=False)


def _moving_video(
    background: np.ndarray,
    obj_value: np.ndarray,
    key_mask: np.ndarray,
    dx: float,
    dy: float,
    n_frames: int,
    size: int,
    ss: int,
) -> np.ndarray:
    """Slide the object layer (mask and texture together) linearly through the key position.

    Frame t shows the object displaced by ``(t − T//2)/T · (dx, dy)`` canvas units; the
    texture moves with the object. Bilinear resampling of the supersampled layer.
    """
    layer = torch.from_numpy(np.stack([key_mask * obj_value, key_mask]).astype(np.float32))
    out = _slide(layer, dx, -dy, n_frames, "zeros")  # canvas y grows upward, image rows downward
    premult, alpha = out[:, 0], out[:, 1]
    bg = torch.from_numpy(background.astype(np.float32))
    frames = bg * (1 - alpha) + premult
    frames = F.avg_pool2d(frames[:, None], ss)[:, 0]
    return frames.clamp(0, 1).numpy()


def make_scenes(
    seeds: Sequence[int], size: int = 64, motion: bool = False, n_frames: int = 200
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Render many scenes: ``(images (N, H, W), labels (N,), videos (N, T, H, W) or None)``."""
    scenes = [make_scene(s, size=size, motion=motion, n_frames=n_frames) for s in seeds]
    images = np.stack([s.image for s in scenes])
    labels = np.array([s.label for s in scenes], dtype=np.int64)
    videos = np.stack([s.video for s in scenes]) if motion else None
    return images, labels, videos


def pan_video(image: torch.Tensor, seed: int, n_frames: int = 200, speed: float | None = None) -> torch.Tensor:
    """A camera pan across a still image (H, W): a (T, H, W) video whose key (middle) frame is the image.

    Used for images that are not procedural scenes (e.g. CIFAR-10): the whole picture slides in a
    random direction at ``speed`` pixels per frame (default: random in [0.08, 0.2]·W/64, as for a
    moving object), reflecting at the borders. Bilinear resampling; values stay in [0, 1].
    """
    if image.ndim != 2:
        raise ValueError(f"image must be (H, W), got shape {tuple(image.shape)}")
    rng = np.random.default_rng(int(seed))
    H, W = image.shape
    speed_px = rng.uniform(0.08, 0.2) * W / 64 if speed is None else float(speed)
    direction = rng.uniform(0, 2 * np.pi)
    travel = speed_px * n_frames * 2  # over the whole stream, in pixels × 2 (normalised units × size)
    dx, dy = travel / W * float(np.cos(direction)), travel / H * float(np.sin(direction))
    return _slide(image[None], dx, dy, n_frames, "reflection")[:, 0].clamp(0, 1)
