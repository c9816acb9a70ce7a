#!/usr/bin/env bash
# The GPU checks of issue #6 as one script, for a machine with one CUDA GPU (e.g. the device tool's
# H100/H200: run it from the repository root with OUT set to a folder that comes back).
#   1. LRN inference bench at 250×400 (fp32 eager, channels_last + bf16, torch.compile, CUDA graph)
#   2. the SpikeCLIP pipeline in full mode with its time split (data vs each stage, samples/s)
#   3. every notebook in full mode (make test-gpu's runner), seconds per notebook
# A bare image may lack open_clip_torch, papermill, nbval, ipykernel, ipywidgets & co: put their
# wheels in .gpu_wheels/ (`make gpu-wheels`, for Python 3.11/3.12) and they are installed offline first.
set -euo pipefail
OUT=${OUT:-outputs/gpu}
mkdir -p "$OUT"
PY=${PY:-python}
if [ -d .gpu_wheels ]; then
  $PY -m pip install -q --no-index --find-links .gpu_wheels open_clip_torch papermill ipykernel ipywidgets
fi
$PY -m pip install -q --no-deps --no-build-isolation -e . 2>/dev/null || export PYTHONPATH=$PWD
$PY -m ipykernel install --user --name python3 >/dev/null 2>&1 || true
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT/gpu.txt"
(nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv -l 1 > "$OUT/gpu_util.csv" &)
$PY benchmarks/bench_lrn.py --device cuda 2>&1 | tee "$OUT/bench_lrn.txt"
cp outputs/bench_lrn_cuda.json "$OUT/" 2>/dev/null || true
/usr/bin/time -v $PY -m spikeclip_lite pipeline --full --clip teaching --device cuda --out "$OUT/pipeline" \
  2>&1 | grep -v "it/s" | tee "$OUT/pipeline.txt"
$PY -m spikeclip_lite course --full --device cuda --out "$OUT/course" 2>&1 | grep -v "it/s" | tail -30 | tee "$OUT/course.txt"
pkill -f "nvidia-smi --query-gpu=timestamp" || true
