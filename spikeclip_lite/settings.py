"""Every setting of a SpikeCLIP run, its three presets, and the one way to change them.

A run starts from a preset (:data:`FAST`, :data:`FULL`, :data:`LONG`) and changes some settings:
:func:`configure` does both, checks every value (:data:`LIMITS`) and is what the command line
(``--set KEY=VALUE``, plus the flags ``--clip`` and ``--device``) and the notebooks call.
:func:`changes` lists what a run changed, so it can be printed and stored beside the results.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, fields, replace

from .train import PICKS, SCORE_RANGE, Defences

__all__ = [
    "PipelineConfig",
    "FAST",
    "FULL",
    "LONG",
    "PRESETS",
    "FLAGS",
    "LIMITS",
    "configure",
    "changes",
    "override",
    "check_settings",
    "class_loss_from",
]


@dataclass
class PipelineConfig:
    """Sizes and hyper-parameters of one run. The defaults are fast mode (:data:`FAST`)."""

    size: int = 64
    n_train: int = 96
    # 48 since 2026-11-28 (was 24): at 24 scenes (12 moving) the judge named every validation output of every fine
    # step, so keep_accuracy never bound and early stopping kept the last step; 48 is what the fast-mode tuning
    # in docs/full_size.md used. Test set, moving: fine − coarse −0.19 → −0.05 dB (seen after choosing it).
    n_val: int = 48
    n_test: int = 48
    n_hq: int = 96
    batch: int = 8
    steps_coarse: int = 300  # 150 until 2026-11-28 (see warmup_steps)
    steps_prompts: int = 150
    steps_fine: int = 60
    steps_supervised: int = 150
    lr_coarse: float = 1e-3
    lr_prompts: float = 1e-3
    lr_fine: float = 1e-4
    lr_supervised: float = 1e-3  # the same network and optimiser as the coarse stage: the same rate
    # The coarse and supervised stages' rate falls linearly towards 0 over this last fraction of their steps
    # (StageConfig.decay). 0 = a constant rate, every preset's: a falling rate was measured on three fast seeds and
    # rejected (docs/full_size.md): it did not narrow the spread between seeds, and cost the supervised bound.
    lr_decay: float = 0.0
    lam: float = 100.0
    # The coarse stage's fidelity weight fades linearly over warmup_steps to fidelity_floor (with the floor at
    # 1.0, as in every preset now, it stays at 1: the fade matters only with the class loss on). Tuned, with the
    # class loss on, on the validation scenes (fast mode, 48 scenes): fading over the whole stage instead of 50
    # steps raised the judge's accuracy on moving scenes from 0.29 to 0.62–0.67 and aligned PSNR by ~0.4 dB.
    # Doubling the stage to 300 steps (fading over all of them) then raised the judge's accuracy on moving
    # coarse outputs from 0.50 to 0.83 and let the fine stage gain 0.6 dB over coarse (docs/results.md; with the
    # class loss and the rate target of that time: with today's coarse stage the fine stage gains nothing).
    warmup_steps: int = 300
    data_dir: str | None = None  # a folder of UHSR .npz files (0.npz …): train on real recordings
    classes: str = "course"  # class list of the data: course, ucaltech or ucifar
    dataset: str = "procedural"  # simulated scenes: procedural (the course's) or cifar10
    cifar_root: str = "data/cifar10"  # holds cifar-10-batches-py/ (dataset="cifar10")
    download: bool = False  # let torchvision download CIFAR-10 into cifar_root (needs internet)
    judge: str = "teaching"  # the independent judge: teaching, or an open_clip "ARCH:PRETRAINED"
    workers: int = -1  # processes that render training scenes (-1: one per spare core; 0 on ≤ 2 cores)
    # 1.0 since 2026-11-28 (was 0.3): with class_after None (never, below) the term is the stage's only loss,
    # at a constant weight
    fidelity_floor: float = 1.0
    # How the guide judges quality (prompt learning and the fine stage's prompt loss):
    # prompt_scale: logit scale of the HQ/LQ softmax; 0 = the guide's own learned scale (100 for OpenAI's
    # ViT-B/32, CLIP-LIT's value; about 18 for the teaching guide, where 100 pins P(HQ) at 0 or 1).
    prompt_scale: float = 100.0
    # quality_view: "resize" (the whole image shrunk to the guide's input) or "native" (random windows of
    # the guide's input size at full resolution: only these show pixel-level texture to a small guide).
    quality_view: str = "resize"
    # prompt_loss: "prob" = −P(HQ) (the paper's lead; its gradient vanishes once P(HQ) ≈ 0) or "log" =
    # −log P(HQ) (non-saturating, same minimum).
    prompt_loss: str = "prob"
    # hq_blur: the unpaired clean (HQ) images are low-passed by a Gaussian of this std (pixels) before prompt
    # learning. Sharp clean images against coarse outputs teach the HQ prompt "sharp" as well as "clean", and a
    # fine stage pushed towards "sharp" paints detail it cannot know. Blurred by 1 px they differ from the
    # LQ images mostly in noise. 1200-step 128² proxy, validation, fine − coarse at the step the judge
    # keeps, all 24 scenes: +0.07 → +0.33 dB with seed 2 (docs/full_size.md, "What the HQ prompt learns").
    hq_blur: float = 0.0
    fidelity_blur: float = 0.0  # compare output and target through a Gaussian low-pass of this std (pixels)
    # The coarse stage's fidelity target, after a Gaussian low-pass of fidelity_denoise pixels: "tfi" (TFI as the
    # spike sets store it, each image over its own brightest pixels: a gain an LRN that sees 11×11 pixels
    # cannot know), "rate" (the firing rate over the middle 2·fidelity_window frames, on one gain for the
    # whole set) or "tfi_gain" (TFI from the bits, on one gain for the whole set: train.tfi_one_gain).
    # A fresh LRN fitted to each alone for 300 steps (fast mode, 48 validation scenes, moving): "rate" 23.42 dB,
    # "tfi_gain" 25.84 dB (TFI smoothed itself: 26.00): TFI's short interval blurs motion less than a
    # 48-frame rate. In the coarse stage: "rate" 23.30 dB / judge accuracy 0.79, "tfi_gain" 25.60 / 0.96.
    fidelity_target: str = "tfi_gain"
    fidelity_window: int = 24  # "rate" only
    fidelity_denoise: float = 1.0
    # class_enough: the class loss stops pushing an image once the guide gives its class this probability
    # (1.0 = the plain cross-entropy, the paper's). It applies to the coarse and the fine stage alike.
    class_enough: float = 0.9
    # class_after: steps of the coarse stage's fidelity term alone before the class loss joins (0 = from the
    # first step, the paper's lead; None, `--set class_after=none`, or ≥ steps_coarse = never: the coarse stage
    # learns from the spikes alone, however many steps it takes: class_loss_from()). None in every preset.
    # Measured on the validation scenes, with the "rate" target then (docs/full_size.md): the class loss in the
    # coarse stage paints a texture the guide (and the judge, a CLIP trained on the same scenes) reads as the
    # class. Fast mode, 48
    # scenes, moving: with it from step 0, coarse 20.56 dB / texture 2.4 / judge accuracy 0.75; from step 150,
    # 21.51 / 3.0 / 0.71; never, 23.30 / 1.1 / 0.79. At 128² (the proxy), never: 22.96 / 3.3 / 0.83 against
    # 20.88 / 5.4 / 1.00 with it (its accuracy bought with texture).
    class_after: int | None = None
    # pad: how every trained LRN (coarse, fine, supervised) computes its outer 5 pixels, in training and in
    # use (models.LRN): "zero" (the authors' network) or "reflect" (the voxels mirrored first). With zeros the
    # fine stage's weight changes move that frame as a side effect: on the 1200-step 128² proxy's validation
    # scenes its best step gained +0.16 dB with zeros and +0.48 dB with the fine stage reflect-padded (the
    # interior, 8 px in, +0.34 / +0.35 dB: the difference is the frame); docs/full_size.md.
    pad: str = "reflect"
    # crop: the coarse stage (while its fidelity term is alone) trains on one random crop×crop window of each
    # scene per step instead of the whole frame (train.random_windows: the frame's own output there; the
    # per-pixel loss on fewer pixels, the frame's centre weighted more than its edges); 0 = whole frames. Fast
    # mode: 32, a quarter of the pixels, for make run's 3 minutes on 2 cores: the stage 175 → 52 s on an
    # AVX2-only AMD EPYC, and on the validation scenes (moving) coarse 25.70 → 25.86 dB aligned with the judge's
    # accuracy kept at 1.00 (crop 40: 25.95, but accuracy 0.96) (docs/full_size.md, "Fast mode in 3 minutes").
    # Full mode: 64² at 128² (FULL).
    crop: int = 32
    # supervised_crop: the same windows for the supervised bound (0 = whole frames). Their weight on the
    # frame's centre, where the scenes' objects are, is what makes the bound: on fast mode's validation scenes
    # (moving) whole frames 24.40 dB, 32² windows 25.44, whole frames with the L1 weighted as the windows weigh
    # it 25.48, windows whose offsets weigh the frame evenly 24.10; in the long run (seed 2) 26.39 → 27.14
    # (static 28.39 → 29.87) (docs/full_size.md, "A supervised bound that is one"); at 128², 64² windows (FULL).
    supervised_crop: int = 32
    defences: Defences = field(default_factory=Defences)
    clip: str = "auto"  # the guiding CLIP: auto, teaching, ViT-B-32 (a flag: --clip)
    device: str = "auto"  # auto, cpu, cuda or mps (a flag: --device)
    seed: int = 0
    compile: bool = False  # torch.compile the LRN in the training stages (for a GPU; see `make bench`)


#: CI / laptop settings: a few minutes on 2 CPU cores.
FAST = PipelineConfig()

#: The real experiment, sized for one GPU. Each value that differs from fast mode, and why:
FULL = replace(
    FAST,
    size=128,  # 4× fast mode's pixels: enough detail for texture to matter, one GPU's budget (the paper: 224²)
    n_train=2000,  # ~200 scenes per class: too many to memorise (fast mode's 96 can be)
    n_val=100,  # early stopping's score moves by 1 % per scene instead of 4 %
    n_test=400,  # a scene is 0.25 % of the accuracy, so a 2-point difference is more than noise
    n_hq=1000,  # enough unpaired clean images that the HQ prompt does not learn a few of them
    batch=32,  # a GPU needs larger batches to be busy; 8 suits 2 CPU cores
    steps_coarse=2000,  # ~32 epochs of 2000 scenes (fast: ~25 epochs of 96)
    warmup_steps=2000,  # the whole stage, as fast mode (a fade only with the class loss on)
    steps_prompts=500,  # 3× fast: 3000 LQ + 1000 HQ features instead of 384
    steps_fine=400,  # ~6 epochs; early stopping keeps the latest step within the judge's noise of its best
    steps_supervised=2000,  # as many steps as the coarse stage: the bound trains as long as the method
    # The full-size fixes (128² proxy, validation scenes; docs/full_size.md):
    # The coarse stage and the bound on 64² windows, half the side, as fast mode's 32² at 64². The 1200-step 128²
    # proxy, seed 0, 100 validation scenes, moving | static aligned PSNR (docs/full_size.md, "Full mode on
    # windows too"): coarse 26.25 | 28.86 → 26.31 | 28.91 (paired +0.06 ± 0.02 | +0.05 ± 0.03), fine 26.86 |
    # 29.33 → 26.90 | 29.33, the coarse stage 3.2× faster; the bound 26.82 | 29.65 → 27.42 | 30.19 (+0.59 ± 0.03
    # | +0.54 ± 0.04: on whole frames fine had passed it on moving scenes).
    crop=64,  # (the reason: the comment above)
    supervised_crop=64,  # (the reason: the comment above)
    # The anchor holds a 1.5 px low-pass of the coarse output, at 100× the prompt loss's weight: at 1× it held
    # little (the prompt term dominated the gradient), the low-passed output drifted from the coarse one step
    # after step, and aligned PSNR fell after its peak while the judge kept later steps. Proxy
    # validation, seeds 0/1/2, fine − coarse at the kept step, moving: +0.23/+0.34/+0.38 dB → +0.67/+0.59/+0.53
    # (static +0.50/+0.48/+0.28 → +0.36/+0.26/+0.34; 30×: moving as 100×, static lower; 300×: less).
    defences=Defences(anchor_blur=1.5, anchor=100.0),  # (the reason: the comment above)
    # the guide's 64² input saw 128² outputs shrunk, so their texture was invisible to it, and at logit scale
    # 100 the learned prompts put P(HQ) at 0.000 for every output, so −P(HQ) had no gradient. Fine − coarse:
    # +0.00 dB → +1.45 dB on moving scenes.
    prompt_scale=0.0,  # the guide's own learned scale (≈ 18 for the teaching guide; 100 for ViT-B/32)
    quality_view="native",  # the prompt loss sees 64² windows at full resolution
    prompt_loss="log",  # −log P(HQ): keeps a gradient where P(HQ) ≈ 0
    class_enough=1.0,  # the fine stage's plain cross-entropy (its fixes above were measured with it)
    # The HQ prompt learns "clean", not "sharp": at 128² the coarse outputs are sharper and noisier than the clean
    # images blurred by 1 px. Proxy validation (all 24 scenes), fine − coarse at the kept step, seeds 0/1/2:
    # +0.38/+0.15/+0.07 dB → +0.37/+0.41/+0.33 (seed 2 only: hq_blur 0.5 as 0, 1.5 +0.32). At 64² it helps only
    # with a 100× anchor.
    hq_blur=1.0,  # blur the clean images by 1 px for prompt learning (the reason: the comment above)
)

#: A longer CPU run (30–65 min on 2 cores) that stands in for full mode where no GPU is at hand.
LONG = replace(
    FAST,
    n_train=800,  # 8× the scenes, at fast mode's image size so that 2 cores manage
    n_val=100,  # as full mode (48 until 2026-12-06): a scene is 1 % of the accuracy, so the slack below is 2 scenes
    n_test=200,  # a scene is 0.5 % of the accuracy
    n_hq=400,  # half the training-set size, as in full mode
    batch=16,  # 2× fast: fewer, larger steps make better use of the cores
    steps_coarse=1500,  # ~30 epochs of 800 scenes, as full mode's ~32
    warmup_steps=1500,  # the whole stage, as fast mode (a fade only with the class loss on)
    steps_prompts=300,  # 2× fast, for 4× the LQ images
    steps_fine=1000,  # for full mode's prompt loss (below), whose validation curve still rose at steps 300 and 600
    steps_supervised=1500,  # as long as the coarse stage
    crop=0,  # whole frames, as measured
    supervised_crop=32,  # the bound on 32² windows (the comment on supervised_crop): 1500 steps, 13–22 → 7–10 min
    # The anchor lets the prompt loss remove noise below 1.5 px (README), at 100× as in full mode, and the prompts
    # learn "clean" from clean images blurred by 1 px: validation (48 scenes), fine − coarse at the kept step,
    # moving | static: anchor 1 and no blur −0.04 | −0.06 dB; 100 alone +0.04 | +0.04; 100 with 1 px +0.17 | +0.02
    # (0.5 px: +0.03 | +0.05). With anchor 1, 1 px smoothed on and lost 1.5 dB by step 300.
    # Early stopping may keep a step whose judge accuracy on validation is up to 0.02 below the coarse network's
    # (the issue's own tolerance for the judge's accuracy): over 1000 steps the validation curve rose past +0.6 dB
    # over all scenes, but with no lost scene allowed the judge kept step 501 (+0.4; with 48 or 100 scenes:
    # most later steps name one or two scenes fewer right than the coarse network does). With 100 scenes and
    # the slack: step 991, moving | static +0.51 | +0.81 (docs/full_size.md). It can cost too: seed 2 on an Intel
    # Xeon kept step 891, a peak of the judge's quality at the slack's edge (test fine − coarse +0.42; strict: 811),
    # until early stopping kept the last candidate instead of the best-scoring one (Defences.pick): step 1000, +0.52.
    defences=Defences(anchor_blur=1.5, anchor=100.0, accuracy_slack=0.02),  # (the reasons: the comments above)
    hq_blur=1.0,  # (the reason: the comment above)
    class_enough=1.0,  # the fine stage's plain cross-entropy, as the long run's earlier tables used
    # The fine stage's prompt loss as in full mode: the guide's own logit scale and −log P(HQ). Validation (48
    # scenes), fine − coarse at the kept step, moving | static: the paper's −P(HQ) at scale 100, 300 steps, +0.17 |
    # +0.02 dB; full mode's loss, 300 steps, +0.21 | −0.10 (its curve still rising); 600 steps, +0.42 | +0.36.
    prompt_scale=0.0,  # the guide's own scale (the reason: the comment above)
    prompt_loss="log",  # −log P(HQ) (the reason: the comment above)
)

PRESETS: dict[str, PipelineConfig] = {"fast": FAST, "full": FULL, "long": LONG}
#: Settings with a command-line flag of their own (``--clip``, ``--device``): never set with ``--set``.
FLAGS = ("clip", "device")


#: Integer settings that may also be None (``--set KEY=none``), and what None means.
_OPTIONAL_INTS = {"class_after": "never"}


def _parse(name: str, text: str, current: object) -> object:
    if name in _OPTIONAL_INTS:
        if text.strip().lower() in ("none", _OPTIONAL_INTS[name]):
            return None
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{name} is an int or none ({_OPTIONAL_INTS[name]}), got {text!r}") from None
    if isinstance(current, bool):
        if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise ValueError(f"{name} is true/false, got {text!r}")
        return text.lower() in ("true", "1", "yes")
    if isinstance(current, (int, float)):
        try:
            return type(current)(text)
        except ValueError:
            raise ValueError(f"{name} is {type(current).__name__}, got {text!r}") from None
    return None if text.lower() == "none" else text


_COUNTS = ("n_train", "n_val", "n_test", "n_hq", "batch")
_STEPS = ("steps_coarse", "steps_prompts", "steps_fine", "steps_supervised", "warmup_steps")
#: Allowed values of each setting: (low, high) bounds, inclusive (None = unbounded), or a tuple of choices.
LIMITS: dict[str, tuple] = {
    "size": (32, 1024),
    **{k: (1, None) for k in _COUNTS},
    **{k: (0, None) for k in _STEPS},
    **{k: (1e-8, 1.0) for k in ("lr_coarse", "lr_prompts", "lr_fine", "lr_supervised")},
    "lr_decay": (0.0, 1.0),
    "lam": (0.0, None),
    "fidelity_floor": (0.0, None),
    "fidelity_blur": (0.0, 32.0),
    "hq_blur": (0.0, 32.0),
    "class_enough": (1e-3, 1.0),
    "class_after": (0, None),
    "fidelity_denoise": (0.0, 32.0),
    "fidelity_target": ("tfi", "rate", "tfi_gain"),
    "fidelity_window": (4, 100),
    "prompt_scale": (0.0, 1000.0),
    "workers": (-1, 256),
    "quality_view": ("resize", "native"),
    "pad": ("zero", "reflect"),
    "crop": (0, 1024),
    "supervised_crop": (0, 1024),
    "prompt_loss": ("prob", "log"),
    "dataset": ("procedural", "cifar10"),
    "classes": ("course", "ucaltech", "ucifar"),
    "defences.anchor": (0.0, None),
    "defences.anchor_blur": (0.0, 32.0),
    "defences.accuracy_slack": (0.0, 1.0),
    "defences.texture_margin": (0.0, 1.0),
    "defences.pick": PICKS,
    "defences.score_tolerance": SCORE_RANGE,
}


def check_settings(cfg: PipelineConfig) -> PipelineConfig:
    """Raise ValueError naming the first setting outside its allowed range (:data:`LIMITS`), before any
    work starts. Returns ``cfg``."""
    for key, allowed in LIMITS.items():
        value = getattr(cfg.defences, key.split(".")[1]) if key.startswith("defences.") else getattr(cfg, key)
        if value is None and key in _OPTIONAL_INTS:
            continue
        if isinstance(allowed[0], str):
            if value not in allowed:
                raise ValueError(f"setting {key}={value!r} is not one of {list(allowed)}")
            continue
        lo, hi = allowed
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"setting {key}={value} must be a finite number")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            where = f"≥ {lo}" if hi is None else f"in [{lo}, {hi}]"
            raise ValueError(f"setting {key}={value} is out of range: it must be {where}")
    windowed = [key for key in ("crop", "supervised_crop") if getattr(cfg, key)]
    if windowed and cfg.pad != "reflect":
        values = ", ".join(f"{key}={getattr(cfg, key)}" for key in windowed)
        raise ValueError(
            f"setting {values} needs pad=reflect (a window must be the frame's own output there); "
            f"with pad={cfg.pad} set {' '.join(f'{key}=0' for key in windowed)}"
        )
    for key in ("crop", "supervised_crop"):
        crop = getattr(cfg, key)
        if crop > cfg.size:
            raise ValueError(f"setting {key}={crop} is larger than the images (size={cfg.size}): use ≤ {cfg.size}")
    if cfg.crop and cfg.fidelity_blur > 0:
        raise ValueError(
            f"setting crop={cfg.crop} needs fidelity_blur=0 (a low-pass of a window mirrors at the window's edges); "
            "set crop=0 to compare through a blur"
        )
    return cfg


def override(cfg: PipelineConfig, assignments: list[str]) -> PipelineConfig:
    """A copy of ``cfg`` with ``"key=value"`` settings changed (``defences.anchor=0.5`` reaches into
    :class:`Defences`). Values are parsed as the field's current type; unknown keys are errors."""
    names = {f.name for f in fields(PipelineConfig)}
    for item in assignments:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep:
            raise ValueError(f"settings are KEY=VALUE, got {item!r}")
        if key.startswith("defences."):
            sub = key.split(".", 1)[1]
            if sub not in {f.name for f in fields(Defences)}:
                raise ValueError(f"unknown setting {key!r}; Defences has {[f.name for f in fields(Defences)]}")
            d = replace(cfg.defences, **{sub: _parse(key, text, getattr(cfg.defences, sub))})
            cfg = replace(cfg, defences=d)
        elif key in names and key != "defences":
            cfg = replace(cfg, **{key: _parse(key, text, getattr(cfg, key))})
        else:
            raise ValueError(f"unknown setting {key!r}; choose from {sorted(names - {'defences'})} or defences.*")
    return cfg


