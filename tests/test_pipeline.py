"""The end-to-end pipeline on a tiny configuration with the shipped teaching CLIPs."""

import json
from dataclasses import replace

import pytest
import torch

from spikeclip_lite import pipeline
from spikeclip_lite.__main__ import main

TINY = replace(
    pipeline.FAST,
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
    clip="teaching",
    device="cpu",
)


def test_run_pipeline_writes_metrics_and_figures(tmp_path):
    result = pipeline.run_pipeline(TINY, tmp_path, progress=False)
    table = result["table"]
    assert set(table) == {"TFP", "TFI", "TFSTP", "coarse", "fine", "supervised"}
    for parts in table.values():
        assert set(parts) == {"static", "moving", "all"}
        for key in ("psnr", "aligned_psnr", "ssim", "judge_accuracy", "judge_quality", "guide_accuracy_circular"):
            assert key in parts["all"]
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["settings"]["judge_clip"].startswith("teaching-judge")
    assert saved["settings"]["guide_clip"].startswith("teaching-guide")
    assert (tmp_path / "gallery.png").exists() and (tmp_path / "training_curves.png").exists()
    assert "| fine | moving |" in pipeline.format_table(table)


def test_stages_are_cached_and_resumed(tmp_path):
    run = pipeline.Run(TINY, tmp_path, progress=False)
    coarse = run.coarse()
    again = pipeline.Run(TINY, tmp_path, progress=False).coarse()  # resumes from the finished checkpoint
    for a, b in zip(coarse.state_dict().values(), again.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)
    other = pipeline.Run(replace(TINY, steps_coarse=5), tmp_path, progress=False)
    assert other.ckpt_dir != run.ckpt_dir  # different settings never share checkpoints


def test_cli_pipeline(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(pipeline, "FAST", TINY)
    assert main(["pipeline", "--fast", "--clip", "teaching", "--device", "cpu", "--out", str(tmp_path)]) == 0
    assert "| TFP | static |" in capsys.readouterr().out


def test_full_settings_are_larger():
    assert pipeline.FULL.size > pipeline.FAST.size and pipeline.FULL.n_train > pipeline.FAST.n_train
    with pytest.raises(TypeError):
        pipeline.PipelineConfig(not_a_field=1)


def test_pipeline_on_real_style_recordings(tmp_path, rng, monkeypatch, capsys):
    """`--data`: train and evaluate on UHSR files (no ground truth → no PSNR, no supervised row)."""
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
    # the same through the CLI: one call with --data
    monkeypatch.setattr(pipeline, "FAST", replace(cfg, data_dir=None))
    assert (
        main(
            ["pipeline", "--clip", "teaching", "--device", "cpu", "--data", str(folder), "--out", str(tmp_path / "cli")]
        )
        == 0
    )
    assert "| fine | all |" in capsys.readouterr().out
