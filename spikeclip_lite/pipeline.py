"""SpikeCLIP end to end: data → coarse → prompts → fine (+ supervised bound) → evaluation.

``python -m spikeclip_lite pipeline [--fast|--full|--long] [--clip …] [--out DIR] [--set KEY=VALUE …]``
writes ``DIR/metrics.json`` and figures. :func:`run_pipeline` is the whole experiment as a script;
:class:`Run` trains one stage at a time (the notebooks use it) and caches each stage's checkpoint
(:class:`StageCache`). Scores that matter come from the **independent judge** (the second teaching CLIP,
never used in training); the guiding CLIP's own scores are reported too, labelled circular.
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import asdict
from functools import cached_property, partial
from pathlib import Path

import numpy as np
import torch

from . import baselines, data, metrics
from .cifar import cifar_split, class_names
from .clip import Clip, load_clip, resolve_device
from .gpu_usage import GpuUsage
from .models import LRN
from .prompts import PromptPair
from .settings import FAST, PRESETS, PipelineConfig, changes, check_settings, class_loss_from
from .spike_data import SpikeSet, make_hq_images, recorded_split, simulated_split
from .train import Defences, StageConfig, reconstruct, train_coarse, train_fine, train_prompts, train_supervised

__all__ = [
    "Run",
    "RunInputs",
    "StageCache",
    "STAGE_KEYS",
    "run_pipeline",
    "evaluate_methods",
    "score_images",
    "paired_gaps",
    "format_paired",
    "format_fine_choice",
    "PAIRS",
    "format_table",
    "time_split",
    "format_time_split",
    "SSIM_NOTE",
    "PhaseClock",
    "SMOOTHED",
]

#: The table's name for TFI smoothed by :func:`baselines.smoothed` (a 1-pixel Gaussian).
SMOOTHED = "TFI smoothed"
#: Settings every trained stage depends on (the training data and the batches drawn from it).
_DATA_KEYS = ("size", "n_train", "dataset", "cifar_root", "data_dir", "seed", "batch")
_COARSE_KEYS = (
    "pad",
    "classes",
    "steps_coarse",
    "lr_coarse",
    "lr_decay",
    "warmup_steps",
    "fidelity_floor",
    "fidelity_blur",
    "fidelity_denoise",
    "fidelity_target",
    "fidelity_window",
    "class_enough",
    "class_after",
    "crop",
)
#: Settings each stage depends on beyond the data (the fine stage depends on all of them).
STAGE_KEYS: dict[str, tuple[str, ...]] = {
    "supervised": ("pad", "supervised_crop", "steps_supervised", "lr_supervised", "lr_decay"),
    "coarse": _COARSE_KEYS,
    "prompts": (*_COARSE_KEYS, "n_hq", "hq_blur", "steps_prompts", "lr_prompts", "prompt_scale", "quality_view"),
}
#: Settings that change how fast a run goes, not what it computes: never part of a checkpoint's key.
_SPEED_KEYS = ("device", "workers", "compile")
#: Settings added after checkpoints were trained without them, with the value that trains as those did: a
#: setting at that value is left out of the key (whole frames, crop=0 and supervised_crop=0, find the
#: checkpoints trained before). Fast mode's bound, keyed by crop=32 on 2026-12-07 and by supervised_crop=32
#: since, is retrained once (the same weights).
_ADDED_LATER = {"crop": 0, "supervised_crop": 0}
#: Settings that change only what is scored after training (the test set): never part of a checkpoint's key,
#: so scoring more test scenes never retrains a stage.
_SCORING_KEYS = ("n_test",)


class StageCache:
    """The trained stages of one configured run, each trained once per process (:meth:`get`), and the
    folders their checkpoints live in (written by the training loop, :class:`train.StageConfig`):
    ``root/<stage>-<hash>/``, the hash covering the settings that stage depends on (:data:`STAGE_KEYS`;
    the fine stage and its variants: every setting but the speed and test-set ones, and the guide loaded).
    Changing a fine-stage knob never retrains the coarse stage, nor scoring more test scenes any stage; a later
    run with the same settings resumes from the checkpoint."""

    def __init__(self, root: Path, cfg: PipelineConfig) -> None:
        self.root, self.cfg = root, cfg
        self.trained: dict[str, torch.nn.Module] = {}
        self.histories: dict[str, dict] = {}

    def folder(self, stage: str, guide: str) -> Path:
        settings = {k: v for k, v in asdict(self.cfg).items() if k not in (*_SPEED_KEYS, *_SCORING_KEYS)}
        if stage in STAGE_KEYS:
            settings = {k: settings[k] for k in (*_DATA_KEYS, *STAGE_KEYS[stage])}
        if "class_after" in settings:  # keyed by what it does: "never" is one key however it is spelled
            settings["class_after"] = class_loss_from(self.cfg)
        for key, before in _ADDED_LATER.items():  # at the value that computes what runs did before it existed:
            if key in settings and settings[key] == before:  # left out, so checkpoints trained then are found
                del settings[key]
        if stage != "supervised":
            settings.pop("supervised_crop", None)  # read by the bound alone: changing it retrains nothing else
            settings["guide"] = guide
        digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:10]
        return self.root / (f"{stage}-{digest}" if stage in STAGE_KEYS else digest)

    def get(self, tag: str, train: Callable[[], tuple[torch.nn.Module, dict]]) -> torch.nn.Module:
        """The stage ``tag``, calling ``train() → (module, history)`` the first time it is asked for (with
        gradients on, even when asked for inside ``torch.no_grad()``)."""
        if tag not in self.trained:
            with torch.enable_grad():
                self.trained[tag], self.histories[tag] = train()
        return self.trained[tag]


class RunInputs:
    """What a configured run works from: its settings, the guiding and judging CLIPs, the class names and
    the data splits (simulated once, then read from ``out/data/``). :class:`Run` adds the stages."""

    def __init__(self, cfg: PipelineConfig = FAST, out: Path | str = "outputs/pipeline", progress: bool = True):
        self.cfg, self.out, self.progress = check_settings(cfg), Path(out), progress
        self.out.mkdir(parents=True, exist_ok=True)
        self.device = resolve_device(cfg.device)

    @cached_property
    def guide(self) -> Clip:
        """The CLIP that guides training (``cfg.clip``)."""
        return load_clip(self.cfg.clip, device=self.device)

    @cached_property
    def judge(self) -> Clip:
        """The independent CLIP that scores (``cfg.judge``): never the guide, never used in training."""
        if self.cfg.judge == "teaching":
            return load_clip("teaching", device=self.device, judge=True)
        arch, sep, pretrained = self.cfg.judge.partition(":")
        if not sep:
            raise ValueError(
                f"judge must be 'teaching' or 'ARCH:PRETRAINED' (e.g. 'RN50:openai'), got {self.cfg.judge!r}"
            )
        judge = load_clip((arch, pretrained), device=self.device)
        if judge.name == self.guide.name:
            raise ValueError(f"the judge ({judge.name}) must not be the guiding CLIP: its scores would be circular")
        return judge

    @cached_property
    def classes(self) -> tuple[str, ...]:
        """Class names of the data (CIFAR-10's own names with ``dataset="cifar10"``)."""
        if self.cfg.dataset != "cifar10":
            return data.CLASS_LISTS[self.cfg.classes]
        if self.guide.teaching or self.cfg.judge == "teaching":
            warnings.warn(
                "The teaching CLIPs know only the course's ten procedural classes: on CIFAR-10 their class "
                "scores are at chance. Use --clip ViT-B-32 and a real judge (--set judge=RN50:openai).",
                stacklevel=2,
            )
        return class_names(self.cfg.cifar_root, self.cfg.download)

    def _cifar(self, split: str, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.cfg
        return cifar_split(c.cifar_root, split, n, c.size, c.n_train, c.n_val, c.n_hq, c.download)

    def _split(self, split: str, n: int) -> SpikeSet:
        """A split, simulated once and then read from ``out/data/`` (or real recordings, with ``data_dir``).
        Training data is simulated on the run's device; the test set on the CPU, the same on every machine."""
        c = self.cfg
        if c.data_dir:
            return recorded_split(c.data_dir, split, n, c.n_train, self.progress)
        dev = "cpu" if split == "test" else self.device
        if c.dataset == "procedural":
            return simulated_split(
                split, n, c.size, self.out / "data", device=dev, workers=c.workers, progress=self.progress
            )
        name = f"{c.dataset}-after{c.n_train}" if split == "val" else c.dataset  # val follows the training images
        images = partial(self._cifar, split, n)  # read only when the cache lacks the split
        return simulated_split(split, n, c.size, self.out / "data", images, name, dev, progress=self.progress)

    @cached_property
    def train_set(self) -> SpikeSet:
        return self._split("train", self.cfg.n_train)

    @cached_property
    def val_set(self) -> SpikeSet:
        return self._split("val", self.cfg.n_val)

    @cached_property
    def test_set(self) -> SpikeSet:
        return self._split("test", self.cfg.n_test)

    def held_out_clean(self, n: int) -> torch.Tensor:
        """Clean images (n, H, W) that no stage ever sees: new procedural seeds, or CIFAR-10 test images after
        the test streams' (``dataset="cifar10"``). For judging prompts and quality on unseen data."""
        c = self.cfg
        if c.dataset != "cifar10":
            return make_hq_images(n, c.size, split="hq_test")
        return cifar_split(c.cifar_root, "test", c.n_test + n, c.size, c.n_train, c.n_val, c.n_hq, c.download)[0][
            c.n_test :
        ]

    @cached_property
    def hq_images(self) -> torch.Tensor:
        """Clean unpaired images (n_hq, H, W) for prompt learning: never a training scene's ground truth."""
        return (
            self._cifar("hq", self.cfg.n_hq)[0]
            if self.cfg.dataset == "cifar10"
            else make_hq_images(self.cfg.n_hq, self.cfg.size)
        )

    def prompt_hq_images(self) -> torch.Tensor:
        """The HQ examples of prompt learning (n_hq, H, W): the clean images low-passed by ``hq_blur`` px."""
        return baselines.smoothed(self.hq_images, self.cfg.hq_blur) if self.cfg.hq_blur > 0 else self.hq_images

    def eval_set(self, split: str = "test") -> SpikeSet:
        """The scenes scores are computed on: the test set, or ``"val"`` for tuning."""
        if split not in ("test", "val"):
            raise ValueError(f"evaluate on 'test' or 'val' (tuning), not {split!r}")
        return self.test_set if split == "test" else self.val_set

    @property
    def prompt_scale(self) -> float:
        """The HQ/LQ softmax's logit scale: ``cfg.prompt_scale``, or the guide's own when that is 0."""
        return self.cfg.prompt_scale or self.guide.logit_scale

    @property
    def native_quality(self) -> bool:
        """Whether the guide judges quality on full-resolution windows (``cfg.quality_view``)."""
        return self.cfg.quality_view == "native"


class Run(RunInputs):
    """One configured experiment whose stages can be run one at a time (the notebooks) or in order
    (:func:`run_pipeline`). A stage takes the stages it builds on as arguments, so the order of work is
    visible where it is called; left out, they are trained (or loaded) first. They must be this run's own:
    stages are cached by their settings, not by the weights passed in (:meth:`_own` checks)."""

    def __init__(self, cfg: PipelineConfig = FAST, out: Path | str = "outputs/pipeline", progress: bool = True):
        super().__init__(cfg, out, progress)
        self.stages = StageCache(self.out / "checkpoints", self.cfg)
        # how each trained network's output is presented as an image (see train.reconstruct)
        self._standardise: dict[str, bool] = {"coarse": True, "supervised": False}
        self._coarse_outputs: tuple[LRN, torch.Tensor] | None = None

    @property
    def histories(self) -> dict[str, dict]:
        """Training history of every stage trained (or loaded) so far, by tag."""
        return self.stages.histories

    def stage_dir(self, stage: str) -> Path:
        """Where a stage's checkpoint lives (``"fine"``: the fine stage; its variants in sub-folders)."""
        return self.stages.folder(stage, "" if stage == "supervised" else self.guide.name)

    # -- the stages, in order ---------------------------------------------------------------------
    def stage(
        self, steps: int, lr: float, name: str = "fine", folder: Path | None = None, decay: float = 0.0
    ) -> StageConfig:
        """The loop settings of stage ``name``, checkpointed in ``folder`` (default :meth:`stage_dir`), its rate
        falling linearly towards 0 over the last ``decay`` of its steps (:func:`train.lr_at`)."""
        c = self.cfg
        same = dict(seed=c.seed, device=str(self.device), progress=self.progress, compile=c.compile)  # every stage
        return StageConfig(steps, c.batch, lr, ckpt_dir=str(folder or self.stage_dir(name)), decay=decay, **same)

    def coarse(self) -> LRN:
        """Stage 1: the LRN on the fidelity target; the class loss from step ``class_after`` (presets: never)."""
        c = self.cfg

        def train() -> tuple[LRN, dict]:
            torch.manual_seed(c.seed)
            lrn = LRN(pad=self.cfg.pad)
            stage = self.stage(c.steps_coarse, c.lr_coarse, "coarse", decay=c.lr_decay)
            terms = {k: getattr(c, k) for k in _COARSE_KEYS if k.startswith(("fidelity_", "class_"))}
            terms["class_after"] = class_loss_from(c)  # steps_coarse for the presets: never
            h = train_coarse(lrn, self.guide, self.train_set, self.classes, stage, c.warmup_steps, crop=c.crop, **terms)
            return lrn, h

        return self.stages.get("coarse", train)

    def coarse_train_outputs(self, coarse: LRN | None = None) -> torch.Tensor:
        """The coarse network's images of the training set (N, H, W): LQ examples and the fine anchor."""
        model = coarse if coarse is not None else self.coarse()
        if self._coarse_outputs is None or self._coarse_outputs[0] is not model:
            self._coarse_outputs = (model, self.images("coarse", self.train_set, model))
        return self._coarse_outputs[1]

    def _own(self, tag: str, given: torch.nn.Module | None) -> None:
        if given is not None and self.stages.trained.get(tag) is not given:
            raise ValueError(f"pass this run's own {tag} stage (run.{tag}()): stages are cached by their settings")

    def prompts(self, coarse: LRN | None = None) -> PromptPair:
        """Stage 2: HQ = unpaired clean images (:meth:`prompt_hq_images`), LQ = coarse outputs + TFP + TFI."""
        self._own("coarse", coarse)

        def train() -> tuple[PromptPair, dict]:
            torch.manual_seed(self.cfg.seed)
            pair = PromptPair(self.guide)
            lq = torch.cat([self.coarse_train_outputs(coarse), self.train_set.tfp, self.train_set.tfi])
            stage = self.stage(self.cfg.steps_prompts, self.cfg.lr_prompts, "prompts")
            hq = self.prompt_hq_images()
            h = train_prompts(pair, self.guide, hq, lq, stage, self.prompt_scale, self.native_quality)
            return pair, h

        return self.stages.get("prompts", train)

    def fine(
        self,
        coarse: LRN | None = None,
        prompts: PromptPair | None = None,
        defences: Defences | None = None,
        lam: float | None = None,
        steps: int | None = None,
        lr: float | None = None,
        tag: str = "fine",
    ) -> LRN:
        """Stage 3 from the coarse weights, early-stopped on the judge's validation score; ``tag`` names
        variants (e.g. defences off), each checkpointed in a sub-folder."""
        c, defences = self.cfg, defences or self.cfg.defences
        self._own("coarse", coarse)
        self._own("prompts", prompts)

        def train() -> tuple[LRN, dict]:
            self._standardise[tag] = defences.standardise
            start = coarse if coarse is not None else self.coarse()
            lrn = LRN(pad=self.cfg.pad)
            lrn.load_state_dict(start.state_dict())
            folder = None  # the fine stage: stage_dir("fine"); a variant: a sub-folder keyed by its arguments
            if tag != "fine":
                variant = json.dumps([asdict(defences), lam, steps, lr], default=str).encode()
                folder = self.stage_dir("fine") / f"{tag}-{hashlib.sha256(variant).hexdigest()[:8]}"
            stage = self.stage(steps or c.steps_fine, lr or c.lr_fine, folder=folder)
            pair = prompts if prompts is not None else self.prompts(coarse)
            h = train_fine(
                lrn,
                self.guide,
                pair,
                self.train_set,
                self.classes,
                stage,
                lam=c.lam if lam is None else lam,
                defences=defences,
                anchor_images=self.coarse_train_outputs(coarse),
                validate=partial(self.validation_score, tag),
                scale=self.prompt_scale,
                native=self.native_quality,
                form=c.prompt_loss,
                class_enough=c.class_enough,
            )
            return lrn, h

        return self.stages.get(tag, train)

    def supervised(self) -> LRN:
        """The upper bound: ground-truth L1 (what SpikeCLIP may not use)."""

        def train() -> tuple[LRN, dict]:
            torch.manual_seed(self.cfg.seed)
            lrn = LRN(pad=self.cfg.pad)
            stage = self.stage(self.cfg.steps_supervised, self.cfg.lr_supervised, "supervised", decay=self.cfg.lr_decay)
            return lrn, train_supervised(lrn, self.train_set, stage, self.cfg.supervised_crop)

        return self.stages.get("supervised", train)

    # -- images and scores ------------------------------------------------------------------------
    def images(self, tag: str, voxels: torch.Tensor | SpikeSet, lrn: LRN | None = None) -> torch.Tensor:
        """Images (N, H, W) in [0, 1] of a trained network (``tag``: coarse, fine, supervised, …; ``lrn``:
        these weights instead) from voxels (N, 50, H, W) or every scene of a SpikeSet."""
        if lrn is None:
            lrn = self.stages.trained[tag] if tag in self.stages.trained else getattr(self, tag)()
        return reconstruct(lrn, voxels, standardise=self._standardise[tag])

    def validation_score(self, tag: str, lrn: LRN) -> dict[str, float]:
        """Early stopping's criterion on the validation set, ``"score"`` = judge accuracy + judge quality,
        and its guards, the judge's accuracy and the outputs' mean high-frequency share ``"hf_share"``
        (:class:`Defences`; none of them needs ground truth). Aligned PSNR and the texture ratio come along
        for notebook 06's curves only."""
        val = self.val_set
        images = self.images(tag, val, lrn)
        s = score_images(images, val.gt, val.labels, self.judge, classes=self.classes)
        keep = ("judge_accuracy", "judge_quality", "aligned_psnr", "texture")
        hf = float(metrics.hf_share(images).mean())
        return {"score": s["judge_accuracy"] + s["judge_quality"], **{k: s[k] for k in keep}, "hf_share": hf}

    def test_reconstructions(self, include: tuple[str, ...] | None = None, split: str = "test") -> dict:
        """Every method's images (N, H, W) of the test set (or ``split="val"``, for tuning). Default: the
        classical methods (TFP, TFI, TFSTP and TFI smoothed by a 1-pixel Gaussian, the simplest denoiser),
        coarse, fine and, when the training data has ground truth, the supervised bound."""
        t = self.eval_set(split)
        if include is None:
            include = ("coarse", "fine") + (("supervised",) if self.train_set.has_ground_truth else ())
        classical = {"TFP": t.tfp, "TFI": t.tfi, "TFSTP": t.tfstp, SMOOTHED: baselines.smoothed(t.tfi)}
        return {**classical, **{name: self.images(name, t) for name in include}}


def score_images(
    images: torch.Tensor,
    gt: torch.Tensor,
    labels: torch.Tensor,
    judge: Clip,
    guide: Clip | None = None,
    *,
    classes: Sequence[str],
) -> dict[str, float | None]:
    """Mean scores of images (N, H, W) in [0, 1]: PSNR, SSIM, aligned PSNR and texture ratio
    (:func:`metrics.texture_ratio`, 1 = as much fine texture as the ground truth) against the ground truth
    (``None`` for real recordings, whose ``gt`` is NaN), and CLIP zero-shot accuracy / quality score under
    the judge (and, labelled circular, the guide)."""
    x = images.unsqueeze(1)
    has_gt = bool(torch.isfinite(gt).all())
    ref = (lambda f: float(np.mean(f(images.numpy(), gt.numpy())))) if has_gt else (lambda f: None)  # noqa: E731
    out = {
        "psnr": ref(metrics.psnr),
        "ssim": ref(metrics.ssim),
        "aligned_psnr": ref(metrics.aligned_psnr),
        "texture": ref(metrics.texture_ratio),
        "judge_accuracy": float((judge.zero_shot(x, classes).argmax(1) == labels).float().mean()),
        "judge_quality": float(judge.quality_score(x).mean()),
    }
    if guide is not None:
        out["guide_accuracy_circular"] = float((guide.zero_shot(x, classes).argmax(1) == labels).float().mean())
        out["guide_quality_circular"] = float(guide.quality_score(x).mean())
    return out


def _parts(moving: torch.Tensor) -> tuple[tuple[str, torch.Tensor], ...]:
    """The scenes each score is averaged over: (name, mask (N,)) for static, moving and all scenes."""
    return (("static", ~moving), ("moving", moving), ("all", torch.ones_like(moving)))


def evaluate_methods(
    recons: dict[str, torch.Tensor],
    test: SpikeSet,
    judge: Clip,
    guide: Clip | None = None,
    *,
    classes: Sequence[str],
) -> dict[str, dict[str, dict[str, float]]]:
    """``{method: {"static": scores, "moving": scores, "all": scores}}``. ``classes``: the names the test
    labels index (``run.classes``), asked for by name: a default list would score a CIFAR-10 run's labels
    against the course's shapes without a word."""
    table = {}
    for name, imgs in recons.items():
        table[name] = {}
        for part, mask in _parts(test.moving) if test.has_ground_truth else _parts(test.moving)[-1:]:
            if mask.any():
                gt, labels = test.gt[mask], test.labels[mask]
                table[name][part] = score_images(imgs[mask], gt, labels, judge, guide, classes=classes)
    return table


#: Differences :func:`paired_gaps` reports, scene by scene: (a, b) → a − b. The last is the distance to the
#: supervised network (trained on the ground truth; a bound only when trained long enough, not in fast mode's 150
#: steps); left out when it was not run.
PAIRS = (("fine", "coarse"), ("fine", SMOOTHED), ("coarse", SMOOTHED), ("fine", "supervised"))


def paired_gaps(
    recons: dict[str, torch.Tensor], test: SpikeSet, pairs: tuple[tuple[str, str], ...] = PAIRS
) -> dict[str, dict[str, dict[str, float]]]:
    """Aligned PSNR of method a minus method b, scene by scene: ``{"a - b": {part: {"mean", "se", "ahead",
    "n"}}}`` for the static, moving and all scenes, with ``se`` the standard error of the mean difference
    (std / √n) and ``ahead`` the scenes where a scores higher. Both methods see the same scenes, so the
    difference is far less noisy than the gap between two table means; a mean within about two standard
    errors of 0 is noise. Empty without ground truth; a pair whose methods were not run is left out."""
    if not test.has_ground_truth:
        return {}
    per_scene = {
        name: np.asarray(metrics.aligned_psnr(imgs.numpy(), test.gt.numpy()), dtype=np.float64).reshape(-1)
        for name, imgs in recons.items()
        if any(name in pair for pair in pairs)
    }
    gaps: dict[str, dict[str, dict[str, float]]] = {}
    for a, b in pairs:
        if a not in per_scene or b not in per_scene:
            continue
        gaps[f"{a} - {b}"] = {}
        for part, mask in _parts(test.moving):
            d = (per_scene[a] - per_scene[b])[mask.numpy()]
            if len(d) == 0:
                continue
            se = float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("nan")
            gaps[f"{a} - {b}"][part] = {"mean": float(d.mean()), "se": se, "ahead": int((d > 0).sum()), "n": len(d)}
    return gaps


def format_paired(gaps: dict[str, dict[str, dict[str, float]]]) -> str:
    """One line per pair: the mean difference ± its standard error, moving and static scenes."""
    head = "Aligned PSNR differences, paired scene by scene (mean ± standard error; within about 2 SE of 0: noise):"
    lines = [head]
    for pair, parts in gaps.items():
        cells = [
            f"{part} {g['mean']:+.2f} ± {g['se']:.2f} dB (ahead on {g['ahead']}/{g['n']})"
            for part, g in parts.items()
            if part != "all"
        ]
        lines.append(f"  {pair}: " + ", ".join(cells))
    return "\n".join(lines)


def format_fine_choice(history: dict) -> str | None:
    """One line: which fine step early stopping kept, and its validation measures against the starting
    (coarse) network's, step 0. None when the stage ran without validation."""
    steps, kept = history.get("val_step"), history.get("best_step")
    if not steps or not kept or kept[0] not in steps:
        return None
    i = steps.index(kept[0])
    names = {  # logged measure → (label, format)
        "val_judge_accuracy": ("judge accuracy", ".2f"),
        "val_judge_quality": ("judge quality", ".2f"),
        "val_hf_share": ("high-frequency share", ".4f"),
    }
    shown = [(*names[k], history[k]) for k in names if len(history.get(k, ())) == len(steps)]
    if i == 0:
        values = ", ".join(f"{label} {v[0]:{fmt}}" for label, fmt, v in shown)
        return (
            f"fine stage: early stopping kept the coarse network (step 0; validation: {values}): no later step "
            "passed the guards that were on (Defences.keep_accuracy, keep_texture) with a judge score at least the "
            "coarse network's (above it with Defences.pick='best')"
        )
    values = ", ".join(f"{label} {v[0]:{fmt}} → {v[i]:{fmt}}" for label, fmt, v in shown)
    where = f"step {int(kept[0])} of {int(steps[-1])}"
    return f"fine stage: early stopping kept {where} (validation, step 0 → it: {values})"


class PhaseClock:
    """Wall time of named phases and, on CUDA, the GPU's mean utilisation in each (:class:`GpuUsage`)."""

    def __init__(self, usage: GpuUsage | None) -> None:
        self.t0, self.usage = time.perf_counter(), usage
        self.seconds: dict[str, float] = {}
        self.gpu: dict[str, float | None] = {}

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        self.seconds[name] = time.perf_counter() - start
        if self.usage is not None:
            self.gpu[name] = self.usage.mean(start, time.perf_counter())


def run_pipeline(
    cfg: PipelineConfig = FAST,
    out: Path | str = "outputs/pipeline",
    progress: bool = True,
    split: str = "test",
    mode: str | None = None,
) -> dict:
    """The whole experiment, in order; writes ``out/metrics.json`` and figures and returns the metrics.

    ``split="val"`` scores the validation scenes instead: tune settings there, never on the test set.
    ``mode``: the preset ``cfg`` started from (default: the one it differs least from); what the run
    changed from it is stored with the results.
    """
    mode = mode or min(PRESETS, key=lambda m: len(changes(cfg, m)))
    out = Path(out)
    run = Run(cfg, out, progress)
    gpu = GpuUsage(run.device.index or 0) if run.device.type == "cuda" else nullcontext()  # sampled on CUDA only
    with gpu as usage:
        clock = PhaseClock(usage)
        with clock.phase("data"):
            train_set = run.train_set
            run.val_set  # noqa: B018 (simulated now: early stopping scores on it)
            scored = run.eval_set(split)
        with clock.phase("training"):
            coarse = run.coarse()
            prompts = run.prompts(coarse)
            run.fine(coarse, prompts)
            if train_set.has_ground_truth:
                run.supervised()
        with clock.phase("evaluation"):
            recons = run.test_reconstructions(split=split)
            table = evaluate_methods(recons, scored, run.judge, run.guide, classes=run.classes)
            paired = paired_gaps(recons, scored)
    wall = time.perf_counter() - clock.t0
    result = {
        "table": table,
        "paired": paired,
        "mode": mode,
        "overrides": changes(cfg, mode),
        "settings": {
            **asdict(cfg),
            "guide_clip": run.guide.name,
            "judge_clip": run.judge.name,
            "device": str(run.device),
        },
        "evaluated_on": split,
        "wall_seconds": round(wall, 1),
        "data_seconds": round(clock.seconds["data"], 1),
        "time_split": time_split(run.histories, clock.seconds["data"], clock.seconds["training"], wall),
        "gpu_utilisation": clock.gpu or None,
        "histories": run.histories,
    }
    (out / "metrics.json").write_text(json.dumps(result, indent=2, default=str))
    _figures(recons, scored, run.histories, out, "test" if split == "test" else "validation")
    return result


def time_split(histories: dict, data_s: float, train_s: float, wall_s: float) -> dict[str, dict[str, float]]:
    """Where the wall time went: ``{part: {"seconds", "share", ["samples_per_s"]}}`` for data
    simulation, each stage's training steps (measured inside the stage: a resumed stage counts only
    the steps run now, a stage loaded complete from its checkpoint shows as ``cached``), the rest of
    training (caching outputs, validation outside the loop) and evaluation."""
    parts: dict[str, dict[str, float]] = {"data": {"seconds": data_s}}
    staged = 0.0
    for stage, h in histories.items():
        if h.get("cached"):
            parts[stage] = {"seconds": 0.0, "cached": 1.0}
        elif h.get("seconds"):
            parts[stage] = {"seconds": h["seconds"][0], "samples_per_s": h["samples_per_s"][0]}
            staged += h["seconds"][0]
    parts["other training"] = {"seconds": max(0.0, train_s - staged)}
    parts["evaluation"] = {"seconds": max(0.0, wall_s - data_s - train_s)}
    for p in parts.values():
        p["share"] = p["seconds"] / wall_s if wall_s > 0 else 0.0
        p.update({k: round(v, 3) for k, v in p.items()})
    return parts


def format_time_split(split: dict[str, dict[str, float]], gpu: dict[str, float | None] | None = None) -> str:
    """One line: ``data 12.9 s (15 %) · coarse 25.3 s (30 %, 47 samples/s) · …``; with ``gpu`` (phase →
    mean utilisation %, measured on CUDA) a second line saying how busy the GPU was in each phase."""
    cells = []
    for part, p in split.items():
        if p.get("cached"):
            cells.append(f"{part} cached")
            continue
        rate = f", {p['samples_per_s']:.0f} samples/s" if "samples_per_s" in p else ""
        cells.append(f"{part} {p['seconds']:.1f} s ({100 * p['share']:.0f} %{rate})")
    line = "time split: " + " · ".join(cells)
    if gpu:
        busy = " · ".join(f"{k} {'n/a' if v is None else f'{v:.0f} %'}" for k, v in gpu.items())
        line += f"\nGPU utilisation (nvidia-smi, mean): {busy}"
    return line


def format_table(table: dict) -> str:
    """A Markdown table of the judge's scores and PSNRs, static and moving separately."""
    lines = [
        "| method | part | PSNR | aligned PSNR | SSIM | texture | judge acc | judge quality | guide acc (circular) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, parts in table.items():
        for part in [p for p in ("static", "moving") if p in parts] or ["all"]:
            s = parts[part]
            cells = [
                "–" if s.get(k) is None else f"{s[k]:.3f}" if k == "ssim" else f"{s[k]:.2f}"
                for k in (
                    "psnr",
                    "aligned_psnr",
                    "ssim",
                    "texture",
                    "judge_accuracy",
                    "judge_quality",
                    "guide_accuracy_circular",
                )
            ]
            lines.append(f"| {name} | {part} | " + " | ".join(cells) + " |")
    return "\n".join([*lines, "", SSIM_NOTE])


#: Printed under every results table: what SSIM can and cannot tell on these scenes (notebook 02 shows it).
SSIM_NOTE = (
    "SSIM rewards flatness on these mostly flat scenes (a flat grey image at the mean outscores most "
    "reconstructions): read aligned PSNR and the texture ratio (1 = the ground truth's detail) instead."
)


def _figures(
    recons: dict[str, torch.Tensor], test: SpikeSet, histories: dict, out: Path, split_name: str = "test"
) -> None:
    import matplotlib.pyplot as plt

    from .viz import show_images

    idx = [int(i) for i in torch.nonzero(test.moving).flatten()[:2]] + [
        int(i) for i in torch.nonzero(~test.moving).flatten()[:2]
    ]
    imgs, titles = [], []
    for i in idx:
        for name in [*recons, "ground truth"]:
            imgs.append(test.gt[i] if name == "ground truth" else recons[name][i])
            titles.append(name)
    fig = show_images(
        imgs, titles, ncols=len(recons) + 1, size=1.9, suptitle=f"{split_name} scenes: moving (top 2), static"
    )
    fig.savefig(out / "gallery.png", dpi=90)
    plt.close(fig)
    fig, axes = plt.subplots(1, len(histories), figsize=(4 * len(histories), 3))
    for ax, (stage, h) in zip(np.atleast_1d(axes), histories.items(), strict=True):
        ax.plot(h.get("loss", []))
        ax.set_title(f"{stage} loss")
        ax.set_xlabel("step")
    fig.tight_layout()
    fig.savefig(out / "training_curves.png", dpi=90)
    plt.close(fig)
