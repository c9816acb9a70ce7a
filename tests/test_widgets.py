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


def test_widget_figure_is_replaced_not_appended():
    """The panel's Output widget holds exactly one PNG, replaced on every change (no capture hooks)."""
    import base64

    img = data.make_scene(3, size=32).image
    w, state = widgets.sensor_explorer(img, seed=0, n_frames=50)
    out = w.children[1]
    assert len(out.outputs) == 1 and out.outputs[0]["output_type"] == "display_data"
    first = out.outputs[0]["data"]["image/png"]
    assert base64.b64decode(first)[:8] == b"\x89PNG\r\n\x1a\n"
    w.children[0].children[1].value = 3.0  # threshold
    assert len(out.outputs) == 1 and out.outputs[0]["data"]["image/png"] != first
