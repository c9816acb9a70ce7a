"""The paper's evaluation on real or simulated recordings: reconstruct, classify with CLIP, score quality.

``python -m spikeclip_lite evaluate --data DIR_OR_FILE --method tfp|tfi|tfstp|lrn [--weights FILE|released]``
reconstructs every UHSR ``.npz`` or raw ``.dat`` file (or a Spike-Zoo folder: ``spike/*.dat`` + ``gt/*.png``)
and scores it the way the authors' evaluation does:

- **What is scored.** CLIP and the no-reference metrics (NIQE, BRISQUE, … from ``pyiqa``) see the method's
  *raw* output: the LRN's unclamped output at full size, TFP/TFI/TFSTP's rate image as computed. The
  *display* image (the raw one scaled by its 99.5 % quantile and clipped to [0, 1]) is kept apart: it is
  what ``--save-images`` writes and what the course's own measures (noise σ, sharpness) use.
- **Ground truth**, when a recording has one (:func:`io.read_ground_truth`): PSNR and SSIM as Spike-Zoo
  computes them (the raw output clipped to [0, 1], scikit-image's SSIM: :func:`metrics.ssim_uniform`),
  LPIPS when its package and weights are present, and the course's aligned PSNR (gain/offset fitted).
- **Honest n/a.** A number that would mean nothing is ``None`` with its reason in ``summary["notes"]``:
  zero-shot accuracy when the CLIP does not know the class names (the teaching CLIP and U-CALTECH),
  NIQE/BRISQUE without ``pyiqa`` or its weights, GT metrics without a ground truth.

A corrupt file stops the run, naming the file, unless ``skip_bad`` is set; skipped files are listed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from . import baselines, io, metrics, models, nriqa
from .checkpoints import atomic_write
from .clip import CLASS_TEMPLATE, Clip
from .data import CLASS_LISTS
from .spike_data import normalise_rate

__all__ = [
    "Reconstruction",
    "FileResult",
    "load_stream",
    "reconstruct",
    "reconstruct_stream",
    "unknown_classes",
    "evaluate",
    "UHSRDataset",
]

METHODS = ("tfp", "tfi", "tfstp", "lrn")
#: LRN inference padding: "zero" = the network's own (the released weights, the official numbers);
#: "reflect" = Spike-Zoo's: the voxels are reflect-padded by REFLECT_PAD pixels and the output cropped back.
PADS = ("zero", "reflect")
REFLECT_PAD = 20
#: The pyiqa metrics the evaluation asks for (the paper's NIQE and BRISQUE; LIQE and CLIP-IQA as pyiqa defines them).
PYIQA_METRICS = ("niqe", "brisque", "liqe", "clipiqa")


@dataclass
class Reconstruction:
    """One method's image of one recording.

    raw (H, W): the method's own output, what the official protocol scores (LRN unclamped).
    display (H, W) in [0, 1]: ``raw`` scaled by its 99.5 % quantile and clipped (saved PNGs, course measures).
    """

    raw: torch.Tensor
    display: torch.Tensor


@dataclass
class FileResult:
    """One recording's evaluation (GT fields are None without a ground truth)."""

    file: str
    label: int | None
    predicted: int
    predicted_name: str
    correct: bool | None
    clip_quality: float
    noise_sigma: float
    sharpness: float
    psnr: float | None = None
    ssim: float | None = None
    aligned_psnr: float | None = None
    lpips: float | None = None


def load_stream(
    path: Path,
    height: int = 250,
    width: int = 400,
    header_columns: int = 0,
    crop: bool = True,
    n_classes: int | None = None,
) -> tuple[np.ndarray, int | None]:
    """``(spikes (T, H, W), label or None)`` from a UHSR ``.npz`` (cropped to 224×224; label checked
    against ``n_classes``) or a ``.dat``."""
    path = Path(path)
    if path.suffix == ".npz":
        return io.read_uhsr(path, crop=crop, n_classes=n_classes)
    if path.suffix == ".dat":
        return io.read_dat(path, height, width, header_columns), None
    raise ValueError(f"{path}: unknown format (expected .npz or .dat)")


def central_frames(spikes: np.ndarray | torch.Tensor, n: int = 200) -> np.ndarray | torch.Tensor:
    """The ``n`` frames around the middle of a stream (the LRN reads exactly 200)."""
    T = spikes.shape[-3]
    if T < n:
        raise ValueError(f"the stream has {T} frames; the LRN needs {n}")
    start = (T - n) // 2
    return spikes[..., start : start + n, :, :]


