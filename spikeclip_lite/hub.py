"""Downloads of public files: cached, SHA-256-verified, written atomically.

``fetch("lrn_caltech")`` returns the path of the authors' released LRN checkpoint, downloading it
once into the cache (``$SPIKECLIP_CACHE``, default ``~/.cache/spikeclip_lite``). A cached file
that verifies is never downloaded again; a download whose hash differs is deleted and reported.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

__all__ = ["RemoteFile", "REGISTRY", "cache_dir", "fetch", "DownloadError", "HashMismatchError", "sha256_of"]


@dataclass(frozen=True)
class RemoteFile:
    """One public file: where it is, its SHA-256 (``None`` = not pinned yet) and what it is."""

    url: str
    sha256: str | None
    filename: str
    description: str


_RAW = "https://raw.githubusercontent.com/chenkang455"
REGISTRY: dict[str, RemoteFile] = {
    "lrn_caltech": RemoteFile(
        f"{_RAW}/SpikeCLIP/main/models/LRN_CALTECH.pth",
        "68c20592c476affd190c8c5f717bb03f590586e6d6bfbff8a89d1d32b14a60b2",
        "LRN_CALTECH.pth",
        "SpikeCLIP authors' released LRN, trained on U-CALTECH",
    ),
    "uhsr_helicopter": RemoteFile(
        f"{_RAW}/Spike-Zoo/main/data/uhsr.npz",
        "6e47eb26f59e40c71a4a0f677b5a48f647d4ff015313380faa0c2471aa651bff",
        "uhsr.npz",
        "one real U-CALTECH recording (helicopter, 200×250×250, low light), from Spike-Zoo",
    ),
    "spikezoo_dat": RemoteFile(
        f"{_RAW}/Spike-Zoo/main/data/data.dat",
        None,
        "spikezoo_data.dat",
        "Spike-Zoo's synthetic normal-light stream (250×400, 301 frames)",
    ),
    "spikezoo_png": RemoteFile(
        f"{_RAW}/Spike-Zoo/main/data/data.png", None, "spikezoo_data.png", "ground truth of spikezoo_dat"
    ),
}


class DownloadError(ConnectionError):
    """The file could not be downloaded (no network, HTTP error, timeout)."""


class HashMismatchError(ValueError):
    """A downloaded or cached file does not have the registered SHA-256."""


def cache_dir() -> Path:
    """``$SPIKECLIP_CACHE`` or ``$XDG_CACHE_HOME/spikeclip_lite`` or ``~/.cache/spikeclip_lite``."""
    if os.environ.get("SPIKECLIP_CACHE"):
        return Path(os.environ["SPIKECLIP_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "spikeclip_lite"


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _pinned(entry: RemoteFile, target: Path) -> str | None:
    """The hash to check: the registry's, or the one recorded at first download (trust on first use)."""
    if entry.sha256:
        return entry.sha256
    side = target.with_name(target.name + ".sha256")
    return side.read_text().strip() if side.exists() else None


def fetch(
    name: str,
    cache: Path | None = None,
    timeout: float = 30.0,
    progress: bool = True,
    registry: dict[str, RemoteFile] | None = None,
) -> Path:
    """Path of a registered file, downloading and verifying it if needed.

    Raises:
        KeyError: unknown name.
        DownloadError: no network / HTTP error (the message says where to put the file by hand).
        HashMismatchError: the download's SHA-256 differs from the registered one (file removed).
    """
    reg = REGISTRY if registry is None else registry
    if name not in reg:
        raise KeyError(f"unknown file {name!r}; registered: {sorted(reg)}")
    entry = reg[name]
    folder = Path(cache) if cache is not None else cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / entry.filename
    expected = _pinned(entry, target)
    if target.exists():
        if expected is not None and sha256_of(target) == expected:
            return target  # verified: never downloaded again
        if expected is not None:
            warnings.warn(f"cached {target} does not match its SHA-256; downloading it again", stacklevel=2)
    tmp = target.with_name(target.name + ".part")
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(entry.url, timeout=timeout) as resp, open(tmp, "wb") as f:
            total = int(resp.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=entry.filename, disable=not progress) as bar:
                for chunk in iter(lambda: resp.read(1 << 16), b""):
                    f.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
            if total is not None and f.tell() != total:
                raise DownloadError(f"{entry.url}: connection closed after {f.tell()} of {total} bytes")
    except (urllib.error.URLError, OSError) as err:
        tmp.unlink(missing_ok=True)
        if isinstance(err, DownloadError):
            raise
        raise DownloadError(
            f"could not download {name} from {entry.url} ({err}). Check the connection, or download it by hand "
            f"and place it at {target}"
        ) from err
    got = digest.hexdigest()
    if expected is not None and got != expected:
        tmp.unlink(missing_ok=True)
        raise HashMismatchError(
            f"{entry.url} downloaded with SHA-256 {got}, expected {expected}: the file changed upstream or the "
            "download was damaged; nothing was kept"
        )
    os.replace(tmp, target)
    if expected is None:
        target.with_name(target.name + ".sha256").write_text(got + "\n")
        warnings.warn(
            f"{name} has no pinned SHA-256; recorded {got[:16]}… and will verify against it from now on", stacklevel=2
        )
    return target
