"""Training the teaching CLIPs: small open_clip models the course trains itself, so CLIP guidance runs
offline (no registry package ships real CLIP weights). Loading them is :func:`.clip.load_teaching_clip`.

Two models are shipped in ``spikeclip_lite/assets``:

- **guide** (``spikeclip-teaching-rn``): the CLIP that supervises SpikeCLIP's stages;
- **judge** (``spikeclip-teaching-rn-judge``): another seed and a deeper/wider tower, never
  used for training, to score reconstructions without the circularity of grading a network
  with the CLIP that trained it.

Both know only the course's procedural world: ten object classes and what clean vs degraded
(noisy, grainy, blurry, smeared-by-motion) images of them look like. The training data are
built to make "clean" hard to fake (see :func:`augment`): brightness, contrast and gamma of
*every* image are randomised, so quality has to be read from noise, blur and artefacts.

Train: ``python -m spikeclip_lite.teaching_clip train --which guide`` (deterministic; see
``--help``). Evaluate: ``python -m spikeclip_lite.teaching_clip evaluate``.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import open_clip
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from . import baselines, data, physics
from .augment import augment
from .checkpoints import atomic_write
from .clip import (
    ASSETS,
    CLASS_TEMPLATE,
    IMAGE_SIZE,
    QUALITY_PAIR,
    REGISTRY,
    WHICH,
    Clip,
    load_teaching_clip,
    register_configs,
    resolve_device,
    wrap_model,
)
from .hub import sha256_of as file_sha256

TRAIN_SEED = {"guide": 1, "judge": 2}
#: Scene seeds: training pools use [0, 10⁶), validation [10⁶, 2·10⁶), test [2·10⁶, …).
TRAIN_SEEDS, VAL_SEEDS, TEST_SEEDS = 0, 1_000_000, 2_000_000


# ----------------------------------------------------------------------------------------
# Captions: what each image is, and which captions describe it
# ----------------------------------------------------------------------------------------
#: Degradations and the quality attributes each one carries.
DEGRADATIONS: dict[str, frozenset[str]] = {
    "noise": frozenset({"degraded", "noisy"}),
    "lowlight_tfp": frozenset({"degraded", "noisy"}),
    "tfi": frozenset({"degraded", "noisy"}),
    "blur": frozenset({"degraded", "blurry"}),
    "motion": frozenset({"degraded", "blurry", "motion"}),
    "motion_lowlight": frozenset({"degraded", "noisy", "blurry", "motion"}),
}
#: Quality words: attribute → phrases that assert it.
QUALITY_WORDS: dict[str, tuple[str, ...]] = {
    "clean": ("clean", "sharp", "high quality"),
    "degraded": ("degraded", "low quality"),
    "noisy": ("noisy", "grainy"),
    "blurry": ("blurry",),
    "motion": ("motion blurred",),
}


def caption_vocabulary() -> list[str]:
    """Every caption the training can produce (their tokens are the ones that get learned)."""
    caps = [CLASS_TEMPLATE.format(c) for c in data.CLASSES] + list(QUALITY_PAIR)
    for words in QUALITY_WORDS.values():
        for w in words:
            caps.append(f"a {w} photo")
            caps += [f"a {w} photo of a {c}" for c in data.CLASSES]
    caps.append(" ".join(["X"] * 16))  # CLIP-LIT's prompt initialisation
    return caps


def draw_caption(rng: np.random.Generator, label: int, attrs: frozenset[str]) -> tuple[str, frozenset[str]]:
    """A caption for an image of class ``label`` with quality ``attrs``, and what it asserts.

    Returns ``(text, required)`` where ``required`` is the set of facts the caption states
    (``"class:<i>"`` and/or a quality attribute); a caption describes an image iff every
    required fact is true of the image.
    """
    name = data.CLASSES[label]
    kind = rng.random()
    if kind < 0.35:
        return CLASS_TEMPLATE.format(name), frozenset({f"class:{label}"})
    attr = str(rng.choice(sorted(attrs)))
    word = str(rng.choice(QUALITY_WORDS[attr]))
    if kind < 0.8:
        return f"a {word} photo of a {name}", frozenset({f"class:{label}", attr})
    return f"a {word} photo", frozenset({attr})


# ----------------------------------------------------------------------------------------
# Data: clean scenes and their degraded versions
# ----------------------------------------------------------------------------------------
def _normalise(img: np.ndarray) -> np.ndarray:
    """Scale a reconstruction to [0, 1] by its 99.5th percentile (its own brightness is free)."""
    hi = float(np.quantile(img, 0.995))
    return np.clip(img / max(hi, 1e-6), 0, 1).astype(np.float32)


def _gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    r = int(math.ceil(3 * sigma))
    k = torch.exp(-(torch.arange(-r, r + 1, dtype=torch.float32) ** 2) / (2 * sigma**2))
    k = (k / k.sum()).view(1, 1, -1)
    x = torch.from_numpy(img)[None, None]
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="reflect"), k.view(1, 1, 1, -1))
    x = F.conv2d(F.pad(x, (0, 0, r, r), mode="reflect"), k.view(1, 1, -1, 1))
    return x[0, 0].numpy()


def degrade(scene_seed: int, kind: str, rng: np.random.Generator, size: int = IMAGE_SIZE) -> np.ndarray:
    """A degraded view of scene ``scene_seed``: one of :data:`DEGRADATIONS`. (H, W) in [0, 1]."""
    if kind in ("motion", "motion_lowlight"):
        sc = data.make_scene(scene_seed, size=size, motion=True)
        noise = "low_light" if kind == "motion_lowlight" else "normal"
        spk = physics.simulate(sc.video, None, seed=scene_seed, noise=noise)
        return _normalise(baselines.tfp(spk))
    img = data.make_scene(scene_seed, size=size).image
    if kind == "noise":
        return np.clip(img + rng.uniform(0.06, 0.25) * rng.standard_normal(img.shape), 0, 1).astype(np.float32)
    if kind == "blur":
        return np.clip(_gaussian_blur(img, rng.uniform(1.2, 3.0)), 0, 1).astype(np.float32)
    if kind == "lowlight_tfp":
        spk = physics.simulate(img, 200, seed=scene_seed, noise="low_light")
        half = int(rng.integers(15, 100))
        return _normalise(baselines.tfp(spk, half_window=half))
    if kind == "tfi":
        spk = physics.simulate(img, 200, seed=scene_seed, noise=str(rng.choice(["normal", "low_light"])))
        return _normalise(baselines.tfi(spk))
    raise ValueError(f"unknown degradation {kind!r}; choose one of {sorted(DEGRADATIONS)}")


@dataclass
class Pool:
    """Pre-rendered training images: (N, H, W) float16 in [0, 1], labels (N,), quality attrs."""

    images: torch.Tensor
    labels: torch.Tensor
    attrs: list[frozenset[str]]


def make_pool(n_scenes: int, seed_base: int, size: int = IMAGE_SIZE, progress: bool = True) -> Pool:
    """Each scene gives one clean image and one degraded view (a random degradation)."""
    rng = np.random.default_rng(seed_base)
    kinds = sorted(DEGRADATIONS)
    imgs, labels, attrs = [], [], []
    for i in tqdm(range(n_scenes), desc="rendering scenes", disable=not progress):
        s = seed_base + i
        sc = data.make_scene(s, size=size)
        kind = kinds[int(rng.integers(len(kinds)))]
        imgs += [sc.image, degrade(s, kind, rng, size)]
        labels += [sc.label, sc.label]
        attrs += [frozenset({"clean"}), DEGRADATIONS[kind]]
    return Pool(torch.from_numpy(np.stack(imgs)).half(), torch.tensor(labels), attrs)


# ----------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------
def _match_matrix(img_facts: list[frozenset[str]], required: list[frozenset[str]]) -> torch.Tensor:
    """M[i, j] = 1 if caption j is true of image i."""
    return torch.tensor([[float(r <= f) for r in required] for f in img_facts])


def contrastive_loss(logits: torch.Tensor, match: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE with several positives per row/column (captions repeat in a batch)."""
    t_img = match / match.sum(1, keepdim=True)
    t_txt = match.T / match.T.sum(1, keepdim=True)
    loss_i = -(t_img * logits.log_softmax(1)).sum(1).mean()
    loss_t = -(t_txt * logits.T.log_softmax(1)).sum(1).mean()
    return (loss_i + loss_t) / 2


