#!/usr/bin/env bash
# The GPU checks as one script, for a machine with one CUDA GPU (e.g. the device tool's H100/H200):
# run it from the repository root with OUT set to a folder that comes back. Four parts, in this order (the
# figures issue #11 waits for first, so that a run stopped by its time limit still brings them back):
#   pipeline  the SpikeCLIP pipeline in full mode with its time split (data vs each stage, samples/s, and the
#             GPU's mean utilisation in each phase); gpu_util.csv samples the whole script once a second
#   tradeoff  texture against aligned PSNR on the pipeline's test scenes (benchmarks/texture_tradeoff.py;
#             needs the pipeline's stages: after `pipeline`, in this run or an earlier one with the same WORK)
#   bench     LRN inference at 250×400 (fp32 eager, bf16, cudnn.benchmark, torch.compile, CUDA graphs; output
#             difference vs fp32), training throughput at 128²
#   course    every notebook in full mode (make test-gpu's runner), seconds per notebook; on the pipeline's
#             stage cache, so notebooks 04–07 reuse the stages it trained
# PARTS="pipeline tradeoff" runs only those (a lent machine's minutes are few: docs/testing.md). Each part
# adds its seconds to gpu.txt and refreshes results.tar.gz as it ends.
# Only small files land in OUT (at most 8: the device tool brings back 8): text logs, metrics.json,
# timings.json, the GPU utilisation log and one tarball of figures and executed notebooks. Data caches
# and checkpoints (GBs in full mode) stay in WORK.
# A bare image may lack open_clip_torch, papermill, nbval, ipykernel, ipywidgets & co: put their
# wheels in .gpu_wheels/ (`make gpu-wheels`, for Python 3.11/3.12) and they are installed offline first.
# Rehearsal on a CPU (tests/test_benchmarks.py runs it so; every step, tiny sizes):
#   DEVICE=cpu SETTINGS="n_train=16 …" BENCH_LRN_ARGS="--batches 1" BENCH_TRAIN_ARGS="--steps 2" \
#   COURSE_ONLY="07" INSTALL=0 bash benchmarks/gpu_check.sh
set -euo pipefail
PARTS=${PARTS:-pipeline tradeoff bench course}
for part in $PARTS; do
  case $part in
    pipeline | tradeoff | bench | course) ;;
    *) echo "gpu_check.sh: unknown part '$part' in PARTS='$PARTS' (the parts: pipeline tradeoff bench course)" >&2
       exit 2 ;;
  esac
done
OUT=${OUT:-outputs/gpu}
WORK=${WORK:-outputs/gpu_work}
PY=${PY:-$(command -v python3 || command -v python)}  # the device image has python3 alone
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

PIPE="$WORK/course/pipeline"
# /usr/bin/time -v adds the peak memory to the pipeline's log; a bare image may lack it
TIME=()
[ -x /usr/bin/time ] && TIME=(/usr/bin/time -v)

part_pipeline() {
  # --clip auto, as the notebooks: offline it is the teaching CLIP, and the stage caches are shared
  ${TIME[@]+"${TIME[@]}"} $PY -m spikeclip_lite pipeline --full --clip auto --device "$DEVICE" \
    --out "$PIPE" ${SET[@]+"${SET[@]}"} 2>&1 | grep -v "it/s" | tee "$OUT/pipeline.txt"
  cp "$PIPE/metrics.json" "$OUT/"
}
part_tradeoff() {
  # texture against aligned PSNR on the same test scenes (no training; appended to pipeline.txt, the figure
  # lands in results.tar.gz)
  if [ ! -f "$PIPE/metrics.json" ]; then
    echo "gpu_check.sh: part tradeoff needs the pipeline's stages in $PIPE: run PARTS='pipeline tradeoff'" >&2
    return 2
  fi
  $PY benchmarks/texture_tradeoff.py --mode full --clip auto --device "$DEVICE" --out "$PIPE" \
    ${SET[@]+"${SET[@]}"} 2>&1 | grep -v "it/s" | tee -a "$OUT/pipeline.txt" || true
}
part_bench() {
  # shellcheck disable=SC2086  # the bench arguments are words
  { $PY benchmarks/bench_lrn.py --device "$DEVICE" --out "$WORK/bench" $BENCH_LRN_ARGS; \
    $PY benchmarks/bench_train.py --device "$DEVICE" --out "$WORK/bench" $BENCH_TRAIN_ARGS; } 2>&1 | tee "$OUT/bench.txt"
}
part_course() {
  $PY -m spikeclip_lite course --full --device "$DEVICE" --out "$WORK/course" ${ONLY[@]+"${ONLY[@]}"} \
    ${SET[@]+"${SET[@]}"} 2>&1 | grep -v "it/s" | tail -30 | tee "$OUT/course.txt" || true
  cp "$WORK/course/timings.json" "$OUT/" 2>/dev/null || true
}
pack() {
  # figures, executed notebooks and the benches' JSON, without data caches or checkpoints; written whole in
  # WORK first (OUT holds at most 8 files), so a run stopped by its time limit brings back the last complete one
  mkdir -p "$WORK/course" "$WORK/bench"
  (cd "$WORK" && find course bench -name '*.png' -o -name '*.ipynb' -o -name '*.json' \
    | { grep -v -e '/data/' -e '/checkpoints/' || true; } | tar czf - -T -) > "$WORK/results.tar.gz.part"
  mv "$WORK/results.tar.gz.part" "$OUT/results.tar.gz"
}

START=$SECONDS
for part in $PARTS; do
  began=$SECONDS
  "part_$part"
  pack
  echo "part $part: $((SECONDS - began)) s (ended $((SECONDS - START)) s after the first part began)" | tee -a "$OUT/gpu.txt"
done
ls -la "$OUT"
