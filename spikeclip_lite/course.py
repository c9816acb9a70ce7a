"""Run the course notebooks headless (papermill) and report where the results are."""

from __future__ import annotations

import json
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"


def list_notebooks() -> list[Path]:
    """The course notebooks, in reading order."""
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def run_notebooks(
    out: Path, fast: bool = True, device: str = "auto", only: list[str] | None = None
) -> dict[str, float]:
    """Execute every notebook with papermill into ``out``; return seconds per notebook.

    Raises the first notebook error (papermill's ``PapermillExecutionError`` names the cell).
    """
    import papermill as pm  # dev/run dependency; imported lazily

    out.mkdir(parents=True, exist_ok=True)
    times: dict[str, float] = {}
    books = list_notebooks()
    if not books:
        raise FileNotFoundError(f"no notebooks found under {NOTEBOOKS}")
    for nb in books:
        if only and not any(key in nb.name for key in only):
            continue
        t0 = time.perf_counter()
        pm.execute_notebook(
            str(nb),
            str(out / nb.name),
            parameters={"FAST": fast, "DEVICE": device, "OUTPUT_DIR": str(out.resolve())},
            kernel_name="python3",
            cwd=str(NOTEBOOKS),
            progress_bar=False,
        )
        times[nb.name] = round(time.perf_counter() - t0, 1)
        print(f"  {nb.name}: {times[nb.name]:.1f} s", flush=True)
    (out / "timings.json").write_text(json.dumps(times, indent=2))
    return times
