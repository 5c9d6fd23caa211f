#!/bin/bash
# Issue 4's training benchmark: cajal's engine and PyTorch (eager and TorchScript, OpenBLAS) on
# one epoch of LeNet-5 on Fashion-MNIST and 50 steps of a 3D U-Net on 1x1x64^3, same thread
# count, in one run. Prints each tool's JSON line with its peak resident memory, then the ratios.
#
#   bench/train/run.sh            THREADS (2), STEPS (50)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${BUILD:-$root/build-bench}  # BUILD: an existing build folder to reuse
threads=${THREADS:-2}
steps=${STEPS:-50}
source "$root/bench/common.sh"
bench_env "$threads"
bench_build "$root" "$build" train_bench

results=$(mktemp)
measure() {  # command... -> its JSON line with "peak_rss_mib" added
  local rss out
  out=$(/usr/bin/time -f '%M' -o "$results.rss" "$@")
  rss=$(cat "$results.rss")
  /usr/bin/python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d["peak_rss_mib"]=round(int(sys.argv[2])/1024); print(json.dumps(d))' "$out" "$rss" | tee -a "$results"
}
for case in lenet5 unet3d; do
  measure "$build/bench/train_bench" $case --threads "$threads" --steps "$steps"
  measure /usr/bin/python3 "$here/torch_bench.py" $case --threads "$threads" --steps "$steps"
  measure /usr/bin/python3 "$here/torch_bench.py" $case --threads "$threads" --steps "$steps" --script
done
/usr/bin/python3 - "$results" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
for case in sorted({r["case"] for r in rows}):
    mine = [r for r in rows if r["case"] == case and r["tool"] == "cajal"][0]
    peers = [r for r in rows if r["case"] == case and r["tool"] != "cajal"]
    best = min(peers, key=lambda r: r["seconds"])
    print(f"{case}: cajal {mine['seconds']:.2f} s ({mine['peak_rss_mib']} MiB), best peer "
          f"{best['tool']} {best['seconds']:.2f} s ({best['peak_rss_mib']} MiB), "
          f"cajal/peer = {mine['seconds'] / best['seconds']:.2f} (target <= 0.5)")
PY
rm -f "$results" "$results.rss"
