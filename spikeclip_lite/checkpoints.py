"""Files a run writes and reads back: atomic writes, safe loads, corrupt files set aside.

Every file is written to a temporary name and renamed into place (an interrupted write never leaves a
half file under the real name). Checkpoints are loaded with ``weights_only=True``; the spike-set cache is a
plain ``.npz`` read with ``allow_pickle=False`` (:meth:`.spike_data.SpikeSet.load`): no file this project
reads can run code.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, TypeVar

import torch

__all__ = ["atomic_write", "save_checkpoint", "load_checkpoint", "load_or_set_aside", "CorruptCheckpointError"]

T = TypeVar("T")


class CorruptCheckpointError(RuntimeError):
    """A checkpoint or cache file exists but cannot be read (cut short, damaged, or of another layout)."""


def atomic_write(path: Path | str, write: Callable[[BinaryIO], object]) -> None:
    """Call ``write(file)`` on ``path + ".tmp"``, then rename it to ``path`` (creating the folder). If
    ``write`` fails, the temporary file is removed and an existing ``path`` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def save_checkpoint(path: Path | str, **state: object) -> None:
    """Write ``state`` (tensors, numbers, dicts of them) atomically with ``torch.save``."""
    atomic_write(path, lambda f: torch.save(state, f))


def unreadable(path: Path, err: Exception) -> CorruptCheckpointError:
    """The error for a file that exists but cannot be read: names the file, the cause and what to do."""
    return CorruptCheckpointError(
        f"{path} cannot be read ({type(err).__name__}: {str(err)[:200]}). Delete it (or its folder) to "
        "rebuild it; a run that finds it corrupt sets it aside as *.corrupt and rebuilds."
    )


def load_checkpoint(path: Path | str, keys: tuple[str, ...] = ()) -> dict:
    """Load a checkpoint with ``weights_only=True``; it must hold ``keys``.

    Raises:
        FileNotFoundError: no such file.
        CorruptCheckpointError: unreadable, or without ``keys``; the message names the file and what to do.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated zip, a foreign pickle (refused by weights_only), …
        raise unreadable(path, err) from err
    missing = [k for k in keys if not isinstance(state, dict) or k not in state]
    if missing:
        raise CorruptCheckpointError(f"{path} lacks {missing}: not a checkpoint of this stage. Delete it to rebuild.")
    return state


def load_or_set_aside(
    path: Path | str, keys: tuple[str, ...] = (), load: Callable[[Path], T] | None = None
) -> T | dict | None:
    """``load(path)`` (default: :func:`load_checkpoint` with ``keys``), or ``None`` when the file is absent, or
    ``None`` with a warning after moving a corrupt file aside to ``*.corrupt`` (so the caller rebuilds it,
    and the damaged file stays for inspection)."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        return load(path) if load is not None else load_checkpoint(path, keys)
    except CorruptCheckpointError as err:
        aside = path.with_name(path.name + ".corrupt")
        os.replace(path, aside)
        warnings.warn(f"{err} Moved it to {aside.name} and rebuilding.", stacklevel=2)
        return None
