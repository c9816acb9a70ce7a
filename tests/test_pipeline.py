"""The end-to-end pipeline on a tiny configuration with the shipped teaching CLIPs."""

import json
import re
import time
from dataclasses import replace

import pytest
import torch

from spikeclip_lite import metrics, pipeline, settings
from spikeclip_lite.__main__ import main
from spikeclip_lite.models import LRN
from spikeclip_lite.train import Defences, StageConfig

TINY = replace(
    settings.FAST,
    size=32,
    n_train=8,
    n_val=4,
    n_test=4,
    n_hq=8,
    batch=4,
    steps_coarse=4,
    steps_prompts=3,
    steps_fine=3,
    steps_supervised=3,
    warmup_steps=2,
    crop=16,  # windows of the 32² scenes, as fast mode's 32 of 64²
    supervised_crop=8,  # another size, so that a test can tell which stage got which
    clip="teaching",
    device="cpu",
)


def test_run_pipeline_writes_metrics_and_figures(tmp_path):
    result = pipeline.run_pipeline(TINY, tmp_path, progress=False)
    table = result["table"]
    assert set(table) == {"TFP", "TFI", "TFSTP", pipeline.SMOOTHED, "coarse", "fine", "supervised"}
    for parts in table.values():
        assert set(parts) == {"static", "moving", "all"}
        for key in ("psnr", "aligned_psnr", "ssim", "judge_accuracy", "judge_quality", "guide_accuracy_circular"):
            assert key in parts["all"]
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["settings"]["judge_clip"].startswith("teaching-judge")
    assert saved["settings"]["guide_clip"].startswith("teaching-guide")
    assert (tmp_path / "gallery.png").exists() and (tmp_path / "training_curves.png").exists()
    assert "| fine | moving |" in pipeline.format_table(table)
    pairs = {"fine - coarse", "fine - TFI smoothed", "coarse - TFI smoothed", "fine - supervised"}
    assert set(saved["paired"]) == pairs
    gap = saved["paired"]["fine - coarse"]["moving"]
    assert gap["n"] == int(pipeline.Run(TINY, tmp_path, progress=False).test_set.moving.sum()) and gap["se"] >= 0
    # the fine stage's validation curve: the judge's score chooses; PSNR and texture are logged beside it
    fine = saved["histories"]["fine"]
    assert len(fine["val_aligned_psnr"]) == len(fine["val_texture"]) == len(fine["val_score"]) > 0
    # and its guards (no ground truth): the step kept has at least the start's (step 0) judge accuracy and at
    # most its high-frequency share
    assert len(fine["val_hf_share"]) == len(fine["val_score"]) and fine["val_step"][0] == 0
    kept = fine["val_step"].index(fine["best_step"][0])
    assert fine["val_hf_share"][kept] <= fine["val_hf_share"][0]
    assert fine["val_judge_accuracy"][kept] >= fine["val_judge_accuracy"][0]


def test_paired_gaps_are_scene_by_scene_differences_with_their_standard_error():
    from types import SimpleNamespace

    from spikeclip_lite import metrics

    gen = torch.Generator().manual_seed(0)
    gt = torch.rand(6, 16, 16, generator=gen)
    test = SimpleNamespace(gt=gt, moving=torch.tensor([True, False] * 3), has_ground_truth=True)
    close, far = gt + 0.01 * torch.randn(gt.shape, generator=gen), gt + 0.1 * torch.randn(gt.shape, generator=gen)
    gaps = pipeline.paired_gaps({"close": close, "far": far}, test, pairs=(("close", "far"), ("far", "absent")))
    assert set(gaps) == {"close - far"}  # a pair with a method that was not run is left out
    d = metrics.aligned_psnr(close.numpy(), gt.numpy()) - metrics.aligned_psnr(far.numpy(), gt.numpy())
    moving = gaps["close - far"]["moving"]
    assert moving["n"] == 3 and moving["ahead"] == 3
    assert moving["mean"] == pytest.approx(float(d[::2].mean()), rel=1e-5)
    assert moving["se"] == pytest.approx(float(d[::2].std(ddof=1) / 3**0.5), rel=1e-4)
    assert gaps["close - far"]["all"]["n"] == 6
    swapped = pipeline.paired_gaps({"close": close, "far": far}, test, pairs=(("far", "close"),))
    assert swapped["far - close"]["static"]["mean"] == pytest.approx(-gaps["close - far"]["static"]["mean"])
    assert swapped["far - close"]["static"]["ahead"] == 0
    assert "close - far: static +" in pipeline.format_paired(gaps) and "(ahead on 3/3)" in pipeline.format_paired(gaps)
    no_truth = SimpleNamespace(gt=gt * float("nan"), moving=test.moving, has_ground_truth=False)
    assert pipeline.paired_gaps({"close": close, "far": far}, no_truth) == {}


