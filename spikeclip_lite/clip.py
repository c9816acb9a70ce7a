"""CLIP for grey reconstructions: loading (real or teaching), grey normalisation, zero-shot,
quality scores, and a text encoder that runs on prompt *embeddings* (docs/facts.md §4).

``load_clip("auto")`` gives the paper's OpenAI ViT-B/32 when its weights are cached or the
hub answers, and otherwise the course's small **teaching CLIP** (trained by
``python -m spikeclip_lite.teaching_clip train``, shipped in ``spikeclip_lite/assets``),
with one clear warning. Every path goes through ``open_clip``.
"""

from __future__ import annotations

import json
import math
import os
import re
import socket
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import open_clip
import torch
import torch.nn.functional as F

from .hub import sha256_of as file_sha256

__all__ = [
    "Clip",
    "load_clip",
    "grey_stats",
    "LUMA",
    "CLASS_TEMPLATE",
    "QUALITY_PAIR",
    "resolve_device",
    "ClipUnavailableError",
    "wrap_model",
    "load_teaching_clip",
    "register_configs",
    "expand_compact",
    "openai_cached_file",
    "CONFIGS",
    "WHICH",
    "ASSETS",
    "REGISTRY",
    "IMAGE_SIZE",
]

#: Luma weights (ITU-R BT.601) used to turn CLIP's RGB statistics into grey ones.
LUMA = (0.299, 0.587, 0.114)
#: SpikeCLIP's class prompt.
CLASS_TEMPLATE = "image of a {}"
#: The antonym pair of the quality score (CLIP-IQA style): P(first) is "quality".
QUALITY_PAIR = ("a clean photo", "a degraded photo")

OPENAI_HF_REPO = "timm/vit_base_patch32_clip_224.openai"
HUB_HOST = ("huggingface.co", 443)


