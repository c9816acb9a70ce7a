"""Spike-stream file formats (docs/facts.md §2): raw ``.dat`` camera files and UHSR ``.npz`` files.

``.dat``: frames back to back, each H·W/8 bytes, pixels row-major, bit b of byte k is
pixel 8k+b (least significant bit first), image stored upside down.

UHSR / U-CALTECH / U-CIFAR ``.npz``: ``spk`` (uint8 0/1, 200×250×250), ``label`` (int),
optionally ``label_name``. SpikeCLIP crops ``spk[:, 13:237, 13:237]`` → 200×224×224.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from ._tensor import ArrayLike, check_binary, check_ndim, to_torch
from .checkpoints import atomic_write

__all__ = [
    "read_dat",
    "write_dat",
    "read_uhsr",
    "write_uhsr",
    "UCIFAR_CLASSES",
    "UCALTECH_CLASSES",
    "find_streams",
    "uhsr_files",
    "UHSR_CROP",
    "read_png_gray",
    "read_ground_truth",
    "MAX_UHSR_FRAMES",
]

PathLike = str | os.PathLike

#: U-CIFAR class order, index → name (docs/facts.md §2).
UCIFAR_CLASSES: tuple[str, ...] = (
    "frog",
    "horse",
    "dog",
    "truck",
    "airplane",
    "automobile",
    "bird",
    "ship",
    "cat",
    "deer",
)

#: U-CALTECH class order, 101 names, index → name (docs/facts.md §2; index 47 is 'helicopter').
UCALTECH_CLASSES: tuple[str, ...] = tuple(
    """accordion airplanes anchor ant barrel bass beaver binocular bonsai brain brontosaurus
    buddha butterfly camera cannon car ceilingfan cellphone chair chandelier cougarbody
    cougarface crab crayfish crocodile crocodilehead cup dalmatian dollarbill dolphin dragonfly
    electricguitar elephant emu euphonium ewer faces ferry flamingo flamingohead garfield gerenuk
    gramophone grandpiano hawksbill headphone hedgehog helicopter ibis inlineskate joshuatree
    kangaroo ketch lamp laptop Leopards llama lobster lotus mandolin mayfly menorah metronome
    minaret Motorbikes nautilus octopus okapi pagoda panda pigeon pizza platypus pyramid revolver
    rhino rooster saxophone schooner scissors scorpion seahorse snoopy soccerball stapler
    starfish stegosaurus stopsign strawberry sunflower tick trilobite umbrella watch waterlilly
    wheelchair wildcat windsorchair wrench yinyang background""".split()
)

#: Rows/columns SpikeCLIP keeps from a 250×250 UHSR frame: 13:237 → 224×224.
UHSR_CROP = slice(13, 237)


def _frame_bytes(height: int, width: int) -> int:
    if height < 1 or width < 1:
        raise ValueError(f"height and width must be positive, got {height}×{width}")
    if (height * width) % 8:
        raise ValueError(f"height·width must be a multiple of 8 to pack into bytes, got {height}×{width}")
    return height * width // 8


def read_dat(path: PathLike, height: int = 250, width: int = 400, header_columns: int = 0) -> np.ndarray:
    """Read a raw spike-camera ``.dat`` file.

    Args:
        path: the file.
        height, width: the *image* size (default 250×400, the native sensor).
        header_columns: extra columns stored in each row before the image. Camera files of
            250×416 carry a 16-column header: ``read_dat(p, 250, 400, header_columns=16)``
            decodes 416-wide frames and drops the first 16 columns.

    Returns:
        uint8 0/1 array (T, height, width), upright.

    Raises:
        FileNotFoundError: no such file.
        ValueError: empty file, or a size that is not a whole number of frames (corrupt).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no spike file at {path}")
    if header_columns < 0:
        raise ValueError(f"header_columns counts columns before the image and cannot be negative, got {header_columns}")
    stored_width = width + header_columns
    fb = _frame_bytes(height, stored_width)
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0:
        raise ValueError(f"{path} is empty: no spike frames")
    if raw.size % fb:
        raise ValueError(
            f"{path} is corrupt or has another geometry: {raw.size} bytes is not a whole number of "
            f"{height}×{stored_width} frames ({fb} bytes each; {raw.size // fb} full frames and "
            f"{raw.size % fb} bytes left over). Check height/width/header_columns."
        )
    bits = np.unpackbits(raw.reshape(-1, fb), axis=1, bitorder="little")
    frames = bits.reshape(-1, height, stored_width)[:, ::-1, header_columns:]
    return np.ascontiguousarray(frames)


