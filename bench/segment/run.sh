#!/usr/bin/env bash
# Speed and memory of `cajal segment` end to end (issue 5): a 512 x 512 x 300 CT (0.8 mm
# in-plane, 2.5 mm slices) made by `cajal phantom` as a DICOM series, segmented by the bundled CT
# model on 2 threads. Prints the wall time, the peak resident memory, the time of each stage
# (read, preprocess, inference, postprocess, write) and the share outside inference; targets:
# under 60 s, under 2 GB, and under 15 % outside the network. Run on a quiet machine.
#
#   bash bench/segment/run.sh [CAJAL_BINARY] [WORK_DIR] [RUNS]
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cajal=${1:-$repo/build/apps/cajal}
work=${2:-$repo/out/bench-segment}
runs=${3:-3}
mkdir -p "$work"
if [ ! -d "$work/phantom/case_0000/dicom" ]; then
  "$cajal" phantom -o "$work/phantom" --count 1 --seed 4242 --size 512x512x300 \
    --spacing 0.8x2.5 --orientation LPS --dicom --no-nifti --threads 2 >/dev/null
fi
for r in $(seq 1 "$runs"); do
  rm -rf "$work/out"
  /usr/bin/time -f '%e %M' -o "$work/time.txt" env OMP_WAIT_POLICY=passive \
    "$cajal" segment "$work/phantom/case_0000/dicom" -o "$work/out" --threads 2 >"$work/stdout.txt" 2>"$work/stderr.txt"
  read -r wall rss_kb <"$work/time.txt"
  /usr/bin/python3 - "$work/out/report.json" "$wall" "$rss_kb" "$r" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
wall, rss_kb, run = float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
t = report["timings_seconds"]
stages = " ".join(f"{k} {v:.2f}" for k, v in t.items() if k != "total")
outside = 1.0 - t.get("inference", 0.0) / wall
print(f"run {run}: wall {wall:.1f} s, peak RSS {rss_kb / 1048576:.2f} GiB, outside inference "
      f"{100 * outside:.1f} %; stages (s): {stages}; mode {report.get('inference', {}).get('mode')}")
PY
done
