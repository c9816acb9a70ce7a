"""SpikeCLIP's losses (docs/facts.md §4; the exact forms are **leads** from public re-implementations).

Each is a small pure function of CLIP features. Feature tensors are unit-norm.
Prompt features are ordered ``(LQ, HQ)``, so "label 1" means high quality, as in docs/facts.md §4.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .metrics import lowpass

__all__ = ["class_loss", "prompt_init_loss", "prompt_loss", "hq_probability", "warmup_loss", "PROMPT_SCALE"]

#: CLIP-LIT's logit scale for prompt losses: logits = 100·cosine.
PROMPT_SCALE = 100.0


def class_loss(
    image_features: torch.Tensor,
    class_features: torch.Tensor,
    labels: torch.Tensor,
    logit_scale: float,
    enough: float = 1.0,
) -> torch.Tensor:
    """Cross-entropy of zero-shot logits: image (B, D) vs class prompts (C, D), labels (B,) → scalar.

    This is CLIP's InfoNCE with the class prompts as the only candidate texts.
    ``enough`` < 1: an image stops contributing once CLIP gives its class this probability (its
    cross-entropy is floored at −log ``enough``), so the loss cannot keep pushing an image the guide
    already names; 1.0 is the plain cross-entropy (the paper's).
    """
    if not 0.0 < enough <= 1.0:
        raise ValueError(f"enough is a probability in (0, 1], got {enough}")
    ce = F.cross_entropy(logit_scale * image_features @ class_features.T, labels, reduction="none")
    if enough < 1.0:
        ce = ce.clamp_min(-math.log(enough))
    return ce.mean()


def hq_probability(
    image_features: torch.Tensor, prompt_features: torch.Tensor, scale: float = PROMPT_SCALE
) -> torch.Tensor:
    """softmax(scale · cos(img, [T_lq, T_hq]))[:, 1]: (B, D), (2, D) → (B,) in [0, 1]."""
    return (scale * image_features @ prompt_features.T).softmax(-1)[:, 1]


def prompt_init_loss(
    image_features: torch.Tensor, prompt_features: torch.Tensor, is_hq: torch.Tensor, scale: float = PROMPT_SCALE
) -> torch.Tensor:
    """Prompt initialisation (Eq. 7 lead): CE over {LQ, HQ}, label 1 for HQ images, 0 for LQ.

    image (B, D), prompts (2, D) ordered (LQ, HQ), is_hq (B,) bool → scalar.
    """
    return F.cross_entropy(scale * image_features @ prompt_features.T, is_hq.long())


def prompt_loss(
    image_features: torch.Tensor, prompt_features: torch.Tensor, scale: float = PROMPT_SCALE, form: str = "prob"
) -> torch.Tensor:
    """Prompt loss, averaged over the batch. (B, D), (2, D) → scalar.

    ``form="prob"`` (Eq. 9 lead, CLIP-LIT's form): −P(HQ). Its gradient is ∝ P(1−P): it vanishes when the
    prompts are sure an image is LQ (P(HQ) ≈ 0), which is where a reconstruction starts.
    ``form="log"``: −log P(HQ), the non-saturating form (as a GAN generator's −log D): the same minimum,
    a gradient ∝ (1−P) that is largest where the image is furthest from HQ.
    """
    logits = scale * image_features @ prompt_features.T
    if form == "prob":
        return -logits.softmax(-1)[:, 1].mean()
    if form == "log":
        return -logits.log_softmax(-1)[:, 1].mean()
    raise ValueError(f"prompt loss form is 'prob' or 'log', got {form!r}")


def warmup_loss(recon: torch.Tensor, target: torch.Tensor, blur: float = 0.0) -> torch.Tensor:
    """Coarse-stage warm-up (lead): L1 from the reconstruction to a classical one (TFI/TFP).

    recon, target (B, 1, H, W) → scalar. Fixes the output's brightness in the first steps.
    ``blur`` > 0 compares both through a Gaussian low-pass of that std (pixels): the term then pins
    brightness and coarse structure but not the target's pixel noise.
    """
    if recon.shape != target.shape:
        raise ValueError(f"recon {tuple(recon.shape)} and target {tuple(target.shape)} differ")
    return (lowpass(recon, blur) - lowpass(target, blur)).abs().mean()