def create_model(which: str) -> tuple[torch.nn.Module, str]:
    """A fresh (random) teaching model through open_clip: ``(model, arch name)``."""
    register_configs()
    arch = WHICH[which]
    model = open_clip.create_model(arch, device="cpu")
    return model, arch


def train(
    which: str = "guide",
    steps: int = 3000,
    batch: int = 128,
    n_scenes: int = 6000,
    lr: float = 2e-3,
    photometric: bool = True,
    seed: int | None = None,
    device: str = "auto",
    progress: bool = True,
    class_weight: float = 1.0,
) -> tuple[torch.nn.Module, dict]:
    """Train a teaching CLIP from scratch; returns ``(model, info)``. Deterministic on CPU.

    Loss: multi-positive InfoNCE between images and their drawn captions (class and/or
    quality words), plus ``class_weight`` × the zero-shot cross-entropy of each image against
    the ten ``"image of a {label}"`` prompts (class learning is the slow part at this size).
    """
    seed = TRAIN_SEED[which] if seed is None else seed
    dev = resolve_device(device)
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    pool = make_pool(n_scenes, TRAIN_SEEDS + seed * 100_000, progress=progress)
    t_data = time.perf_counter() - t0
    model, arch = create_model(which)
    model = model.to(dev).train()
    tokenizer = open_clip.get_tokenizer(arch)
    clip = wrap_model(model, arch, which, dev, teaching=True)  # for its grey preprocessing
    model.train()
    for p in model.parameters():
        p.requires_grad_(True)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
    other = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": other, "weight_decay": 0.0}], lr=lr)
    warm = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps))
    )
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    class_tokens = tokenizer([CLASS_TEMPLATE.format(c) for c in data.CLASSES]).to(dev)
    history = []
    for _ in tqdm(range(steps), desc=f"training teaching CLIP ({which})", disable=not progress):
        idx = torch.randint(0, len(pool.labels), (batch,), generator=gen)
        x = augment(pool.images[idx].float().unsqueeze(1), gen, photometric)
        facts, texts, required = [], [], []
        for i in idx.tolist():
            lab, att = int(pool.labels[i]), pool.attrs[i]
            facts.append(att | {f"class:{lab}"})
            t, r = draw_caption(rng, lab, att)
            texts.append(t)
            required.append(r)
        match = _match_matrix(facts, required).to(dev)
        img_f = F.normalize(model.encode_image(clip.preprocess(x)), dim=-1)
        txt_f = F.normalize(model.encode_text(tokenizer(texts).to(dev)), dim=-1)
        scale = model.logit_scale.exp().clamp(max=100)
        loss = contrastive_loss(scale * img_f @ txt_f.T, match)
        if class_weight:
            # The zero-shot rule itself as a loss: the image against all ten class prompts.
            cls_f = F.normalize(model.encode_text(class_tokens), dim=-1)
            labels = pool.labels[idx].to(dev)
            loss = loss + class_weight * F.cross_entropy(scale * img_f @ cls_f.T, labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        history.append(float(loss.detach()))
    model.eval()
    info = dict(
        which=which,
        arch=arch,
        seed=seed,
        steps=steps,
        batch=batch,
        n_scenes=n_scenes,
        lr=lr,
        photometric_hardening=photometric,
        class_weight=class_weight,
        device=str(dev),
        device_name=(
            torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
        ),
        torch=torch.__version__,
        open_clip=open_clip.__version__,
        data_seconds=round(t_data, 1),
        train_seconds=round(time.perf_counter() - t0 - t_data, 1),
        final_loss=float(np.mean(history[-50:])),
    )
    return model, info


# ----------------------------------------------------------------------------------------
# Compact weights: only the token-embedding rows the captions use are stored
# ----------------------------------------------------------------------------------------
def used_token_ids(arch: str) -> torch.Tensor:
    """Token ids that appear in any training caption (plus start/end of text)."""
    tok = open_clip.get_tokenizer(arch)
    ids = torch.unique(tok(caption_vocabulary()))
    return ids[ids != 0]  # 0 is padding


def save_compact(model: torch.nn.Module, arch: str, path: Path, info: dict) -> str:
    """Write fp16 safetensors with only the used token rows; atomic. Returns the SHA-256."""
    from safetensors.torch import save

    sd = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    table = sd.pop("token_embedding.weight")
    rows = used_token_ids(arch)
    sd["token_embedding.rows"] = rows.to(torch.int64)
    sd["token_embedding.values"] = table[rows]
    sd = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in sd.items()}
    atomic_write(path, lambda f: f.write(save(sd, metadata={"arch": arch, "info": json.dumps(info)})))
    return file_sha256(path)


