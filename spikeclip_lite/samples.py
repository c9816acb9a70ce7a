"""The small spike streams shipped in ``data_samples/``, and the code that makes them.

``python -m spikeclip_lite samples`` regenerates every file bit for bit (fixed seeds).
``load_sample(name)`` returns ``(spikes, ground_truth, info)`` for the notebooks.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from . import data, io, physics

DEFAULT_DIR = Path(__file__).resolve().parent.parent / "data_samples"


@dataclass(frozen=True)
class SampleSpec:
    """How one sample is made."""

    name: str
    fmt: str  # "dat" or "uhsr"
    label: str
    seed: int
    size: int
    noise: str
    motion: bool
    n_frames: int = 200


SAMPLES: tuple[SampleSpec, ...] = (
    SampleSpec("house_static_normal", "dat", "house", seed=11, size=128, noise="normal", motion=False),
    SampleSpec("house_static_lowlight", "dat", "house", seed=11, size=128, noise="low_light", motion=False),
    SampleSpec("car_moving_lowlight", "dat", "car", seed=23, size=128, noise="low_light", motion=True),
    SampleSpec("star_moving_lowlight_uhsr", "uhsr", "star", seed=37, size=250, noise="low_light", motion=True),
)


def spikes_sha256(spikes: np.ndarray) -> str:
    """SHA-256 of a stream's decoded content (uint8 bytes, C order): stable across zip timestamps."""
    return hashlib.sha256(np.ascontiguousarray(spikes, dtype=np.uint8).tobytes()).hexdigest()


def make_samples(out: Path = DEFAULT_DIR) -> list[Path]:
    """Write every sample (stream + ground truth) and ``manifest.json`` into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    manifest = {}
    for spec in SAMPLES:
        scene = data.make_scene(spec.seed, size=spec.size, label=spec.label, motion=spec.motion, n_frames=spec.n_frames)
        spikes = physics.simulate(
            scene.light(), n_frames=None if spec.motion else spec.n_frames, seed=spec.seed, noise=spec.noise
        )
        if spec.fmt == "dat":
            stream = io.write_dat(out / f"{spec.name}.dat", spikes)
        else:
            stream = io.write_uhsr(
                out / f"{spec.name}.npz", spikes, data.class_index(spec.label), label_name=f"{spec.label}.png"
            )
        gt = out / f"{spec.name}_gt.npz"
        tmp = gt.with_name(gt.name + ".tmp.npz")
        # mean_light: the light averaged over the stream, what a long TFP converges to.
        extra = {} if scene.video is None else {"mean_light": scene.video.mean(axis=0)}
        np.savez_compressed(tmp, image=scene.image, mask=scene.mask, **extra)
        tmp.replace(gt)
        written += [stream, gt]
        manifest[spec.name] = {
            **asdict(spec),
            "height": spec.size,
            "width": spec.size,
            "firing_rate": round(float(spikes.mean()), 4),
            "file": stream.name,
            "ground_truth": gt.name,
            "spikes_sha256": spikes_sha256(spikes),
        }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    written.append(out / "manifest.json")
    return written


def load_sample(name: str, root: Path = DEFAULT_DIR) -> tuple[np.ndarray, np.ndarray, dict]:
    """``(spikes (T, H, W) uint8, ground truth (H, W) float32 at the key frame, info)``."""
    root = Path(root)
    manifest_path = root / "manifest.json"
    if not manifest_path.is_file():
        raise FileNotFoundError(f"{manifest_path} is missing: run `python -m spikeclip_lite samples`")
    manifest = json.loads(manifest_path.read_text())
    if name not in manifest:
        raise ValueError(f"unknown sample {name!r}; available: {sorted(manifest)}")
    info = manifest[name]
    path = root / info["file"]
    if info["fmt"] == "dat":
        spikes = io.read_dat(path, info["height"], info["width"])
    else:
        spikes, _ = io.read_uhsr(path, crop=False)
    with np.load(root / info["ground_truth"]) as gt:
        image = gt["image"].astype(np.float32)
    return spikes, image, info
