"""The spike camera's pixel: an integrate-and-fire neuron, simulated without a time loop.

Each pixel adds the light it receives in a frame to an accumulator ``A`` (units of the
threshold θ). When ``A ≥ θ`` at readout the pixel writes a 1 for that frame and loses θ
(subtractive reset). Because ``A`` only integrates, the number of spikes up to frame t is

    N_t = floor((A_0 + Σ_{s ≤ t} q_s) / θ)          (docs/facts.md §1)

and the spike frames are the first difference of ``N_t``. One cumulative sum replaces
the loop over time. The accumulator is kept in fixed point (2**-20 of θ, like a sensor's
finite-resolution charge), so the sums are exact integers: the closed form matches the
frame-by-frame loop bit for bit, and the same seed gives the same spikes on CPU and GPU.
``spikeclip_lite.reference.simulate_stepwise`` is the loop version, kept for tests and the
benchmark.

Units: intensity ``I`` is in [0, 1] (1 = full-scale light); the charge ``q`` a pixel
collects in one frame is measured in units of θ = 1 at ``threshold=1``. A pixel can
fire at most once per frame, so charge above θ in one frame is clipped (saturation);
with ``I ≤ 1 ≤ θ`` this never happens in the ideal sensor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

from ._tensor import ArrayLike, back, check_finite, check_ndim, to_torch

__all__ = ["NoiseModel", "PRESETS", "get_noise_model", "simulate", "firing_rate", "sensor_pattern", "with_light"]


@dataclass(frozen=True)
class NoiseModel:
    """What a real (low-light) spike-camera pixel adds to the ideal integrate-and-fire model.

    Every field has a unit and a source; defaults give the ideal sensor.

    Attributes:
        light: exposure scale, dimensionless. The mean charge per frame is
            ``light · gain · I`` (θ units). Low light = few photons = small ``light``.
            Presets are calibrated so a mid-grey procedural scene fires at the measured
            rates of docs/facts.md §1 (0.031 real U-CALTECH, 0.288 Spike-Zoo "normal").
        photons_per_threshold: photo-electrons needed to fill one threshold θ. Arrivals
            are Poisson, so the charge in a frame is ``Poisson(q · Q) / Q`` (shot noise).
            ``None`` disables shot noise. Default 40 is a guess (**lead**): SCSim
            models shot noise but the paper gives no electron count.
        dark_current: mean charge per frame that leaks in with no light, θ units.
            SCSim draws it per pixel from N(0.444, 0.173) in its own units; we keep that
            spread-to-mean ratio (0.39) and pick the mean (**lead**, 0.004 θ/frame:
            a dark pixel fires about once in 250 frames).
        dark_current_spread: per-pixel std / mean of the dark current (fixed pattern).
        gain_spread: per-pixel relative std of the photo-response gain (fixed pattern);
            SCSim's 0.058 (**lead**).
        threshold_spread: per-pixel relative std of θ (fixed pattern, **lead**, 0.03).
        pattern_seed: seed of the fixed pattern, i.e. *which sensor*. The same sensor
            has the same pattern in every recording, whatever the ``seed`` of a run.
    """

    light: float = 1.0
    photons_per_threshold: float | None = None
    dark_current: float = 0.0
    dark_current_spread: float = 0.0
    gain_spread: float = 0.0
    threshold_spread: float = 0.0
    pattern_seed: int = 2025

    def __post_init__(self) -> None:
        for name in (
            "light",
            "photons_per_threshold",
            "dark_current",
            "dark_current_spread",
            "gain_spread",
            "threshold_spread",
        ):
            v = getattr(self, name)
            if v is not None and not math.isfinite(v):
                raise ValueError(f"{name} must be a finite number, got {v}")
        if not self.light > 0:
            raise ValueError(f"light must be > 0, got {self.light}")
        if self.photons_per_threshold is not None and not self.photons_per_threshold > 0:
            raise ValueError(f"photons_per_threshold must be > 0 or None, got {self.photons_per_threshold}")
        for name in ("dark_current", "dark_current_spread", "gain_spread", "threshold_spread"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be ≥ 0, got {getattr(self, name)}")

    @property
    def is_ideal(self) -> bool:
        """True when the model adds nothing random to the ideal pixel."""
        return (
            self.photons_per_threshold is None
            and self.dark_current == 0
            and self.gain_spread == 0
            and self.threshold_spread == 0
        )


_SENSOR = dict(
    photons_per_threshold=40.0,
    dark_current=0.004,
    dark_current_spread=0.39,
    gain_spread=0.058,
    threshold_spread=0.03,
)

#: Named noise presets. ``"ideal"`` is the noiseless pixel; ``"normal"`` and ``"low_light"``
#: are the same sensor under two exposures (calibration: ``tests/test_physics.py``).
PRESETS: dict[str, NoiseModel] = {
    "ideal": NoiseModel(),
    "normal": NoiseModel(light=0.57, **_SENSOR),
    "low_light": NoiseModel(light=0.054, **_SENSOR),
}


#: Fixed-point resolution of the accumulator: 2**-20 of θ.
FRAC_BITS = 20
#: The largest spike stream :func:`simulate` will allocate (bytes, one per pixel-frame).
MAX_SPIKE_BYTES = 8 * 2**30


def get_noise_model(noise: str | NoiseModel | None) -> NoiseModel:
    """Resolve ``None`` / a preset name / a :class:`NoiseModel` to a :class:`NoiseModel`."""
    if noise is None:
        return PRESETS["ideal"]
    if isinstance(noise, NoiseModel):
        return noise
    if isinstance(noise, str):
        if noise not in PRESETS:
            raise ValueError(f"unknown noise preset {noise!r}; choose one of {sorted(PRESETS)}")
        return PRESETS[noise]
    raise TypeError(f"noise must be None, a preset name or a NoiseModel, got {type(noise).__name__}")


def sensor_pattern(
    shape: tuple[int, int], noise: NoiseModel, threshold: float, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The fixed pattern of one sensor: per-pixel ``(gain, dark, theta)``, each (H, W).

    Drawn on the CPU from ``noise.pattern_seed`` so it is identical on every device.
    """
    g = torch.Generator().manual_seed(noise.pattern_seed)
    gain = 1 + noise.gain_spread * torch.randn(shape, generator=g, dtype=torch.float64)
    dark = noise.dark_current * (1 + noise.dark_current_spread * torch.randn(shape, generator=g, dtype=torch.float64))
    theta = threshold * (1 + noise.threshold_spread * torch.randn(shape, generator=g, dtype=torch.float64))
    gain, dark = gain.clamp_min(0), dark.clamp_min(0)
    theta = theta.clamp_min(0.05 * threshold)
    return gain.to(device), dark.to(device), theta.to(device)