# ----------------------------------------------------------------------------------------
# Evaluation (held-out seeds)
# ----------------------------------------------------------------------------------------
def _batched(clip: Clip, images: np.ndarray, fn: str, *args) -> torch.Tensor:
    outs = []
    for i in range(0, len(images), 256):
        x = torch.from_numpy(np.asarray(images[i : i + 256], dtype=np.float32)).unsqueeze(1)
        outs.append(getattr(clip, fn)(x, *args).cpu())
    return torch.cat(outs)


def held_out_set(n: int, seed_base: int = TEST_SEEDS, size: int = IMAGE_SIZE) -> dict[str, np.ndarray]:
    """Clean images, a degraded view of each, and low-light TFP of static and moving scenes."""
    rng = np.random.default_rng(seed_base)
    kinds = sorted(DEGRADATIONS)
    clean, degraded, tfp_static, tfp_moving, labels = [], [], [], [], []
    for i in range(n):
        s = seed_base + i
        sc = data.make_scene(s, size=size)
        clean.append(sc.image)
        labels.append(sc.label)
        degraded.append(degrade(s, kinds[i % len(kinds)], rng, size))
        tfp_static.append(_normalise(baselines.tfp(physics.simulate(sc.image, 200, seed=s, noise="low_light"))))
        tfp_moving.append(degrade(s, "motion_lowlight", rng, size))
    return dict(
        clean=np.stack(clean),
        degraded=np.stack(degraded),
        tfp_static=np.stack(tfp_static),
        tfp_moving=np.stack(tfp_moving),
        labels=np.array(labels),
    )


