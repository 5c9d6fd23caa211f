#!/bin/bash
# Issue 3's speed benchmark: cajal's engine, PyTorch (eager and TorchScript) and ONNX Runtime on
# the same production-size models, weights and inputs, on the same thread count, in one run.
# Prints one Markdown table and writes it to bench/engine/results/<date>.md.
#
#   bench/engine/run.sh [CASE ...]        (default: every case of export_production)
#
# Environment: THREADS (2), RUNS (5 timed runs), FAST_RUNS (100, after 10 warm-up runs, for
# LeNet-5, ResNet-18 and the MONAI UNet at 96^3, a few to a few dozen ms each: this machine's
# speed drifts within seconds; 5 runs of the UNet moved its ratio by 0.07, 30 of LeNet-5 after 2
# warm-ups by 0.3), SLOW_RUNS (5, for the 128^3 cases), WARMUP (untimed runs before the others:
# 2, 1 for 128^3), PROFILE=1 also writes a oneDNN verbose
# profile of cajal's forward per case.
# Work files (models, ONNX files, inputs, outputs) go to bench/engine/work/, never committed.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=$here/work
build=$root/build-bench
threads=${THREADS:-2}
runs=${RUNS:-5}
slow_runs=${SLOW_RUNS:-5}
fast_runs=${FAST_RUNS:-100}
all_cases=(lenet5_b256 resnet18_224 unet2d_512 monai_unet3d_96 plain_unet3d_96 monai_unet3d_128
           plain_unet3d_128)
[ $# -gt 0 ] && cases=("$@") || cases=("${all_cases[@]}")

source "$root/bench/common.sh"
bench_env "$threads"

echo "== build (build-bench/, engine_bench and peak_flops)" >&2
bench_build "$root" "$build" engine_bench peak_flops

echo "== onnxruntime-node (bench/engine/node/node_modules)" >&2
if [ ! -d "$here/node/node_modules/onnxruntime-node" ]; then
  (cd "$here/node" && ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund >&2)
fi

echo "== production-size models (tools/export_torch_models.py --production)" >&2
missing=()
for c in "${cases[@]}"; do
  [ -f "$work/cases/$c/model.onnx" ] || missing+=("$c")
done
if [ ${#missing[@]} -gt 0 ]; then
  /usr/bin/python3 "$root/tools/export_torch_models.py" --production "$work" "${missing[@]}" >&2
fi

stamp=$(date -u +%Y-%m-%dT%H%M)
out=$work/results/$stamp
mkdir -p "$out"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
# The peak, measured at the start and after each case: on a loaded machine the largest is nearest
# the truth.
"$build/bench/peak_flops" --threads "$threads" > "$out/peak.json"

# run PEER CASE COMMAND...: one process, its JSON line, its output and its peak RSS.
run() {
  local peer=$1 case=$2
  shift 2
  echo "   $case: $peer" >&2
  /usr/bin/time -f %M -o "$out/$case/$peer.rss" "$@" > "$out/$case/$peer.json" ||
    echo "   $case: $peer failed" >&2
}

# The table of the cases done so far, rewritten after each case so an interrupted run keeps them.
report=$here/results/$(date -u +%F).md
mkdir -p "$here/results"
write_report() {
  local load_after table
  load_after=$(cut -d' ' -f1-3 /proc/loadavg)
  "$build/bench/peak_flops" --threads "$threads" >> "$out/peak.json"
  table=$(/usr/bin/python3 "$here/report.py" "$out" "$out/peak.json")
  {
    echo "# cajal engine vs PyTorch and ONNX Runtime, $(date -u '+%F %H:%M') UTC"
    echo
    echo "bench/engine/run.sh ${cases[*]}; $threads threads for every peer; warm-up excluded;"
    echo "medians of $runs timed runs ($fast_runs for LeNet-5, ResNet-18 and the MONAI UNet at 96^3, $slow_runs for 128^3) after ${WARMUP:-2 (10 for those three, 1 for 128^3)} warm-up runs. $(lscpu | sed -n 's/^Model name: *//p'),"
    echo "$(nproc) cores; load average before $load_before, now $load_after."
    echo "cajal $(git -C "$root" rev-parse --short HEAD) (+ working tree); PyTorch eager and"
    echo "TorchScript (trace, freeze, optimize_for_inference) with OpenBLAS; onnxruntime-node"
    echo "$(node -p "require('$here/node/node_modules/onnxruntime-node/package.json').version")."
    echo
    echo "$table"
    if [ "${PROFILE:-0}" = 1 ]; then
      echo
      echo "cajal's forward by oneDNN primitive (DNNL_VERBOSE=1, summed over one warm-up and one timed forward):"
      for c in "${done_cases[@]}"; do
        echo
        echo "$c:"
        echo
        /usr/bin/python3 "$here/dnnl_profile.py" "$out/$c/dnnl_verbose.txt"
      done
    fi
  } > "$report"
}

done_cases=()
for c in "${cases[@]}"; do
  echo "== $c" >&2
  mkdir -p "$out/$c"
  cp "$work/cases/$c/case.json" "$out/$c/"
  model=$(/usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['model'])" "$out/$c/case.json")
  dims=$(/usr/bin/python3 -c "import json,sys; print(','.join(map(str, json.load(open(sys.argv[1]))['input_shape'])))" "$out/$c/case.json")
  n=$runs warmup=${WARMUP:-2}
  case $c in
    *_128) n=$slow_runs warmup=${WARMUP:-1} ;;
    lenet5_* | resnet18_* | monai_unet3d_96) n=$fast_runs warmup=${WARMUP:-10} ;;
  esac
  run cajal "$c" "$build/bench/engine_bench" "$work/models/$model" --dims "$dims" \
      --input "$work/cases/$c/input.f32" --output "$out/$c/cajal.f32" --threads "$threads" \
      --warmup "$warmup" --runs "$n"
  for mode in eager script; do
    run "torch-$mode" "$c" /usr/bin/python3 "$here/torch_bench.py" "$work" "$c" --mode "$mode" \
        --threads "$threads" --warmup "$warmup" --runs "$n" --output "$out/$c/torch-$mode.f32"
  done
  run onnxruntime "$c" node "$here/node/ort_bench.js" "$work" "$c" --threads "$threads" \
      --warmup "$warmup" --runs "$n" --output "$out/$c/onnxruntime.f32"
  if [ "${PROFILE:-0}" = 1 ]; then
    DNNL_VERBOSE=1 "$build/bench/engine_bench" "$work/models/$model" --dims "$dims" \
        --threads "$threads" --warmup 1 --runs 1 > "$out/$c/dnnl_verbose.txt"
  fi
  done_cases+=("$c")
  write_report
done
cat "$report"
echo "raw results: $out; table: $report" >&2
