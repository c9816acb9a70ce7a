import copy

import numpy as np
import pytest
import torch

from spikeclip_lite import data, physics, viz, widgets


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


def test_sensor_explorer_keeps_its_brightness_scale_and_raster_rows():
    """Dimming the light darkens the TFP panel (fixed scale) and the raster keeps the same pixels in
    the same order, sorted by their light (not by spike count, which reorders at low light)."""
    img = data.make_scene(4, size=32).image
    rows = viz.raster_pixels(img.shape, n_pixels=10, seed=0, order_by=img)
    assert [img[p] for p in rows] == sorted(img[p] for p in rows)
    w, state = widgets.sensor_explorer(img, seed=0, n_frames=50)
    scale0, rows0 = state.tfp_max, list(state.pixels)
    w.children[0].children[0].value = 0.1  # light ×0.1
    scale1, rows1 = state.tfp_max, state.pixels
    assert scale0 == scale1 > 0 and rows0 == rows1 == rows
    assert state.tfp.max() < 0.3 * scale1


def test_window_explorer_disables_the_window_for_tfstp():
    sc = data.make_scene(2, size=32, motion=True, n_frames=60)
    spk = physics.simulate(sc.video, None, seed=0)
    w, state = widgets.window_explorer(spk, sc.image, frames=sc.video)
    half, method, status = w.children[0].children[1], w.children[1], w.children[2]
    method.value = "tfstp"
    assert half.disabled and "half-window slider is off" in status.value
    method.value = "tfp"
    assert not half.disabled and status.value == ""


def test_prompt_explorer_shows_errors_and_unknown_words_inside_the_widget(tiny_clip):
    clip = copy.deepcopy(tiny_clip)
    dog = clip.tokenize(["dog"])[0][1]  # the token between start- and end-of-text
    with torch.no_grad():
        clip.model.token_embedding.weight[dog] = 0  # as the teaching CLIP stores a word it never saw
    assert clip.unknown_words("a photo of a Dog, a dog") == ["dog"] and clip.unknown_words("a star") == []
    imgs = np.stack([data.make_scene(i, size=32).image for i in range(3)])
    w, state = widgets.prompt_explorer(clip, imgs, prompt="image of a star", contrast="image of a heart")
    (box_p, _), hint, status, out = w.children[0].children, w.children[1], w.children[2], w.children[3]
    assert "press Enter" in hint.value and status.value == ""
    figure, prob = out.outputs[0]["data"]["image/png"], state.prob.copy()
    box_p.value = ""  # a callback error: shown in red inside the widget, the last good figure kept
    assert "ValueError" in status.value and "non-empty" in status.value
    assert out.outputs[0]["data"]["image/png"] == figure and np.array_equal(state.prob, prob)
    box_p.value = "a photo of a dog"
    assert "does not know &#x27;dog&#x27;" in status.value or "does not know 'dog'" in status.value
    box_p.value = "image of a star"
    assert status.value == ""


def test_widget_figure_is_replaced_not_appended():
    """The panel's Output widget holds exactly one PNG, replaced on every change (no capture hooks)."""
    import base64

    img = data.make_scene(3, size=32).image
    w, state = widgets.sensor_explorer(img, seed=0, n_frames=50)
    out = w.children[-1]
    assert len(out.outputs) == 1 and out.outputs[0]["output_type"] == "display_data"
    first = out.outputs[0]["data"]["image/png"]
    assert base64.b64decode(first)[:8] == b"\x89PNG\r\n\x1a\n"
    w.children[0].children[1].value = 3.0  # threshold
    assert len(out.outputs) == 1 and out.outputs[0]["data"]["image/png"] != first


def test_compare_explorer_splits_the_scene_between_two_methods():
    rng = np.random.default_rng(0)
    before, after, gt = (rng.random((3, 16, 20)).astype(np.float32) for _ in range(3))
    w, state = widgets.compare_explorer(before, after, gt, ("TFI", "fine"), aligned=False)
    (scene, split), status = w.children[0].children, w.children[1]
    split.value = 5
    assert np.array_equal(state.image[:, :5], before[0, :, :5]) and np.array_equal(state.image[:, 5:], after[0, :, 5:])
    scene.value = 2
    assert state.scene == 2 and np.array_equal(state.image[:, 5:], after[2, :, 5:]) and status.value == ""
    with pytest.raises(ValueError, match="one shape"):
        widgets.compare_view(before, after[:, :, :10])
    with pytest.raises(ValueError, match="truth must have"):
        widgets.compare_view(before, after, truth=gt[:2])


def test_compare_explorer_shows_both_sides_on_the_truths_brightness():
    """Aligned (the default): a method off by a gain and an offset looks like the truth, on both sides of the
    split, so the view shows no brightness step that aligned PSNR does not score."""
    gt = np.random.default_rng(2).uniform(0.1, 0.9, (2, 12, 14)).astype(np.float32)
    before, after = 0.3 * gt + 0.05, 2.0 * gt - 0.1  # each an affine copy of the truth
    w, state = widgets.compare_explorer(before, after, gt, ("TFI smoothed", "fine"))
    (scene, split), status = w.children[0].children, w.children[1]
    split.value = 6
    np.testing.assert_allclose(state.image, gt[0], atol=1e-5)
    scene.value = 1
    np.testing.assert_allclose(state.image, gt[1], atol=1e-5)
    assert state.settings["aligned"] and status.value == ""
    raw = widgets.compare_view(before, after, 1, 6)
    assert abs(raw.image[:, :6].mean() - raw.image[:, 6:].mean()) > 0.2  # unaligned: a visible step at the split


def test_choice_explorer_shows_cached_runs_and_names_a_missing_one():
    rng = np.random.default_rng(1)
    gt = rng.random((4, 8, 8)).astype(np.float32)
    scores = lambda p: dict(aligned_psnr=p, texture=1.0, judge_accuracy=0.5, judge_quality=0.1)  # noqa: E731
    runs = {
        (1.0, True): (gt * 0.5, scores(20.0)),
        (100.0, True): (gt, scores(22.0)),
        (100.0, False): (gt, scores(17.0)),
    }
    w, state = widgets.choice_explorer(runs, gt)
    (lam, defended), status = w.children[0].children, w.children[1]
    assert state.key == (100.0, True) and state.scores["aligned_psnr"] == 22.0
    defended.value = False
    assert state.key == (100.0, False) and state.scores["aligned_psnr"] == 17.0
    lam.value = "1"  # λ = 1 without defences was not trained: said in the widget, state unchanged
    assert "KeyError" in status.value and "λ = 1" in status.value and state.key == (100.0, False)
    defended.value = True
    assert state.key == (1.0, True) and status.value == ""


def test_prompt_view_scores_at_the_scale_it_is_given(tiny_clip):
    imgs = np.stack([data.make_scene(i, size=32).image for i in range(3)])
    own = widgets.prompt_view(tiny_clip, imgs, "image of a star", "image of a heart")
    soft = widgets.prompt_view(tiny_clip, imgs, "image of a star", "image of a heart", scale=1.0)
    expected = torch.from_numpy(soft.cos).mul(tiny_clip.logit_scale).softmax(-1)[:, 0].numpy()
    assert np.allclose(own.prob, expected, atol=1e-6)
    assert np.all(np.abs(soft.prob - 0.5) <= np.abs(own.prob - 0.5) + 1e-9)  # a smaller scale: nearer 0.5
