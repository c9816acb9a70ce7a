"""SpikeCLIP's three training stages, plus the supervised upper bound (docs/facts.md §4).

- :func:`train_coarse`   LRN learns a fidelity target from the spikes (+ the class loss through CLIP
  from step ``class_after``: the paper's stage; the presets leave it out, docs/full_size.md).
- :func:`train_prompts`  an HQ/LQ prompt pair learns to separate clean images from
  coarse outputs and classical reconstructions.
- :func:`train_fine`     LRN continues with class loss + λ·prompt loss, with defences
  against gaming the guiding CLIP and early stopping scored by an independent judge.
- :func:`train_supervised` LRN with ground-truth L1: the bound SpikeCLIP may not use.

Every stage: seeded, ``tqdm`` progress, cuda/mps/cpu, bf16 autocast on CUDA GPUs that have it, an atomic
checkpoint after each epoch, resume from it after an interruption, and a returned history.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from . import baselines, losses
from .augment import augment, random_crop
from .checkpoints import load_or_set_aside, save_checkpoint
from .clip import Clip, resolve_device
from .metrics import lowpass
from .models import LRN, RECEPTIVE_RADIUS, voxel_rate
from .prompts import PromptPair
from .spike_data import SpikeSet, unpack_spikes

__all__ = [
    "StageConfig",
    "Defences",
    "to_clip_image",
    "autocast",
    "autocast_dtype",
    "quality_views",
    "reconstruct",
    "train_coarse",
    "train_prompts",
    "train_fine",
    "check_early_stopping",
    "keeps",
    "replay_early_stopping",
    "train_supervised",
    "on_device",
    "rate_gain",
    "smoothed_rate",
    "tfi_one_gain",
    "LOG_EVERY",
    "lr_at",
    "random_windows",
]


@dataclass
class StageConfig:
    """Settings shared by every stage."""

    steps: int = 200
    batch: int = 8
    lr: float = 2e-5
    weight_decay: float = 1e-3
    seed: int = 0
    device: str = "auto"
    ckpt_dir: str | None = None  # checkpoints + resume; None = no checkpoints
    progress: bool = True
    compile: bool = False  # torch.compile the LRN's training step (pays on a GPU; slow to start on a CPU)
    decay: float = 0.0  # the last fraction of the steps over which the rate falls linearly towards 0 (0: constant)


def lr_at(step: int, cfg: StageConfig) -> float:
    """The learning rate of step ``step`` (0-based, < ``cfg.steps``): ``cfg.lr``, then a linear fall over the
    last ``round(cfg.decay · cfg.steps)`` steps (the last step's rate is ``lr / decay_steps``, never 0)."""
    if not 0.0 <= cfg.decay <= 1.0:
        raise ValueError(f"decay must be within 0–1 (a fraction of the steps), not {cfg.decay}")
    decay_steps = round(cfg.decay * cfg.steps)
    left = max(1, cfg.steps - step)  # steps still to run, this one included
    return cfg.lr if left > decay_steps else cfg.lr * left / decay_steps


@dataclass
class Defences:
    """Options that make CLIP guidance harder to game (each measured in notebook 06).

    Attributes:
        augment: random crop/shift/flip and gain/gamma/contrast before every CLIP call.
        standardise: feed CLIP a per-image standardised output, so brightness and
            contrast are not free channels to push the score with.
        anchor: weight of an L1 anchor to a fidelity target (the coarse output), relative
            to λ (the anchor term is ``anchor · λ · L1``, so it scales with the prompt loss). At 1 the
            prompt term dominates the gradient and the low-passed output drifts; the full and long presets
            use 100, which holds it (docs/full_size.md).
        early_stop: keep fine-stage weights chosen on the validation set under the *judge* CLIP (never
            the guide): of the candidates the guards below let through, the one ``pick`` names.
        anchor_blur: compare with the anchor through a Gaussian low-pass of this std (pixels),
            so the anchor holds brightness and structure but lets the prompt loss remove noise.
        keep_accuracy: early stopping keeps only weights whose judge accuracy on the validation set is at
            least the starting (coarse) network's, which is itself a candidate: a step that buys judge
            quality with the class is never chosen, and the fine stage may end where it started.
        accuracy_slack: how far below the starting network's judge accuracy a candidate may fall under
            ``keep_accuracy`` (a fraction of the validation scenes; 0 = not at all). A guard cannot resolve less
            than one scene: with 48 scenes, 0.02 is still "not at all".
        keep_texture: likewise, a step is kept only if its validation outputs' mean high-frequency share
            (:func:`metrics.hf_share`, no ground truth) is below the starting network's by ``texture_margin``:
            a step that buys the judge's score with added fine texture (the CLIP-fooling kind) is never chosen.
        texture_margin: how much lower than the start's (a fraction of it) a candidate's high-frequency share
            must be under ``keep_texture``. A tie is no evidence of smoothing: in fast mode the share moves by
            ±3 % between validations while the steps only sharpen, and a step 0.04 % below the start was kept
            and lost 0.03 dB on the test scenes (**lead**: 0.05; the steps kept on the proxy and in the long
            run smooth by 10 % or more).
        pick: which candidate early stopping keeps. "last": the latest candidate the judge scores at least as
            high as the starting network and within ``score_tolerance`` of the best candidate (it follows the
            trend: the judge's score on 100 validation scenes moves by ±0.03–0.04 between validations, and the
            highest of 101 is often a peak of that noise). "best": the candidate the judge scores highest (the
            rule until 2026-12-07; docs/full_size.md, "The judge guards, the trend chooses").
        score_tolerance: under ``pick="last"``, how far below the best candidate's score (accuracy + quality) a
            later candidate's may be and still be kept: scores closer than the judge's noise cannot be told
            apart, so the latest of them is kept; a step that has drifted further below the best is not
            (**lead**: 0.03, the noise; 2 = any score, the rule of 2026-12-07's second session, which kept step 400
            of a 400-step proxy fine stage that had drifted 0.07 dB below its plateau: docs/full_size.md,
            "Within the noise of the best").
    """

    augment: bool = True
    standardise: bool = True
    anchor: float = 1.0
    early_stop: bool = True
    anchor_blur: float = 0.0
    keep_accuracy: bool = True
    accuracy_slack: float = 0.0
    keep_texture: bool = True
    texture_margin: float = 0.05
    pick: str = "last"
    score_tolerance: float = 0.03

    @classmethod
    def off(cls) -> Defences:
        return cls(
            augment=False, standardise=False, anchor=0.0, early_stop=False, keep_accuracy=False, keep_texture=False
        )


def to_clip_image(out: torch.Tensor, standardise: bool) -> torch.Tensor:
    """LRN output (B, 1, H, W) → CLIP's input range. Standardised: mean 0.45, std 0.2 per image."""
    if standardise:
        mu = out.mean(dim=(1, 2, 3), keepdim=True)
        sd = out.std(dim=(1, 2, 3), keepdim=True).clamp_min(1e-3)
        out = (out - mu) / sd * 0.2 + 0.45
    return out.clamp(0, 1)


def _device(cfg: StageConfig) -> torch.device:
    return resolve_device(cfg.device)


def autocast_dtype(dev: torch.device) -> torch.dtype | None:
    """bf16 on a CUDA GPU that computes in it (compute capability 8.0 and up: A100, H100, L4, RTX 30xx…); None
    (fp32) elsewhere: the CPU, and older GPUs such as Colab's T4 (7.5), which only emulate bf16."""
    if dev.type == "cuda" and torch.cuda.is_available() and torch.cuda.get_device_capability(dev)[0] >= 8:
        return torch.bfloat16
    return None


def autocast(dev: torch.device):
    """The training stages' autocast on ``dev``: :func:`autocast_dtype`'s, or a no-op."""
    dtype = autocast_dtype(dev)
    return torch.autocast("cuda", dtype=dtype) if dtype is not None else torch.autocast("cpu", enabled=False)


def reconstruct(
    lrn: torch.nn.Module, voxels: torch.Tensor | SpikeSet, batch: int = 32, standardise: bool = False
) -> torch.Tensor:
    """Run the LRN over voxels (N, 50, H, W) (or a SpikeSet's, computed batch by batch from its bits on the
    LRN's device) → images (N, H, W) in [0, 1] on the CPU (no grad).

    ``standardise``: present the output as CLIP saw it during training (:func:`to_clip_image`);
    a CLIP-trained network's raw brightness is arbitrary. Otherwise the output is clamped.
    """
    dev = next(lrn.parameters()).device
    lrn.eval()
    outs = []
    with torch.no_grad(), autocast(dev):
        for i in range(0, len(voxels), batch):
            sl = slice(i, i + batch)
            vox = voxels.voxel_batch(sl, dev) if isinstance(voxels, SpikeSet) else voxels[sl].to(dev, torch.float32)
            out = lrn(vox).float()
            outs.append(to_clip_image(out, standardise)[:, 0].cpu())
    return torch.cat(outs)


class _Loop:
    """Shared plumbing: batches, optimiser, checkpoints, resume, history."""

    def __init__(
        self,
        name: str,
        params: list[torch.nn.Parameter],
        cfg: StageConfig,
        n_items: int,
        modules: dict[str, torch.nn.Module],
    ) -> None:
        self.name, self.cfg, self.n = name, cfg, n_items
        self.modules = modules
        # one fused kernel per step on CUDA; the CPU keeps the default (results there stay as they were)
        fused = _device(cfg).type == "cuda"
        lr_at(0, cfg)  # refuses a bad decay before any work
        self.opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=fused or None)
        self.gen = torch.Generator().manual_seed(cfg.seed)
        self.step = 0
        self.history: dict[str, list[float]] = {}
        self._pending: dict[str, list[torch.Tensor | float]] = {}  # logged, not yet read back from the device
        self._loss_steps: list[int] = []  # the step of each pending loss (to name the first non-finite one)
        self.extra: dict = {}
        self.steps_per_epoch = max(1, math.ceil(n_items / cfg.batch))
        self.ckpt = Path(cfg.ckpt_dir) / f"{name}.pt" if cfg.ckpt_dir else None
        torch.manual_seed(cfg.seed)
        keys = ("modules", "optimizer", "step", "history", "generator", "torch_rng")
        state = load_or_set_aside(self.ckpt, keys) if self.ckpt else None
        self.resumed = state is not None
        if state is not None:
            for k, m in modules.items():
                m.load_state_dict(state["modules"][k])
            self.opt.load_state_dict(state["optimizer"])
            for group in self.opt.param_groups:  # a checkpoint from another device keeps this device's kernel
                group["fused"] = fused or None
            self.step, self.history, self.extra = state["step"], state["history"], state.get("extra", {})
            self.gen.set_state(state["generator"])
            torch.set_rng_state(state["torch_rng"])

    def batches(self):
        if self.step >= self.cfg.steps:
            if self.resumed:  # finished earlier: its timings are not this run's
                timings = ("seconds", "samples_per_s", "steady_samples_per_s")
                self.history = {k: v for k, v in self.history.items() if k not in timings}
                self.history["cached"] = [1.0]
            return
        bar = tqdm(total=self.cfg.steps, initial=self.step, desc=self.name, disable=not self.cfg.progress)
        t0, start, t_warm = time.perf_counter(), self.step, None
        while self.step < self.cfg.steps:
            idx = torch.randint(0, self.n, (min(self.cfg.batch, self.n),), generator=self.gen)
            yield idx
            self.step += 1
            bar.update(1)
            if self.step % self.steps_per_epoch == 0 or self.step == self.cfg.steps:
                self.save()
            if self.step % LOG_EVERY == 0 or self.step == self.cfg.steps:
                self.flush()  # waits for the device: the clock below reads finished work
                last = {k: v[-1] for k, v in self.history.items() if v}
                bar.set_postfix({k: f"{v:.3g}" for k, v in list(last.items())[:3]})
                if t_warm is None:  # the first LOG_EVERY steps carry the start-up (compilation, autotuning)
                    t_warm, warm_step = time.perf_counter(), self.step
        bar.close()
        if self.step > start:  # throughput of the steps run now (not of resumed ones)
            seconds = time.perf_counter() - t0
            self.history["seconds"] = [seconds]
            self.history["samples_per_s"] = [(self.step - start) * self.cfg.batch / seconds]
            if t_warm is not None and self.step > warm_step:
                steady = (self.step - warm_step) * self.cfg.batch / (time.perf_counter() - t_warm)
                self.history["steady_samples_per_s"] = [steady]
            self.save()

    def log(self, **values: torch.Tensor | float) -> None:
        """Record values; tensors are read back (a GPU sync) only every :data:`LOG_EVERY` steps."""
        if "loss" in values:
            self._loss_steps.append(self.step)
        for k, v in values.items():
            self._pending.setdefault(k, []).append(v.detach() if isinstance(v, torch.Tensor) else float(v))

    def flush(self) -> None:
        """Move logged values into ``history`` as floats; raise if a logged loss was NaN or infinite."""
        for k, values in self._pending.items():
            floats = [float(v) for v in values]
            if k == "loss" and not all(math.isfinite(v) for v in floats):
                first = next(i for i, v in enumerate(floats) if not math.isfinite(v))
                step = self._loss_steps[first]
                raise FloatingPointError(f"{self.name}: loss is {floats[first]} at step {step}; lower the lr")
            self.history.setdefault(k, []).extend(floats)
        self._pending, self._loss_steps = {}, []

    def update(self, loss: torch.Tensor) -> None:
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        for group in self.opt.param_groups:  # from the step count: a resumed run continues the same schedule
            group["lr"] = lr_at(self.step, self.cfg)
        self.opt.step()

    def save(self) -> None:
        self.flush()  # also refuses to checkpoint weights after a non-finite loss
        if self.ckpt is None:
            return
        save_checkpoint(
            self.ckpt,
            modules={k: m.state_dict() for k, m in self.modules.items()},
            optimizer=self.opt.state_dict(),
            step=self.step,
            history=self.history,
            extra=self.extra,
            generator=self.gen.get_state(),
            torch_rng=torch.get_rng_state(),
            config=asdict(self.cfg),
        )


