"""The training stages on a tiny problem with a random teaching-architecture CLIP (fast)."""

import copy
import math

import pytest
import torch

from spikeclip_lite import checkpoints, data, losses, train
from spikeclip_lite.models import LRN
from spikeclip_lite.prompts import PromptPair
from spikeclip_lite.spike_data import make_hq_images, make_spike_set


def cfg(tmp_path, steps, **kw):
    return train.StageConfig(steps=steps, batch=4, lr=kw.pop("lr", 1e-3), ckpt_dir=str(tmp_path), progress=False, **kw)


def test_coarse_checkpoints_and_resumes(tmp_path, tiny_clip, tiny_set):
    torch.manual_seed(1)
    lrn = LRN()
    h = train.train_coarse(lrn, tiny_clip, tiny_set, data.CLASSES, cfg(tmp_path, 4), warmup_steps=2)
    assert len(h["loss"]) == 4 and (tmp_path / "coarse.pt").exists()
    state = checkpoints.load_checkpoint(tmp_path / "coarse.pt")
    assert state["step"] == 4
    # an interrupted run continues from the checkpoint: same result as one uninterrupted run
    lrn_b = LRN()
    train.train_coarse(lrn_b, tiny_clip, tiny_set, data.CLASSES, cfg(tmp_path, 6), warmup_steps=2)
    other = tmp_path / "straight"
    torch.manual_seed(1)
    lrn_c = LRN()
    h_c = train.train_coarse(lrn_c, tiny_clip, tiny_set, data.CLASSES, cfg(other, 6), warmup_steps=2)
    assert len(h_c["loss"]) == 6
    for a, b in zip(lrn_b.state_dict().values(), lrn_c.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_prompts_fine_and_supervised(tmp_path, tiny_clip, tiny_set):
    lrn = LRN()
    coarse = train.reconstruct(lrn, tiny_set.voxels)
    assert coarse.shape == (8, 32, 32) and 0 <= coarse.min() and coarse.max() <= 1
    pair = PromptPair(tiny_clip)
    before = pair.ctx.detach().clone()
    hp = train.train_prompts(
        pair, tiny_clip, make_hq_images(8, 32), torch.cat([coarse, tiny_set.tfp]), cfg(tmp_path, 3)
    )
    assert len(hp["accuracy"]) == 3 and not torch.equal(before, pair.ctx)
    scores = iter([0.1, 0.9, 0.2, 0.3])
    hf = train.train_fine(
        lrn,
        tiny_clip,
        pair,
        tiny_set,
        data.CLASSES,
        cfg(tmp_path, 4, lr=1e-4),
        defences=train.Defences(keep_accuracy=False, keep_texture=False, pick="best"),
        anchor_images=coarse,
        validate=lambda m: next(scores),
        validate_every=1,
    )
    assert hf["best_step"] == [2.0] and len(hf["hq_prob"]) == 4 and "anchor" in hf
    hs = train.train_supervised(LRN(), tiny_set, cfg(tmp_path, 3))
    assert len(hs["loss"]) == 3


def fine_judged(folder, clip, spikes, measures, steps=4, lrn=None, lr=1e-4, **defences):
    """``train_fine`` whose ``validate()`` returns ``measures[i]`` at its i-th call (step 0 = the start)."""
    it = iter(measures)
    return train.train_fine(
        LRN() if lrn is None else lrn,
        clip,
        PromptPair(clip),
        spikes,
        data.CLASSES,
        cfg(folder, steps, lr=lr),
        defences=train.Defences(**{"pick": "best", **defences}),
        validate=lambda m: next(it),
        validate_every=1,
    )


def test_keep_accuracy_never_chooses_a_step_that_lost_the_class(tmp_path, tiny_clip, tiny_set):
    """Early stopping with ``keep_accuracy``: the starting network is validated first (step 0) and is a
    candidate; a later step is one only if the judge's accuracy is at least the start's."""

    def m(score: float, acc: float, hf: float = 0.05) -> dict[str, float]:  # every step smoother than the start
        return {"score": score, "judge_accuracy": acc, "hf_share": hf}

    # step 1 scores highest but lost accuracy (0.8 < the start's 0.9): step 3 is kept
    h = fine_judged(
        tmp_path / "a", tiny_clip, tiny_set, [m(1.0, 0.9, 0.1), m(1.9, 0.8), m(1.2, 0.9), m(1.5, 1.0), m(1.4, 0.9)]
    )
    assert h["best_step"] == [3.0] and h["val_step"] == [0.0, 1.0, 2.0, 3.0, 4.0]
    # no step keeps the accuracy: the fine stage ends on the starting weights
    lrn = LRN()
    start = {k: v.clone() for k, v in lrn.state_dict().items()}
    h = fine_judged(tmp_path / "none", tiny_clip, tiny_set, [m(1.0, 0.9, 0.1)] + [m(2.0, 0.5)] * 3, 3, lrn, lr=1e-3)
    assert h["best_step"] == [0.0] and all(torch.equal(start[k], v) for k, v in lrn.state_dict().items())
    # a plain score cannot be guarded: the error says what validate() must return
    with pytest.raises(ValueError, match="judge_accuracy"):
        fine_judged(tmp_path / "plain", tiny_clip, tiny_set, [1.0, 2.0, 3.0, 4.0, 5.0])


def test_accuracy_slack_lets_a_candidate_fall_that_far_and_no_further(tmp_path, tiny_clip, tiny_set):
    """``accuracy_slack``: a step may lose at most that fraction of the start's judge accuracy (100 scenes: two)."""

    def best(folder, slack, accuracies):  # each step scores higher on the judge than the last
        steps = [
            {"score": 1.0 + i, "judge_accuracy": a, "hf_share": 0.1 if i else 0.2} for i, a in enumerate(accuracies)
        ]
        return fine_judged(tmp_path / folder, tiny_clip, tiny_set, steps, accuracy_slack=slack)["best_step"]

    accuracies = [1.0, 0.99, 0.98, 0.97, 0.96]  # one more of 100 scenes lost at each step
    assert best("strict", 0.0, accuracies) == [0.0]
    assert best("two", 0.02, accuracies) == [2.0]  # 0.98 = 1.00 − 0.02 passes despite rounding; 0.97 does not
    # as the judge reports them, in float32: 0.98 → 0.96 is two scenes, so it passes too
    f32 = [float(torch.tensor(a, dtype=torch.float32)) for a in (0.98, 0.97, 0.96, 0.95, 0.94)]
    assert best("f32", 0.02, f32) == [2.0]
    # with 48 scenes one scene is 0.0208: a 0.02 slack still lets none go
    assert best("48", 0.02, [1.0, 47 / 48, 47 / 48, 47 / 48, 47 / 48]) == [0.0]


def test_keep_texture_never_chooses_a_step_that_added_texture(tmp_path, tiny_clip, tiny_set):
    """Early stopping with ``keep_texture``: a later step is a candidate only if its outputs' mean
    high-frequency share (no ground truth) is at most the starting network's; either guard can be off."""

    def fine(folder, hf_shares, **defences):  # each step scores higher on the judge than the last
        steps = [{"score": 1.0 + i, "judge_accuracy": 0.9, "hf_share": hf} for i, hf in enumerate(hf_shares)]
        return fine_judged(tmp_path / folder, tiny_clip, tiny_set, steps, **defences)

    # steps 3 and 4 score highest but sharpen beyond the start's 0.20: step 2 (0.18, 10 % smoother) is kept
    h = fine("a", [0.20, 0.17, 0.18, 0.25, 0.30])
    assert h["best_step"] == [2.0] and h["val_hf_share"] == [0.20, 0.17, 0.18, 0.25, 0.30]
    # a tie, or a fall inside the margin (5 %), is no smoothing: the start is kept
    assert fine("tie", [0.20, 0.20, 0.199, 0.191, 0.25])["best_step"] == [0.0]
    assert fine("margin", [0.20, 0.20, 0.199, 0.189, 0.25])["best_step"] == [3.0]
    # without the margin, the tie of the older rule passes
    assert fine("no_margin", [0.20, 0.20, 0.199, 0.25, 0.30], texture_margin=0.0)["best_step"] == [2.0]
    # every step sharpens: the fine stage ends on the starting weights
    assert fine("b", [0.20, 0.21, 0.22, 0.23, 0.24])["best_step"] == [0.0]
    # keep_texture off: the best score wins, texture or not
    assert fine("c", [0.20, 0.21, 0.22, 0.23, 0.24], keep_texture=False)["best_step"] == [4.0]
    # keep_texture needs the measure: the error names it
    with pytest.raises(ValueError, match="hf_share"):
        fine_judged(tmp_path / "no_hf", tiny_clip, tiny_set, [{"score": 1.0, "judge_accuracy": 0.9}] * 3, 2)


def test_guards_combine_and_a_resume_needs_the_same_guards(tmp_path, tiny_clip, tiny_set):
    """Each guard binds on its own, the starting weights come back when no step passes, and a checkpoint made
    without a guard cannot be resumed with it (its start was never measured)."""

    def run(measures, folder, steps=3, **defences):
        lrn = LRN()
        start = {k: v.clone() for k, v in lrn.state_dict().items()}
        h = fine_judged(tmp_path / folder, tiny_clip, tiny_set, measures, steps, lrn, lr=1e-3, **defences)
        return h, lrn, start

    def m(score: float, acc: float, hf: float) -> dict[str, float]:
        return {"score": score, "judge_accuracy": acc, "hf_share": hf}

    # step 1 scores best but lost accuracy, step 2 next best but added texture, step 3 passes both guards
    steps = [m(1.0, 0.9, 0.2), m(4.0, 0.8, 0.1), m(3.0, 0.9, 0.3), m(2.0, 0.9, 0.15)]
    assert run(steps, "both")[0]["best_step"] == [3.0]
    assert run(steps, "texture_only", keep_accuracy=False)[0]["best_step"] == [1.0]
    assert run(steps, "accuracy_only", keep_texture=False)[0]["best_step"] == [2.0]
    # no step passes the texture guard: the fine stage ends on its starting weights
    h, lrn, start = run([m(1.0, 0.9, 0.2)] + [m(2.0, 0.9, 0.5)] * 3, "none", keep_accuracy=False)
    assert h["best_step"] == [0.0] and all(torch.equal(start[k], v) for k, v in lrn.state_dict().items())
    # a stage checkpointed without keep_texture, resumed with it: a clear error, not a guess
    run([m(1.0, 0.9, 0.2)] * 3, "resumed", steps=2, keep_texture=False)
    with pytest.raises(ValueError, match="hf_share"):
        run([m(1.0, 0.9, 0.2)] * 5, "resumed", steps=4)


def test_pick_last_keeps_the_latest_candidate_the_judge_prefers_to_the_start(tmp_path, tiny_clip, tiny_set):
    """``pick="last"`` (the presets' rule): the latest step that passes every guard, that the judge scores at
    least as high as the starting network and within ``score_tolerance`` of the best candidate; a noisy peak of
    the score earlier in the run is not chosen, a step that has drifted below the best is not either."""

    def m(score: float, acc: float = 0.9, hf: float = 0.1) -> dict[str, float]:
        return {"score": score, "judge_accuracy": acc, "hf_share": hf}

    def kept(folder, measures, steps=4, **defences):
        h = fine_judged(tmp_path / folder, tiny_clip, tiny_set, measures, steps, pick="last", **defences)
        # the same rule replayed on the run's validation log (no weights) keeps the same step
        assert [float(train.replay_early_stopping(h, train.Defences(pick="last", **defences)))] == h["best_step"]
        return h["best_step"]

    start = m(1.0, hf=0.2)
    # a peak at step 1 (the old rule keeps it), a rise within the noise after: the last step is kept
    peak = [start, m(1.23), m(1.2), m(1.21), m(1.22)]
    assert kept("trend", peak) == [4.0]
    assert fine_judged(tmp_path / "peak", tiny_clip, tiny_set, peak, pick="best")["best_step"] == [1.0]
    # a plateau, then a drift below it by more than the tolerance (0.03): the last step within it is kept
    drift = [start, m(1.5), m(1.48), m(1.46), m(1.4)]
    assert kept("drift", drift) == [2.0]
    assert kept("drift_wide", drift, score_tolerance=0.05) == [3.0]
    assert kept("drift_any", drift, score_tolerance=2.0) == [4.0]  # 2: any score (the rule before the tolerance)
    assert kept("drift_none", drift, score_tolerance=0.0) == [1.0]  # 0: the best (the latest of a tie)
    # one run's log answers for every rule: the scores do not depend on which weights are kept
    h = fine_judged(tmp_path / "drift_log", tiny_clip, tiny_set, drift, pick="best")
    assert h["best_step"] == [1.0]
    assert [train.replay_early_stopping(h, train.Defences(pick="last", score_tolerance=t)) for t in (0.03, 2)] == [2, 4]
    assert train.replay_early_stopping(h, train.Defences(pick="best")) == 1
    # the last step lost accuracy, or added texture, or the judge prefers the start to it: the step before
    assert kept("acc", [start, m(1.1), m(1.2), m(1.3), m(1.4, acc=0.8)]) == [3.0]
    assert kept("hf", [start, m(1.1), m(1.2), m(1.3), m(1.4, hf=0.3)]) == [3.0]
    assert kept("score", [start, m(1.1), m(1.2), m(1.3), m(0.99)]) == [3.0]
    # the judge prefers the start to every step: the start is kept (and a tie with it passes)
    assert kept("none", [start, m(0.9), m(0.8), m(0.7), m(0.6)]) == [0.0]
    assert kept("tie", [start, m(0.9), m(0.8), m(1.0), m(0.6)]) == [3.0]
    # guards off: still the latest step the judge scores at least as high as the start (and within the tolerance)
    assert kept(
        "off",
        [start, m(1.01, 0.1, 0.9), m(0.5, 0.1, 0.9), m(1.0, 0.1, 0.9), m(0.9)],
        keep_accuracy=False,
        keep_texture=False,
    ) == [3.0]
    with pytest.raises(ValueError, match="pick='first'.*last"):
        fine_judged(tmp_path / "bad", tiny_clip, tiny_set, [start] * 5, pick="first")
    # the judge's veto needs the score: the error names it
    with pytest.raises(ValueError, match="pick='last' needs validate.*'score'"):
        kept("no_score", [{"judge_accuracy": 0.9, "hf_share": 0.1}] * 5)
    # a checkpoint's kept candidate was chosen by its rule: resuming it under the other rule is refused
    fine_judged(tmp_path / "resumed", tiny_clip, tiny_set, [start] * 3, steps=2, pick="best")
    with pytest.raises(ValueError, match="saved with Defences.pick='best'"):
        kept("resumed", [start] * 5)
    # and under another tolerance
    kept("tolerance", [start] * 3, steps=2)
    with pytest.raises(ValueError, match="saved with Defences.score_tolerance=0.03"):
        kept("tolerance", [start] * 5, score_tolerance=0.05)


def test_replay_early_stopping_checks_its_log():
    """The replay names what a log lacks; unguarded it skips the start, which ``train_fine`` then never validates;
    with early stopping off it answers the last validated step (the run ends on its last weights)."""
    log = {
        "val_step": [0, 1, 11],
        "val_score": [1.5, 1.1, 1.2],
        "val_judge_accuracy": [0.9] * 3,
        "val_hf_share": [0.2, 0.1, 0.1],
    }
    unguarded = train.Defences(pick="best", keep_accuracy=False, keep_texture=False)
    assert train.replay_early_stopping(log, unguarded) == 11
    assert train.replay_early_stopping(log, train.Defences(early_stop=False)) == 11
    assert train.replay_early_stopping(log, train.Defences()) == 0  # every step scores below the start
    with pytest.raises(ValueError, match="missing or short: \\['val_hf_share'\\]"):
        train.replay_early_stopping({**log, "val_hf_share": [0.2]}, train.Defences())
    with pytest.raises(ValueError, match="step 0"):
        train.replay_early_stopping({k: v[1:] for k, v in log.items()}, train.Defences())
    # it refuses the rules train_fine refuses (an unknown pick was replayed as "best")
    with pytest.raises(ValueError, match="pick='first'.*last"):
        train.replay_early_stopping(log, train.Defences(pick="first"))
    for bad in (-0.01, 2.5, float("nan")):
        with pytest.raises(ValueError, match="score_tolerance=.* must be within 0–2"):
            train.replay_early_stopping(log, train.Defences(score_tolerance=bad))


def test_defences_off_and_standardise():
    off = train.Defences.off()
    assert not (off.augment or off.standardise or off.anchor or off.early_stop or off.keep_accuracy or off.keep_texture)
    x = torch.rand(3, 1, 8, 8) * 5 - 1
    y = train.to_clip_image(x, standardise=True)
    assert y.min() >= 0 and y.max() <= 1
    torch.testing.assert_close(y.mean(dim=(1, 2, 3)), torch.full((3,), 0.45), atol=0.05, rtol=0)
    # brightness of the output no longer reaches CLIP
    torch.testing.assert_close(train.to_clip_image(x * 3 + 2, True), y, atol=1e-5, rtol=0)


def test_nan_loss_is_reported(tmp_path, tiny_clip, tiny_set):
    lrn = LRN()
    with torch.no_grad():
        lrn[4].bias.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="loss is nan"):
        train.train_supervised(lrn, tiny_set, cfg(tmp_path, 2))
    assert not (tmp_path / "supervised.pt").exists()  # no checkpoint of broken weights