def test_stages_are_cached_and_resumed(tmp_path):
    run = pipeline.Run(TINY, tmp_path, progress=False)
    coarse = run.coarse()
    again = pipeline.Run(TINY, tmp_path, progress=False).coarse()  # resumes from the finished checkpoint
    for a, b in zip(coarse.state_dict().values(), again.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)
    other = pipeline.Run(replace(TINY, steps_coarse=5), tmp_path, progress=False)
    assert other.stage_dir("fine") != run.stage_dir("fine")  # different settings never share checkpoints
    assert other.stage_dir("coarse") != run.stage_dir("coarse")
    # …but a stage is keyed only by what it depends on: the supervised bound ignores the coarse settings,
    # the coarse stage ignores the fine stage's
    assert other.stage_dir("supervised") == run.stage_dir("supervised")
    finer = pipeline.Run(replace(TINY, steps_fine=9, lam=3.0, n_val=5), tmp_path, progress=False)
    assert finer.stage_dir("coarse") == run.stage_dir("coarse") and finer.stage_dir("fine") != run.stage_dir("fine")
    assert (run.stage_dir("coarse") / "coarse.pt").exists()
    assert finer.stage_dir("prompts") == run.stage_dir("prompts")
    assert pipeline.Run(replace(TINY, n_hq=9), tmp_path).stage_dir("prompts") != run.stage_dir("prompts")
    # scoring more test scenes retrains nothing; more validation scenes change the fine stage's early stopping
    more_tests = pipeline.Run(replace(TINY, n_test=TINY.n_test + 7), tmp_path, progress=False)
    assert all(more_tests.stage_dir(s) == run.stage_dir(s) for s in ("coarse", "prompts", "fine", "supervised"))
    assert pipeline.Run(replace(TINY, n_val=TINY.n_val + 1), tmp_path).stage_dir("fine") != run.stage_dir("fine")
    # class_after is keyed by what it does: None (never), the stage's steps or later are one key; 0 is another
    assert TINY.class_after is None
    for never in (TINY.steps_coarse, TINY.steps_coarse + 50):
        same = pipeline.Run(replace(TINY, class_after=never), tmp_path, progress=False)
        assert all(same.stage_dir(s) == run.stage_dir(s) for s in ("coarse", "prompts", "fine"))
    assert pipeline.Run(replace(TINY, class_after=0), tmp_path).stage_dir("coarse") != run.stage_dir("coarse")
    # crop changes the coarse stage (and all that follow it); supervised_crop the bound alone
    whole = pipeline.Run(replace(TINY, crop=0), tmp_path, progress=False)
    assert all(whole.stage_dir(s) != run.stage_dir(s) for s in ("coarse", "prompts", "fine"))
    assert whole.stage_dir("supervised") == run.stage_dir("supervised")
    bound = pipeline.Run(replace(TINY, supervised_crop=0), tmp_path, progress=False)
    assert bound.stage_dir("supervised") != run.stage_dir("supervised")
    assert all(bound.stage_dir(s) == run.stage_dir(s) for s in ("coarse", "prompts", "fine"))
    # …and crop=0 / supervised_crop=0, what every run did before the settings existed, keep the keys of then:
    # the long run's seed-2 stages were trained on 2026-12-06, before both, and are found under these names
    long_s2 = settings.configure("long", ["seed=2"], clip="teaching")
    before = pipeline.Run(replace(long_s2, supervised_crop=0), tmp_path, progress=False)
    assert before.stage_dir("supervised").name == "supervised-e8a96d5670"
    assert before.stage_dir("coarse").name == "coarse-7f6909348f"
    # the long preset's bound on windows is a new stage; its coarse, prompts and fine stages are those of then
    now = pipeline.Run(long_s2, tmp_path, progress=False)
    assert now.stage_dir("supervised").name != "supervised-e8a96d5670"
    assert all(now.stage_dir(s) == before.stage_dir(s) for s in ("coarse", "prompts", "fine"))
    # lr_decay changes the two stages whose rate it lowers (and all that follow the coarse one)
    decayed = pipeline.Run(replace(TINY, lr_decay=0.5), tmp_path, progress=False)
    assert all(decayed.stage_dir(s) != run.stage_dir(s) for s in ("coarse", "prompts", "fine", "supervised"))
    seen, crops = {}, {}

    def record(name):
        def stop(lrn, *args, **kwargs):
            seen[name] = next(a for a in args if isinstance(a, StageConfig)).decay
            crops[name] = kwargs["crop"] if "crop" in kwargs else args[-1]
            raise KeyboardInterrupt

        return stop

    for name, stage in (("coarse", decayed.coarse), ("supervised", decayed.supervised)):
        with pytest.MonkeyPatch.context() as mp, pytest.raises(KeyboardInterrupt):
            mp.setattr(pipeline, f"train_{name}", record(name))
            stage()
    assert seen == {"coarse": 0.5, "supervised": 0.5}  # the stages train with the decay they are keyed by
    assert crops == {"coarse": 16, "supervised": 8}  # and on the windows they are keyed by
    # the LRN's padding changes every trained network, and each is built with it
    zero = pipeline.Run(replace(TINY, pad="zero", crop=0, supervised_crop=0), tmp_path, progress=False)
    assert all(zero.stage_dir(s) != run.stage_dir(s) for s in ("coarse", "prompts", "fine", "supervised"))
    assert run.coarse().pad == TINY.pad == "reflect" and zero.coarse().pad == "zero"
    assert run.fine().pad == run.supervised().pad == "reflect"


