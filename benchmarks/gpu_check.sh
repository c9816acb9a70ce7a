#!/usr/bin/env bash
# The GPU checks as one script, for a machine with one CUDA GPU (e.g. the device tool's H100/H200):
# run it from the repository root with OUT set to a folder that comes back.
#   1. benchmarks: LRN inference at 250×400 (fp32 eager, bf16,
#      cudnn.benchmark, torch.compile, CUDA graphs; output difference vs fp32), training throughput at 128²
#   2. the SpikeCLIP pipeline in full mode with its time split (data vs each stage, samples/s, and the
#      GPU's mean utilisation in each phase); gpu_util.csv samples the whole script once a second
#   2b. texture against aligned PSNR on the pipeline's test scenes (benchmarks/texture_tradeoff.py)
#   3. every notebook in full mode (make test-gpu's runner), seconds per notebook; run after the
#      pipeline and on its stage cache, so notebooks 04–07 reuse the stages it trained
# Only small files land in OUT (at most 8: the device tool brings back 8): text logs, metrics.json,
# timings.json, the GPU utilisation log and one tarball of figures and executed notebooks. Data caches
# and checkpoints (GBs in full mode) stay in WORK.
# A bare image may lack open_clip_torch, papermill, nbval, ipykernel, ipywidgets & co: put their
# wheels in .gpu_wheels/ (`make gpu-wheels`, for Python 3.11/3.12) and they are installed offline first.
# Rehearsal on a CPU (tests/test_benchmarks.py runs it so; every step, tiny sizes):
#   DEVICE=cpu SETTINGS="n_train=16 …" BENCH_LRN_ARGS="--batches 1" BENCH_TRAIN_ARGS="--steps 2" \
#   COURSE_ONLY="07" INSTALL=0 bash benchmarks/gpu_check.sh
set -euo pipefail
OUT=${OUT:-outputs/gpu}
WORK=${WORK:-outputs/gpu_work}
PY=${PY:-python}
DEVICE=${DEVICE:-cuda}
SETTINGS=${SETTINGS:-}  # KEY=VALUE … for the pipeline, the trade-off and notebooks 04–07 (empty: full mode)
BENCH_LRN_ARGS=${BENCH_LRN_ARGS:-}
BENCH_TRAIN_ARGS=${BENCH_TRAIN_ARGS:-}
COURSE_ONLY=${COURSE_ONLY:-}  # substrings of notebook names (empty: every notebook)
SET=()
[ -n "$SETTINGS" ] && read -r -a SET <<< "--set $SETTINGS"
ONLY=()
[ -n "$COURSE_ONLY" ] && read -r -a ONLY <<< "--only $COURSE_ONLY"
mkdir -p "$OUT" "$WORK"
INSTALL=${INSTALL:-1}  # 0: use the Python environment as it is (the CPU rehearsal)
if [ "$INSTALL" = 1 ] && [ -d .gpu_wheels ]; then
  $PY -m pip install -q --no-index --find-links .gpu_wheels open_clip_torch papermill ipykernel ipywidgets
fi
if [ "$INSTALL" = 1 ]; then
  $PY -m pip install -q --no-deps --no-build-isolation -e . 2>/dev/null || export PYTHONPATH=$PWD
fi
$PY -m ipykernel install --user --name python3 >/dev/null 2>&1 || true
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT/gpu.txt"
  # GPU utilisation, one sample a second, until this script ends (stopped by its PID, never by name)
  nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv -l 1 > "$OUT/gpu_util.csv" &
  LOGGER=$!
  trap 'kill "$LOGGER" 2>/dev/null || true' EXIT
else
  echo "no nvidia-smi here: no GPU name and no utilisation log (device $DEVICE)" | tee "$OUT/gpu.txt"
fi

# shellcheck disable=SC2086  # the bench arguments are words
{ $PY benchmarks/bench_lrn.py --device "$DEVICE" --out "$WORK/bench" $BENCH_LRN_ARGS; \
  $PY benchmarks/bench_train.py --device "$DEVICE" --out "$WORK/bench" $BENCH_TRAIN_ARGS; } 2>&1 | tee "$OUT/bench.txt"
# --clip auto, as the notebooks: offline it is the teaching CLIP, and the stage caches are shared
/usr/bin/time -v $PY -m spikeclip_lite pipeline --full --clip auto --device "$DEVICE" \
  --out "$WORK/course/pipeline" ${SET[@]+"${SET[@]}"} 2>&1 | grep -v "it/s" | tee "$OUT/pipeline.txt"
cp "$WORK/course/pipeline/metrics.json" "$OUT/"
# texture against aligned PSNR on the same test scenes (no training; printed into pipeline.txt, the figure
# lands in results.tar.gz)
$PY benchmarks/texture_tradeoff.py --mode full --clip auto --device "$DEVICE" --out "$WORK/course/pipeline" \
  ${SET[@]+"${SET[@]}"} 2>&1 | grep -v "it/s" | tee -a "$OUT/pipeline.txt" || true
$PY -m spikeclip_lite course --full --device "$DEVICE" --out "$WORK/course" ${ONLY[@]+"${ONLY[@]}"} ${SET[@]+"${SET[@]}"} 2>&1 \
  | grep -v "it/s" | tail -30 | tee "$OUT/course.txt" || true
cp "$WORK/course/timings.json" "$OUT/" 2>/dev/null || true
# figures, executed notebooks and the benches' JSON, without data caches or checkpoints
(cd "$WORK" && find course bench -name '*.png' -o -name '*.ipynb' -o -name '*.json' | grep -v -e '/data/' -e '/checkpoints/' \
  | tar czf - -T -) > "$OUT/results.tar.gz"
ls -la "$OUT"