def run_lrn(lrn: models.LRN, spikes: np.ndarray, pad: str = "zero") -> torch.Tensor:
    """The LRN's raw output (H, W) for the central 200 frames of a (T, H, W) stream.

    ``pad="zero"``: the network as it is (the released weights' zero padding leaves a dark 1–3 px frame at the
    border; a course network built with ``models.LRN(pad="reflect")`` mirrors its input by itself);
    ``"reflect"``: the voxels are reflect-padded by :data:`REFLECT_PAD` px and the output cropped back, so
    every border pixel sees image-like context.
    """
    if pad not in PADS:
        raise ValueError(f"pad is one of {PADS}, got {pad!r}")
    dev = next(lrn.parameters()).device
    vox = models.voxelize(torch.from_numpy(np.ascontiguousarray(central_frames(spikes))))[None].to(dev)
    H, W = vox.shape[-2:]
    if pad == "reflect":
        if min(H, W) <= REFLECT_PAD:
            raise ValueError(f"reflect padding by {REFLECT_PAD} px needs frames larger than that, got {H}×{W}")
        vox = F.pad(vox, (REFLECT_PAD,) * 4, mode="reflect")
    with torch.no_grad():
        out = lrn(vox)[0, 0].float().cpu()
    return out[REFLECT_PAD : REFLECT_PAD + H, REFLECT_PAD : REFLECT_PAD + W] if pad == "reflect" else out