def test_cli_pipeline(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(settings.PRESETS, "fast", TINY)
    assert main(["pipeline", "--fast", "--clip", "teaching", "--device", "cpu", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "| TFP | static |" in printed
    assert "paired scene by scene" in printed and "fine - coarse: static " in printed
    assert "fine stage: early stopping kept " in printed


def test_pipeline_on_real_style_recordings(tmp_path, rng, monkeypatch, capsys):
    """`--set data_dir=…`: train and evaluate on UHSR files (no ground truth → no PSNR, no supervised row)."""
    import numpy as np

    from spikeclip_lite import io

    folder = tmp_path / "uhsr"
    folder.mkdir()
    for i, name in enumerate(["0", "1", "2", "3", "4", "5000", "5001"]):
        io.write_uhsr(folder / f"{name}.npz", (rng.random((200, 250, 250)) < 0.03).astype(np.uint8), i % 10)
    cfg = replace(TINY, data_dir=str(folder), n_train=3, n_val=2, n_test=2, classes="course")
    result = pipeline.run_pipeline(cfg, tmp_path / "out", progress=False)
    table = result["table"]
    assert "supervised" not in table and set(table["fine"]) == {"all"}
    assert table["TFP"]["all"]["psnr"] is None and 0 <= table["fine"]["all"]["judge_accuracy"] <= 1
    assert "| fine | all | – |" in pipeline.format_table(table)
    # the same through the CLI: one call with --set data_dir=…
    monkeypatch.setitem(settings.PRESETS, "fast", replace(cfg, data_dir=None))
    assert (
        main(
            [
                "pipeline",
                "--clip",
                "teaching",
                "--device",
                "cpu",
                "--out",
                str(tmp_path / "cli"),
                "--set",
                f"data_dir={folder}",
            ]
        )
        == 0
    )
    assert "| fine | all |" in capsys.readouterr().out


def test_cifar10_dataset_end_to_end(tmp_path, capsys):
    """--set dataset=cifar10 on a fabricated copy: CIFAR's class names, unpaired HQ images from the far end
    of the training split, and a warning that the teaching CLIPs do not know these classes."""
    from spikeclip_lite.cifar import cifar_split, write_cifar10_batches

    write_cifar10_batches(tmp_path / "cifar", n_train=30, n_test=6)
    args = ["pipeline", "--clip", "teaching", "--device", "cpu", "--out", str(tmp_path / "out")]
    args += ["--set", "dataset=cifar10", f"cifar_root={tmp_path / 'cifar'}", "n_test=6"]
    args += [f"{k}={getattr(TINY, k)}" for k in ("size", "n_train", "n_val", "n_hq", "batch", "warmup_steps")]
    args += [f"{k}={getattr(TINY, k)}" for k in ("steps_coarse", "steps_prompts", "steps_fine", "steps_supervised")]
    with pytest.warns(UserWarning, match="chance"):
        assert main(args) == 0
    out = capsys.readouterr().out
    assert "| coarse | moving |" in out and "time split: data" in out
    saved = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert saved["settings"]["dataset"] == "cifar10" and saved["settings"]["n_test"] == 6
    assert (tmp_path / "out" / "data" / "cifar10-test-n6-s32-v3.npz").exists()
    run = pipeline.Run(replace(TINY, dataset="cifar10", cifar_root=str(tmp_path / "cifar")), tmp_path / "out")
    with pytest.warns(UserWarning):
        assert run.classes[0] == "airplane"
    last = cifar_split(tmp_path / "cifar", "train", 30, 32, n_train=0, n_val=0, n_hq=0)[0][-1]
    torch.testing.assert_close(run.hq_images[-1], last)  # HQ = the last training images
    too_many = pipeline.Run(replace(run.cfg, n_hq=25), tmp_path / "out")
    with pytest.raises(ValueError, match="fewer than n_train"):
        _ = too_many.hq_images
    # held-out clean images: the CIFAR test images after the test streams' (n_test = 4 of the 6 fabricated)
    last_two = cifar_split(tmp_path / "cifar", "test", 6, 32, n_train=8, n_val=4, n_hq=8)[0][4:]
    torch.testing.assert_close(run.held_out_clean(2), last_two)
    with pytest.raises(ValueError, match="test split has 6 images, fewer than"):
        run.held_out_clean(3)
    with pytest.raises(ValueError, match="fewer than n_test = 7"):
        cifar_split(tmp_path / "cifar", "test", 7, 32, n_train=8, n_val=4, n_hq=8)


def test_cli_rejects_unknown_setting(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["pipeline", "--out", str(tmp_path), "--set", "stepz=3"])
    assert "unknown setting 'stepz'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--set", "clip=teaching"], "clip has a flag of its own: use --clip teaching"),
        (["--set", "device=cpu"], "use --device cpu"),
        (["--dataset", "cifar10"], r"--dataset is a setting now: use --set dataset=VALUE"),
        (["--judge=RN50:openai"], r"--judge is a setting now: use --set judge=VALUE"),
    ],
)
def test_every_setting_has_one_spelling(argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["pipeline", "--out", str(tmp_path), *argv])
    assert exc.value.code == 2 and re.search(message, capsys.readouterr().err)