def test_nan_in_the_fine_stage_is_named_before_validation(tmp_path, tiny_clip, tiny_set):
    lrn = LRN()
    with torch.no_grad():
        lrn[4].bias.fill_(float("nan"))
    seen = []
    with pytest.raises(FloatingPointError, match="fine: loss is nan at step 0"):
        train.train_fine(
            lrn, tiny_clip, PromptPair(tiny_clip), tiny_set, data.CLASSES, cfg(tmp_path, 3), validate=seen.append
        )
    assert not seen  # the judge never scored the broken network


def test_native_quality_view_shows_the_guide_full_resolution_windows(tmp_path, tiny_clip, monkeypatch):
    """At 96×96 outputs and a 64×64 guide: prompts learned and the prompt loss computed on 64×64
    windows at native resolution (never shrunk), and the prompt softmax at the scale given."""
    big = make_spike_set(4, "train", 96, progress=False)
    seen = []
    encode = tiny_clip.encode_image
    monkeypatch.setattr(tiny_clip, "encode_image", lambda x: seen.append(tuple(x.shape[-2:])) or encode(x))
    lrn = LRN()
    pair = PromptPair(tiny_clip)
    imgs = train.reconstruct(lrn, big.voxels)
    train.train_prompts(pair, tiny_clip, make_hq_images(4, 96), imgs, cfg(tmp_path / "p", 2), scale=1.0, native=True)
    assert set(seen) == {(64, 64)}  # every image judged as a native window
    seen.clear()
    hist = train.train_fine(
        lrn, tiny_clip, pair, big, data.CLASSES, cfg(tmp_path / "f", 2), anchor_images=imgs, scale=1.0, native=True
    )
    assert (64, 64) in seen and (96, 96) in seen  # class loss on the whole image, prompt loss on windows
    assert all(0.25 < p < 0.75 for p in hist["hq_prob"])  # scale 1: softmax of two cosines in [-1, 1]
    seen.clear()
    train.train_fine(LRN(), tiny_clip, pair, big, data.CLASSES, cfg(tmp_path / "g", 1), native=False)
    assert set(seen) == {(96, 96)}