def photometric_shift(images: np.ndarray, seed: int = 0) -> np.ndarray:
    """Random gain (0.6–1.3) and gamma (0.6–1.7) per image: brightness changes, quality doesn't."""
    rng = np.random.default_rng(seed)
    g = rng.uniform(0.6, 1.3, (len(images), 1, 1))
    gamma = np.exp(rng.uniform(np.log(0.6), np.log(1.7), (len(images), 1, 1)))
    return np.clip(g * np.clip(images, 1e-4, 1) ** gamma, 0, 1).astype(np.float32)


def gradient_attack(clip: Clip, images: np.ndarray, eps: float, steps: int = 10) -> np.ndarray:
    """Signed-gradient ascent on P(clean) (L∞ ball of radius ``eps``, ``steps`` steps of eps/4)."""
    x0 = torch.from_numpy(np.asarray(images, dtype=np.float32)).unsqueeze(1).to(clip.device)
    text = clip.encode_text(QUALITY_PAIR)
    x = x0.clone()
    for _ in range(steps):
        x.requires_grad_(True)
        p = clip.logits(x, text).softmax(-1)[:, 0]
        (grad,) = torch.autograd.grad(p.sum(), x)
        with torch.no_grad():
            x = x0 + (x + eps / 4 * grad.sign() - x0).clamp(-eps, eps)
            x = x.clamp(0, 1)
    return x.detach().squeeze(1).cpu().numpy()