def test_overrides_are_printed_and_stored(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(settings.PRESETS, "fast", TINY)
    argv = ["pipeline", "--device", "cpu", "--out", str(tmp_path), "--set", "steps_fine=2", "lam=50"]
    with pytest.warns(UserWarning, match="TEACHING CLIP"):  # --clip auto (the flag's default), offline
        assert main(argv) == 0
    assert "changed from the fast preset: steps_fine=2, lam=50.0, clip='auto'" in capsys.readouterr().out
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["mode"] == "fast" and saved["overrides"] == {"steps_fine": 2, "lam": 50.0, "clip": "auto"}


def test_time_split_adds_up():
    hist = {"coarse": {"seconds": [6.0], "samples_per_s": [40.0]}, "prompts": {"loss": [1.0]}}
    split = pipeline.time_split(hist, data_s=2.0, train_s=8.0, wall_s=12.0)
    assert split["coarse"]["samples_per_s"] == 40 and split["other training"]["seconds"] == 2.0
    assert split["evaluation"]["seconds"] == 2.0 and "prompts" not in split  # resumed: nothing run now
    assert sum(p["share"] for p in split.values()) == pytest.approx(1.0, abs=0.005)  # rounded to 3 places
    assert pipeline.format_time_split(split).startswith("time split: data 2.0 s (17 %)")
    cached = pipeline.time_split({"coarse": {"cached": [1.0]}}, 1.0, 0.5, 2.0)
    assert "coarse cached" in pipeline.format_time_split(cached)


def test_time_split_of_a_cached_run(tmp_path):
    """A second run over finished checkpoints reports its stages as cached, not with the old timings."""
    pipeline.run_pipeline(TINY, tmp_path, progress=False)
    again = pipeline.run_pipeline(TINY, tmp_path, progress=False)
    assert all(again["time_split"][s].get("cached") for s in ("coarse", "prompts", "fine", "supervised"))
    first = torch.load(next(tmp_path.glob("checkpoints/coarse-*/coarse.pt")), weights_only=True)
    assert "seconds" in first["history"]  # the checkpoint keeps the timing of the run that trained it


def test_judge_must_be_independent(tmp_path):
    run = pipeline.Run(replace(TINY, judge="teaching-guide"), tmp_path)
    with pytest.raises(ValueError, match="ARCH:PRETRAINED"):
        _ = run.judge


def test_eval_split_val_scores_validation_scenes(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(settings.PRESETS, "fast", replace(TINY, n_val=6))
    assert main(["pipeline", "--clip", "teaching", "--out", str(tmp_path), "--eval-split", "val"]) == 0
    assert "VALIDATION scenes" in capsys.readouterr().out
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["evaluated_on"] == "val"
    run = pipeline.Run(replace(TINY, n_val=6), tmp_path, progress=False)
    assert len(run.test_reconstructions(split="val")["TFP"]) == 6
    with pytest.raises(ValueError, match="'test' or 'val'"):
        run.test_reconstructions(split="train")


def test_cli_long_selects_the_long_preset(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(settings.PRESETS, "long", replace(TINY, steps_fine=2))
    assert main(["pipeline", "--long", "--clip", "teaching", "--out", str(tmp_path)]) == 0
    assert "(long settings)" in capsys.readouterr().out
    assert json.loads((tmp_path / "metrics.json").read_text())["settings"]["steps_fine"] == 2


def test_bad_settings_fail_before_any_work(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(pipeline, "run_pipeline", lambda *a, **k: pytest.fail("work started with a bad setting"))
    with pytest.raises(SystemExit) as exc:
        main(["pipeline", "--fast", "--out", str(tmp_path), "--set", "steps_coarse=-5"])
    assert exc.value.code == 2 and "steps_coarse=-5 is out of range" in capsys.readouterr().err
    with pytest.raises(ValueError, match="batch=0 is out of range"):
        pipeline.Run(replace(TINY, batch=0), tmp_path)


def test_prompt_scale_zero_is_the_guides_own_and_quality_view_is_checked(tmp_path):
    own = pipeline.Run(replace(TINY, prompt_scale=0.0), tmp_path, progress=False)
    assert own.prompt_scale == pytest.approx(own.guide.logit_scale) and own.prompt_scale < 100
    assert pipeline.Run(replace(TINY, prompt_scale=100.0), tmp_path, progress=False).prompt_scale == 100.0
    assert pipeline.Run(replace(TINY, quality_view="native"), tmp_path, progress=False).native_quality
    with pytest.raises(ValueError, match=r"quality_view='crops' is not one of \['resize', 'native'\]"):
        pipeline.Run(replace(TINY, quality_view="crops"), tmp_path, progress=False)


def test_corrupt_data_cache_is_set_aside_and_rebuilt(tmp_path):
    run = pipeline.Run(TINY, tmp_path, progress=False)
    first = run.val_set
    (cache,) = (tmp_path / "data").glob("val-*.npz")
    cache.write_bytes(cache.read_bytes()[:100])
    with pytest.warns(UserWarning, match="cannot be read .* rebuilding"):
        again = pipeline.Run(TINY, tmp_path, progress=False).val_set
    assert torch.equal(again.voxels, first.voxels) and cache.with_name(cache.name + ".corrupt").exists()


def test_a_stage_refuses_weights_that_are_not_this_runs_own(tmp_path):
    run = pipeline.Run(TINY, tmp_path, progress=False)
    coarse = run.coarse()
    assert run.prompts(coarse) is run.prompts()  # the run's own coarse stage: accepted, cached once
    with pytest.raises(ValueError, match=r"pass this run's own coarse stage \(run.coarse\(\)\)"):
        run.prompts(LRN())


def test_repeated_set_flags_add_up(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(pipeline, "run_pipeline", lambda *a, **k: pytest.fail("only the settings are checked"))
    with pytest.raises(SystemExit):
        main(["pipeline", "--out", str(tmp_path), "--set", "steps_fine=2", "--set", "batch=0"])
    assert "batch=0 is out of range" in capsys.readouterr().err  # the second --set was not dropped
    with pytest.raises(SystemExit):
        main(["pipeline", "--out", str(tmp_path), "--set", "batch=0", "--set", "steps_fine=2"])
    assert "batch=0 is out of range" in capsys.readouterr().err  # …nor the first


def test_fine_variants_are_checkpointed_by_their_arguments(tmp_path):
    """Two variants under one tag but with other steps never share (or resume) a checkpoint."""
    run = pipeline.Run(TINY, tmp_path, progress=False)
    run.fine(defences=Defences.off(), tag="off", steps=2)
    other = pipeline.Run(TINY, tmp_path, progress=False)
    h = other.fine(defences=Defences.off(), tag="off", steps=3) and other.histories["off"]
    assert "cached" not in h and len(h["loss"]) == 3  # trained anew, not resumed from the 2-step run
    again = pipeline.Run(TINY, tmp_path, progress=False)
    again.fine(defences=Defences.off(), tag="off", steps=2)
    assert again.histories["off"].get("cached")  # the same arguments: loaded
    assert len(list((run.stage_dir("fine")).glob("off-*"))) == 2


def test_held_out_clean_images_are_never_seen_by_a_stage(tmp_path):
    run = pipeline.Run(TINY, tmp_path, progress=False)
    held = run.held_out_clean(4)
    assert held.shape == (4, 32, 32)
    assert not any(torch.allclose(h, x) for h in held for x in torch.cat([run.hq_images, run.test_set.gt]))


def test_gpu_utilisation_is_measured_per_phase_and_printed_under_the_time_split():
    from spikeclip_lite.gpu_usage import GpuUsage

    usage = GpuUsage(command="absent-nvidia-smi")
    clock = pipeline.PhaseClock(usage)
    with clock.phase("data"):
        usage.samples.append((time.perf_counter(), 20.0))  # as the nvidia-smi reader thread appends them
    with clock.phase("training"):
        usage.samples += [(time.perf_counter(), 80.0), (time.perf_counter(), 60.0)]
    assert clock.gpu == {"data": 20.0, "training": 70.0} and set(clock.seconds) == {"data", "training"}
    split = pipeline.time_split({}, data_s=1.0, train_s=1.0, wall_s=2.0)
    line = pipeline.format_time_split(split, clock.gpu)
    assert line.endswith("GPU utilisation (nvidia-smi, mean): data 20 % · training 70 %")
    assert "GPU" not in pipeline.format_time_split(split, None)  # on a CPU: no such line


def test_format_fine_choice_names_the_step_kept_and_its_measures():
    h = {
        "val_step": [0.0, 1.0, 11.0, 20.0],
        "best_step": [11.0],
        "val_judge_accuracy": [0.9, 0.9, 0.95, 0.8],
        "val_judge_quality": [0.1, 0.12, 0.2, 0.3],
        "val_hf_share": [0.02, 0.021, 0.019, 0.03],
    }
    line = pipeline.format_fine_choice(h)
    assert "kept step 11 of 20" in line and "judge quality 0.10 → 0.20" in line
    assert "high-frequency share 0.0200 → 0.0190" in line
    assert "coarse network" in pipeline.format_fine_choice({**h, "best_step": [0.0]})
    # no validation, or a history without the measure: no line, or the measure left out
    assert pipeline.format_fine_choice({"loss": [1.0]}) is None
    assert "high-frequency" not in pipeline.format_fine_choice({k: v for k, v in h.items() if k != "val_hf_share"})


def test_a_stage_first_asked_for_inside_no_grad_still_trains(tmp_path):
    # notebook 06 asks for the prompts inside torch.no_grad(); opened before notebook 05, they train there
    with torch.no_grad():
        trained = pipeline.Run(TINY, tmp_path / "a", progress=False).supervised()
    plain = pipeline.Run(TINY, tmp_path / "b", progress=False).supervised()
    for a, b in zip(trained.state_dict().values(), plain.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)  # the same training as outside no_grad
    assert any(p.requires_grad for p in trained.parameters())


def test_hq_blur_low_passes_the_prompts_clean_examples_and_keys_only_later_stages(tmp_path):
    run = pipeline.Run(TINY, tmp_path, progress=False)
    blurred = pipeline.Run(replace(TINY, hq_blur=1.0), tmp_path, progress=False)
    assert torch.equal(run.prompt_hq_images(), run.hq_images)  # hq_blur = 0: the clean images as they are
    sharp, soft = run.hq_images, blurred.prompt_hq_images()
    assert soft.shape == sharp.shape and torch.allclose(soft.mean(), sharp.mean(), atol=1e-3)  # a low-pass
    assert metrics.hf_share(soft).mean() < 0.5 * metrics.hf_share(sharp).mean()
    assert blurred.stage_dir("coarse") == run.stage_dir("coarse")
    assert blurred.stage_dir("supervised") == run.stage_dir("supervised")
    assert blurred.stage_dir("prompts") != run.stage_dir("prompts")
    assert blurred.stage_dir("fine") != run.stage_dir("fine")
    with pytest.raises(ValueError, match="hq_blur"):
        settings.configure("fast", ["hq_blur=-1"])


def test_prompt_learning_trains_on_the_blurred_clean_images(tmp_path, monkeypatch):
    seen = {}

    def spy(pair, clip, hq_images, lq_images, *args, **kwargs):
        seen["hq"] = hq_images.clone()
        return {}

    monkeypatch.setattr(pipeline, "train_prompts", spy)
    run = pipeline.Run(replace(TINY, hq_blur=1.5), tmp_path, progress=False)
    run.prompts()
    assert torch.equal(seen["hq"], run.prompt_hq_images())
    assert not torch.allclose(seen["hq"], run.hq_images)


def test_scores_ask_for_the_class_names_their_labels_index():
    """A default class list scored a CIFAR-10 run's labels against the course's shapes (notebooks 04 and 06
    called it without ``run.classes``): the names are now a required keyword."""
    imgs = torch.rand(2, 32, 32)
    with pytest.raises(TypeError, match="classes"):
        pipeline.score_images(imgs, imgs, torch.zeros(2, dtype=torch.long), None)
    with pytest.raises(TypeError, match="classes"):
        pipeline.evaluate_methods({"x": imgs}, None, None)