def test_corrupt_checkpoint_is_named_set_aside_and_rebuilt(tmp_path, tiny_clip, tiny_set):
    c = cfg(tmp_path, 2)
    train.train_coarse(LRN(), tiny_clip, tiny_set, data.CLASSES, c)
    ckpt = tmp_path / "coarse.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:200])  # cut short, as by a full disk
    with pytest.raises(checkpoints.CorruptCheckpointError, match=r"coarse\.pt cannot be read .* Delete it"):
        checkpoints.load_checkpoint(ckpt)
    with pytest.warns(UserWarning, match="Moved it to coarse.pt.corrupt and rebuilding"):
        h = train.train_coarse(LRN(), tiny_clip, tiny_set, data.CLASSES, c)
    assert "cached" not in h and len(h["loss"]) == 2 and (tmp_path / "coarse.pt.corrupt").exists()
    checkpoints.save_checkpoint(ckpt, weights={"w": torch.ones(1)})  # readable, but another layout
    with pytest.raises(checkpoints.CorruptCheckpointError, match=r"lacks \['modules'"):
        checkpoints.load_checkpoint(ckpt, ("modules",))
    with pytest.warns(UserWarning, match="rebuilding"):
        assert "cached" not in train.train_coarse(LRN(), tiny_clip, tiny_set, data.CLASSES, c)


