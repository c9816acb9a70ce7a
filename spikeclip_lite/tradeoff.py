"""The perception–distortion trade-off (Blau & Michaeli, CVPR 2018), measured: what a natural amount of
fine texture costs in aligned PSNR.

An estimate that minimises the mean squared error averages over everything the noisy input cannot tell
apart, so in low light it is *smoother* than the truth: its texture ratio (:func:`metrics.texture_ratio`,
1 = the ground truth's share of fine detail) is well below 1. Any estimate with natural texture must put
detail somewhere the input does not pin down, and pays for it in PSNR (a sample from the posterior has
twice the MMSE's error: −3 dB). This module traces that trade-off without training anything: each family
is one image turned from smooth to sharp,

- TFI blurred by a Gaussian of σ pixels (:data:`BLURS`; the tables' TFI smoothed is σ = 1), and
- each trained network's output, blurred by σ pixels (:data:`SOFTEN`) or sharpened by unsharp masking,
  ``x + a·(x − G₁∗x)`` (:func:`metrics.sharpen`, :data:`AMOUNTS`; a = 0: the output itself).

For every point, aligned PSNR and the texture ratio on the moving and static scenes (:func:`measure`),
then each family's best PSNR and its best within the texture band :data:`BAND` (:func:`summary`).
``python benchmarks/texture_tradeoff.py`` runs it on a pipeline run's folder; notebook 06 on its own run.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch

from . import baselines, metrics

__all__ = ["BLURS", "SOFTEN", "AMOUNTS", "BAND", "families", "measure", "summary", "format_summary", "plot"]

BLURS = (2.0, 1.5, 1.0, 0.75, 0.5)  # TFI blurred by σ pixels, smooth to sharp
SOFTEN = (2.0, 1.5, 1.0, 0.5)  # a network's output blurred by σ pixels
AMOUNTS = (0.0, 0.5, 1.0, 2.0, 4.0)  # … or sharpened (unsharp masking; 0 = the output itself)
BAND = (0.5, 1.5)  # a natural texture ratio (issue #11's band)


def families(tfi: torch.Tensor, outputs: dict[str, torch.Tensor]) -> dict[str, list[tuple[str, torch.Tensor]]]:
    """``{family: [(label, images (N, H, W) in [0, 1])]}``, smooth to sharp, from TFI (N, H, W) and each
    network's outputs ``{name: (N, H, W)}``."""
    fams = {"TFI blurred": [(f"σ={s:g}", baselines.smoothed(tfi, s)) for s in BLURS]}
    for name, x in outputs.items():
        soft = [(f"σ={s:g}", baselines.smoothed(x, s)) for s in SOFTEN]
        fams[name] = soft + [(f"a={a:g}", metrics.sharpen(x, a).clamp(0, 1)) for a in AMOUNTS]
    return fams


def measure(fams: dict[str, list[tuple[str, torch.Tensor]]], gt: torch.Tensor, moving: torch.Tensor) -> dict:
    """Mean aligned PSNR (dB) and texture ratio of every point against the ground truth gt (N, H, W), on the
    moving and static scenes (``moving``: bool (N,)): ``{family: [{"label", "moving": {...}, "static": {...}}]}``."""
    res: dict[str, list[dict]] = {}
    for fam, points in fams.items():
        res[fam] = []
        for label, imgs in points:
            row: dict = {"label": label}
            for part, mask in (("moving", moving), ("static", ~moving)):
                if mask.any():
                    a, g = imgs[mask].double(), gt[mask].double()
                    row[part] = {
                        "aligned_psnr": float(metrics.aligned_psnr(a, g).mean()),
                        "texture": float(metrics.texture_ratio(a, g).mean()),
                    }
            res[fam].append(row)
    return res


def summary(res: dict, part: str = "moving") -> dict[str, dict]:
    """Per family: its best point by aligned PSNR, its best inside :data:`BAND` (None if no point is), and
    the cost in dB of staying inside the band; ``{}`` where no scene is of that part (e.g. no static scenes)."""
    out = {}
    for fam, rows in res.items():
        rows = [r for r in rows if part in r]
        if not rows:
            continue
        best = max(rows, key=lambda r: r[part]["aligned_psnr"])
        inside = [r for r in rows if BAND[0] <= r[part]["texture"] <= BAND[1]]
        in_band = max(inside, key=lambda r: r[part]["aligned_psnr"]) if inside else None
        cost = best[part]["aligned_psnr"] - in_band[part]["aligned_psnr"] if in_band else None
        out[fam] = {"best": best, "in_band": in_band, "cost_db": cost}
    return out


def format_summary(res: dict, part: str = "moving") -> str:
    """:func:`summary` as one line per family (empty when no scene is of that part)."""
    lines = []
    for fam, s in summary(res, part).items():
        b = s["best"]
        line = f"{fam}: best {b[part]['aligned_psnr']:.2f} dB at {b['label']} (texture {b[part]['texture']:.2f})"
        if s["in_band"] is None:
            line += f"; no point within {BAND[0]}–{BAND[1]}"
        else:
            i = s["in_band"]
            line += f"; within {BAND[0]}–{BAND[1]}: {i[part]['aligned_psnr']:.2f} dB at {i['label']}"
            line += f" (−{s['cost_db']:.2f} dB)"
        lines.append(line)
    return "\n".join(lines)


def plot(res: dict, title: str = "") -> plt.Figure:
    """Aligned PSNR against the texture ratio (log scale), one line per family, moving and static scenes side by
    side; ★ marks the point the results table reports (the output itself; TFI smoothed by 1 px)."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, part in zip(axes, ("moving", "static"), strict=True):
        for fam, rows in res.items():
            rows = [r for r in rows if part in r]
            xs, ys = [r[part]["texture"] for r in rows], [r[part]["aligned_psnr"] for r in rows]
            (line,) = ax.plot(xs, ys, "o-", label=fam)
            star = "σ=1" if fam == "TFI blurred" else "a=0"
            for r in (r for r in rows if r["label"] == star):
                ax.plot(r[part]["texture"], r[part]["aligned_psnr"], "*", ms=14, color=line.get_color(), mec="k")
        ax.axvspan(*BAND, color="0.9", zorder=0, label=f"texture band {BAND[0]}–{BAND[1]}")
        ax.axvline(1.0, color="0.6", lw=0.8)
        ax.set_xscale("log")
        ax.set_xlabel("texture ratio (1 = the ground truth's fine detail)")
        ax.set_ylabel("aligned PSNR (dB)")
        ax.set_title(f"{part} scenes")
    axes[0].legend(fontsize=8, title="★ = the results table's point", title_fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
