#!/usr/bin/env bash
# The GPU checks as one script, for a machine with one CUDA GPU (e.g. the device tool's H100/H200):
# run it from the repository root with OUT set to a folder that comes back. Four parts, in this order (the
# figures issue #11 waits for first, so that a run stopped by its time limit still brings them back):
#   pipeline  the SpikeCLIP pipeline in full mode with its time split (data vs each stage, samples/s, and the
#             GPU's mean utilisation in each phase), then early stopping's rules replayed on its validation
#             log (benchmarks/early_stopping_replay.py); gpu_util.csv samples the whole script once a second.
#             It runs first, so its time includes the GPU's start-up (CUDA context, cuDNN's first kernels)
#   tradeoff  texture against aligned PSNR on the pipeline's test scenes (benchmarks/texture_tradeoff.py;
#             needs the pipeline's stages: after `pipeline`, in this run or an earlier one with the same WORK)
#   bench     LRN inference at 250×400 (fp32 eager, bf16, cudnn.benchmark, torch.compile, CUDA graphs; output
#             difference vs fp32), training throughput at 128²
#   course    every notebook in full mode (make test-gpu's runner), one at a time, seconds per notebook; on
#             the pipeline's stage cache, so notebooks 04–07 reuse the stages it trained
# PARTS="pipeline tradeoff" runs only those (a lent machine's minutes are few: docs/testing.md). Each part
# adds its seconds to gpu.txt as it ends; the logs are written line by line, the tarballs after each part
# (course.tar.gz after each notebook), so a run stopped by its time limit brings back what finished.
# OUT gets 8 files at most (the device tool brings back 8): gpu.txt, gpu_util.csv, pipeline.txt,
# metrics.json, bench.txt, course.txt, results.tar.gz (the pipeline's and the benches' figures and JSON) and
# course.tar.gz (executed notebooks, their figures, timings.json). Data caches and checkpoints (GBs in full
# mode) stay in WORK.
# A bare image may lack open_clip_torch, papermill, nbval, ipykernel, ipywidgets & co: put their
# wheels in .gpu_wheels/ (`make gpu-wheels`, for Python 3.11/3.12) and they are installed offline first.
# Rehearsal on a CPU (tests/test_benchmarks.py runs it so; every step, tiny sizes):
#   DEVICE=cpu SETTINGS="n_train=16 …" BENCH_LRN_ARGS="--batches 1" BENCH_TRAIN_ARGS="--steps 2" \
#   COURSE_ONLY="07" INSTALL=0 bash benchmarks/gpu_check.sh
set -euo pipefail
export PYTHONUNBUFFERED=1  # logs line by line: a run stopped by its limit keeps what it printed
OUT=${OUT:-outputs/gpu}
WORK=${WORK:-outputs/gpu_work}
PIPE="$WORK/course/pipeline"
PY=${PY:-$(command -v python3 || command -v python || true)}  # the device image has python3 alone
if [ -z "$PY" ]; then
  echo "gpu_check.sh: no python3 or python on PATH: set PY to the Python that has torch" >&2
  exit 2
fi
PARTS=${PARTS:-pipeline tradeoff bench course}
read -r -a PART_LIST <<< "$PARTS"
if [ ${#PART_LIST[@]} = 0 ]; then
  echo "gpu_check.sh: PARTS='$PARTS' names no part (the parts: pipeline tradeoff bench course)" >&2
  exit 2
fi
piped=0  # checked before anything runs: a lent GPU's minutes never go into a typo
for part in "${PART_LIST[@]}"; do
  case $part in
    pipeline) piped=1 ;;
    tradeoff)
      if [ $piped = 0 ] && [ ! -f "$PIPE/metrics.json" ]; then
        echo "gpu_check.sh: part tradeoff needs the pipeline's stages in $PIPE: run PARTS='pipeline tradeoff'" >&2
        exit 2
      fi ;;
    bench | course) ;;
    *) echo "gpu_check.sh: unknown part '$part' in PARTS='$PARTS' (the parts: pipeline tradeoff bench course)" >&2
       exit 2 ;;
  esac
done
DEVICE=${DEVICE:-cuda}
SETTINGS=${SETTINGS:-}  # KEY=VALUE … for the pipeline, the trade-off and notebooks 04–07 (empty: full mode)
BENCH_LRN_ARGS=${BENCH_LRN_ARGS:-}
BENCH_TRAIN_ARGS=${BENCH_TRAIN_ARGS:-}
COURSE_ONLY=${COURSE_ONLY:-}  # substrings of notebook names (empty: every notebook)
SET=()
[ -n "$SETTINGS" ] && read -r -a SET <<< "--set $SETTINGS"
read -r -a ONLY <<< "$COURSE_ONLY"
mkdir -p "$OUT" "$WORK"
INSTALL=${INSTALL:-1}  # 0: use the Python environment as it is (the CPU rehearsal)
if [ "$INSTALL" = 1 ] && [ -d .gpu_wheels ]; then
  $PY -m pip install -q --no-index --find-links .gpu_wheels open_clip_torch papermill ipykernel ipywidgets