def test_a_stage_with_no_steps_is_not_reported_as_cached(tmp_path, tiny_clip, tiny_set):
    h = train.train_coarse(LRN(), tiny_clip, tiny_set, data.CLASSES, cfg(tmp_path, 0))
    assert "cached" not in h


def test_rate_gain_puts_the_smoothed_rates_on_one_scale(tiny_set):
    from spikeclip_lite import metrics, models

    gain = train.rate_gain(tiny_set, half_window=24, denoise=1.0)
    rates = metrics.lowpass(models.voxel_rate(tiny_set.voxel_batch(slice(0, 8)), 24), 1.0)
    assert torch.equal(train.smoothed_rate(tiny_set.voxel_batch(slice(0, 8)), 24, 1.0), rates)
    scaled = gain * rates
    assert 0.99 < float(torch.quantile(scaled.flatten(), 0.995)) < 1.01  # the set's 99.5 % quantile → 1
    per_image = scaled.flatten(1).max(1).values
    assert float(per_image.max() - per_image.min()) > 0.05  # one gain: images keep their own brightness


def test_tfi_one_gain_is_tfi_from_the_bits_on_one_scale(tiny_set):
    from spikeclip_lite import baselines, metrics

    target = train.tfi_one_gain(tiny_set, denoise=1.0, chunk=3)  # chunks that do not divide the set
    assert target.shape == (len(tiny_set), 1, *tiny_set.gt.shape[-2:])
    raw = torch.stack([baselines.tfi(tiny_set.stream(i)) for i in range(len(tiny_set))])  # 1 / interval
    smooth = metrics.lowpass(raw.unsqueeze(1), 1.0)
    gain = 1.0 / torch.quantile(smooth.flatten(), 0.995)
    torch.testing.assert_close(target, (gain * smooth).clamp(0, 1))
    per_image = smooth.flatten(1).median(dim=1).values  # (the clamp at 1 touches only the brightest pixels)
    assert float(per_image.max() / per_image.min()) > 1.2  # the images differ in brightness …
    kept = target.flatten(1).median(dim=1).values
    torch.testing.assert_close(kept / kept.max(), per_image / per_image.max())  # … and keep it
    assert not torch.allclose(target[:, 0], tiny_set.tfi)  # unlike the stored TFI, scaled image by image


