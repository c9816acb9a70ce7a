"""The course's two modes, and running its notebooks headless (papermill).

Every notebook has a parameters cell with ``FAST = None``; its next cell calls :func:`resolve_fast`,
which decides by the machine unless told: fast mode (minutes on a laptop's CPU) or full mode (the
real experiment, sized for one GPU).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"


def resolve_fast(fast: bool | None, cuda: bool | None = None, say: bool = True) -> bool:
    """The mode a notebook runs in: ``True`` = fast, ``False`` = full.

    ``fast`` given (a notebook's ``FAST = True/False``, or papermill's ``-p FAST``) wins. ``None`` decides
    by the machine: ``SPIKECLIP_FAST=1``/``0`` in the environment when set, otherwise full mode only where
    CUDA is available (``cuda``; default: ask torch), so a laptop never starts the hours-long full
    configuration by surprise. Prints one line saying which mode runs and how to switch (``say``).
    """
    env = os.environ.get("SPIKECLIP_FAST", "").strip()
    if fast is not None:
        if not isinstance(fast, bool):
            raise TypeError(f"FAST must be None, True or False, got {fast!r}")
        chosen, why = fast, "FAST set in the parameters cell"
    elif env:
        if env not in ("0", "1"):
            raise ValueError(f"SPIKECLIP_FAST must be 0 (full mode) or 1 (fast mode), got {env!r}")
        chosen, why = env == "1", f"SPIKECLIP_FAST={env}"
    else:
        if cuda is None:
            import torch

            cuda = torch.cuda.is_available()
        chosen, why = not cuda, "a CUDA GPU is available" if cuda else "no CUDA GPU here"
    if say:
        other = "full" if chosen else "fast"
        print(
            f"{'FAST' if chosen else 'FULL'} mode ({why}). For {other} mode set FAST = {not chosen} in the "
            f"parameters cell (or SPIKECLIP_FAST={0 if chosen else 1} before starting Jupyter)."
        )
    return chosen


#: Settings the notebooks take from their own parameters cell (``course --device``, or the cell itself).
NOTEBOOK_PARAMETERS = {
    "clip": "CLIP_NAME",
    "device": "DEVICE: course --device",
    "seed": "SEED",
    "dataset": "DATASET",
    "download": "DOWNLOAD",
}


def list_notebooks() -> list[Path]:
    """The course notebooks, in reading order."""
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def run_notebooks(
    out: Path,
    fast: bool = True,
    device: str = "auto",
    only: list[str] | None = None,
    settings: Sequence[str] = (),
) -> dict[str, float]:
    """Execute every notebook with papermill into ``out``; return seconds per notebook. ``settings``
    (``"KEY=VALUE"``, as after the pipeline's ``--set``) go to the notebooks that train (their ``SETTINGS``
    parameter); they are checked before any notebook starts.

    Raises the first notebook error (papermill's ``PapermillExecutionError`` names the cell), or ValueError
    for a bad setting.
    """
    try:
        import papermill as pm  # a dev dependency (the tests', `make course`'s); imported lazily
    except ModuleNotFoundError as e:
        if e.name != "papermill":
            raise  # papermill is there, one of its own dependencies is not: that error says which
        raise ModuleNotFoundError(
            "running the course headless needs papermill, a dev dependency: pip install -e '.[dev]' "
            "(or `make course`, which installs it)"
        ) from e

    from .settings import configure

    for item in settings:  # what a notebook sets from its own parameters cell
        key = item.partition("=")[0].strip()
        if key in NOTEBOOK_PARAMETERS:
            raise ValueError(f"{key} is a notebook parameter ({NOTEBOOK_PARAMETERS[key]}), not a --set setting")
    configure("fast" if fast else "full", list(settings))  # a typo fails here, not an hour in
    out.mkdir(parents=True, exist_ok=True)
    times: dict[str, float] = {}
    took_settings = False
    books = list_notebooks()
    if not books:
        raise FileNotFoundError(f"no notebooks found under {NOTEBOOKS}")
    for nb in books:
        if only and not any(key in nb.name for key in only):
            continue
        parameters = {"FAST": fast, "DEVICE": device, "OUTPUT_DIR": str(out.resolve())}
        if "SETTINGS" in pm.inspect_notebook(str(nb)):
            parameters["SETTINGS"] = " ".join(settings)
        t0 = time.perf_counter()
        pm.execute_notebook(
            str(nb),
            str(out / nb.name),
            parameters=parameters,
            kernel_name="python3",
            cwd=str(NOTEBOOKS),
            progress_bar=False,
        )
        times[nb.name] = round(time.perf_counter() - t0, 1)
        took_settings = took_settings or "SETTINGS" in parameters
        print(f"  {nb.name}: {times[nb.name]:.1f} s", flush=True)
    if settings and not took_settings:
        print(f"  note: no notebook run takes settings (only 04–07 do): {' '.join(settings)} not used", flush=True)
    (out / "timings.json").write_text(json.dumps(times, indent=2))
    return times
