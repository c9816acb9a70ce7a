"""The paper's evaluation on real or simulated recordings: reconstruct, classify with CLIP, score quality.

``python -m spikeclip_lite evaluate --data DIR_OR_FILE --method tfp|tfi|tfstp|lrn [--weights FILE|released]``
reconstructs every UHSR ``.npz`` or raw ``.dat`` file, reports CLIP zero-shot accuracy with the
dataset's class list (docs/facts.md §2), the CLIP quality score, and no-reference IQA (offline measures
always; NIQE/BRISQUE when ``pyiqa`` can run). A corrupt file stops the run, naming the file, unless
``skip_bad`` is set; skipped files are listed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from . import baselines, io, models, nriqa
from .clip import Clip
from .data import CLASSES as COURSE_CLASSES
from .spike_data import normalise_rate

__all__ = ["CLASS_LISTS", "FileResult", "find_streams", "load_stream", "reconstruct_stream", "evaluate", "UHSRDataset"]

#: Class lists by dataset name (index → name).
CLASS_LISTS: dict[str, tuple[str, ...]] = {
    "ucaltech": io.UCALTECH_CLASSES,
    "ucifar": io.UCIFAR_CLASSES,
    "course": COURSE_CLASSES,
}
METHODS = ("tfp", "tfi", "tfstp", "lrn")


@dataclass
class FileResult:
    """One recording's evaluation."""

    file: str
    label: int | None
    predicted: int
    predicted_name: str
    correct: bool | None
    clip_quality: float
    noise_sigma: float
    sharpness: float


def find_streams(path: Path) -> list[Path]:
    """A file, or every ``.npz``/``.dat`` in a folder (sorted by number when the names are numbers)."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"no file or folder at {path}")
    files = [p for p in path.iterdir() if p.suffix in (".npz", ".dat")]
    if not files:
        raise FileNotFoundError(f"{path} holds no .npz or .dat recordings")
    return sorted(files, key=lambda p: (0, int(p.stem), "") if p.stem.isdigit() else (1, 0, p.stem))


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


def reconstruct_stream(spikes: np.ndarray, method: str, lrn: models.LRN | None = None) -> torch.Tensor:
    """One image (H, W) in [0, 1] from a (T, H, W) stream with ``method``."""
    if method == "lrn":
        if lrn is None:
            raise ValueError("method 'lrn' needs weights (--weights FILE or --weights released)")
        dev = next(lrn.parameters()).device
        vox = models.voxelize(torch.from_numpy(np.ascontiguousarray(central_frames(spikes))))[None].to(dev)
        with torch.no_grad():
            out = lrn(vox)[0, 0].float().cpu()
        return normalise_rate(out.clamp_min(0))
    if method not in baselines.METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
    return normalise_rate(torch.as_tensor(baselines.reconstruct(torch.from_numpy(spikes), method)))


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
) -> dict:
    """Evaluate every recording under ``data``; returns ``{"files": [...], "summary": {...}, "skipped": [...]}``."""
    if classes not in CLASS_LISTS:
        raise ValueError(f"unknown class list {classes!r}; choose one of {sorted(CLASS_LISTS)}")
    names = CLASS_LISTS[classes]
    files = find_streams(Path(data))
    text = clip.class_features(names) if clip is not None else None
    results, skipped, images = [], [], []
    for path in tqdm(files, desc=f"evaluating {method}", disable=not progress):
        try:
            spikes, label = load_stream(path, height, width, header_columns, n_classes=len(names))
            img = reconstruct_stream(spikes, method, lrn)
        except (ValueError, OSError) as err:
            if not skip_bad:
                raise ValueError(f"{path.name}: {err} (use --skip-bad to skip bad files)") from err
            skipped.append({"file": path.name, "error": str(err)})
            continue
        x = img[None, None]
        pred, quality = -1, float("nan")
        if clip is not None:
            with torch.no_grad():
                pred = int(clip.logits(x, text).argmax(1))
            quality = float(clip.quality_score(x)[0])
        results.append(
            FileResult(
                file=path.name,
                label=label,
                predicted=pred,
                predicted_name=names[pred] if pred >= 0 else "",
                correct=None if label is None or pred < 0 else pred == label,
                clip_quality=quality,
                noise_sigma=float(nriqa.noise_sigma(img)[0]),
                sharpness=float(nriqa.sharpness(img)[0]),
            )
        )
        images.append(img)
    if not results:
        raise ValueError(f"no recording under {data} could be evaluated; skipped: {skipped}")
    labelled = [r for r in results if r.correct is not None]
    summary = {
        "method": method,
        "files": len(results),
        "skipped": len(skipped),
        "classes": classes,
        "clip": clip.name if clip is not None else None,
        "zero_shot_accuracy": float(np.mean([r.correct for r in labelled])) if labelled else None,
        "clip_quality": float(np.nanmean([r.clip_quality for r in results])),
        "noise_sigma": float(np.mean([r.noise_sigma for r in results])),
        "sharpness": float(np.mean([r.sharpness for r in results])),
    }
    if use_pyiqa:
        same_size = len({tuple(i.shape) for i in images}) == 1
        scores, status = nriqa.pyiqa_scores(torch.stack(images)) if same_size else (None, "mixed sizes")
        summary["pyiqa"] = status
        if scores is not None:
            summary.update({k: float(v.mean()) for k, v in scores.items()})
    return {"files": [asdict(r) for r in results], "summary": summary, "skipped": skipped}


def format_summary(rows: list[dict]) -> str:
    """Markdown table of several ``evaluate`` summaries (one per method)."""
    lines = [
        "| method | files | zero-shot acc | CLIP quality | noise σ ↓ | sharpness | NIQE ↓ | BRISQUE ↓ |",
        "|---|---|---|---|---|---|---|---|",
    ]
    fmt = lambda v: "–" if v is None else f"{v:.3f}"  # noqa: E731
    for s in rows:
        lines.append(
            f"| {s['method']} | {s['files']} | {fmt(s['zero_shot_accuracy'])} | {fmt(s['clip_quality'])} | "
            f"{fmt(s['noise_sigma'])} | {fmt(s['sharpness'])} | {fmt(s.get('niqe'))} | "
            f"{fmt(s.get('brisque'))} |"
        )
    return "\n".join(lines)


class UHSRDataset(torch.utils.data.Dataset):
    """The U-CALTECH / U-CIFAR download as a torch ``Dataset`` of ``(voxels (50, 224, 224), label)``.

    Files are numbered ``0.npz`` …; files 0–4999 are the train split and the rest the test split
    (docs/facts.md §2). Every item is validated by :func:`spikeclip_lite.io.read_uhsr`.
    """

    def __init__(self, root: Path | str, split: str = "train", bins: int = 50) -> None:
        if split not in ("train", "test", "all"):
            raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
        files = [p for p in find_streams(Path(root)) if p.suffix == ".npz"]
        if split != "all":
            numbered = [p for p in files if p.stem.isdigit()]
            if len(numbered) != len(files):
                raise ValueError(f"{root}: the train/test split needs numbered files (0.npz, 1.npz, …)")
            files = [p for p in files if (int(p.stem) < 5000) == (split == "train")]
        if not files:
            raise ValueError(f"{root} has no files in the {split} split")
        self.files, self.bins = files, bins

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        spikes, label = io.read_uhsr(self.files[i], crop=True)
        return models.voxelize(torch.from_numpy(central_frames(spikes)), self.bins), label


def write_results(result: dict, out: Path) -> Path:
    """Write an ``evaluate`` result as JSON (atomically)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=2))
    tmp.replace(out)
    return out