def write_dat(path: PathLike, spikes: ArrayLike) -> Path:
    """Write a (T, H, W) 0/1 stream as a ``.dat`` file (rows flipped, LSB first).

    The file does not record H and W: read it back with the same ``height``/``width``.
    Returns the path written.
    """
    s, _ = to_torch(spikes, "spikes")
    check_ndim(s, (3,), "spikes", "(T, H, W)")
    check_binary(s)
    T, H, W = s.shape
    _frame_bytes(H, W)
    arr = s.detach().cpu().numpy().astype(np.uint8)[:, ::-1, :].reshape(T, -1)
    packed = np.packbits(arr, axis=1, bitorder="little")
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; give write_dat a file name such as {path / 'stream.dat'}")
    atomic_write(path, packed.tofile)
    return path


#: The longest UHSR stream read by default (frames); real files hold 200.
MAX_UHSR_FRAMES = 10_000


def _check_uhsr_members(path: Path, max_frames: int) -> None:
    """Check a UHSR ``.npz`` before loading anything large: a zip whose members pass their CRC check,
    holding ``spk.npy`` and ``label.npy``, with an ``spk`` header of shape (T ≤ max_frames, 250, 250) and
    an integer or boolean dtype. Raises ValueError naming what is wrong."""
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not a readable .npz file: not a zip archive (a renamed .npy, or cut short?)")
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            missing = {"spk.npy", "label.npy"} - names
            if missing:
                raise ValueError(
                    f"{path} lacks key(s) {sorted(m[:-4] for m in missing)}; a UHSR file has 'spk' and 'label', "
                    f"found {sorted(n.removesuffix('.npy') for n in names)}"
                )
            bad = zf.testzip()  # reads every member and checks its CRC-32
            if bad is not None:
                raise ValueError(f"{path} is damaged: member {bad!r} fails its CRC check")
            with zf.open("spk.npy") as f:
                version = np.lib.format.read_magic(f)
                read_header = {(1, 0): np.lib.format.read_array_header_1_0}.get(
                    version, np.lib.format.read_array_header_2_0
                )
                shape, _, dtype = read_header(f)
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise ValueError(f"{path} is not a readable .npz file ({err})") from err
    if len(shape) != 3 or tuple(shape[1:]) != (250, 250):
        raise ValueError(f"{path}: 'spk' must have shape (T, 250, 250), its header says {tuple(shape)}")
    if shape[0] > max_frames:
        raise ValueError(f"{path}: 'spk' claims {shape[0]} frames, more than max_frames={max_frames}")
    if dtype.kind not in "biu":
        raise ValueError(f"{path}: 'spk' must hold 0/1 integers or booleans, its dtype is {dtype}")


def read_uhsr(
    path: PathLike, crop: bool = True, n_classes: int | None = None, max_frames: int = MAX_UHSR_FRAMES
) -> tuple[np.ndarray, int]:
    """Read one UHSR / U-CALTECH / U-CIFAR ``.npz`` recording.

    Args:
        path: the ``.npz`` file.
        crop: apply SpikeCLIP's crop ``[:, 13:237, 13:237]`` (250×250 → 224×224).
        n_classes: when given, the label must be an index in ``[0, n_classes)``.
        max_frames: refuse streams longer than this (checked from the header, before loading).

    Returns:
        ``(spikes, label)``: uint8 0/1 (T, 224, 224) (or (T, 250, 250) uncropped) and the
        class index (see :data:`UCALTECH_CLASSES` / :data:`UCIFAR_CLASSES`).

    Raises:
        FileNotFoundError: no such file.
        ValueError: anything else wrong with the file, found before a large array is allocated.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no UHSR file at {path}")
    _check_uhsr_members(path, max_frames)
    try:
        with np.load(path, allow_pickle=False) as data:
            spk = data["spk"]
            label_arr = data["label"]
    except Exception as err:  # damage the checks above could not see (e.g. a bad compressed stream)
        raise ValueError(f"{path} is not a readable .npz file ({err})") from err
    if label_arr.size != 1 or not np.issubdtype(label_arr.dtype, np.integer):
        raise ValueError(f"{path}: 'label' must be one integer class index, got {label_arr!r}")
    label = int(label_arr.reshape(()))
    if label < 0 or (n_classes is not None and label >= n_classes):
        limit = "≥ 0" if n_classes is None else f"in [0, {n_classes})"
        raise ValueError(f"{path}: label {label} is not a class index {limit}")
    check_binary(to_torch(spk, "spk")[0], f"{path}: 'spk'")
    spk = spk.astype(np.uint8, copy=False)
    if crop:
        spk = np.ascontiguousarray(spk[:, UHSR_CROP, UHSR_CROP])
    return spk, label


def write_uhsr(path: PathLike, spikes: ArrayLike, label: int, label_name: str | None = None) -> Path:
    """Write a (T, 250, 250) 0/1 stream in the UHSR ``.npz`` layout (compressed)."""
    s, _ = to_torch(spikes, "spikes")
    check_ndim(s, (3,), "spikes", "(T, 250, 250)")
    if tuple(s.shape[1:]) != (250, 250):
        raise ValueError(f"UHSR frames are 250×250, got {tuple(s.shape[1:])}")
    check_binary(s)
    extra = {} if label_name is None else {"label_name": np.array(label_name)}
    path = Path(path)
    arrays = {"spk": s.cpu().numpy().astype(np.uint8), "label": np.array(int(label)), **extra}
    atomic_write(path, lambda f: np.savez_compressed(f, **arrays))
    return path


def read_png_gray(path: PathLike) -> np.ndarray:
    """A PNG (8- or 16-bit, grey, RGB or RGBA) as a float32 (H, W) image in [0, 1]; colour is turned
    into grey with ITU-R BT.601 luma weights (0.299, 0.587, 0.114)."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no ground-truth image at {path}")
    try:
        with Image.open(path) as im:
            mode, a = im.mode, np.asarray(im)
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"{path} is not a readable image ({err})") from err
    if a.dtype == np.uint8:
        a = a.astype(np.float32) / 255
    elif a.dtype in (np.uint16, np.int32) or mode.startswith("I"):
        a = a.astype(np.float32) / 65535
    else:
        a = a.astype(np.float32)
    if a.ndim == 3:
        a = a[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32) if a.shape[-1] >= 3 else a[..., 0]
    return np.ascontiguousarray(a)