def test_coarse_stage_fidelity_targets(tmp_path, tiny_clip, tiny_set):
    """The smoothed-rate target trains; with the class loss capped the stage still logs both terms; a
    target name that does not exist is refused before any step."""
    for target in ("rate", "tfi", "tfi_gain"):
        h = train.train_coarse(
            LRN(),
            tiny_clip,
            tiny_set,
            data.CLASSES,
            cfg(tmp_path / target, 3),
            warmup_steps=2,
            fidelity_target=target,
            fidelity_denoise=1.0,
            class_enough=0.9,
        )
        assert len(h["warmup"]) == 3 and all(math.isfinite(v) for v in h["warmup"] + h["class_loss"])
        assert min(h["class_loss"]) >= -math.log(0.9) - 1e-6  # floored at −log 0.9
    with pytest.raises(ValueError, match="fidelity_target"):
        train.train_coarse(LRN(), tiny_clip, tiny_set, data.CLASSES, cfg(tmp_path / "x", 1), fidelity_target="gt")


def test_class_after_keeps_the_guide_out_of_the_first_steps(tmp_path, tiny_clip, tiny_set, monkeypatch):
    """``class_after=k``: the first k coarse steps never call the guide and log a zero class loss; from
    step k the class loss is back. ``class_after`` ≥ steps: the guide is never called at all."""
    calls = []
    encode = tiny_clip.encode_image
    monkeypatch.setattr(tiny_clip, "encode_image", lambda x: calls.append(len(x)) or encode(x))
    h = train.train_coarse(LRN(), tiny_clip, tiny_set, data.CLASSES, cfg(tmp_path / "a", 4), class_after=2)
    assert h["class_loss"][:2] == [0.0, 0.0] and all(v > 0 for v in h["class_loss"][2:])
    assert len(calls) == 2  # steps 2 and 3 only
    calls.clear()
    h = train.train_coarse(LRN(), tiny_clip, tiny_set, data.CLASSES, cfg(tmp_path / "b", 3), class_after=3)
    assert calls == [] and h["class_loss"] == [0.0, 0.0, 0.0] and all(v > 0 for v in h["warmup"])