#: Steps between reading logged values back from the device (each read waits for the GPU).
LOG_EVERY = 10
#: The validation measure ``Defences.keep_accuracy`` holds at the starting network's value (:func:`train_fine`).
GUARD = "judge_accuracy"
#: What ``Defences.pick`` may name: the latest candidate, or the one the judge scores highest.
PICKS = ("last", "best")
#: The range of the judge's score (accuracy + quality), and so of ``Defences.score_tolerance``: 2 lets any score pass.
SCORE_RANGE = (0.0, 2.0)
#: The validation measure ``Defences.keep_texture`` keeps below the starting network's (no ground truth).
TEXTURE_GUARD = "hf_share"
#: What the coarse stage's fidelity term can compare with (:func:`train_coarse`).
FIDELITY_TARGETS = ("tfi", "rate", "tfi_gain")


def on_device(lrn: LRN, train_set: SpikeSet, cfg: StageConfig) -> tuple[torch.nn.Module, SpikeSet]:
    """Prepare a training stage on its device: the LRN there (channels_last on CUDA, where cuDNN's fastest
    convolutions want it; ``torch.compile``-d if ``cfg.compile``) and the whole set there, so drawing a
    batch copies nothing between host and device. Returns (the module to call, the set)."""
    dev = _device(cfg)
    lrn.to(dev).train()
    if dev.type == "cuda":
        lrn.to(memory_format=torch.channels_last)
    return (torch.compile(lrn) if cfg.compile else lrn), train_set.to(dev)