class ClipUnavailableError(RuntimeError):
    """The requested CLIP weights cannot be obtained (offline and not cached)."""


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` → cuda if available, else mps, else cpu."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(device)


def grey_stats(mean: Sequence[float], std: Sequence[float], luma: Sequence[float] = LUMA) -> tuple[float, float]:
    """Grey mean and std of ``Y = Σ w_c·RGB_c`` from per-channel RGB statistics.

    mean_Y = Σ w_c μ_c ; std_Y = sqrt(Σ w_c² σ_c²) (channels treated as independent).
    OpenAI CLIP → (0.45924, 0.17597).
    """
    m = sum(w * mu for w, mu in zip(luma, mean, strict=True))
    s = math.sqrt(sum((w * sd) ** 2 for w, sd in zip(luma, std, strict=True)))
    return m, s


@dataclass
class Clip:
    """A frozen open_clip model with everything the course needs around it.

    Attributes:
        model: the open_clip model (eval mode, gradients off for its parameters).
        tokenizer: its tokenizer (``tokenizer(list[str]) → (N, context_length)`` int64).
        name: human-readable name, e.g. ``"ViT-B-32/openai"`` or ``"teaching"``.
        image_size: the tower's input size in pixels.
        grey_mean, grey_std: the grey normalisation (:func:`grey_stats`).
        device: where the model lives.
        teaching: True for the course's stand-in model (notebooks show a banner).
    """

    model: torch.nn.Module
    tokenizer: object
    name: str
    image_size: int
    grey_mean: float
    grey_std: float
    device: torch.device
    teaching: bool

    # -- images ---------------------------------------------------------------------------
    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """Grey (B, 1, H, W) in [0, 1] → CLIP input (B, 3, S, S). Differentiable.

        Resize (bilinear, antialiased when shrinking) to the tower's size, repeat to three
        channels, normalise with the grey mean/std.
        """
        if images.ndim == 3:
            images = images.unsqueeze(1)
        if images.ndim != 4 or images.shape[1] != 1:
            raise ValueError(f"expected grey images (B, 1, H, W), got shape {tuple(images.shape)}")
        x = images.to(self.device, torch.float32)
        if x.shape[-2:] != (self.image_size, self.image_size):
            shrink = min(x.shape[-2:]) > self.image_size
            x = F.interpolate(
                x, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False, antialias=shrink
            )
        x = (x - self.grey_mean) / self.grey_std
        return x.expand(-1, 3, -1, -1)

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """Unit-norm image features (B, D) of grey images (B, 1, H, W) in [0, 1]. Differentiable."""
        return F.normalize(self.model.encode_image(self.preprocess(images)), dim=-1)

    # -- text -----------------------------------------------------------------------------
    def tokenize(self, texts: Sequence[str]) -> torch.Tensor:
        return self.tokenizer(list(texts)).to(self.device)

    def encode_text(self, texts: Sequence[str]) -> torch.Tensor:
        """Unit-norm text features (N, D)."""
        with torch.no_grad():
            return F.normalize(self.model.encode_text(self.tokenize(texts)), dim=-1)

    def unknown_words(self, text: str) -> list[str]:
        """The words of ``text`` this model has no embedding for (a token whose embedding row is all
        zeros). The teaching CLIP stores only the tokens of its training captions, so any other word
        embeds as nothing; OpenAI's CLIP knows every word. Returns them in order, without repeats."""
        table = getattr(self.model, "token_embedding", None)
        if table is None:  # a text tower without a token table (not open_clip's CLIP): cannot tell
            return []
        unknown: list[str] = []
        for word in dict.fromkeys(re.findall(r"[^\W_]+", text.lower())):
            ids = self.tokenize([word])[0]
            ids = ids[ids != 0][1:-1]  # drop padding and the start/end-of-text tokens
            if bool((table.weight[ids].abs().sum(-1) == 0).any()):
                unknown.append(word)
        return unknown

    def class_features(self, classes: Sequence[str], template: str = CLASS_TEMPLATE) -> torch.Tensor:
        """Text features (C, D) of ``template.format(name)`` for each class."""
        return self.encode_text([template.format(c) for c in classes])

    @cached_property
    def logit_scale(self) -> float:
        """CLIP's learned temperature, exp(logit_scale) (100 for OpenAI CLIP); read once (the model is frozen)."""
        return float(self.model.logit_scale.exp().clamp(max=100))

    def logits(self, images: torch.Tensor, text_features: torch.Tensor) -> torch.Tensor:
        """Scaled cosine similarities (B, N) of grey images against given text features."""
        return self.logit_scale * self.encode_image(images) @ text_features.T

    # Scores for tables and plots come back on the device of the images given (the caller's device),
    # whatever device the model runs on: ``zero_shot(cpu_images).argmax(1) == cpu_labels`` works
    # with the model on a GPU. Features (encode_image, logits) stay on the model's device for training.
    def zero_shot(self, images: torch.Tensor, classes: Sequence[str], template: str = CLASS_TEMPLATE) -> torch.Tensor:
        """Class probabilities (B, C) by zero-shot classification, on ``images.device``."""
        with torch.no_grad():
            return self.logits(images, self.class_features(classes, template)).softmax(-1).to(images.device)

    def quality_score(self, images: torch.Tensor, pair: Sequence[str] = QUALITY_PAIR) -> torch.Tensor:
        """CLIP-IQA-style score (B,) in [0, 1]: P(first prompt) in a softmax over the antonym pair, on
        ``images.device``."""
        with torch.no_grad():
            return self.logits(images, self.encode_text(pair)).softmax(-1)[:, 0].to(images.device)

    # -- prompt embeddings (for prompt learning) ------------------------------------------
    @cached_property
    def _text_parts(self) -> dict:
        m = self.model
        needed = ("token_embedding", "positional_embedding", "transformer", "ln_final", "text_projection")
        missing = [n for n in needed if not hasattr(m, n)]
        if missing:
            raise NotImplementedError(
                f"{type(m).__name__} has no built-in text tower ({missing}); prompt embeddings need an "
                "open_clip CLIP with its own text transformer (ViT-B-32, RN50, the teaching CLIP)"
            )
        return {n: getattr(m, n) for n in needed}

    @property
    def token_width(self) -> int:
        """Width of one token embedding."""
        return int(self._text_parts["token_embedding"].weight.shape[1])

    def token_embeddings(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(embeddings (N, L, width), tokens (N, L))`` of texts, before positional encoding."""
        tokens = self.tokenize(texts)
        with torch.no_grad():
            return self._text_parts["token_embedding"](tokens), tokens

    def encode_embeddings(self, embeddings: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Run the text tower on token *embeddings* (N, L, width); ``tokens`` (N, L) only locate
        the end-of-text token (pooling position). Returns unit-norm features (N, D).

        Equal to :meth:`encode_text` when ``embeddings`` are the token embeddings of ``tokens``;
        differentiable in ``embeddings`` (learnable prompt vectors go there).
        """
        p, m = self._text_parts, self.model
        cast = m.transformer.get_cast_dtype() if hasattr(m.transformer, "get_cast_dtype") else embeddings.dtype
        x = embeddings.to(cast) + p["positional_embedding"].to(cast)
        x = p["transformer"](x, attn_mask=getattr(m, "attn_mask", None))
        x = p["ln_final"](x)
        pool = getattr(m, "text_pool_type", "argmax")
        x = open_clip.transformer.text_global_pool(x, tokens, pool, eos_token_id=getattr(m, "text_eos_id", None))
        proj = p["text_projection"]
        if proj is not None:
            x = proj(x) if isinstance(proj, torch.nn.Linear) else x @ proj
        return F.normalize(x, dim=-1)


def _freeze(model: torch.nn.Module) -> torch.nn.Module:
    model.eval()
    for prm in model.parameters():
        prm.requires_grad_(False)
    return model


def wrap_model(model: torch.nn.Module, arch: str, name: str, device: torch.device, teaching: bool) -> Clip:
    """An open_clip ``model`` of architecture ``arch`` as a frozen :class:`Clip` on ``device``, with the grey
    normalisation derived from the model's own RGB statistics."""
    pp = getattr(model.visual, "preprocess_cfg", None) or {}
    mean = pp.get("mean", open_clip.constants.OPENAI_DATASET_MEAN)
    std = pp.get("std", open_clip.constants.OPENAI_DATASET_STD)
    gm, gs = grey_stats(mean, std)
    size = model.visual.image_size
    size = int(size[0] if isinstance(size, (tuple, list)) else size)
    return Clip(_freeze(model).to(device), open_clip.get_tokenizer(arch), name, size, gm, gs, device, teaching)


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on")


def openai_cached_file() -> str | None:
    """Path of cached ViT-B-32/openai weights, or None. Never touches the network."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - huggingface_hub ships with open_clip
        return None
    for filename in ("open_clip_model.safetensors", "open_clip_pytorch_model.bin"):
        path = try_to_load_from_cache(OPENAI_HF_REPO, filename)
        if isinstance(path, str) and os.path.isfile(path):
            return path
    return None


def hub_reachable(timeout: float = 2.0) -> bool:
    """True if a TCP connection to the Hugging Face hub opens within ``timeout`` seconds."""
    if _hub_offline():
        return False
    try:
        with socket.create_connection(HUB_HOST, timeout=timeout):
            return True
    except OSError:
        return False


def _load_pretrained(arch: str, pretrained: str, device: torch.device) -> Clip:
    """Any open_clip (arch, pretrained tag or file). Raises ClipUnavailableError quickly offline."""
    is_file = os.path.isfile(pretrained)
    if not is_file and arch == "ViT-B-32" and pretrained == "openai":
        cached = openai_cached_file()
        if cached is not None:
            pretrained, is_file = cached, True
    if not is_file and not hub_reachable():
        why = "HF_HUB_OFFLINE=1 is set" if _hub_offline() else "the Hugging Face hub cannot be reached"
        raise ClipUnavailableError(
            f"cannot load CLIP {arch}/{pretrained}: its weights are not cached and {why}. Run once with internet "
            f"access (e.g. on Colab: load_clip('{arch}')) to cache them, or use load_clip('teaching') offline."
        )
    model, _, _ = open_clip.create_model_and_transforms(arch, pretrained=pretrained, device="cpu")
    return wrap_model(model, arch, f"{arch}/{os.path.basename(pretrained) if is_file else pretrained}", device, False)


def load_clip(name: str | tuple[str, str] = "auto", device: str | torch.device = "auto", judge: bool = False) -> Clip:
    """Load a CLIP for grey images.

    Args:
        name: ``"ViT-B-32"`` (OpenAI weights, the paper's model), an open_clip
            ``(arch, pretrained)`` pair (a tag or a weights file), ``"teaching"`` (the course's
            model), or ``"auto"``: ViT-B-32 when its weights are cached or the hub answers
            (decided in a few seconds), else the teaching CLIP with a warning.
        device: ``"auto"`` (cuda → mps → cpu) or a device.
        judge: with ``"teaching"`` (or ``"auto"`` falling back to it), load the **independent
            judge** teaching CLIP (other seed, other tower) instead of the guide.

    Raises:
        ClipUnavailableError: ViT-B-32 (or another pretrained tag) asked for explicitly while
            offline and not cached.
    """
    dev = resolve_device(device)
    if name == "teaching":
        return load_teaching_clip(judge=judge, device=dev)
    if name == "auto":
        try:
            return _load_pretrained("ViT-B-32", "openai", dev)
        except ClipUnavailableError as err:
            warnings.warn(
                f"Falling back to the course's TEACHING CLIP, a small model that only knows the course's "
                f"procedural world. ({err})",
                stacklevel=2,
            )
            return load_teaching_clip(judge=judge, device=dev)
    if name == "ViT-B-32":
        return _load_pretrained("ViT-B-32", "openai", dev)
    if isinstance(name, (tuple, list)) and len(name) == 2:
        return _load_pretrained(str(name[0]), str(name[1]), dev)
    raise ValueError(f"unknown CLIP {name!r}: use 'auto', 'ViT-B-32', 'teaching' or an (arch, pretrained) pair")


# ----------------------------------------------------------------------------------------
# The teaching CLIPs shipped in assets/ (trained by :mod:`.teaching_clip`)
# ----------------------------------------------------------------------------------------
ASSETS = Path(__file__).resolve().parent / "assets"
REGISTRY = ASSETS / "teaching_clip.json"
IMAGE_SIZE = 64

#: open_clip model configs registered by this package (also written to ``assets/*.json``).
#: They keep OpenAI CLIP's image mean/std, so the grey normalisation is the paper's
#: (0.45924, 0.17597) for the teaching models too.
CONFIGS: dict[str, dict] = {
    "spikeclip-teaching-rn": {
        "embed_dim": 128,
        "vision_cfg": {"image_size": IMAGE_SIZE, "layers": [1, 1, 1, 1], "width": 16, "patch_size": None},
        "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 128, "heads": 4, "layers": 3},
    },
    "spikeclip-teaching-rn-judge": {
        "embed_dim": 128,
        "vision_cfg": {"image_size": IMAGE_SIZE, "layers": [2, 2, 1, 1], "width": 16, "patch_size": None},
        "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 128, "heads": 4, "layers": 2},
    },
}
WHICH = {"guide": "spikeclip-teaching-rn", "judge": "spikeclip-teaching-rn-judge"}


def register_configs() -> None:
    """Make the teaching architectures known to open_clip (idempotent)."""
    ASSETS.mkdir(exist_ok=True)
    for name, cfg in CONFIGS.items():
        path = ASSETS / f"{name}.json"
        text = json.dumps(cfg, indent=2) + "\n"
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
        if name not in open_clip.list_models():
            open_clip.add_model_config(path)


def expand_compact(path: Path, arch: str) -> dict[str, torch.Tensor]:
    """A compact teaching-CLIP file (only the used token-embedding rows, fp16) → a full float32 state dict."""
    from safetensors.torch import load_file

    sd = load_file(str(path))
    rows, values = sd.pop("token_embedding.rows"), sd.pop("token_embedding.values")
    vocab = CONFIGS[arch]["text_cfg"]["vocab_size"]
    table = torch.zeros(vocab, values.shape[1], dtype=torch.float32)
    table[rows] = values.float()
    sd = {k: (v.float() if v.is_floating_point() else v) for k, v in sd.items()}
    sd["token_embedding.weight"] = table
    return sd


def load_teaching_clip(judge: bool = False, device: str | torch.device = "auto", path: Path | None = None) -> Clip:
    """Load a shipped teaching CLIP (guide, or the independent judge) through open_clip.

    The compact file is SHA-256-checked against ``assets/teaching_clip.json``, expanded to a
    full state dict in a temporary file and loaded with
    ``open_clip.create_model_and_transforms(arch, pretrained=<file>)`` (``weights_only=True``).
    """
    which = "judge" if judge else "guide"
    register_configs()
    expected = None
    if path is None:
        if not REGISTRY.exists():
            raise FileNotFoundError(f"{REGISTRY} is missing: train with `python -m spikeclip_lite.teaching_clip train`")
        entry = json.loads(REGISTRY.read_text()).get(which)
        if entry is None:
            raise FileNotFoundError(f"no '{which}' teaching CLIP registered in {REGISTRY}")
        path, expected = ASSETS / entry["file"], entry["sha256"]
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"teaching CLIP weights {path} are missing (partial checkout? Git LFS pointer?)")
    digest = file_sha256(path)
    if expected is not None and digest != expected:
        raise ValueError(
            f"{path.name} is corrupt: SHA-256 {digest[:16]}… does not match the registered "
            f"{expected[:16]}…; restore it from the repository or retrain it"
        )
    arch = WHICH[which]
    with tempfile.TemporaryDirectory() as tmp:
        full = Path(tmp) / "full.pt"
        torch.save(expand_compact(Path(path), arch), full)
        model, _, _ = open_clip.create_model_and_transforms(arch, pretrained=str(full), device="cpu")
    return wrap_model(model, arch, f"teaching-{which}@{digest[:8]}", resolve_device(device), teaching=True)
