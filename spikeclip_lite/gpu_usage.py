"""GPU utilisation over a run, sampled by ``nvidia-smi`` in the background (as ``benchmarks/gpu_check.sh``
logs it): how much of the time the GPU was busy during data generation, training and evaluation.

A GPU that is busy 14 % of the time is starved (by the data, by Python, by host↔device copies), not
too slow; this is the first number to read before optimising anything on one.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time

__all__ = ["GpuUsage"]


class GpuUsage:
    """Samples the utilisation (%) of GPU ``index`` every ``interval_ms`` while running.

    Use as a context manager; :meth:`mean` averages the samples taken between two ``time.perf_counter()``
    readings. Without ``nvidia-smi`` (a CPU machine) it records nothing and :meth:`mean` is ``None``.
    """

    def __init__(self, index: int = 0, interval_ms: int = 500, command: str = "nvidia-smi") -> None:
        self.index, self.interval_ms, self.command = index, interval_ms, command
        self.samples: list[tuple[float, float]] = []  # (perf_counter seconds, utilisation %)
        self._proc: subprocess.Popen | None = None
        self._reader: threading.Thread | None = None

    @property
    def available(self) -> bool:
        return shutil.which(self.command) is not None

    def start(self) -> GpuUsage:
        if not self.available:
            return self
        self._proc = subprocess.Popen(
            [
                self.command,
                f"--id={self.index}",
                "--query-gpu=utilization.gpu",
                "--format=csv,noheader,nounits",
                f"-lms={self.interval_ms}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            try:
                self.samples.append((time.perf_counter(), float(line.strip())))
            except ValueError:  # "[N/A]" or a warning line: not a sample
                continue

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(timeout=5)
            if self._reader is not None:
                self._reader.join(timeout=5)
            self._proc = None

    def mean(self, start: float = float("-inf"), end: float = float("inf")) -> float | None:
        """Mean utilisation (%) of the samples taken in [start, end] (perf_counter seconds), or None."""
        values = [u for t, u in self.samples if start <= t <= end]
        return sum(values) / len(values) if values else None

    def __enter__(self) -> GpuUsage:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
