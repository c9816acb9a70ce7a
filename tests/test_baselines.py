import numpy as np
import pytest
import torch

from spikeclip_lite import baselines, physics, reference


def test_tfp_default_is_mean_of_all_frames(rng):
    s = (rng.random((200, 10, 12)) < 0.2).astype(np.uint8)
    np.testing.assert_allclose(baselines.tfp(s), s.mean(0), atol=1e-7)
    np.testing.assert_allclose(baselines.tfp(s, center=50, half_window=10), s[40:61].mean(0), atol=1e-7)
    np.testing.assert_allclose(baselines.tfp(s, center=2, half_window=10), s[0:13].mean(0), atol=1e-7)


@pytest.mark.parametrize("center, w", [(100, 49), (0, 10), (199, 20), (5, 49), (150, 200), (60, 0)])
def test_tfi_matches_framewise_reference(rng, center, w):
    s = (rng.random((200, 9, 11)) < 0.08).astype(np.uint8)
    fast = baselines.tfi(s, center=center, half_window=w)
    np.testing.assert_allclose(fast, reference.tfi_framewise(s, center, w), rtol=1e-6)


def test_tfi_on_periodic_train_and_silence():
    s = np.zeros((200, 2, 2), np.uint8)
    s[::4, 0, 0] = 1  # period 4
    s[100, 0, 1] = 1
    s[101, 0, 1] = 1  # consecutive spikes → 1
    out = baselines.tfi(s)
    assert out[0, 0] == pytest.approx(0.25)
    assert out[0, 1] == pytest.approx(1.0)
    assert out[1, 0] == pytest.approx(1 / 98)  # silent: clamped to 2w
    assert out.max() <= 1 and out.min() > 0


def test_methods_recover_intensity_on_ideal_static_scene():
    levels = np.linspace(0.1, 0.9, 9, dtype=np.float32)
    img = np.repeat(levels[:, None], 64, axis=1)
    s = physics.simulate(img, 200, seed=0)
    for m in baselines.METHODS:
        est = baselines.reconstruct(s, m).mean(axis=1)
        assert np.all(np.diff(est) > 0), (m, est)  # monotonic in the light
        np.testing.assert_allclose(est, levels, atol=0.1 if m != "tfp" else 0.01, err_msg=m)


def test_batch_dims_and_torch(rng):
    s = (rng.random((3, 200, 8, 8)) < 0.2).astype(np.uint8)
    for m in baselines.METHODS:
        out = baselines.reconstruct(s, m)
        assert out.shape == (3, 8, 8) and out.dtype == np.float32
        np.testing.assert_allclose(out[1], baselines.reconstruct(s[1], m), rtol=1e-6)
        t = baselines.reconstruct(torch.from_numpy(s), m)
        assert isinstance(t, torch.Tensor)
        np.testing.assert_allclose(t.numpy(), out, rtol=1e-6)


def test_all_outputs_in_unit_range(rng):
    s = (rng.random((200, 16, 16)) < 0.5).astype(np.uint8)
    for m in baselines.METHODS:
        out = baselines.reconstruct(s, m)
        assert 0 <= out.min() and out.max() <= 1


def test_bad_spikes_are_rejected():
    with pytest.raises(ValueError, match="only 0 and 1"):
        baselines.tfp(np.full((4, 2, 2), 2, np.uint8))
    with pytest.raises(ValueError, match="shape"):
        baselines.tfi(np.zeros((2, 2), np.uint8))
    with pytest.raises(ValueError, match="center"):
        baselines.tfi(np.zeros((10, 2, 2), np.uint8), center=10)
    with pytest.raises(ValueError, match="no frames"):
        baselines.tfp(np.zeros((0, 2, 2), np.uint8))
    with pytest.raises(ValueError, match="unknown method"):
        baselines.reconstruct(np.zeros((10, 2, 2), np.uint8), "tfx")


def test_tfi_rejects_bad_values_in_its_window():
    s = np.zeros((200, 2, 2), np.uint8)
    s[100, 0, 0] = 5
    with pytest.raises(ValueError, match="only 0 and 1"):
        baselines.tfi(s)


def test_tfi_pixelwise_reference_agrees(rng):
    s = (rng.random((120, 5, 6)) < 0.1).astype(np.uint8)
    np.testing.assert_allclose(reference.tfi_pixelwise(s, 60, 30), baselines.tfi(s, 60, 30), rtol=1e-6)


def test_smoothed_is_a_gaussian_low_pass_that_removes_noise(rng):
    truth = np.tile(np.linspace(0.2, 0.8, 48, dtype=np.float32), (48, 1))  # a smooth ramp
    noisy = truth + rng.normal(0, 0.1, truth.shape).astype(np.float32)
    out = baselines.smoothed(noisy)
    assert isinstance(out, np.ndarray) and out.shape == noisy.shape
    inner = (slice(4, -4), slice(4, -4))  # away from the reflecting borders
    assert np.abs(out - truth)[inner].mean() < 0.4 * np.abs(noisy - truth)[inner].mean()
    assert np.allclose(out[inner].mean(), noisy[inner].mean(), atol=0.01)  # brightness kept
    batch = torch.from_numpy(np.stack([noisy, truth]))
    both = baselines.smoothed(batch)
    assert isinstance(both, torch.Tensor) and both.shape == (2, 48, 48)
    np.testing.assert_allclose(both[0].numpy(), out, atol=1e-6)  # each image on its own
    np.testing.assert_array_equal(baselines.smoothed(noisy, sigma=0.0), noisy)


def test_smoothed_rejects_bad_input():
    with pytest.raises(ValueError, match="NaN"):
        baselines.smoothed(np.full((8, 8), np.nan, dtype=np.float32))
    with pytest.raises(ValueError, match="shape"):
        baselines.smoothed(np.zeros((1, 2, 8, 8), dtype=np.float32))


def test_tfstp_is_the_same_whatever_ran_before(rng):
    """TFSTP caches its steady-state table: a call must not depend on the calls before it."""
    a = (rng.random((200, 9, 11)) < 0.3).astype(np.uint8)
    b = (rng.random((60, 9, 11)) < 0.1).astype(np.uint8)  # another length: another table
    first = baselines.tfstp(a)
    baselines.tfstp(b)
    baselines.tfstp(torch.from_numpy(a), center=120)
    np.testing.assert_array_equal(baselines.tfstp(a), first)
    assert np.isfinite(first).all() and 0 <= first.min() and first.max() <= 1
