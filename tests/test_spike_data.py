"""Spike sets: streams stored as packed bits (1 bit per pixel-frame), voxels computed from them, the cache file."""

import zipfile

import numpy as np
import pytest
import torch

from spikeclip_lite import baselines, data, models, physics
from spikeclip_lite.checkpoints import CorruptCheckpointError
from spikeclip_lite.spike_data import (
    SPLITS,
    SpikeSet,
    load_or_make,
    make_hq_images,
    make_spike_set,
    normalise_rate,
    pack_spikes,
    resolve_workers,
    unpack_spikes,
    voxels_from_packed,
)


def random_stream(*shape, p=0.3, seed=0) -> torch.Tensor:
    return (torch.rand(*shape, generator=torch.Generator().manual_seed(seed)) < p).to(torch.uint8)


def test_packing_round_trips_and_keeps_frame_order():
    s = random_stream(3, 200, 5, 7)
    packed = pack_spikes(s)
    assert packed.shape == (3, 25, 5, 7) and packed.dtype == torch.uint8
    assert torch.equal(unpack_spikes(packed), s)
    one = torch.zeros(16, 1, 1, dtype=torch.uint8)
    one[9] = 1  # frame 9 = bit 1 of byte 1
    assert pack_spikes(one).flatten().tolist() == [0, 2]
    assert torch.equal(pack_spikes(s.bool()), packed)


def test_voxels_from_bits_equal_voxelising_the_stream():
    s = random_stream(4, 200, 9, 8, p=0.5, seed=1)
    v = voxels_from_packed(pack_spikes(s))
    assert v.dtype == torch.float32 and torch.equal(v, models.voxelize(s))
    # other bin widths go through the unpacked stream
    assert torch.equal(voxels_from_packed(pack_spikes(s), bins=25), models.voxelize(s, bins=25))


def test_packing_rejects_what_it_cannot_store():
    with pytest.raises(ValueError, match="199 frames cannot be packed"):
        pack_spikes(torch.zeros(199, 2, 2, dtype=torch.uint8))
    with pytest.raises(ValueError, match="only 0 and 1"):
        pack_spikes(torch.full((8, 2, 2), 2, dtype=torch.uint8))
    with pytest.raises(ValueError, match="must be uint8"):
        unpack_spikes(torch.zeros(1, 2, 2))


def test_spike_set_layout_and_determinism(tiny_set):
    assert tiny_set.spikes.shape == (8, 25, 32, 32) and tiny_set.n_frames == 200
    assert tiny_set.voxels.shape == (8, 50, 32, 32) and tiny_set.voxels.dtype == torch.float16
    assert tiny_set.moving.sum() == 4 and tiny_set.tfp.max() <= 1 and tiny_set.gt.shape == (8, 32, 32)
    again = make_spike_set(8, "train", 32, progress=False)
    assert torch.equal(again.spikes, tiny_set.spikes)
    with pytest.raises(ValueError, match="unknown split"):
        make_spike_set(2, "holdout", 32, progress=False)
    assert len(set(SPLITS.values())) == len(SPLITS)


def test_stored_bits_are_the_simulated_stream_and_give_the_same_baselines(tiny_set):
    """Bit-identity with the float16 voxels stored before: re-simulate scenes and compare."""
    for i in (0, 1):  # one static, one moving scene
        seed, move = SPLITS["train"] + i, bool(tiny_set.moving[i])
        sc = data.make_scene(seed, size=32, motion=move, n_frames=200)
        spk = physics.simulate(torch.from_numpy(sc.light()), None if move else 200, seed=seed, noise="low_light")
        assert torch.equal(tiny_set.stream(i), spk.to(torch.uint8))
        assert torch.equal(tiny_set.voxels[i], models.voxelize(spk).half())
        assert torch.equal(tiny_set.voxel_batch([i])[0], models.voxelize(spk))
        assert torch.equal(normalise_rate(baselines.tfi(tiny_set.stream(i))), tiny_set.tfi[i])
        assert torch.equal(normalise_rate(baselines.tfp(tiny_set.stream(i))), tiny_set.tfp[i])


