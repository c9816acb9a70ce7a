"""Command line: ``python -m spikeclip_lite <command>``.

- ``course [--full] [--out DIR]``: execute the course notebooks headless into DIR.
- ``samples [--out DIR]``: regenerate the files in ``data_samples/``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="spikeclip_lite", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_course = sub.add_parser("course", help="execute the notebooks headless into --out")
    p_course.add_argument("--full", action="store_true", help="full mode (sized for a GPU); default is fast mode")
    p_course.add_argument("--device", default="auto")
    p_course.add_argument("--out", type=Path, default=Path("outputs"))
    p_course.add_argument("--only", nargs="*", help="substrings of notebook names to run")
    p_samples = sub.add_parser("samples", help="regenerate data_samples/")
    p_samples.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    if args.command == "course":
        from .course import run_notebooks

        print(f"Running the course notebooks ({'full' if args.full else 'fast'} mode) into {args.out}/")
        times = run_notebooks(args.out, fast=not args.full, device=args.device, only=args.only)
        print(
            f"Done: {len(times)} notebooks, {sum(times.values()):.0f} s. Executed notebooks and figures are in "
            f"{args.out.resolve()}/ (timings in timings.json)."
        )
        return 0
    if args.command == "samples":
        from .samples import DEFAULT_DIR, make_samples

        for path in make_samples(args.out or DEFAULT_DIR):
            print(f"wrote {path}")
        return 0
    return 2  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
