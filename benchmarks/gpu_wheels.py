"""Download the wheels a bare GPU image lacks for ``benchmarks/gpu_check.sh`` into ``.gpu_wheels/``.

The device machines (see the README) have torch, torchvision, numpy, matplotlib and timm but not
open_clip, papermill, ipykernel, ipywidgets and their dependencies, and cannot download. This script
walks the dependency closure of those roots *in this environment* (skipping what the image has),
and fetches each pinned version as a wheel for the given Python versions (Linux x86-64).

    python benchmarks/gpu_wheels.py --python 3.11 3.12
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

ROOTS = ("open_clip_torch", "papermill", "ipykernel", "ipywidgets")
ON_IMAGE = {
    "torch", "torchvision", "numpy", "matplotlib", "pillow", "timm", "huggingface-hub", "safetensors", "regex",
    "pyyaml", "requests", "urllib3", "idna", "certifi", "charset-normalizer", "filelock", "fsspec", "jinja2",
    "markupsafe", "sympy", "mpmath", "networkx", "setuptools", "packaging", "typing-extensions", "contourpy",
    "cycler", "fonttools", "kiwisolver", "pyparsing", "python-dateutil", "six", "hf-xet", "triton",
}  # fmt: skip


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(roots: tuple[str, ...]) -> dict[str, str]:
    """name → installed version, for the roots and everything they require (markers evaluated here)."""
    seen: dict[str, str] = {}
    todo = list(roots)
    while todo:
        name = _norm(todo.pop())
        if name in seen or name in ON_IMAGE or name.startswith("nvidia-") or name.startswith("cuda-"):
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # an optional extra not installed here
        seen[name] = dist.version
        for req in dist.requires or []:
            if "extra ==" in req:
                continue
            todo.append(re.split(r"[ ;<>=!~\[(]", req, maxsplit=1)[0])
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--python", nargs="+", default=["3.11", "3.12"])
    parser.add_argument("--dest", type=Path, default=Path(".gpu_wheels"))
    args = parser.parse_args()
    pins = [f"{n}=={v}" for n, v in sorted(closure(ROOTS).items())]
    print(f"{len(pins)} packages: {' '.join(pins)}")
    for py in args.python:
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--dest"]
        cmd += [str(args.dest), "--python-version", py, "--implementation", "cp"]
        cmd += ["--platform", "manylinux2014_x86_64", "--platform", "manylinux_2_28_x86_64", *pins]
        if subprocess.run(cmd).returncode:  # e.g. this environment's pins need a newer Python
            print(f"WARNING: no complete set for Python {py} (see pip's message above)")
    total = sum(f.stat().st_size for f in args.dest.iterdir()) / 2**20
    print(f"{len(list(args.dest.iterdir()))} wheels, {total:.1f} MiB in {args.dest}/")


if __name__ == "__main__":
    main()
