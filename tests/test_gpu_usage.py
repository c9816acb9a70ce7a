"""The GPU utilisation log, driven by a stand-in ``nvidia-smi`` (this machine has no GPU)."""

import os
import time

from spikeclip_lite.gpu_usage import GpuUsage


def fake_nvidia_smi(tmp_path, values):
    script = tmp_path / "nvidia-smi"
    lines = "\n".join(f"echo {v}; sleep 0.05" for v in values)
    script.write_text(f"#!/bin/sh\n{lines}\nsleep 60\n")
    script.chmod(0o755)
    return str(script)


def test_samples_are_read_and_averaged_over_an_interval(tmp_path):
    usage = GpuUsage(command=fake_nvidia_smi(tmp_path, [10, 20, "[N/A]", 90]))
    t0 = time.perf_counter()
    with usage:
        deadline = time.time() + 10
        while len(usage.samples) < 3 and time.time() < deadline:
            time.sleep(0.05)
    assert [u for _, u in usage.samples] == [10.0, 20.0, 90.0]  # "[N/A]" is skipped
    assert usage.mean() == 40.0 and usage.mean(t0, usage.samples[1][0]) == 15.0
    assert usage.mean(end=t0) is None
    assert usage._proc is None  # stopped


def test_without_nvidia_smi_nothing_is_recorded(tmp_path):
    with GpuUsage(command=os.path.join(tmp_path, "absent")) as usage:
        pass
    assert not usage.available and usage.mean() is None
