"""Interactive explorers for the notebooks (core ipywidgets 8 only).

Each factory returns ``(widget, state)``. Moving a control recomputes the state
synchronously (so tests can set ``.value`` and read the state without a kernel) and then
redraws the figure in an ``Output``. The computation behind each explorer is a plain
function (``sensor_view``, ``window_view``, ``prompt_view``) that notebooks also call directly,
because a widget callback swallows exceptions. Each explorer also has a status line (an
``HTML`` widget under its controls): an error raised while updating is shown there in red
instead of vanishing into the browser's log, and the figure keeps the last settings that
worked; notes (an unknown word, a control that is off) appear there too.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable
from dataclasses import dataclass, field

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np

from . import baselines, metrics, physics, viz
from ._tensor import ArrayLike

__all__ = [
    "SensorView",
    "sensor_view",
    "sensor_explorer",
    "WindowView",
    "window_view",
    "window_explorer",
    "PromptView",
    "prompt_view",
    "prompt_explorer",
    "unknown_words_note",
    "CompareView",
    "compare_view",
    "compare_explorer",
    "ChoiceView",
    "choice_explorer",
]


@dataclass
class SensorView:
    """What the sensor explorer shows: the stream, its TFP and its mean firing rate; in the explorer, also
    the TFP panel's fixed top (spikes/frame) and the raster's pixels, the same at every setting."""

    spikes: np.ndarray
    tfp: np.ndarray
    rate: float
    expected_rate: float
    settings: dict = field(default_factory=dict)
    tfp_max: float = 0.0
    pixels: list[tuple[int, int]] = field(default_factory=list)


def sensor_view(
    image: ArrayLike,
    light_scale: float = 1.0,
    threshold: float = 1.0,
    noise: str = "ideal",
    n_frames: int = 200,
    seed: int = 0,
) -> SensorView:
    """Simulate ``image`` under a noise preset at ``light_scale`` × the preset's exposure.

    ``expected_rate`` is the noiseless prediction ``light · mean(I) / θ`` (+ dark current).
    """
    model = physics.get_noise_model(noise)
    model = physics.with_light(model, model.light * light_scale)
    img = viz.as_numpy(image).astype(np.float32)
    spikes = physics.simulate(img, n_frames=n_frames, threshold=threshold, seed=seed, noise=model)
    expected = min(1.0, (model.light * float(img.mean()) + model.dark_current) / threshold)
    settings = dict(light_scale=light_scale, threshold=threshold, noise=noise, n_frames=n_frames, seed=seed)
    return SensorView(spikes, baselines.tfp(spikes), physics.firing_rate(spikes), expected, settings)


def show_in(out: W.Output, fig: plt.Figure) -> None:
    """Replace what an Output widget shows with a finished figure (a PNG), and close the figure.

    The image is set as the widget's state instead of being captured with ``with out:`` and
    ``plt.show()``: headless runners (papermill/nbclient) sometimes hang on that capture protocol
    when a widget is built while a cell runs, and this way the widget looks the same everywhere.
    """
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    png = base64.b64encode(buf.getvalue()).decode("ascii")
    out.outputs = (
        {"output_type": "display_data", "data": {"image/png": png, "text/plain": "<figure>"}, "metadata": {}},
    )


def _status_line() -> W.HTML:
    return W.HTML(value="", layout=W.Layout(min_height="1.6em"))


def _guarded(update: Callable[[], str], status: W.HTML) -> Callable[[object], None]:
    """A widget callback that runs ``update`` (which returns a note to show, or "") and shows any
    exception in ``status`` in red, naming its type, instead of letting ipywidgets swallow it."""

    def callback(_: object = None) -> None:
        try:
            note = update()
        except Exception as err:  # noqa: BLE001 - shown to the user, not hidden
            status.value = f'<span style="color:#b00020">⚠ {type(err).__name__}: {html.escape(str(err))}</span>'
            return
        status.value = f'<span style="color:#8a5a00">{note}</span>' if note else ""

    return callback


def _panel(
    update: Callable[[], str], watched: list[W.Widget], rows: list[W.Widget], out: W.Output, status: W.HTML
) -> W.VBox:
    """Wire an explorer: ``update`` (guarded) runs now and whenever a ``watched`` control's value changes;
    the panel stacks ``rows`` (the controls), the status line and the figure."""
    refresh = _guarded(update, status)
    for w in watched:
        w.observe(refresh, names="value")
    refresh()
    return W.VBox([*rows, status, out])


def _draw_sensor(view: SensorView, image: np.ndarray, tfp_max: float, pixels: list[tuple[int, int]]) -> plt.Figure:
    """Light, TFP on a *fixed* scale (0 … ``tfp_max`` spikes/frame, so dimming the light darkens the
    panel) and a raster of the same ``pixels`` at every setting."""
    fig = plt.figure(figsize=(11, 3.2))
    gs = fig.add_gridspec(1, 3, width_ratios=[1, 1.2, 2])
    ax0, ax1, ax2 = fig.add_subplot(gs[0]), fig.add_subplot(gs[1]), fig.add_subplot(gs[2])
    ax0.imshow(image, cmap="gray", vmin=0, vmax=1)
    ax0.set_title("light (ground truth)")
    shown = ax1.imshow(view.tfp, cmap="gray", vmin=0, vmax=tfp_max)
    fig.colorbar(shown, ax=ax1, fraction=0.046, pad=0.03, label="spikes / frame")
    ax1.set_title(f"TFP, rate {view.rate:.3f}/px/frame")
    for a in (ax0, ax1):
        a.axis("off")
    viz.spike_raster(view.spikes, pixels=pixels, intensity=image, ax=ax2)
    fig.tight_layout()
    return fig


def sensor_explorer(image: ArrayLike, seed: int = 0, n_frames: int = 200) -> tuple[W.Widget, SensorView]:
    """Sliders for light level and threshold, a noise-preset menu → raster and TFP.

    Returns ``(widget, state)``; ``state`` is a :class:`SensorView` updated in place. The TFP panel
    keeps the scale of the starting settings (light ×1, θ = 1, ideal) and the raster keeps its
    pixels (sorted by their light), so what changes on screen is what the sensor does.
    """
    img = viz.as_numpy(image).astype(np.float32)
    light = W.FloatLogSlider(
        value=1.0, base=10, min=-1.5, max=0.5, step=0.05, description="light ×", continuous_update=False
    )
    thr = W.FloatSlider(value=1.0, min=0.5, max=4.0, step=0.1, description="threshold θ", continuous_update=False)
    preset = W.Dropdown(options=sorted(physics.PRESETS), value="ideal", description="noise")
    out, status = W.Output(), _status_line()
    state = sensor_view(img, 1.0, 1.0, "ideal", n_frames, seed)
    tfp_max = max(float(state.tfp.max()), 1e-3)
    pixels = viz.raster_pixels(img.shape, n_pixels=10, seed=seed, order_by=img)

    def update() -> str:
        new = sensor_view(img, light.value, thr.value, preset.value, n_frames, seed)
        state.__dict__.update(new.__dict__, tfp_max=tfp_max, pixels=pixels)
        show_in(out, _draw_sensor(state, img, tfp_max, pixels))
        return ""

    return _panel(update, [light, thr, preset], [W.HBox([light, thr, preset])], out, status), state


@dataclass
class WindowView:
    """What the window explorer shows: one reconstruction and its scores."""

    image: np.ndarray
    psnr: float  # after the least-squares gain/offset fit to the truth
    ssim: float  # same fit, clipped to [0, 1]
    settings: dict = field(default_factory=dict)


def window_view(
    spikes: ArrayLike, ground_truth: ArrayLike, method: str = "tfp", center: int | None = None, half_window: int = 49
) -> WindowView:
    """Reconstruct with ``method`` ('tfp', 'tfi', 'tfstp') at ``center`` ± ``half_window`` and score it.

    PSNR/SSIM compare the reconstruction after the best gain/offset fit, because the spike
    rate's scale depends on the light level (docs/facts.md §5).
    """
    img = viz.as_numpy(baselines.reconstruct(spikes, method, center=center, half_window=half_window))
    gt = viz.as_numpy(ground_truth)
    fitted = metrics.fit_gain_offset(img, gt)
    return WindowView(
        img,
        metrics.psnr(fitted, gt),
        metrics.ssim(np.clip(fitted, 0, 1), gt),
        dict(method=method, center=center, half_window=half_window),
    )


def window_explorer(
    spikes: ArrayLike, ground_truth: ArrayLike, frames: ArrayLike | None = None
) -> tuple[W.Widget, WindowView]:
    """Key-frame and window-length sliders and a method menu → reconstruction and PSNR/SSIM.

    ``frames`` (T, H, W) is the true video, if any: the panel then shows the true frame at
    the key frame and scores against it (for a static scene pass ``ground_truth`` only).
    """
    s = viz.as_numpy(spikes)
    T = s.shape[0]
    video = None if frames is None else viz.as_numpy(frames)
    gt_static = viz.as_numpy(ground_truth)
    center = W.IntSlider(value=T // 2, min=0, max=T - 1, description="key frame", continuous_update=False)
    half = W.IntSlider(value=min(49, T // 2), min=1, max=T // 2, description="half window", continuous_update=False)
    method = W.ToggleButtons(options=["tfp", "tfi", "tfstp"], value="tfp", description="method")
    out, status = W.Output(), _status_line()

    def truth() -> np.ndarray:
        return gt_static if video is None else video[center.value]

    state = window_view(s, truth(), method.value, center.value, half.value)

    def update() -> str:
        # TFSTP has no window (its synapses filter every frame from 0 to the key frame): a slider that does
        # nothing is off.
        half.disabled = method.value == "tfstp"
        new = window_view(s, truth(), method.value, center.value, half.value)
        state.__dict__.update(new.__dict__)
        title = f"{method.value.upper()}: PSNR {state.psnr:.1f} dB, SSIM {state.ssim:.2f}"
        fig = viz.show_images([truth(), state.image], ["truth at key frame", title], vmin=None, vmax=None, size=3.2)
        show_in(out, fig)
        return "TFSTP filters frames 0 to the key frame: the half-window slider is off." if half.disabled else ""

    return _panel(update, [center, half, method], [W.HBox([center, half]), method], out, status), state


@dataclass
class PromptView:
    """What the prompt explorer shows: P(prompt vs contrast) and both cosines per gallery image."""

    prob: np.ndarray  # (N,) softmax probability of `prompt` against `contrast`
    cos: np.ndarray  # (N, 2) cosine similarity to prompt and contrast
    settings: dict = field(default_factory=dict)


def prompt_view(clip: object, images: ArrayLike, prompt: str, contrast: str, scale: float | None = None) -> PromptView:
    """Score grey images (N, H, W) in [0, 1] against a prompt and a contrast prompt.

    P = softmax(scale · [cos(img, prompt), cos(img, contrast)])[0] — the zero-shot rule with
    two classes, and CLIP-IQA's quality score when the pair is an antonym pair. ``scale``: the
    softmax's logit scale (default: the CLIP's own; pass the prompts' scale to compare with them).
    """
    import torch

    if not prompt.strip() or not contrast.strip():
        raise ValueError("both prompts must be non-empty")
    x = torch.as_tensor(viz.as_numpy(images), dtype=torch.float32).unsqueeze(1)
    with torch.no_grad():
        text = clip.encode_text([prompt, contrast])
        cos = (clip.encode_image(x) @ text.T).cpu()
        prob = ((clip.logit_scale if scale is None else scale) * cos).softmax(-1)[:, 0]
    return PromptView(prob.numpy(), cos.numpy(), dict(prompt=prompt, contrast=contrast, scale=scale))


def prompt_explorer(
    clip: object,
    images: ArrayLike,
    titles: list[str] | None = None,
    prompt: str = "image of a star",
    contrast: str = "image of a heart",
    scale: float | None = None,
) -> tuple[W.Widget, PromptView]:
    """Two text boxes (a prompt and its contrast) → a probability bar under every gallery image.

    The boxes update on Enter or on leaving the box (a line under them says so). Words the CLIP
    has no embedding for (:meth:`Clip.unknown_words`: the teaching CLIP knows only its captions'
    words) are named in the status line, since they change nothing the model sees.
    """
    imgs = viz.as_numpy(images)
    box_p = W.Text(value=prompt, description="prompt", continuous_update=False)
    box_c = W.Text(value=contrast, description="contrast", continuous_update=False)
    hint = W.HTML(value="<i>Type, then press Enter (or click outside the box) to score.</i>")
    out, status = W.Output(), _status_line()
    state = prompt_view(clip, imgs, prompt, contrast, scale)

    def update() -> str:
        new = prompt_view(clip, imgs, box_p.value, box_c.value, scale)
        state.__dict__.update(new.__dict__)
        n = len(imgs)
        fig, axes = plt.subplots(2, n, figsize=(1.6 * n, 3.4), gridspec_kw={"height_ratios": [2, 1]}, squeeze=False)
        for i in range(n):
            axes[0, i].imshow(imgs[i], cmap="gray", vmin=0, vmax=1)
            axes[0, i].axis("off")
            if titles:
                axes[0, i].set_title(titles[i], fontsize=11)
            axes[1, i].bar([0], [state.prob[i]], color="C0")
            axes[1, i].set_ylim(0, 1)
            axes[1, i].set_xticks([])
            axes[1, i].set_title(f"{state.prob[i]:.2f}", fontsize=11)
        fig.suptitle(f"P('{box_p.value}' vs '{box_c.value}')", fontsize=12)
        fig.tight_layout()
        show_in(out, fig)
        return unknown_words_note(clip, [box_p.value, box_c.value])

    return _panel(update, [box_p, box_c], [W.HBox([box_p, box_c]), hint], out, status), state


def unknown_words_note(clip: object, texts: list[str]) -> str:
    """A warning naming the words of ``texts`` that ``clip`` has no embedding for, or "" if none."""
    unknown = sorted({w for t in texts for w in clip.unknown_words(t)})
    if not unknown:
        return ""
    words = ", ".join(f"'{html.escape(w)}'" for w in unknown)
    return f"⚠ this CLIP does not know {words}: those words embed as nothing, so the score ignores them."


@dataclass
class CompareView:
    """What the before/after explorer shows: one scene, split at a column between two methods."""

    image: np.ndarray  # (H, W): ``before`` left of the split, ``after`` right of it
    scene: int
    split: int
    settings: dict = field(default_factory=dict)


def compare_view(
    before: ArrayLike, after: ArrayLike, scene: int = 0, split: int | None = None, truth: ArrayLike | None = None
) -> CompareView:
    """Scene ``scene`` of two image stacks (N, H, W): columns ``< split`` from ``before``, the rest from ``after``.
    With ``truth`` (N, H, W), each side is first put on the ground truth's brightness by the gain and offset
    that aligned PSNR fits (:func:`metrics.fit_gain_offset`), then clipped to [0, 1]: the view shows what the
    score compares, and a brightness step at the split is not a difference the score sees."""
    a, b = viz.as_numpy(before), viz.as_numpy(after)
    if a.shape != b.shape or a.ndim != 3:
        raise ValueError(f"before and after must be image stacks (N, H, W) of one shape, got {a.shape} and {b.shape}")
    if not 0 <= scene < len(a):
        raise ValueError(f"scene must be in [0, {len(a)}), got {scene}")
    left, right = a[scene], b[scene]
    if truth is not None:
        gt = viz.as_numpy(truth)
        if gt.shape != a.shape:
            raise ValueError(f"truth must have the images' shape {a.shape}, got {gt.shape}")
        left, right = (np.clip(metrics.fit_gain_offset(x, gt[scene]), 0.0, 1.0) for x in (left, right))
    W = a.shape[-1]
    split = W // 2 if split is None else int(np.clip(split, 0, W))
    image = np.concatenate([left[:, :split], right[:, split:]], axis=1)
    return CompareView(image, scene, split, dict(scene=scene, split=split, aligned=truth is not None))


def compare_explorer(
    before: ArrayLike,
    after: ArrayLike,
    truth: ArrayLike,
    names: tuple[str, str] = ("before", "after"),
    aligned: bool = True,
) -> tuple[W.Widget, CompareView]:
    """A before/after slider: drag the split across one scene, pick the scene; the ground truth is drawn
    beside it. ``aligned``: each side on the truth's brightness, as aligned PSNR scores it (:func:`compare_view`);
    otherwise both as they are, on one 0–1 scale."""
    a, b, gt = viz.as_numpy(before), viz.as_numpy(after), viz.as_numpy(truth)  # once, not on every drag
    n, H, Wd = a.shape
    scene = W.IntSlider(value=0, min=0, max=n - 1, description="scene", continuous_update=False)
    split = W.IntSlider(value=Wd // 2, min=0, max=Wd, description="split", continuous_update=True)
    out, status = W.Output(), _status_line()
    ref = gt if aligned else None
    state = compare_view(a, b, 0, Wd // 2, ref)

    def update() -> str:
        new = compare_view(a, b, scene.value, split.value, ref)
        state.__dict__.update(new.__dict__)
        fig, ax = plt.subplots(1, 2, figsize=(7, 3.4))
        ax[0].imshow(state.image, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax[0].axvline(state.split - 0.5, color="C1", lw=1.5)
        ax[0].set_title(f"← {names[0]} | {names[1]} →", fontsize=11)
        ax[1].imshow(gt[state.scene], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax[1].set_title("ground truth", fontsize=11)
        for x in ax:
            x.axis("off")
        fig.tight_layout()
        show_in(out, fig)
        return ""

    return _panel(update, [scene, split], [W.HBox([scene, split])], out, status), state


@dataclass
class ChoiceView:
    """What the trade-off explorer shows: the outputs and scores of one cached run."""

    key: tuple
    images: np.ndarray
    scores: dict
    settings: dict = field(default_factory=dict)


def choice_explorer(
    runs: dict[tuple[float, bool], tuple[ArrayLike, dict]], truth: ArrayLike, n_show: int = 4
) -> tuple[W.Widget, ChoiceView]:
    """Pick λ and defences on/off among runs trained beforehand (``{(λ, defended): (images (N, H, W),
    scores)}``); shows ``n_show`` outputs beside their ground truth and the run's scores. Nothing is
    trained when a control moves, so it answers at once; a combination that was not trained says so."""
    lams = sorted({k[0] for k in runs})
    lam = W.ToggleButtons(options=[f"{v:g}" for v in lams], value=f"{lams[-1]:g}", description="λ")
    defended = W.Checkbox(value=True, description="defences on")
    out, status = W.Output(), _status_line()
    gt = viz.as_numpy(truth)[:n_show]
    first = (lams[-1], True) if (lams[-1], True) in runs else next(iter(runs))
    state = ChoiceView(first, viz.as_numpy(runs[first][0])[:n_show], dict(runs[first][1]))

    def update() -> str:
        key = (float(lam.value), bool(defended.value))
        if key not in runs:
            raise KeyError(f"no run with λ = {key[0]:g} and defences {'on' if key[1] else 'off'} was trained here")
        imgs, scores = runs[key]
        state.key, state.images, state.scores = key, viz.as_numpy(imgs)[:n_show], dict(scores)
        state.settings = dict(lam=key[0], defended=key[1])
        fig, ax = plt.subplots(2, n_show, figsize=(1.9 * n_show, 4), squeeze=False)
        for i in range(n_show):
            ax[0, i].imshow(state.images[i], cmap="gray", vmin=0, vmax=1)
            ax[1, i].imshow(gt[i], cmap="gray", vmin=0, vmax=1)
            ax[0, i].axis("off")
            ax[1, i].axis("off")
        ax[0, 0].set_title("fine output", fontsize=10, loc="left")
        ax[1, 0].set_title("ground truth", fontsize=10, loc="left")
        s = state.scores
        fig.suptitle(
            f"λ = {key[0]:g}, defences {'on' if key[1] else 'off'}: aligned PSNR {s['aligned_psnr']:.2f} dB, "
            f"texture {s['texture']:.2f}, judge acc {s['judge_accuracy']:.2f}, judge quality {s['judge_quality']:.2f}",
            fontsize=10,
        )
        fig.tight_layout()
        show_in(out, fig)
        return ""

    return _panel(update, [lam, defended], [W.HBox([lam, defended])], out, status), state
