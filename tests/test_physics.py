import numpy as np
import pytest
import torch

from spikeclip_lite import data, physics, reference


def _stepwise_twin(intensity: np.ndarray, n_frames: int, seed: int, threshold: float = 1.0) -> np.ndarray:
    """The loop reference fed the simulator's own fixed-point A_0 and charge."""
    one = 2**physics.FRAC_BITS
    g = torch.Generator().manual_seed(seed)
    a0 = torch.randint(0, one, intensity.shape, generator=g, dtype=torch.int32).numpy() / one
    q = np.round(np.minimum(intensity.astype(np.float32) * np.float32(1 / threshold), 1) * one) / one
    return reference.simulate_stepwise(q, n_frames, 1.0, a0)


@pytest.mark.parametrize("threshold", [1.0, 1.7, 3.0])
def test_closed_form_equals_loop_bit_for_bit(rng, threshold):
    img = rng.random((37, 53)).astype(np.float32)
    fast = physics.simulate(img, 200, threshold=threshold, seed=7)
    assert fast.dtype == np.uint8 and fast.shape == (200, 37, 53)
    assert np.array_equal(fast, _stepwise_twin(img, 200, 7, threshold))


def test_static_image_equals_constant_video(rng):
    img = rng.random((20, 24)).astype(np.float32)
    video = np.repeat(img[None], 150, axis=0)
    assert np.array_equal(physics.simulate(img, 150, seed=3), physics.simulate(video, None, seed=3))


def test_firing_rate_is_intensity_over_threshold():
    levels = np.linspace(0, 1, 11, dtype=np.float32)
    img = np.repeat(levels[:, None], 30, axis=1)
    for theta in (1.0, 2.5):
        s = physics.simulate(img, 400, threshold=theta, seed=0)
        np.testing.assert_allclose(s.mean(axis=(0, 2)), levels / theta, atol=1 / 400 + 1e-9)
        # spike count is exactly floor(A0 + t·q): never more than one off the ideal
        assert np.abs(s.sum(0) - 400 * img / theta).max() <= 1


def test_at_most_one_spike_per_frame_when_saturated():
    img = np.ones((8, 8), dtype=np.float32)
    s = physics.simulate(img, 50, threshold=0.4, seed=0)
    assert s.max() == 1 and s.mean() == 1.0  # saturates at one spike per frame


def test_seed_reproducible_and_seeds_differ(rng):
    img = rng.random((16, 16)).astype(np.float32)
    a = physics.simulate(img, 100, seed=1, noise="low_light")
    b = physics.simulate(img, 100, seed=1, noise="low_light")
    c = physics.simulate(img, 100, seed=2, noise="low_light")
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_torch_in_torch_out_same_as_numpy(rng):
    img = rng.random((12, 16)).astype(np.float32)
    t = physics.simulate(torch.from_numpy(img), 64, seed=5)
    assert isinstance(t, torch.Tensor) and t.dtype == torch.uint8 and t.shape == (64, 12, 16)
    assert np.array_equal(t.numpy(), physics.simulate(img, 64, seed=5))


def test_low_light_preset_matches_real_firing_rate():
    """docs/facts.md §1: real U-CALTECH 0.031 spikes/px/frame; Spike-Zoo normal 0.288."""
    grey = np.full((64, 64), 0.5, dtype=np.float32)
    low = physics.firing_rate(physics.simulate(grey, 200, seed=0, noise="low_light"))
    normal = physics.firing_rate(physics.simulate(grey, 200, seed=0, noise="normal"))
    assert abs(low - 0.031) < 0.004
    assert abs(normal - 0.288) < 0.02
    # typical procedural scenes land in the same range
    scenes = [data.make_scene(s).image for s in range(12)]
    rates = [physics.firing_rate(physics.simulate(im, 200, seed=s, noise="low_light")) for s, im in enumerate(scenes)]
    assert 0.015 < np.mean(rates) < 0.05


def test_fixed_pattern_is_the_same_sensor_across_runs():
    model = physics.PRESETS["low_light"]
    g1, d1, t1 = physics.sensor_pattern((10, 10), model, 1.0)
    g2, d2, t2 = physics.sensor_pattern((10, 10), model, 1.0)
    assert torch.equal(g1, g2) and torch.equal(d1, d2) and torch.equal(t1, t2)
    assert abs(float(g1.std()) - model.gain_spread) < 0.03
    other = physics.NoiseModel(**{**model.__dict__, "pattern_seed": 9})
    assert not torch.equal(physics.sensor_pattern((10, 10), other, 1.0)[0], g1)


def test_shot_noise_adds_variance():
    grey = np.full((48, 48), 0.5, dtype=np.float32)
    ideal = physics.NoiseModel(light=0.3)
    shot = physics.NoiseModel(light=0.3, photons_per_threshold=5)
    v_ideal = physics.simulate(grey, 200, seed=0, noise=ideal).sum(0).var()
    v_shot = physics.simulate(grey, 200, seed=0, noise=shot).sum(0).var()
    assert v_shot > 3 * v_ideal


def test_dark_current_fires_in_the_dark():
    dark = np.zeros((32, 32), dtype=np.float32)
    assert physics.simulate(dark, 200, seed=0).sum() == 0
    assert physics.simulate(dark, 200, seed=0, noise="low_light").mean() > 0.001


@pytest.mark.parametrize(
    "bad, kwargs, match",
    [
        (np.full((4, 4), 1.5, np.float32), {}, "lie in \\[0, 1\\]"),
        (np.full((4, 4), np.nan, np.float32), {}, "NaN"),
        (np.zeros((4,), np.float32), {}, "shape"),
        (np.zeros((4, 4), np.uint8), {}, "float"),
        (np.zeros((4, 4), np.float32), {"threshold": 0}, "threshold"),
        (np.zeros((4, 4), np.float32), {"noise": "moonlight"}, "unknown noise preset"),
        (np.zeros((5, 4, 4), np.float32), {"n_frames": 7}, "video sets its own length"),
    ],
)
def test_bad_input_is_rejected(bad, kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        physics.simulate(bad, **{"n_frames": None if bad.ndim == 3 else 10, **kwargs})


def test_noise_model_validates_fields():
    with pytest.raises(ValueError, match="light"):
        physics.NoiseModel(light=0)
    with pytest.raises(ValueError, match="gain_spread"):
        physics.NoiseModel(gain_spread=-1)


def test_noise_model_and_stream_size_are_checked_up_front():
    import math

    from spikeclip_lite import physics

    for bad in (dict(dark_current=math.nan), dict(light=math.inf), dict(gain_spread=math.nan)):
        with pytest.raises(ValueError, match="must be a finite number"):
            physics.NoiseModel(**bad)
    with pytest.raises(ValueError, match="GiB of spikes, more than"):
        physics.simulate(np.full((250, 400), 0.5, np.float32), n_frames=10**9)  # 93 TiB: refused at once
