"""`make bench`: the vectorised code against plain loop references, in one run.

Stream: 200 frames × 250 × 400 (the native sensor). Prints medians and speed-up ratios
as a Markdown table and writes ``outputs/bench.json``. Ratios, not absolute times, are the
claim: both sides run on the same machine in the same process.
"""

from __future__ import annotations

import json
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from unittest import mock

import numpy as np
import torch

from spikeclip_lite import baselines, data, io, models, physics, reference
from spikeclip_lite.spike_data import make_spike_set, pack_spikes, unpack_spikes, voxels_from_packed

T, H, W = 200, 250, 400


def median_time(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def storage_sizes() -> dict[str, int]:
    """Bytes per 64×64 scene of 200 frames: as stored now (packed bits) and before (float16 voxels)."""
    s = make_spike_set(2, "val", 64, progress=False)
    now = s.nbytes // 2
    images = 4 * 64 * 64 * 4 + 8 + 1  # tfp, tfi, tfstp, gt float32 + label + moving
    return {"float16 voxels (until 2026-11-28)": 50 * 64 * 64 * 2 + images, "packed bits (now)": now}


def main() -> None:
    scene = data.make_scene(0, size=W)  # a 400×400 procedural scene, cropped to 250×400
    image = scene.image[:H, :W].copy()
    rows = []

    # 1. .dat decode (a low-light stream: the paper's setting)
    spikes = physics.simulate(image, T, seed=0, noise="low_light")
    with tempfile.TemporaryDirectory() as tmp:
        path = io.write_dat(Path(tmp) / "bench.dat", spikes)
        raw = path.read_bytes()
        fast = median_time(lambda: io.read_dat(path, H, W), 7)
        slow = median_time(lambda: reference.decode_dat_bitwise(raw, H, W), 1)
        assert np.array_equal(io.read_dat(path, H, W), reference.decode_dat_bitwise(raw, H, W))
    rows.append(("`.dat` decode (low light)", "per-bit Python loop", slow, fast, 20))

    # 2. simulator (ideal sensor, static scene)
    one = 2**physics.FRAC_BITS
    a0 = torch.randint(0, one, (H, W), generator=torch.Generator().manual_seed(0), dtype=torch.int32).numpy() / one
    q = np.round(image * one) / one
    fast = median_time(lambda: physics.simulate(image, T, seed=0), 7)
    slow = median_time(lambda: reference.simulate_stepwise(q, T, 1.0, a0), 3)
    assert np.array_equal(physics.simulate(image, T, seed=0), reference.simulate_stepwise(q, T, 1.0, a0))
    rows.append(("simulator (ideal, static)", "per-time-step loop", slow, fast, 10))

    # 3. TFI at the paper's setting (t = 100, w = 49), normal light
    spikes_n = physics.simulate(image, T, seed=0, noise="normal")
    fast = median_time(lambda: baselines.tfi(spikes_n, 100, 49), 7)
    slow = median_time(lambda: reference.tfi_pixelwise(spikes_n, 100, 49), 1)
    np.testing.assert_allclose(baselines.tfi(spikes_n, 100, 49), reference.tfi_pixelwise(spikes_n, 100, 49), rtol=1e-6)
    rows.append(("TFI (t=100, w=49)", "per-pixel frame-by-frame search", slow, fast, 10))
    # A much stronger reference: the same search as a frame loop vectorised over pixels.
    strong = median_time(lambda: reference.tfi_framewise(spikes_n, 100, 49), 5)
    rows.append(("TFI (t=100, w=49)", "frame loop, vectorised over pixels", strong, fast, None))

    # 4. TFSTP of one 64² scene, as each scene of a spike set computes it: its steady-state table is cached
    small = physics.simulate(image[:64, :64], T, seed=0, noise="low_light")
    fast = median_time(lambda: baselines.tfstp(small), 7)
    with mock.patch.object(baselines, "_stp_steady_table", baselines._stp_steady_table.__wrapped__):
        slow = median_time(lambda: baselines.tfstp(small), 7)
        recomputed = baselines.tfstp(small)
    assert np.array_equal(baselines.tfstp(small), recomputed)
    rows.append(("TFSTP of a 64² scene", "steady-state table recomputed per call", slow, fast, 1.5))
    # What that buys a spike set (24 scenes of 200 × 64², simulated as `make run` simulates its sets)
    fast = median_time(lambda: make_spike_set(24, "val", 64, progress=False), 3)
    with mock.patch.object(baselines, "_stp_steady_table", baselines._stp_steady_table.__wrapped__):
        slow = median_time(lambda: make_spike_set(24, "val", 64, progress=False), 3)
    rows.append(("a spike set (24 scenes of 64²)", "the same, TFSTP's table recomputed per scene", slow, fast, None))

    # 5. a training batch's voxels from the stored bits (32 scenes of 200 × 128 × 128, the full-mode batch)
    batch = (torch.rand(32, T, 128, 128, generator=torch.Generator().manual_seed(0)) < 0.05).to(torch.uint8)
    packed = pack_spikes(batch)
    fast = median_time(lambda: voxels_from_packed(packed), 7)
    slow = median_time(lambda: models.voxelize(unpack_spikes(packed)), 3)
    assert torch.equal(voxels_from_packed(packed), models.voxelize(batch))
    rows.append(("voxels of a batch from bits (32 × 128²)", "unpack, then sum frames", slow, fast, 2))
    stored = models.voxelize(batch).half()  # the float16 voxels the sets held before packing
    read_f16 = median_time(lambda: stored[torch.arange(32)].float(), 7)

    # Context without a reference: the noisy simulator (Poisson draws dominate).
    noisy = median_time(lambda: physics.simulate(image, T, seed=0, noise="low_light"), 3)

    print(
        f"\nBenchmark on {T}×{H}×{W}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{platform.processor() or platform.machine()}\n"
    )
    print("| operation | reference | reference (ms) | vectorised (ms) | speed-up | target |")
    print("|---|---|---|---|---|---|")
    for name, ref_name, slow, fast, target in rows:
        goal = f"≥ {target}×" if target else "(context)"
        print(f"| {name} | {ref_name} | {slow * 1e3:.1f} | {fast * 1e3:.1f} | {slow / fast:.1f}× | {goal} |")
    print(f"\nsimulator with the low_light noise model (shot noise, dark current, fixed pattern): {noisy * 1e3:.0f} ms")
    print(
        f"a batch's voxels read from stored float16 voxels (the old layout, 4× the memory): {read_f16 * 1e3:.1f} ms;"
        f" from the bits: {fast * 1e3:.1f} ms"
    )
    sizes = storage_sizes()
    print("\n| spike-set layout | bytes per 64² scene | bits per pixel-frame | fast-mode data (168 scenes) |")
    print("|---|---|---|---|")
    for name, b in sizes.items():
        print(f"| {name} | {b:,} | {8 * b / (T * 64 * 64):.2f} | {168 * b / 1e6:.1f} MB |")
    out = Path("outputs")
    out.mkdir(exist_ok=True)
    (out / "bench.json").write_text(
        json.dumps(
            {
                "rows": [
                    dict(op=n, reference=r, reference_s=s, vectorised_s=f, ratio=s / f, target=t)
                    for n, r, s, f, t in rows
                ],
                "noisy_simulator_s": noisy,
                "voxels_from_float16_s": read_f16,
                "bytes_per_64px_scene": sizes,
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
            },
            indent=2,
        )
    )
    failed = [n for n, _, s, f, t in rows if t and s / f < t]
    if failed:
        print(f"below target: {failed}")


if __name__ == "__main__":
    main()