def evaluate(
    clip: Clip, n: int = 400, seed_base: int = TEST_SEEDS, attack_n: int = 64, sets: dict[str, np.ndarray] | None = None
) -> dict:
    """Held-out metrics: zero-shot accuracy (clean, low-light TFP static/moving), quality
    discrimination, quality-score robustness to brightness, and a gradient attack."""
    sets = sets or held_out_set(n, seed_base)
    labels = torch.from_numpy(sets["labels"])
    acc = {
        k: float((_batched(clip, sets[k], "zero_shot", data.CLASSES).argmax(1) == labels).float().mean())
        for k in ("clean", "degraded", "tfp_static", "tfp_moving")
    }
    q_clean = _batched(clip, sets["clean"], "quality_score")
    q_deg = _batched(clip, sets["degraded"], "quality_score")
    q_shift = _batched(clip, photometric_shift(sets["clean"]), "quality_score")
    quality_acc = float(torch.cat([q_clean > 0.5, q_deg <= 0.5]).float().mean())
    noisy = sets["tfp_static"][:attack_n]
    attack = {}
    for eps in (1 / 255, 2 / 255, 4 / 255, 8 / 255, 16 / 255):
        adv = gradient_attack(clip, noisy, eps)
        attack[f"{round(eps * 255)}/255"] = float(_batched(clip, adv, "quality_score").mean())
    return dict(
        n=len(labels),
        zero_shot_clean=acc["clean"],
        zero_shot_degraded=acc["degraded"],
        zero_shot_lowlight_tfp_static=acc["tfp_static"],
        zero_shot_lowlight_tfp_moving=acc["tfp_moving"],
        quality_accuracy=quality_acc,
        quality_clean_mean=float(q_clean.mean()),
        quality_degraded_mean=float(q_deg.mean()),
        quality_tfp_static_mean=float(_batched(clip, noisy, "quality_score").mean()),
        quality_shift_mean_abs_change=float((q_shift - q_clean).abs().mean()),
        quality_shift_max_abs_change=float((q_shift - q_clean).abs().max()),
        attack_quality_after=attack,
    )


# ----------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------
def _update_registry(which: str, entry: dict) -> None:
    reg = json.loads(REGISTRY.read_text()) if REGISTRY.exists() else {}
    reg[which] = entry
    atomic_write(REGISTRY, lambda f: f.write((json.dumps(reg, indent=2) + "\n").encode()))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m spikeclip_lite.teaching_clip",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train a teaching CLIP and write it to assets/ (or --out)")
    t.add_argument("--which", choices=sorted(WHICH), default="guide")
    t.add_argument("--steps", type=int, default=3000)
    t.add_argument("--batch", type=int, default=128)
    t.add_argument("--scenes", type=int, default=6000, help="scenes in the training pool (×2 images)")
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument("--no-hardening", action="store_true", help="no photometric augmentation (for comparison)")
    t.add_argument("--device", default="auto")
    t.add_argument("--out", type=Path, default=None, help="write here instead of the shipped assets")
    t.add_argument("--eval", type=int, default=400, help="held-out scenes to evaluate on (0 = skip)")
    e = sub.add_parser("evaluate", help="evaluate the shipped models on held-out scenes")
    e.add_argument("--n", type=int, default=400)
    e.add_argument("--weights", type=Path, default=None, help="a compact weights file (else the shipped ones)")
    e.add_argument("--which", choices=sorted(WHICH), default=None)
    args = parser.parse_args(argv)

    if args.cmd == "train":
        model, info = train(
            args.which, args.steps, args.batch, args.scenes, args.lr, not args.no_hardening, device=args.device
        )
        target = args.out or ASSETS / f"teaching-clip-{args.which}.safetensors"
        sha = save_compact(model, info["arch"], target, info)
        print(f"wrote {target} ({target.stat().st_size / 1e6:.2f} MB), sha256 {sha}")
        if args.eval:
            clip = load_teaching_clip(args.which == "judge", device="cpu", path=target)
            info["held_out"] = evaluate(clip, n=args.eval)
            print(json.dumps(info["held_out"], indent=2))
        if args.out is None:
            _update_registry(args.which, {"file": target.name, "sha256": sha, **info})
        else:
            target.with_suffix(".json").write_text(json.dumps({"sha256": sha, **info}, indent=2) + "\n")
        return 0
    whiches = [args.which] if args.which else sorted(WHICH)
    sets = held_out_set(args.n)
    for w in whiches:
        clip = load_teaching_clip(w == "judge", device="cpu", path=args.weights)
        print(w, json.dumps(evaluate(clip, sets=sets), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
