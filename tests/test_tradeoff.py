"""The perception–distortion sweep on synthetic noisy scenes (no training)."""

import matplotlib.pyplot as plt
import numpy as np
import torch

from spikeclip_lite import data, tradeoff


def _scenes(n=6, size=48, noise=0.15):
    gt = torch.stack([torch.from_numpy(data.make_scene(i, size=size).image).float() for i in range(n)])
    noisy = gt + noise * torch.randn(gt.shape, generator=torch.Generator().manual_seed(0))
    return gt, noisy, torch.arange(n) % 2 == 0


def test_sweep_orders_each_family_smooth_to_sharp_and_finds_the_cost_of_the_band():
    gt, noisy, moving = _scenes()
    smooth = tradeoff.families(noisy, {})["TFI blurred"][1][1]  # the noisy image blurred by 1.5 px: a "network"
    fams = tradeoff.families(noisy, {"net": smooth})
    assert [label for label, _ in fams["TFI blurred"]] == [f"σ={s:g}" for s in tradeoff.BLURS]
    assert [label for label, _ in fams["net"]][:5] == ["σ=2", "σ=1.5", "σ=1", "σ=0.5", "a=0"]
    torch.testing.assert_close(dict(fams["net"])["a=0"], smooth.clamp(0, 1))
    res = tradeoff.measure(fams, gt, moving)
    for fam, rows in res.items():
        tex = [r["moving"]["texture"] for r in rows]
        assert all(a < b for a, b in zip(tex, tex[1:], strict=False)), (fam, tex)  # smooth → sharp
        assert set(rows[0]) == {"label", "moving", "static"}
    # strong pixel noise: the PSNR-best blur is smoother than the truth, and the natural band costs PSNR
    s = tradeoff.summary(res)["TFI blurred"]
    assert s["best"]["moving"]["texture"] < tradeoff.BAND[0]
    assert s["in_band"] is not None and s["cost_db"] > 0.3
    assert "within 0.5–1.5" in tradeoff.format_summary(res)
    fig = tradeoff.plot(res, "test")
    assert len(fig.axes) == 2 and len(fig.axes[0].lines) >= 2 * len(res)
    plt.close(fig)


def test_summary_says_when_no_point_reaches_the_band_and_skips_a_missing_part():
    res = {"x": [{"label": "a=0", "moving": {"aligned_psnr": 20.0, "texture": 3.0}}]}
    s = tradeoff.summary(res)["x"]
    assert s["in_band"] is None and s["cost_db"] is None
    assert "no point within" in tradeoff.format_summary(res)
    assert tradeoff.summary(res, "static") == {} and tradeoff.format_summary(res, "static") == ""  # no static scenes
    assert np.isclose(s["best"]["moving"]["aligned_psnr"], 20.0)