def simulate(
    intensity: ArrayLike,
    n_frames: int | None = 200,
    threshold: float = 1.0,
    seed: int | None = None,
    noise: str | NoiseModel | None = None,
) -> ArrayLike:
    """Simulate a spike camera looking at a static image or a video.

    Args:
        intensity: light in [0, 1], a static image (H, W) or a video (T, H, W), numpy or
            torch (any device). A video's T sets the number of frames.
        n_frames: frames to simulate for a static image (ignored → must be ``None`` or
            equal to T for a video).
        threshold: θ, in units of full-scale light per frame (> 0). Firing rate of an
            ideal pixel ≈ ``I / θ`` spikes per frame.
        seed: seeds the random initial accumulator ``A_0 ~ U(0, 1)·θ`` and the shot noise.
            ``None`` draws fresh randomness.
        noise: ``None`` (ideal), a preset name from :data:`PRESETS` or a :class:`NoiseModel`.

    Returns:
        spikes: uint8 0/1 of shape (T, H, W), same library (numpy/torch) and device as
        ``intensity``.
    """
    x, was_numpy = to_torch(intensity, "intensity")
    check_ndim(x, (2, 3), "intensity", "(H, W) or (T, H, W)")
    if not x.is_floating_point():
        raise TypeError(f"intensity must be a float array in [0, 1], got dtype {x.dtype}")
    check_finite(x, "intensity")
    if x.numel() and (float(x.min()) < 0 or float(x.max()) > 1):
        raise ValueError(
            f"intensity must lie in [0, 1], got range [{float(x.min()):.3g}, {float(x.max()):.3g}]; "
            "rescale it (e.g. img / img.max()) before simulating"
        )
    if not threshold > 0:
        raise ValueError(f"threshold must be > 0, got {threshold}")
    model = get_noise_model(noise)
    if x.ndim == 3:
        if n_frames not in (None, x.shape[0]):
            raise ValueError(f"a video sets its own length: n_frames={n_frames} but the video has {x.shape[0]} frames")
        T = x.shape[0]
    else:
        if n_frames is None or n_frames < 1:
            raise ValueError(f"n_frames must be a positive integer for a static image, got {n_frames}")
        T = int(n_frames)
    H, W = x.shape[-2:]
    # the output alone is T·H·W bytes: refuse sizes that cannot fit rather than die allocating them
    if T * H * W > MAX_SPIKE_BYTES:
        raise ValueError(
            f"{T} frames of {H}×{W} need {T * H * W / 2**30:.1f} GiB of spikes, more than the "
            f"{MAX_SPIKE_BYTES / 2**30:.0f} GiB limit (physics.MAX_SPIKE_BYTES); simulate fewer frames or pixels"
        )

    device = x.device
    gen = torch.Generator(device=device)
    gen.manual_seed(int(seed) if seed is not None else int(torch.randint(0, 2**62, (1,)).item()))
    # The accumulator is a fixed-point number: 1 unit = θ / 2**FRAC_BITS. Integer sums are
    # exact, so the closed form equals the frame-by-frame loop bit for bit, on any device.
    one = 1 << FRAC_BITS
    itype = torch.int32 if (T + 2) * one < 2**31 else torch.int64
    a = torch.randint(0, one, (H, W), generator=gen, device=device, dtype=itype)  # A_0 ~ U[0, θ)

    fixed_pattern = not model.is_ideal
    if fixed_pattern:
        gain, dark, theta = (t.float() for t in sensor_pattern((H, W), model, threshold, device))
    x = x.float()
    Q = model.photons_per_threshold

    def charge(s: int, e: int) -> torch.Tensor:
        """Charge collected in frames s..e-1 in fixed-point units of θ: (e-s, H, W) ints."""
        light = x[s:e] if x.ndim == 3 else x.expand(e - s, H, W)
        if fixed_pattern:
            q = (light * (model.light * gain) + dark) / theta  # expected charge, θ units
        else:
            q = light * (model.light / threshold)
        if Q is not None:
            q = torch.poisson(q * Q, generator=gen) / Q  # photon shot noise
        q = torch.round(q.clamp(max=1.0) * one)  # at most one spike per frame: saturation
        return q.to(itype)

    # Count of spikes up to and including frame t: N_t = floor(A_0 + Σ_{s≤t} q_s) (θ units),
    # i.e. a right shift in fixed point. Frames are processed in blocks that fit in cache:
    # every block is the closed form, only the running sum is carried. A GPU takes one block.
    block = T if device.type != "cpu" else 16
    spikes = torch.empty((T, H, W), dtype=torch.uint8, device=device)
    prev = torch.zeros((H, W), dtype=itype, device=device)  # N_{-1} = floor(A_0) = 0
    static_ideal = x.ndim == 2 and Q is None
    if static_ideal:  # the same charge every frame: Σ q = (t + 1)·q, no cumsum at all
        q1 = charge(0, 1)[0]
        frame = torch.arange(1, T + 1, dtype=itype, device=device).view(T, 1, 1)
    total = torch.zeros((H, W), dtype=itype, device=device)
    for s in range(0, T, block):
        e = min(s + block, T)
        if static_ideal:
            counts = torch.addcmul(a, frame[s:e], q1)
        else:
            counts = torch.cumsum(charge(s, e), dim=0).add_(total)
            total = counts[-1].clone()
            counts.add_(a)
        counts.bitwise_right_shift_(FRAC_BITS)  # floor(· / θ)
        # At most one spike per frame (q ≤ θ), so "the count changed" is the spike.
        torch.ne(counts[:1], prev.unsqueeze(0), out=spikes[s : s + 1].view(torch.bool))
        torch.ne(counts[1:], counts[:-1], out=spikes[s + 1 : e].view(torch.bool))
        prev = counts[-1].clone()
    return back(spikes, was_numpy)


def firing_rate(spikes: ArrayLike) -> float:
    """Mean spikes per pixel per frame of a (…, T, H, W) stream."""
    s, _ = to_torch(spikes, "spikes")
    return float(s.float().mean())


def with_light(noise: str | NoiseModel, light: float) -> NoiseModel:
    """A copy of a noise model at another exposure (same sensor, other lighting)."""
    return replace(get_noise_model(noise), light=light)
