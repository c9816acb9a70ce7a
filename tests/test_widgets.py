import numpy as np

from spikeclip_lite import data, physics, widgets


def test_sensor_explorer_state_follows_controls():
    img = data.make_scene(0, size=32).image
    w, state = widgets.sensor_explorer(img, seed=0, n_frames=100)
    light, thr, preset = w.children[0].children
    base = state.rate
    assert state.spikes.shape == (100, 32, 32)
    thr.value = 2.0
    assert abs(state.rate - base / 2) < 0.01 and state.settings["threshold"] == 2.0
    preset.value = "low_light"
    dim = state.rate
    assert dim < 0.03 and state.settings["noise"] == "low_light"
    light.value = 3.0
    assert 2.5 * dim < state.rate < 3.5 * dim


def test_sensor_view_prediction_matches():
    img = data.make_scene(1, size=32).image
    v = widgets.sensor_view(img, 1.0, 1.0, "ideal", 200, 0)
    assert abs(v.rate - v.expected_rate) < 0.005


def test_window_explorer_state_follows_controls():
    sc = data.make_scene(2, size=32, motion=True, n_frames=100)
    spk = physics.simulate(sc.video, None, seed=0)
    w, state = widgets.window_explorer(spk, sc.image, frames=sc.video)
    center, half = w.children[0].children
    method = w.children[1]
    p0 = state.psnr
    half.value = 2
    assert state.settings["half_window"] == 2 and state.psnr != p0
    method.value = "tfi"
    assert state.settings["method"] == "tfi"
    center.value = 10
    assert state.settings["center"] == 10 and np.isfinite(state.psnr)
