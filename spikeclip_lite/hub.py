"""Downloads of public files: cached, SHA-256-verified, written atomically.

``fetch("lrn_caltech")`` returns the path of the authors' released LRN checkpoint, downloading it
once into the cache (``$SPIKECLIP_CACHE``, default ``~/.cache/spikeclip_lite``). A cached file
that verifies is never downloaded again; a download whose hash differs is deleted and reported.

Nothing is stored that was not verified: every registry entry carries a pinned SHA-256 (an entry
without one is refused, never trusted on first use), a body cut short, an HTML error page or a
download past its deadline is an error, and the partial ``.part`` file is removed on every failure.
(pooch does the same job for SciPy's data; this module stays because it is small, has no
dependency, gives the course's offline messages and is tested against a loopback server.)
"""

from __future__ import annotations

import hashlib
import http.client
import os
import time
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

__all__ = [
    "RemoteFile",
    "REGISTRY",
    "cache_dir",
    "fetch",
    "DownloadError",
    "HashMismatchError",
    "UnpinnedFileError",
    "sha256_of",
    "pin",
]


@dataclass(frozen=True)
class RemoteFile:
    """One public file: where it is, its SHA-256 (``None`` = not pinned yet) and what it is."""

    url: str
    sha256: str | None
    filename: str
    description: str


_RAW = "https://raw.githubusercontent.com/chenkang455"
_PYIQA = "https://github.com/chaofengc/IQA-PyTorch/releases/download/v0.1-weights"
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
    # pyiqa's model files for the paper's two no-reference metrics, fetched here (verified, cached) and
    # handed to pyiqa, so a second run needs no network. Not pinned yet: no session had internet to hash
    # them; `python -m spikeclip_lite.hub pin pyiqa_niqe` prints the line to paste. Until then NIQE and
    # BRISQUE report n/a with that reason.
    "pyiqa_niqe": RemoteFile(
        f"{_PYIQA}/niqe_modelparameters.mat",
        None,
        "niqe_modelparameters.mat",
        "NIQE's pristine-image model (pyiqa's copy of the authors' MATLAB parameters)",
    ),
    "pyiqa_brisque": RemoteFile(
        f"{_PYIQA}/brisque_svm_weights.pth",
        None,
        "brisque_svm_weights.pth",
        "BRISQUE's SVR weights (pyiqa's release)",
    ),
}


class DownloadError(ConnectionError):
    """The file could not be downloaded (no network, HTTP error, timeout)."""


class HashMismatchError(ValueError):
    """A downloaded or cached file does not have the registered SHA-256."""


class UnpinnedFileError(ValueError):
    """A registry entry has no SHA-256, so nothing it downloads could be verified."""


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


def fetch(
    name: str,
    cache: Path | None = None,
    timeout: float = 30.0,
    progress: bool = True,
    registry: dict[str, RemoteFile] | None = None,
    deadline: float = 900.0,
) -> Path:
    """Path of a registered file, downloading and verifying it if needed.

    ``timeout``: seconds a single read may wait; ``deadline``: seconds the whole download may take.

    Raises:
        KeyError: unknown name.
        UnpinnedFileError: the entry has no SHA-256 (nothing is downloaded).
        DownloadError: no network, HTTP error, an HTML page instead of the file, a body cut short, or past
            the deadline (the message says where to put the file by hand); no partial file is left.
        HashMismatchError: the download's SHA-256 differs from the registered one (file removed).
    """
    reg = REGISTRY if registry is None else registry
    if name not in reg:
        raise KeyError(f"unknown file {name!r}; registered: {sorted(reg)}")
    entry = reg[name]
    if not entry.sha256:
        raise UnpinnedFileError(
            f"{name} has no pinned SHA-256, so a download could not be verified and is not attempted. Download "
            f"{entry.url} by hand, check it, and pin `sha256_of(file)` in its RemoteFile entry."
        )
    folder = Path(cache) if cache is not None else cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / entry.filename
    if target.exists():
        if sha256_of(target) == entry.sha256:
            return target  # verified: never downloaded again
        warnings.warn(f"cached {target} does not match its SHA-256; downloading it again", stacklevel=2)
    tmp = target.with_name(target.name + ".part")
    by_hand = f"Check the connection, or download it by hand and place it at {target}"
    try:
        got = _download(entry, tmp, timeout, deadline, progress)
        if got != entry.sha256:
            raise HashMismatchError(
                f"{entry.url} downloaded with SHA-256 {got}, expected {entry.sha256}: the file changed upstream "
                "or the download was damaged; nothing was kept"
            )
        os.replace(tmp, target)
    except (DownloadError, HashMismatchError):
        raise
    except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
        raise DownloadError(f"could not download {name} from {entry.url} ({err!r}). {by_hand}") from err
    finally:
        tmp.unlink(missing_ok=True)
    return target


def _download(entry: RemoteFile, tmp: Path, timeout: float, deadline: float, progress: bool) -> str:
    """Stream ``entry.url`` into ``tmp``; return its SHA-256. Raises DownloadError for a body that is not
    the file (HTML), is cut short, or takes longer than ``deadline`` seconds."""
    start = time.monotonic()
    digest = hashlib.sha256()
    with urllib.request.urlopen(entry.url, timeout=timeout) as resp, open(tmp, "wb") as f:
        kind = resp.headers.get("Content-Type", "")
        if kind.startswith("text/html"):
            raise DownloadError(
                f"{entry.url} answered with an HTML page ({kind}), not the file: a login or error page?"
            )
        total = int(resp.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=entry.filename, disable=not progress) as bar:
            for chunk in iter(lambda: resp.read(1 << 16), b""):
                f.write(chunk)
                digest.update(chunk)
                bar.update(len(chunk))
                if time.monotonic() - start > deadline:
                    raise DownloadError(
                        f"{entry.url}: still downloading after {deadline:.0f} s ({f.tell()} bytes so far); "
                        "try again later or raise `deadline`"
                    )
        if total is not None and f.tell() != total:
            raise DownloadError(f"{entry.url}: connection closed after {f.tell()} of {total} bytes")
    return digest.hexdigest()


def pin(name: str, timeout: float = 30.0, registry: dict[str, RemoteFile] | None = None) -> str:
    """Download a registered file once (online) and return its SHA-256, to pin in its entry. Nothing is
    cached: pinning is a maintainer's deliberate step, checked by eye against the upstream release."""
    import tempfile

    entry = (REGISTRY if registry is None else registry)[name]
    with tempfile.TemporaryDirectory() as tmp:
        return _download(entry, Path(tmp) / entry.filename, timeout, 900.0, progress=True)


if __name__ == "__main__":  # python -m spikeclip_lite.hub pin NAME …
    import sys

    if sys.argv[1:2] != ["pin"] or len(sys.argv) < 3:
        sys.exit(f"usage: python -m spikeclip_lite.hub pin NAME …  (registered: {', '.join(sorted(REGISTRY))})")
    for key in sys.argv[2:]:
        print(f'{key}: sha256 "{pin(key)}"  ← paste into its RemoteFile entry in spikeclip_lite/hub.py')