def reconstruct(
    spikes: np.ndarray,
    method: str,
    lrn: models.LRN | None = None,
    tfp_window: int | None = None,
    pad: str = "zero",
) -> Reconstruction:
    """One :class:`Reconstruction` of a (T, H, W) stream with ``method``.

    ``tfp_window``: TFP over this many frames (odd) centred on the middle frame; None = all frames
    (SpikeCLIP's TFP). ``pad``: the LRN's padding (:func:`run_lrn`).
    """
    if method == "lrn":
        if lrn is None:
            raise ValueError("method 'lrn' needs weights (--weights FILE or --weights released)")
        raw = run_lrn(lrn, spikes, pad)
    elif method in baselines.METHODS:
        s = torch.from_numpy(np.ascontiguousarray(spikes))
        if method == "tfp" and tfp_window is not None:
            T = s.shape[0]
            if tfp_window < 1 or tfp_window % 2 == 0 or tfp_window > T:
                raise ValueError(f"--tfp-window must be an odd number of frames in [1, {T}], got {tfp_window}")
            raw = torch.as_tensor(baselines.tfp(s, center=T // 2, half_window=tfp_window // 2)).float()
        else:
            raw = torch.as_tensor(baselines.reconstruct(s, method)).float()
    else:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
    return Reconstruction(raw, normalise_rate(raw.clamp_min(0)))


def reconstruct_stream(spikes: np.ndarray, method: str, lrn: models.LRN | None = None) -> torch.Tensor:
    """The display image (H, W) in [0, 1] of :func:`reconstruct` (for figures)."""
    return reconstruct(spikes, method, lrn).display


def unknown_classes(clip: Clip, names: tuple[str, ...] | list[str]) -> list[str]:
    """The class names with a word ``clip`` has no embedding for (:meth:`Clip.unknown_words`)."""
    return [n for n in names if clip.unknown_words(CLASS_TEMPLATE.format(n))]


def _lpips_scorer() -> tuple[object | None, str]:
    """Spike-Zoo's LPIPS (AlexNet) as ``f(x, ref) → float`` for grey images in [0, 1], or (None, reason)."""
    try:
        import lpips  # optional: pip install lpips (its backbone's weights are downloaded on first use)
    except ImportError:
        return None, "the lpips package is not installed (pip install lpips; needs internet once for its weights)"
    try:
        net = lpips.LPIPS(net="alex", verbose=False).eval()
    except Exception as err:  # offline: the AlexNet weights cannot be fetched
        return None, f"LPIPS could not load its weights: {type(err).__name__}: {err}"

    def score(x: torch.Tensor, ref: torch.Tensor) -> float:
        a, b = (t.clamp(0, 1)[None, None].expand(1, 3, -1, -1) * 2 - 1 for t in (x, ref))
        with torch.no_grad():
            return float(net(a, b).flatten()[0])

    return score, "ok"


def _mean(values: list) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def evaluate(
    data: Path | str,
    method: str = "tfp",
    clip: Clip | None = None,
    lrn: models.LRN | None = None,
    classes: str = "ucaltech",
    skip_bad: bool = False,
    height: int = 250,
    width: int = 400,
    header_columns: int = 0,
    progress: bool = True,
    use_pyiqa: bool = True,
    tfp_window: int | None = None,
    pad: str = "zero",
    save_images: Path | str | None = None,
) -> dict:
    """Evaluate every recording under ``data``; returns ``{"files": [...], "summary": {...}, "skipped": [...]}``.

    ``summary["notes"]`` gives the reason for every metric reported as None. ``save_images``: a folder
    that receives each display image as ``<recording>_<method>.png``.
    """
    if classes not in CLASS_LISTS:
        raise ValueError(f"unknown class list {classes!r}; choose one of {sorted(CLASS_LISTS)}")
    names = CLASS_LISTS[classes]
    files = io.find_streams(Path(data))
    notes: dict[str, str] = {}
    text = clip.class_features(names) if clip is not None else None
    unknown = unknown_classes(clip, names) if clip is not None else []
    if clip is None:
        notes["zero_shot_accuracy"] = notes["clip_quality"] = "no CLIP given"
    elif unknown:
        notes["zero_shot_accuracy"] = (
            f"{clip.name} does not know the words of {len(unknown)} of the {len(names)} '{classes}' class names "
            f"(e.g. {', '.join(repr(n) for n in unknown[:3])}): its zero-shot accuracy would mean nothing. "
            "Use a real CLIP (--clip ViT-B-32, online once)."
        )
    lpips_score, lpips_status = None, None  # loaded at the first recording with a ground truth
    if save_images is not None:
        save_images = Path(save_images)
        save_images.mkdir(parents=True, exist_ok=True)
    results, skipped, raws = [], [], []
    for path in tqdm(files, desc=f"evaluating {method}", disable=not progress):
        try:
            spikes, label = load_stream(path, height, width, header_columns, n_classes=len(names))
            gt = io.read_ground_truth(path)
            if gt is not None and gt.shape != spikes.shape[1:]:
                raise ValueError(f"its ground truth is {gt.shape[0]}×{gt.shape[1]}, the frames {spikes.shape[1:]}")
            rec = reconstruct(spikes, method, lrn, tfp_window, pad)
        except (ValueError, OSError) as err:
            if not skip_bad:
                raise ValueError(f"{path.name}: {err} (use --skip-bad to skip bad files)") from err
            skipped.append({"file": path.name, "error": str(err)})
            continue
        x = rec.raw[None, None]
        pred, quality = -1, float("nan")
        if clip is not None:
            with torch.no_grad():
                pred = int(clip.logits(x, text).argmax(1))
            quality = float(clip.quality_score(x)[0])
        r = FileResult(
            file=path.name,
            label=label,
            predicted=pred,
            predicted_name=names[pred] if pred >= 0 else "",
            correct=None if label is None or pred < 0 or unknown else pred == label,
            clip_quality=quality,
            noise_sigma=float(nriqa.noise_sigma(rec.display)[0]),
            sharpness=float(nriqa.sharpness(rec.display)[0]),
        )
        if gt is not None:
            out01, ref = rec.raw.clamp(0, 1).numpy(), gt
            r.psnr = float(metrics.psnr(out01, ref))
            r.ssim = float(metrics.ssim_uniform(out01, ref))
            r.aligned_psnr = float(metrics.aligned_psnr(rec.raw.numpy(), ref))
            if lpips_status is None:
                lpips_score, lpips_status = _lpips_scorer()
            if lpips_score is not None:
                r.lpips = lpips_score(rec.raw, torch.from_numpy(ref))
        if save_images is not None:
            _save_png(rec.display, save_images / f"{path.stem}_{method}.png")
        results.append(r)
        raws.append(rec.raw)
    if not results:
        raise ValueError(f"no recording under {data} could be evaluated; skipped: {skipped}")
    labelled = [r for r in results if r.correct is not None]
    if clip is not None and not unknown and not labelled:
        notes["zero_shot_accuracy"] = "no recording carries a class label (.dat files have none)"
    for key in ("psnr", "ssim", "aligned_psnr"):
        if all(getattr(r, key) is None for r in results):
            notes[key] = "no recording has a ground truth"
    if all(r.lpips is None for r in results):
        notes["lpips"] = lpips_status or "no recording has a ground truth"
    summary = {
        "method": method,
        "files": len(results),
        "skipped": len(skipped),
        "classes": classes,
        "clip": clip.name if clip is not None else None,
        "scored_image": "raw",
        "tfp_window": tfp_window if method == "tfp" else None,
        "pad": pad if method == "lrn" else None,
        "zero_shot_accuracy": float(np.mean([r.correct for r in labelled])) if labelled else None,
        "clip_quality": float(np.nanmean([r.clip_quality for r in results])) if clip is not None else None,
        "noise_sigma": float(np.mean([r.noise_sigma for r in results])),
        "sharpness": float(np.mean([r.sharpness for r in results])),
        **{k: _mean([getattr(r, k) for r in results]) for k in ("psnr", "ssim", "aligned_psnr", "lpips")},
    }
    if use_pyiqa:
        same_size = len({tuple(i.shape) for i in raws}) == 1
        failed = []
        for name in PYIQA_METRICS:  # one call per metric, so each None carries its own reason
            scores, status = nriqa.pyiqa_scores(torch.stack(raws), (name,)) if same_size else (None, "mixed sizes")
            summary[name] = float(scores[name].mean()) if scores and name in scores else None
            if summary[name] is None:
                notes[name] = status
                failed.append(f"{name}: {status}")
        summary["pyiqa"] = "; ".join(failed) or "ok"
    summary["notes"] = notes
    return {"files": [asdict(r) for r in results], "summary": summary, "skipped": skipped}


def _save_png(image: torch.Tensor, path: Path) -> None:
    """An (H, W) image in [0, 1] as an 8-bit grey PNG, written atomically."""
    from PIL import Image

    tmp = path.with_name(path.name + ".tmp.png")
    Image.fromarray((image.clamp(0, 1).numpy() * 255).round().astype(np.uint8), mode="L").save(tmp)
    tmp.replace(path)


def format_summary(rows: list[dict]) -> str:
    """Markdown table of several ``evaluate`` summaries (one per method); n/a = not computable here
    (the reasons follow the table)."""
    gt = any(s.get("psnr") is not None for s in rows)
    head = "| method | files | zero-shot acc | CLIP quality | noise σ ↓ | sharpness | NIQE ↓ | BRISQUE ↓ |"
    head += " PSNR | SSIM | aligned PSNR | LPIPS ↓ |" if gt else ""
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    for s in rows:
        cells = [s["method"], str(s["files"])]
        cells += [fmt(s.get(k)) for k in ("zero_shot_accuracy", "clip_quality", "noise_sigma", "sharpness")]
        cells += [fmt(s.get(k)) for k in ("niqe", "brisque")]
        if gt:
            cells += [fmt(s.get(k)) for k in ("psnr", "ssim", "aligned_psnr", "lpips")]
        lines.append("| " + " | ".join(cells) + " |")
    reasons = {}
    for s in rows:
        for k, why in s.get("notes", {}).items():
            if k in ("zero_shot_accuracy", "niqe", "brisque", "lpips") or (gt and k in ("psnr", "ssim")):
                reasons.setdefault(f"{k}: {why}", None)
    return "\n".join(lines + [f"n/a {r}" for r in reasons])


class UHSRDataset(torch.utils.data.Dataset):
    """The U-CALTECH / U-CIFAR download as a torch ``Dataset`` of ``(voxels (50, 224, 224), label)``.

    Files are numbered ``0.npz`` …; files 0–4999 are the train split and the rest the test split
    (docs/facts.md §2). Every item is validated by :func:`spikeclip_lite.io.read_uhsr`.
    """

    def __init__(self, root: Path | str, split: str = "train", bins: int = 50) -> None:
        self.files, self.bins = io.uhsr_files(root, split), bins

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        spikes, label = io.read_uhsr(self.files[i], crop=True)
        return models.voxelize(torch.from_numpy(central_frames(spikes)), self.bins), label


def write_results(result: dict, out: Path) -> Path:
    """Write an ``evaluate`` result as JSON (atomically)."""
    out = Path(out)
    atomic_write(out, lambda f: f.write(json.dumps(result, indent=2).encode()))
    return out