def test_random_windows_are_the_frames_own_output_and_its_target_there():
    """Each window's voxels give, through the LRN, exactly the whole frame's output on the window whose
    target comes with them (the per-pixel loss is unchanged, only estimated on fewer pixels)."""
    torch.manual_seed(0)
    lrn = LRN(pad="reflect")
    vox = torch.rand(3, 50, 24, 20)
    with torch.no_grad():
        whole = lrn(vox)  # as a target: a window's output must equal its target
        w_vox, w_target = train.random_windows(vox, whole, 8, torch.Generator().manual_seed(1))
        assert w_vox.shape == (3, 50, 18, 18) and w_target.shape == (3, 1, 8, 8)
        torch.testing.assert_close(lrn(w_vox, context=True), w_target)
    corners = {
        tuple(train.random_windows(vox, whole, 8, torch.Generator().manual_seed(k))[1][0, 0, 0, :2].tolist())
        for k in range(6)
    }
    assert len(corners) > 1  # the offsets are drawn, not fixed
    index = torch.arange(24 * 20, dtype=torch.float32).view(1, 1, 24, 20).expand(3, 1, 24, 20)  # y·W + x
    firsts = torch.cat(
        [train.random_windows(vox, index, 19, torch.Generator().manual_seed(k))[1][:, 0, 0, 0] for k in range(20)]
    )
    tops, lefts = {int(v) // 20 for v in firsts}, {int(v) % 20 for v in firsts}
    assert tops == set(range(6)) and lefts == {0, 1}  # every offset, the last one included
    with pytest.raises(ValueError, match="window size 30 must be within 1–20"):
        train.random_windows(vox, whole, 30, torch.Generator())
    with pytest.raises(ValueError, match="targets must be"):
        train.random_windows(vox, whole[:, :, :10], 8, torch.Generator())


def test_crop_trains_on_windows_until_the_class_loss_joins(tmp_path, tiny_clip, tiny_set, monkeypatch):
    """``crop``: the coarse stage's fidelity-only steps and every supervised step see windows; from
    ``class_after`` on the coarse stage sees whole frames (the guide needs whole images)."""
    seen = []
    forward = LRN.forward
    monkeypatch.setattr(
        LRN, "forward", lambda self, v, context=False: seen.append((v.shape[-1], context)) or forward(self, v, context)
    )
    h = train.train_coarse(
        LRN(pad="reflect"), tiny_clip, tiny_set, data.CLASSES, cfg(tmp_path / "c", 4), class_after=2, crop=12
    )
    assert seen == [(22, True), (22, True), (32, False), (32, False)]  # 12 + 2·5 px of context, then 32²
    assert all(math.isfinite(v) for v in h["warmup"]) and h["class_loss"][2] > 0
    seen.clear()
    h = train.train_supervised(LRN(pad="reflect"), tiny_set, cfg(tmp_path / "s", 3), crop=12)
    assert seen == [(22, True)] * 3 and all(math.isfinite(v) for v in h["loss"])
    with pytest.raises(ValueError, match="needs pad='reflect'"):
        train.train_supervised(LRN(pad="zero"), tiny_set, cfg(tmp_path / "z", 1), crop=12)
    with pytest.raises(ValueError, match="crop needs fidelity_blur=0"):
        train.train_coarse(
            LRN(pad="reflect"), tiny_clip, tiny_set, data.CLASSES, cfg(tmp_path / "b", 1), fidelity_blur=1.0, crop=12
        )


def test_lr_decay_falls_linearly_over_the_last_steps_and_resumes_on_schedule(tmp_path, tiny_set, monkeypatch):
    c = train.StageConfig(steps=10, lr=1.0, decay=0.4)
    assert [train.lr_at(s, c) for s in range(10)] == [1.0] * 6 + [1.0, 0.75, 0.5, 0.25]
    assert [train.lr_at(s, train.StageConfig(steps=4, lr=2.0)) for s in range(4)] == [2.0] * 4  # decay 0: constant
    past_end = train.StageConfig(steps=4, lr=1.0, decay=0.5)
    assert train.lr_at(3, past_end) == train.lr_at(6, past_end) == 0.5  # past the end: the last rate, never ≤ 0
    assert train.lr_at(0, train.StageConfig(steps=1, lr=1.0, decay=0.4)) == 1.0  # no step to decay over
    with pytest.raises(ValueError, match="decay must be within 0–1"):
        train.lr_at(0, train.StageConfig(decay=1.5))
    with pytest.raises(ValueError, match="decay must be within 0–1"):  # refused before any training
        train.train_supervised(LRN(), tiny_set, cfg(tmp_path / "bad", 8, decay=-0.1))

    def run(folder, decay):
        torch.manual_seed(1)
        lrn = LRN()
        train.train_supervised(lrn, tiny_set, cfg(tmp_path / folder, 8, decay=decay))
        return lrn

    straight, constant = run("a", 0.5), run("c", 0.0)
    pairs = zip(straight.state_dict().values(), constant.state_dict().values(), strict=True)
    assert max((a - b).abs().max() for a, b in pairs) > 0  # the schedule changed the weights
    # interrupted at step 5 (the last checkpoint: step 4), then resumed: the schedule follows the step count
    lr_at = train.lr_at
    rates = []

    def interrupted(step, stage):
        if step == 5:
            raise KeyboardInterrupt
        rates.append(lr_at(step, stage))
        return rates[-1]

    monkeypatch.setattr(train, "lr_at", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run("b", 0.5)
    monkeypatch.setattr(train, "lr_at", lr_at)
    assert checkpoints.load_checkpoint(tmp_path / "b" / "supervised.pt")["step"] == 4
    # the loop's start-up check of decay, then steps 0–4: the last 4 of 8 steps decay (4–7), step 4 at the full rate
    assert rates == [1e-3] * 6
    resumed = run("b", 0.5)
    assert checkpoints.load_checkpoint(tmp_path / "b" / "supervised.pt")["optimizer"]["param_groups"][0]["lr"] == 2.5e-4
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def test_a_strong_anchor_holds_the_low_passed_output_where_a_weak_one_lets_it_drift(tmp_path, tiny_clip, tiny_set):
    """The anchor is anchor · λ · L1(low-pass(output), low-pass(coarse)): whatever else pushes the network (here
    the class loss of a random tiny CLIP, whose prompt loss has no gradient; λ small so that the push wins at
    anchor 1), a 100× heavier anchor holds the low-passed output near the coarse one (the full preset's
    reason for anchor = 100: at 1 the proxy's outputs drifted step after step)."""
    torch.manual_seed(0)
    start = LRN()
    coarse = train.reconstruct(start, tiny_set.voxels, standardise=True)
    pair = PromptPair(tiny_clip)
    drift = {}
    for weight in (1.0, 100.0):
        lrn = copy.deepcopy(start)
        train.train_fine(
            lrn,
            tiny_clip,
            pair,
            tiny_set,
            data.CLASSES,
            cfg(tmp_path / str(weight), 12, lr=1e-3),
            lam=1e-3,
            defences=train.Defences(anchor=weight, anchor_blur=1.5, early_stop=False),
            anchor_images=coarse,
            form="log",
        )
        new = train.reconstruct(lrn, tiny_set.voxels, standardise=True)
        drift[weight] = float(losses.warmup_loss(new.unsqueeze(1), coarse.unsqueeze(1), 1.5))  # the anchor's L1
    assert drift[100.0] < 0.6 * drift[1.0], drift