def _clip_features(
    clip: Clip, out: torch.Tensor, defences: Defences, gen: torch.Generator, native: bool = False
) -> torch.Tensor:
    """Guide features (B, D) of LRN outputs (B, 1, H, W) as the defences present them; ``native``: of
    random guide-sized windows at the output's resolution instead of the whole output shrunk."""
    x = to_clip_image(out.float(), defences.standardise)
    if native:
        x = random_crop(x, clip.image_size, gen)
    if defences.augment:
        x = augment(x, gen)
    return clip.encode_image(x)


def quality_views(images: torch.Tensor, size: int, native: bool, gen: torch.Generator) -> torch.Tensor:
    """What the guide judges quality on: images (N, H, W) as they are, or (``native``) one random
    ``size``×``size`` window of each at native resolution. → (N, 1, h, w)."""
    x = images.unsqueeze(1)
    return random_crop(x, size, gen) if native else x


def random_windows(
    voxels: torch.Tensor, targets: torch.Tensor, size: int, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """One random ``size``×``size`` window of each scene's output, for a stage whose loss is per pixel:
    voxels (B, 50, H, W) → the voxels that window needs, (B, 50, size+2r, size+2r) with r =
    :data:`models.RECEPTIVE_RADIUS` (mirrored at the frame's edges, as ``LRN(pad="reflect")`` sees them), and
    targets (B, 1, H, W) → (B, 1, size, size). ``lrn(voxels, context=True)`` then gives the whole frame's
    output on the window (the same numbers up to float rounding): a per-pixel loss on fewer pixels, for less
    work (fast mode's ``crop``, the bound's ``supervised_crop``). The offsets are uniform, so a pixel counts as
    often as windows contain it: the centre of the frame more than its edges (at 64² with 32² windows an edge
    pixel 1/32 as often, the outer 5 pixels 1/32–5/32). That weighting is what makes the supervised bound
    better than on whole frames (measured in docs/full_size.md: offsets that weigh every pixel alike lose the
    gain). Offsets come from the CPU generator ``gen`` (reproducible on any device)."""
    B, _, H, W = voxels.shape
    if not 0 < size <= min(H, W):
        raise ValueError(f"window size {size} must be within 1–{min(H, W)} (the frame is {H}×{W})")
    if targets.shape != (B, 1, H, W):
        raise ValueError(f"targets must be (B, 1, H, W) = {(B, 1, H, W)}, got {tuple(targets.shape)}")
    r = RECEPTIVE_RADIUS
    # the targets ride along as one more channel (zero-padded by r, cut off again below): one crop, one offset
    both = torch.cat([F.pad(voxels, (r, r, r, r), mode="reflect"), F.pad(targets, (r, r, r, r))], dim=1)
    both = random_crop(both, size + 2 * r, gen)
    return both[:, :-1], both[:, -1:, r : r + size, r : r + size]


def smoothed_rate(voxels: torch.Tensor, half_window: int, denoise: float, frames_per_bin: int = 4) -> torch.Tensor:
    """The coarse stage's "rate" target before its gain: the firing rate of the middle ``2·half_window``
    frames (:func:`models.voxel_rate`) low-passed by ``denoise`` pixels, (B, bins, H, W) → (B, 1, H, W)."""
    return lowpass(voxel_rate(voxels, half_window, frames_per_bin), denoise)


def rate_gain(data: SpikeSet, half_window: int, denoise: float, n: int = 64) -> float:
    """The one gain that puts a set's smoothed firing rates (:func:`models.voxel_rate`, low-passed by
    ``denoise`` pixels) on a [0, 1] scale: 1 / their 99.5 % quantile over the first ``n`` scenes (at most
    the first million pixel values: torch's quantile takes at most 16 M).

    One gain for the whole set, not one per image (as the stored TFI images have): a network that sees
    11×11 pixels cannot know an image's brightest pixel, so a per-image scale is a target it cannot match."""
    dev = data.spikes.device
    vox = data.voxel_batch(slice(0, n), dev)
    sample = smoothed_rate(vox, half_window, denoise, data.n_frames // vox.shape[1])
    return float(_one_gain(sample))


def _one_gain(images: torch.Tensor) -> torch.Tensor:
    """1 / the 99.5 % quantile of images' first million values (torch's quantile takes at most 16 M)."""
    return 1.0 / torch.quantile(images.flatten()[:1_000_000].float(), 0.995).clamp_min(1e-6)


def tfi_one_gain(data: SpikeSet, denoise: float, chunk: int = 32) -> torch.Tensor:
    """The coarse stage's "tfi_gain" target for every scene: TFI computed from the bits (1 / the interval
    between the spikes around the key frame, :func:`baselines.tfi`), low-passed by ``denoise`` pixels, on one
    gain for the whole set (as :func:`rate_gain`'s). → (N, 1, H, W) in [0, 1], on the set's device.

    The stored ``data.tfi`` is each image over its own 99.5 % quantile: a gain an 11×11-pixel network cannot
    see. Here every image keeps its brightness relative to the others, as the camera measured it."""
    imgs = torch.cat(
        [
            lowpass(baselines.tfi(unpack_spikes(data.spikes[i : i + chunk])).unsqueeze(1), denoise)
            for i in range(0, len(data), chunk)
        ]
    )
    return (_one_gain(imgs[:64]) * imgs).clamp(0, 1)  # the gain of the first 64 scenes


def train_coarse(
    lrn: LRN,
    clip: Clip,
    train_set: SpikeSet,
    classes: list[str] | tuple[str, ...],
    cfg: StageConfig,
    warmup_steps: int = 50,
    warmup_weight: float = 1.0,
    defences: Defences | None = None,
    fidelity_floor: float = 0.0,
    fidelity_blur: float = 0.0,
    class_enough: float = 1.0,
    fidelity_denoise: float = 0.0,
    fidelity_target: str = "tfi",
    fidelity_window: int = 24,
    class_after: int = 0,
    crop: int = 0,
) -> dict[str, list[float]]:
    """Stage 1: an L1 to a fidelity target (TFI, the paper's lead, in one of two scales, or the smoothed firing
    rate) plus, from
    step ``class_after``, the class loss through CLIP; the L1's weight fades from ``warmup_weight`` over
    ``warmup_steps`` to ``fidelity_floor`` (lead: a warm-up that fixes brightness early).

    ``fidelity_floor`` keeps that L1 term at this weight after the warm-up instead of zero
    (an option of this course, not the paper's: a standing pull towards the spikes' own
    evidence; the LRN cannot copy TFI's noise from 4-frame voxels, so it learns a smoother
    estimate). ``fidelity_blur`` (pixels) compares through a low-pass (:func:`losses.warmup_loss`):
    long runs otherwise learn to reproduce TFI's pixel noise once the class loss is satisfied.
    ``class_enough``: the probability at which an image's class loss stops pushing
    (:func:`losses.class_loss`; 1.0 = plain cross-entropy). ``fidelity_target``: what the fidelity term
    compares with, "tfi" (the paper's lead: TFI as stored, each image on its own scale), "tfi_gain" (TFI from
    the bits on one gain for the whole set, :func:`tfi_one_gain`: the presets' target) or "rate" (the firing
    rate over the middle ``2·fidelity_window`` frames, :func:`smoothed_rate`: linear in the voxels, but it
    smears motion over those frames). ``fidelity_denoise`` (pixels): the target after a
    Gaussian low-pass of this std (a classical denoised estimate). ``class_after``: steps of the fidelity
    term alone before the class loss joins (0 = from the first step, the paper's lead). ``crop``: while the
    fidelity term is alone, each step computes it on one random ``crop``×``crop`` window of each scene
    (:func:`random_windows`; 0 = the whole frame): the per-pixel loss on fewer pixels, the frame's centre
    weighted more than its edges, for less work. The class loss needs whole images: from ``class_after`` on,
    every step sees them.
    """
    if fidelity_target not in FIDELITY_TARGETS:
        raise ValueError(f"fidelity_target is one of {FIDELITY_TARGETS}, got {fidelity_target!r}")
    if crop and fidelity_blur > 0:
        raise ValueError("crop needs fidelity_blur=0: a low-pass of a window would mirror at the window's edges")
    dev = _device(cfg)
    defences = defences or Defences(anchor=0.0, early_stop=False)
    model, data = on_device(lrn, train_set, cfg)
    loop = _Loop("coarse", list(lrn.parameters()), cfg, len(data), {"lrn": lrn})
    todo = loop.step < cfg.steps  # False: a finished stage loaded from its checkpoint, nothing to prepare
    text = clip.class_features(classes).to(dev) if todo and class_after < cfg.steps else None  # None: no class loss
    gain = rate_gain(data, fidelity_window, fidelity_denoise) if todo and fidelity_target == "rate" else None
    images = None  # (N, 1, H, W): the targets of the two TFI choices, computed once (not for a finished stage)
    if fidelity_target == "tfi" and todo:
        images = lowpass(data.tfi.unsqueeze(1), fidelity_denoise)
    elif fidelity_target == "tfi_gain" and todo:
        images = tfi_one_gain(data, fidelity_denoise)
    for idx in loop.batches():
        lrn.train()
        vox = data.voxel_batch(idx, dev)
        if fidelity_target == "rate":
            rate = smoothed_rate(vox, fidelity_window, fidelity_denoise, data.n_frames // vox.shape[1])
            target = (gain * rate).clamp(0, 1)
        else:
            target = images[idx]
        windows = bool(crop) and loop.step < class_after
        if windows:
            vox, target = random_windows(vox, target, crop, loop.gen)
        with autocast(dev):
            out = model(vox, context=True) if windows else model(vox)
        if loop.step >= class_after:
            feats = _clip_features(clip, out, defences, loop.gen)
            l_cls = losses.class_loss(feats, text, data.labels[idx], clip.logit_scale, class_enough)
        else:  # the fidelity term alone: the network first learns what the spikes say
            l_cls = out.new_zeros(())
        w = max(fidelity_floor, warmup_weight * max(0.0, 1 - loop.step / max(warmup_steps, 1)))
        l_warm = losses.warmup_loss(out.float(), target, fidelity_blur)
        loss = l_cls + w * l_warm
        loop.update(loss)
        loop.log(loss=loss, class_loss=l_cls, warmup=l_warm)
    lrn.eval()
    return loop.history


def train_prompts(
    pair: PromptPair,
    clip: Clip,
    hq_images: torch.Tensor,
    lq_images: torch.Tensor,
    cfg: StageConfig,
    scale: float = losses.PROMPT_SCALE,
    native: bool = False,
) -> dict[str, list[float]]:
    """Stage 2: learn (LQ, HQ) prompts with the initialisation loss on clean (HQ) vs
    low-quality images (coarse outputs, TFP, TFI), each (N, H, W) in [0, 1].

    ``scale``: the logit scale of the prompt softmax (CLIP-LIT: 100). ``native``: judge guide-sized
    windows at native resolution (:func:`quality_views`), as the fine stage will with ``native=True``.
    """
    dev = _device(cfg)
    pair.to(dev)
    crops = torch.Generator().manual_seed(cfg.seed + 1)
    with torch.no_grad():
        f_hq, f_lq = (
            torch.cat(
                [
                    clip.encode_image(quality_views(imgs[i : i + 64], clip.image_size, native, crops))
                    for i in range(0, len(imgs), 64)
                ]
            )
            for imgs in (hq_images, lq_images)
        )
    feats = torch.cat([f_hq, f_lq]).to(dev)
    is_hq = torch.cat([torch.ones(len(f_hq), dtype=torch.bool), torch.zeros(len(f_lq), dtype=torch.bool)]).to(dev)
    loop = _Loop("prompts", [pair.ctx], cfg, len(feats), {"prompts": pair})
    for idx in loop.batches():
        idx = idx.to(dev)
        prompts_ = pair(clip)
        loss = losses.prompt_init_loss(feats[idx], prompts_, is_hq[idx], scale)
        loop.update(loss)
        with torch.no_grad():
            p = losses.hq_probability(feats[idx], prompts_, scale)
            acc = ((p > 0.5) == is_hq[idx]).float().mean()
        loop.log(loss=loss, accuracy=acc)
    return loop.history


def check_early_stopping(defences: Defences) -> None:
    """Raise ValueError when ``defences.pick`` or ``defences.score_tolerance`` is not one early stopping knows."""
    if defences.pick not in PICKS:
        raise ValueError(f"Defences.pick={defences.pick!r} is not one of {list(PICKS)}")
    lo, hi = SCORE_RANGE
    if not lo <= defences.score_tolerance <= hi:  # NaN fails too; below 0 keeps nothing
        raise ValueError(f"Defences.score_tolerance={defences.score_tolerance} must be within {lo:g}–{hi:g}")


def _guards(defences: Defences) -> dict[str, tuple[int, str]]:
    """The measures early stopping guards: measure → (+1: a candidate keeps at least the start's value, −1: at
    most; the defence that asks for it)."""
    guards: dict[str, tuple[int, str]] = {}
    if defences.early_stop:
        if defences.keep_accuracy:
            guards[GUARD] = (1, "keep_accuracy")
        if defences.keep_texture:
            guards[TEXTURE_GUARD] = (-1, "keep_texture")
        if defences.pick == "last":  # the latest candidate wins, so the judge must not prefer the start
            guards["score"] = (1, "pick='last'")
    return guards


def keeps(step: int, measures: dict[str, float], memo: dict[str, Any], defences: Defences) -> bool:
    """Whether early stopping keeps validated step ``step`` (so far), from its ``measures`` ("score" and the
    guarded ones). ``memo`` carries what it needs from earlier validations, and this updates it: "guard_start"
    (the start's guarded values; step 0, always a candidate), "top_score" (the best candidate's score) and "best"
    (the kept candidate's "score" and "step", written when this returns True; :func:`train_fine` adds its weights
    and keeps the memo in its checkpoint)."""
    guards = _guards(defences)
    for k, (_, defence) in guards.items():
        if measures.get(k) is None:
            raise ValueError(f"{defence} needs validate() to return a dict with a value for {k!r}: {measures}")
    score = float(measures["score"])
    if step == 0:
        memo["guard_start"] = {k: float(measures[k]) for k in guards}
    start = memo.get("guard_start", {})
    # +1e-6: accuracies arrive rounded to float32 (0.98 → 0.98000002, 0.96 → 0.95999998), and 0.96 must pass
    # 0.98 − 0.02; one scene is 1/n_val of the accuracy, far above 1e-6, so no real loss slips through
    slack = {GUARD: defences.accuracy_slack + 1e-6}
    if TEXTURE_GUARD in start:  # a negative slack: the share must fall by the margin
        slack[TEXTURE_GUARD] = -defences.texture_margin * start[TEXTURE_GUARD]
    eligible = step == 0 or all(  # the start is always a candidate: the weights kept if no step passes
        sign * (float(measures[k]) - start[k]) + slack.get(k, 0.0) >= 0 for k, (sign, _) in guards.items()
    )
    if not (defences.early_stop and eligible):
        return False
    memo["top_score"] = max(score, memo.get("top_score", score))  # the best candidate's score so far
    if defences.pick == "last":  # the latest candidate within the judge's noise of the best one
        kept = score >= memo["top_score"] - defences.score_tolerance  # (no epsilon: scores are not rounded sums)
    else:
        kept = memo.get("best") is None or score > memo["best"]["score"]
    if kept:
        memo["best"] = {"score": score, "step": step}
    return kept


def replay_early_stopping(history: dict[str, list[float]], defences: Defences) -> int:
    """The step early stopping would keep under ``defences``, replayed on the validation log of a
    :func:`train_fine` run (its ``val_*`` lists, step 0 first): no training, no weights. Validation scores do not
    depend on the rule (it only chooses which weights to keep), so one guarded run's log answers for every rule
    (unguarded, :func:`train_fine` never validates the start, so step 0 is skipped here too). When nothing is kept
    (``early_stop`` off), the last validated step: the run ends on its last weights."""
    check_early_stopping(defences)
    steps, guards = history.get("val_step") or [], _guards(defences)
    needed = ["val_score"] + [f"val_{k}" for k in guards if k != "score"]
    short = [k for k in needed if len(history.get(k) or []) != len(steps)]
    if not steps or short:
        raise ValueError(f"the validation log needs val_step and {needed} of one length; missing or short: {short}")
    if guards and steps[0] != 0:
        raise ValueError(f"a guarded rule needs the start's validation (step 0) first; the log starts at {steps[0]}")
    memo: dict[str, Any] = {}
    for i, step in enumerate(steps):
        if step == 0 and not guards:
            continue
        measures = {"score": history["val_score"][i], **{k: history[f"val_{k}"][i] for k in guards if k != "score"}}
        keeps(int(step), measures, memo, defences)
    return int(memo["best"]["step"]) if memo.get("best") else int(steps[-1])


def train_fine(
    lrn: LRN,
    clip: Clip,
    pair: PromptPair,
    train_set: SpikeSet,
    classes: list[str] | tuple[str, ...],
    cfg: StageConfig,
    lam: float = 100.0,
    defences: Defences | None = None,
    anchor_images: torch.Tensor | None = None,
    validate: Callable[[LRN], float | dict[str, float]] | None = None,
    validate_every: int = 10,
    scale: float = losses.PROMPT_SCALE,
    native: bool = False,
    form: str = "prob",
    class_enough: float = 1.0,
) -> dict[str, list[float]]:
    """Stage 3: class loss + λ·prompt loss (λ = 100 in the paper), with :class:`Defences`.

    ``scale``: the prompt softmax's logit scale, the one the prompts were learned with. ``native``: the
    prompt loss looks at random guide-sized windows at the output's own resolution
    (:func:`augment.random_crop`) instead of the whole output shrunk to the guide's input: a guide that
    sees only shrunk images cannot see, so cannot penalise, pixel-level texture. No effect when the
    output is no larger than the guide's input. ``form``: the prompt loss's form
    (:func:`losses.prompt_loss`: "prob" = −P(HQ), "log" = −log P(HQ)). ``class_enough``: as in
    :func:`train_coarse`.

    ``anchor_images`` (N, H, W): the fidelity target (the coarse outputs) for the L1 anchor.
    ``validate(lrn) → score`` (higher is better), called every ``validate_every`` steps, drives
    early stopping: the weights of the candidate ``defences.pick`` names are restored at the end ("last": the
    latest within ``defences.score_tolerance`` of the best-scoring, "best": the best-scoring). It may return a
    dict with the score under "score" and other measures, which are logged (as ``val_<name>``). With
    ``defences.keep_accuracy`` it must return a dict holding ``GUARD`` ("judge_accuracy"), with
    ``defences.keep_texture`` one holding ``TEXTURE_GUARD`` ("hf_share"):
    the starting network is validated too (at the first validation, logged as step 0) and is the first
    candidate, and a later step is a candidate only if its ``GUARD`` is at least the starting network's (less
    ``defences.accuracy_slack``), its ``TEXTURE_GUARD`` at most the start's times (1 −
    ``defences.texture_margin``) and, with ``pick="last"``, its score at least the start's.
    """
    defences = defences or Defences()
    check_early_stopping(defences)
    dev = _device(cfg)
    model, data = on_device(lrn, train_set, cfg)
    anchor_images = anchor_images.to(dev) if anchor_images is not None else None
    pair.to(dev)
    loop = _Loop("fine", list(lrn.parameters()), cfg, len(data), {"lrn": lrn})
    text = clip.class_features(classes).to(dev)
    with torch.no_grad():
        prompts_ = pair(clip)
    best = loop.extra.get("best")
    guards = _guards(defences) if validate is not None else {}
    guarded = bool(guards)
    if loop.step == 0:
        loop.extra["pick"] = defences.pick
        loop.extra["score_tolerance"] = defences.score_tolerance
    saved_pick = loop.extra.get("pick", "best" if best is not None else defences.pick)  # saved before pick: "best"
    if guarded and saved_pick != defences.pick:  # its kept candidate was chosen by the other rule
        raise ValueError(
            f"{loop.ckpt} was saved with Defences.pick={saved_pick!r}: resume with the same pick, or delete it"
        )
    saved_tolerance = loop.extra.get("score_tolerance", 2.0)  # none saved: it predates the setting (any score)
    if guarded and defences.pick == "last" and saved_tolerance != defences.score_tolerance:
        raise ValueError(
            f"{loop.ckpt} was saved with Defences.score_tolerance={saved_tolerance} (2 if it predates the setting): "
            "resume with the same tolerance, or delete it"
        )
    unmet = sorted(set(guards) - set(loop.extra.get("guard_start", {})))
    if loop.step > 0 and unmet:  # a checkpoint made without these guards (other defences, or no validate())
        raise ValueError(
            f"{loop.ckpt} was saved without the start's {unmet}: resume with the same defences and validate(), "
            "or delete it"
        )

    def judge(step: int, net: torch.nn.Module = lrn) -> None:  # validate `net` after `step` steps; keep a candidate
        nonlocal best
        result = validate(net)
        measures = dict(result) if isinstance(result, dict) else {"score": result}
        kept = keeps(step, measures, loop.extra, defences)  # loop.extra: what it remembers goes into the checkpoint
        score = float(measures["score"])
        extras = {f"val_{k}": v for k, v in measures.items() if v is not None and k != "score"}  # None: no truth
        loop.log(val_score=score, val_step=step, **extras)
        if kept:  # keeps() wrote the step and score; the weights go with them
            best = loop.extra["best"]
            best["state"] = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}

    start = copy.deepcopy(lrn) if guarded and loop.step == 0 else None  # judged once the first losses are finite
    for idx in loop.batches():
        lrn.train()
        vox = data.voxel_batch(idx, dev)
        with autocast(dev):
            out = model(vox)
        feats = _clip_features(clip, out, defences, loop.gen)
        l_cls = losses.class_loss(feats, text, data.labels[idx], clip.logit_scale, class_enough)
        q_feats = _clip_features(clip, out, defences, loop.gen, native=True) if native else feats
        l_prompt = losses.prompt_loss(q_feats, prompts_, scale, form)
        loss = l_cls + lam * l_prompt
        if defences.anchor and anchor_images is not None:
            shown = to_clip_image(out.float(), defences.standardise)  # compare images as they are presented
            l_anchor = losses.warmup_loss(shown, anchor_images[idx].unsqueeze(1), defences.anchor_blur)
            loss = loss + defences.anchor * lam * l_anchor
            loop.log(anchor=l_anchor)
        loop.update(loss)
        loop.log(loss=loss, class_loss=l_cls, hq_prob=losses.hq_probability(q_feats.detach(), prompts_, scale).mean())
        if validate is not None and (loop.step % validate_every == 0 or loop.step == cfg.steps - 1):
            loop.flush()  # a non-finite loss is named here, before the judge sees a broken network
            if start is not None:  # the starting network: the accuracy floor, and the weights kept if none beats it
                judge(0, start)
                start = None
            judge(loop.step + 1)
    if defences.early_stop and best is not None:
        lrn.load_state_dict(best["state"])
        loop.history["best_step"] = [float(best["step"])]
    lrn.eval()
    return loop.history


def train_supervised(lrn: LRN, train_set: SpikeSet, cfg: StageConfig, crop: int = 0) -> dict[str, list[float]]:
    """The upper bound: L1 to the ground truth at the key frame (not allowed to SpikeCLIP). ``crop``: each step
    on one random ``crop``×``crop`` window of each scene (:func:`random_windows`; 0 = the whole frame)."""
    dev = _device(cfg)
    model, data = on_device(lrn, train_set, cfg)
    loop = _Loop("supervised", list(lrn.parameters()), cfg, len(data), {"lrn": lrn})
    for idx in loop.batches():
        lrn.train()
        vox, target = data.voxel_batch(idx, dev), data.gt[idx].unsqueeze(1)
        if crop:
            vox, target = random_windows(vox, target, crop, loop.gen)
        with autocast(dev):
            out = model(vox, context=True) if crop else model(vox)
        loss = losses.warmup_loss(out.float(), target)
        loop.update(loss)
        loop.log(loss=loss)
    lrn.eval()
    return loop.history