fi
HOW="the Python environment as it is (INSTALL=0)"
if [ "$INSTALL" = 1 ]; then
  # the image's own setuptools builds it (offline); one older than 77 refuses pyproject's SPDX licence: run from here
  if $PY -m pip install -q --no-deps --no-build-isolation -e . 2>/dev/null; then HOW="pip install -e ."
  else export PYTHONPATH=$PWD; HOW="PYTHONPATH=$PWD (pip install -e . failed with the image's setuptools)"; fi
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
echo "spikeclip_lite from: $HOW" | tee -a "$OUT/gpu.txt"
# /usr/bin/time -v adds the peak memory to the pipeline's log; a bare image may lack it
TIME=()
[ -x /usr/bin/time ] && TIME=(/usr/bin/time -v)
quiet() { grep --line-buffered -v "it/s" || true; }  # tqdm's progress lines out of the logs

part_pipeline() {
  # --clip auto, as the notebooks: offline it is the teaching CLIP, and the stage caches are shared
  ${TIME[@]+"${TIME[@]}"} $PY -m spikeclip_lite pipeline --full --clip auto --device "$DEVICE" \
    --out "$PIPE" ${SET[@]+"${SET[@]}"} 2>&1 | quiet | tee "$OUT/pipeline.txt"
  cp "$PIPE/metrics.json" "$OUT/"
  # which fine step each early-stopping rule keeps on this run's validation log (no training; the curves'
  # figure lands in results.tar.gz); a failure here is logged in pipeline.txt and does not stop the parts after
  $PY benchmarks/early_stopping_replay.py "$PIPE" --tolerance 2 0.03 0 --plot "$PIPE/early_stopping_replay.png" \
    2>&1 | tee -a "$OUT/pipeline.txt" || true
}
part_tradeoff() {
  # texture against aligned PSNR on the same test scenes (no training; appended to pipeline.txt, the figure
  # lands in results.tar.gz)
  $PY benchmarks/texture_tradeoff.py --mode full --clip auto --device "$DEVICE" --out "$PIPE" \
    ${SET[@]+"${SET[@]}"} 2>&1 | quiet | tee -a "$OUT/pipeline.txt" || true
}
part_bench() {
  # shellcheck disable=SC2086  # the bench arguments are words
  { $PY benchmarks/bench_lrn.py --device "$DEVICE" --out "$WORK/bench" $BENCH_LRN_ARGS; \
    $PY benchmarks/bench_train.py --device "$DEVICE" --out "$WORK/bench" $BENCH_TRAIN_ARGS; } 2>&1 | tee "$OUT/bench.txt"
}
part_course() {
  # one notebook at a time, packed as each ends; a notebook that fails is logged and the next one runs
  if [ ! -f "$PIPE/metrics.json" ]; then
    echo "gpu_check.sh: no pipeline stages in $PIPE: notebooks 04–07 train their own at full size" | tee -a "$OUT/gpu.txt"
  fi
  : > "$OUT/course.txt"
  local nb name key wanted
  for nb in notebooks/[0-9][0-9]_*.ipynb; do
    name=$(basename "$nb" .ipynb)
    wanted=$(( ${#ONLY[@]} == 0 ))
    for key in ${ONLY[@]+"${ONLY[@]}"}; do [[ $name == *"$key"* ]] && wanted=1; done
    [ "$wanted" = 1 ] || continue
    $PY -m spikeclip_lite course --full --device "$DEVICE" --out "$WORK/course" --only "$name" \
      ${SET[@]+"${SET[@]}"} 2>&1 | quiet | tee -a "$OUT/course.txt" || true
    pack course.tar.gz -path course/pipeline -prune -o -path 'course/*' -print
  done
}
pack() {
  # pack NAME FIND-EXPRESSION…: the matching files under WORK (PNG, notebooks, JSON; never data caches or
  # checkpoints) into OUT/NAME, written in WORK first (OUT holds at most 8 files) and then moved
  local name=$1
  shift
  mkdir -p "$WORK/course/pipeline" "$WORK/bench"
  (cd "$WORK" && find course bench "$@" | { grep -E '\.(png|ipynb|json)$' || true; } \
    | { grep -v -e '/data/' -e '/checkpoints/' || true; } | tar czf - -T -) > "$WORK/$name.part"
  mv "$WORK/$name.part" "$OUT/$name"
}

START=$SECONDS
for part in "${PART_LIST[@]}"; do
  began=$SECONDS
  "part_$part"
  [ "$part" = course ] || pack results.tar.gz \( -path 'course/pipeline/*' -o -path 'bench/*' \) -print
  echo "part $part: $((SECONDS - began)) s (ended $((SECONDS - START)) s after the first part began)" | tee -a "$OUT/gpu.txt"
done
ls -la "$OUT"