def class_loss_from(cfg: PipelineConfig) -> int:
    """The coarse step at which the class loss joins: ``cfg.class_after``, or ``cfg.steps_coarse`` (never) when
    it is None or later than the stage's last step. Raising ``steps_coarse`` never turns the class loss on."""
    if cfg.class_after is None:
        return cfg.steps_coarse
    return min(cfg.class_after, cfg.steps_coarse)


def configure(
    mode: str = "fast", overrides: Sequence[str] = (), flags: Collection[str] = (), **values: object
) -> PipelineConfig:
    """The settings of a run: preset ``mode`` (fast, full or long) with ``values`` (Python values, e.g.
    ``clip="teaching"``) and ``overrides`` (``"KEY=VALUE"`` text, as typed after ``--set``) applied, then
    checked. ``flags``: keys that must not appear in ``overrides`` (they have a command-line flag).

    Raises:
        ValueError: an unknown mode or setting, an unparsable value, or one out of range (named).
    """
    if mode not in PRESETS:
        raise ValueError(f"unknown mode {mode!r}; choose one of {sorted(PRESETS)}")
    names = {f.name for f in fields(PipelineConfig)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"unknown setting(s) {unknown}; choose from {sorted(names)}")
    for item in overrides:
        key = item.partition("=")[0].strip()
        if key in flags:
            raise ValueError(f"{key} has a flag of its own: use --{key} {item.partition('=')[2]}")
        if key in values:  # e.g. a notebook's SETTINGS="seed=1" beside its SEED parameter: neither may win silently
            raise ValueError(
                f"{key} is given twice: {key}={values[key]!r} and {item!r} in the settings; give it once "
                "(in a notebook: its parameter, not SETTINGS)"
            )
    return check_settings(override(replace(PRESETS[mode], **values), list(overrides)))


def changes(cfg: PipelineConfig, mode: str = "fast") -> dict[str, object]:
    """The settings of ``cfg`` that differ from preset ``mode``, flat (``"defences.anchor"``), in field order."""
    base = PRESETS[mode]
    out: dict[str, object] = {}
    for f in fields(PipelineConfig):
        new, old = getattr(cfg, f.name), getattr(base, f.name)
        if f.name == "defences":
            out.update(
                {
                    f"defences.{d.name}": getattr(new, d.name)
                    for d in fields(Defences)
                    if getattr(new, d.name) != getattr(old, d.name)
                }
            )
        elif new != old:
            out[f.name] = new
    return out
