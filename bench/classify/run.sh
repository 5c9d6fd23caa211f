#!/bin/bash
# Issue 6's speed benchmark: `cajal classify` on COUNT (1000) lesion regions of one study, and the
# same network with the same weights in PyTorch, in its fastest configuration here, on the same
# input tensors and thread count, in one run. Prints regions per second, the ratio, GFLOP/s and
# the fraction of this machine's FP32 peak, and writes them to bench/classify/results/<date>.md.
#
#   bench/classify/run.sh [MODEL]        (default: models/lesion-classifier)
#
# Environment: THREADS (2), RUNS (5 timed cajal runs after one warm-up, half of them before
# PyTorch's and half after; PyTorch: 3 timed passes of its three fastest configurations), COUNT (1000 regions), BUILD (build-bench/: an existing
# build folder to reuse), BATCHES (16,32,64,all), MODES (eager,inference,script,optimized),
# FORMATS (contiguous,channels_last): PyTorch's configurations, see torch_classify.py.
# Work files (the study, the masks, outputs) go to bench/classify/work/, never committed.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
model=${1:-$root/models/lesion-classifier}
[ -f "$model/model.json" ] || { echo "run.sh: no model folder at '$model'" >&2; exit 1; }
model=$(cd "$model" && pwd)
work=$here/work
build=${BUILD:-$root/build-bench}
threads=${THREADS:-2}
runs=${RUNS:-5}
count=${COUNT:-1000}
batches=${BATCHES:-16,32,64,all}
modes=${MODES:-eager,inference,script,optimized}
formats=${FORMATS:-contiguous,channels_last}
cajal=$build/apps/cajal

# PyTorch's BLAS as in bench/engine and bench/train (its 3D convolutions are oneDNN's anyway).
source "$root/bench/common.sh"
bench_env "$threads"
export OMP_WAIT_POLICY=passive

echo "== build ($build: cajal and peak_flops)" >&2
bench_build "$root" "$build" cajal peak_flops

echo "== study: 256 x 256 x 120 phantom CT (1 x 1 x 1.5 mm) and $count cubes of 3^3 voxels" >&2
study=$work/study/case_0000/ct.nii.gz
if [ ! -f "$study" ]; then
  "$cajal" phantom -o "$work/study" --count 1 --seed 4242 --size 256x256x120 --spacing 1.0x1.5 \
      --orientation LPS --lesions --threads "$threads" >&2
fi
mask=$work/rois_$count.nii.gz
[ -f "$mask" ] || /usr/bin/python3 "$here/make_rois.py" "$study" "$mask" --count "$count" >&2

stamp=$(date -u +%Y-%m-%dT%H%M)
out=$work/results/$stamp
mkdir -p "$out"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
# The peak, measured before and after: on a loaded machine the larger is nearer the truth.
"$build/bench/peak_flops" --threads "$threads" > "$out/peak.json"
"$cajal" model inspect "$model" --json > "$out/inspect.json"

# classify 0|1: one `cajal classify` run; with 1, its line is appended to cajal.txt: wall s, peak
# RSS KiB, report.json's timings.
classify() {
  rm -rf "$out/classify"
  /usr/bin/time -f '%e %M' -o "$out/time.txt" "$cajal" classify "$study" --roi "$mask" \
      --model "$model" --threads "$threads" --no-png -o "$out/classify" > /dev/null
  if [ "$1" = 1 ]; then
    /usr/bin/python3 -c 'import json, sys; print(sys.argv[2], json.dumps(json.load(open(
        sys.argv[1]))["timings_seconds"]))' "$out/classify/report.json" "$(cat "$out/time.txt")" |
      tee -a "$out/cajal.txt" >&2
  fi
}

# Half of cajal's runs before PyTorch's and half after, so that on a machine whose load drifts
# both peers see the same mix.
echo "== cajal classify: 1 warm-up, then $(( (runs + 1) / 2 )) timed runs" >&2
classify 0
for _ in $(seq 1 $(( (runs + 1) / 2 ))); do classify 1; done

echo "== PyTorch on the same inputs" >&2
/usr/bin/python3 "$here/torch_classify.py" "$model" "$out/classify/report.json" --cajal "$cajal" \
    --work "$out" --threads "$threads" --runs 3 --batches "$batches" \
    --modes "$modes" --formats "$formats" > "$out/torch.json" ||
  { echo "PyTorch peer failed or disagreed with cajal: $out/torch.json" >&2; exit 1; }

echo "== cajal classify: $(( runs / 2 )) more timed runs" >&2
for _ in $(seq 1 $(( runs / 2 ))); do classify 1; done
"$build/bench/peak_flops" --threads "$threads" >> "$out/peak.json"
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

report=$here/results/$(date -u +%F).md
mkdir -p "$here/results"
{
  echo "# cajal classify vs PyTorch, $(date -u '+%F %H:%M') UTC"
  echo
  echo "bench/classify/run.sh $model; $count regions of one study; $threads threads for both;"
  echo "$runs cajal runs after a warm-up; PyTorch modes $modes, formats $formats, batches $batches."
  echo "$(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; load average before $load_before,"
  echo "after $load_after. cajal $(git -C "$root" rev-parse --short HEAD) (+ working tree)."
  echo
  /usr/bin/python3 "$here/report.py" "$out"
} | tee "$report"
echo "raw results: $out; report: $report" >&2