def test_cache_file_round_trips_without_pickle_and_is_small(tiny_set, tmp_path):
    path = tmp_path / "set.npz"
    tiny_set.save(path)
    back = SpikeSet.load(path)
    for name in ("spikes", "tfp", "tfi", "tfstp", "gt", "labels", "moving"):
        assert torch.equal(getattr(back, name), getattr(tiny_set, name)), name
    with zipfile.ZipFile(path) as zf:
        assert all(n.endswith(".npy") for n in zf.namelist())
    assert path.stat().st_size < tiny_set.nbytes + 4096
    pixel_frames = len(tiny_set) * 200 * 32 * 32
    assert 8 * tiny_set.nbytes / pixel_frames < 2.0  # 1 bit of spikes + the four float32 images


def test_fast_mode_data_fits_two_bits_per_pixel_frame():
    """Fast mode's 168 scenes at 64², 200 frames: at most 34.4 MB (2 bits per pixel-frame; was 80 MB)."""
    from spikeclip_lite.pipeline import FAST

    one = make_spike_set(2, "val", FAST.size, progress=False)
    n = FAST.n_train + FAST.n_val + FAST.n_test
    assert n * one.nbytes / 2 <= 34.4e6


def test_unreadable_or_pickled_cache_is_refused(tiny_set, tmp_path):
    path = tmp_path / "set.npz"
    tiny_set.save(path)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(CorruptCheckpointError, match="cannot be read"):
        SpikeSet.load(path)
    arrays = {k: getattr(tiny_set, k).numpy() for k in ("tfp", "tfi", "tfstp", "gt", "labels", "moving")}
    np.savez(path, spikes=np.array([object()], dtype=object), **arrays)  # a pickled member
    with pytest.raises(CorruptCheckpointError, match="cannot be read"):
        SpikeSet.load(path)
    np.savez(path, spikes=tiny_set.spikes.numpy())
    with pytest.raises(CorruptCheckpointError, match="lacks"):
        SpikeSet.load(path)


def test_corrupt_cache_is_set_aside_and_rebuilt(tiny_set, tmp_path):
    path = tmp_path / "set.npz"
    calls = []

    def make():
        calls.append(1)
        return tiny_set

    load_or_make(path, make)
    assert torch.equal(load_or_make(path, make).spikes, tiny_set.spikes) and len(calls) == 1
    path.write_bytes(path.read_bytes()[:100])
    with pytest.warns(UserWarning, match="cannot be read .* rebuilding"):
        again = load_or_make(path, make)
    assert torch.equal(again.spikes, tiny_set.spikes) and len(calls) == 2
    assert path.with_name(path.name + ".corrupt").exists()


def test_hq_images_are_unpaired(tiny_set):
    hq = make_hq_images(8, 32)
    assert not any(torch.allclose(h, g) for h in hq for g in tiny_set.gt)


def test_simulation_device_argument_is_used():
    a = make_spike_set(2, "val", 16, n_frames=200, progress=False, device="cpu")
    b = make_spike_set(2, "val", 16, n_frames=200, progress=False)
    assert torch.equal(a.spikes, b.spikes)
    with pytest.raises(RuntimeError):
        make_spike_set(1, "val", 16, progress=False, device="meta")


def test_worker_processes_give_the_same_spike_set():
    """Scenes rendered and simulated in worker processes are bit-identical to the in-process set."""
    one = make_spike_set(4, "val", 16, progress=False, workers=0)
    two = make_spike_set(4, "val", 16, progress=False, workers=2)
    for name in ("spikes", "tfp", "tfi", "tfstp", "gt", "labels", "moving"):
        assert torch.equal(getattr(one, name), getattr(two, name)), name
    assert resolve_workers(3) == 3 and resolve_workers(-1) >= 0