def read_ground_truth(stream: PathLike, crop: bool = True) -> np.ndarray | None:
    """The ground-truth image of a recording, or None when it has none.

    Looked up, in order: a ``gt`` member of a UHSR ``.npz`` (H, W), uint8 0–255 or float in [0, 1];
    a ``<stem>_gt.npz`` beside the recording with an ``image`` (the course's samples); for a ``.dat`` in Spike-Zoo's
    layout (``…/spike/NAME.dat``), ``…/gt/NAME.png``. A UHSR image of 250×250 is cropped like its spikes
    when ``crop``. Returns float32 (H, W) in [0, 1]; raises ValueError for a ground truth that is not.
    """
    stream = Path(stream)
    gt = None
    if stream.suffix == ".npz":
        with np.load(stream, allow_pickle=False) as data:
            if "gt" in data.files:
                gt = data["gt"]
    side = stream.with_name(f"{stream.stem}_gt.npz")
    if gt is None and side.is_file():
        with np.load(side, allow_pickle=False) as data:
            if "image" not in data.files:
                raise ValueError(f"{side} has no 'image' (found {data.files})")
            gt = data["image"]
    if gt is None and stream.parent.name == "spike":
        png = stream.parent.parent / "gt" / f"{stream.stem}.png"
        if png.is_file():
            gt = read_png_gray(png)
    if gt is not None and gt.dtype == np.uint8:
        gt = gt.astype(np.float32) / 255
    if gt is not None and crop and stream.suffix == ".npz" and gt.shape == (250, 250):
        gt = gt[UHSR_CROP, UHSR_CROP]
    if gt is None:
        return None
    gt = np.asarray(gt, dtype=np.float32)
    if gt.ndim != 2:
        raise ValueError(f"the ground truth of {stream} must be one grey image (H, W), got shape {gt.shape}")
    if not np.isfinite(gt).all() or gt.min() < 0 or gt.max() > 1:
        raise ValueError(f"the ground truth of {stream} must hold values in [0, 1] (uint8 0–255 is scaled)")
    return np.ascontiguousarray(gt)


def find_streams(path: Path) -> list[Path]:
    """A file, or every recording in a folder: ``.npz``/``.dat`` files (sorted by number when the names
    are numbers; ``*_gt.npz`` ground-truth files skipped), or ``spike/*.dat`` in Spike-Zoo's layout."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"no file or folder at {path}")
    if (path / "spike").is_dir():  # Spike-Zoo: spike/NAME.dat with gt/NAME.png
        path = path / "spike"
    files = [p for p in path.iterdir() if p.suffix in (".npz", ".dat") and not p.stem.endswith("_gt")]
    if not files:
        raise FileNotFoundError(f"{path} holds no .npz or .dat recordings")
    return sorted(files, key=lambda p: (0, int(p.stem), "") if p.stem.isdigit() else (1, 0, p.stem))


def uhsr_files(root: Path | str, split: str = "train") -> list[Path]:
    """The recordings of a U-CALTECH / U-CIFAR download: numbered ``0.npz`` …, files 0–4999 are the train
    split and the rest the test split (docs/facts.md §2); ``"all"`` = every ``.npz``."""
    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
    files = [p for p in find_streams(Path(root)) if p.suffix == ".npz"]
    if split != "all":
        numbered = [p for p in files if p.stem.isdigit()]
        if len(numbered) != len(files):
            raise ValueError(f"{root}: the train/test split needs numbered files (0.npz, 1.npz, …)")
        files = [p for p in files if (int(p.stem) < 5000) == (split == "train")]
    if not files:
        raise ValueError(f"{root} has no files in the {split} split")
    return files
