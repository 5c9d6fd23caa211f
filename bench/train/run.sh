#!/bin/bash
# Issue 4's training benchmark: cajal's engine and PyTorch (eager and TorchScript, OpenBLAS) on
# one epoch of LeNet-5 on Fashion-MNIST and 50 steps of a 3D U-Net on 1x1x64^3, same thread
# count, in one run; then CT_STEPS steps of the bundled CT model's U-Net (features 8 to 128, 12
# classes) on two 32x96x96 patches, the shape cajal train fine-tunes (no target: it showed a
# layout choice good for the first case and slow for 8 channels). Each tool runs RUNS times, the
# tools taking turns (this machine's speed drifts within minutes); prints every run's JSON line
# with its peak resident memory, then each tool's median and the ratio of medians.
#
#   bench/train/run.sh            THREADS (2), STEPS (50), CT_STEPS (20), RUNS (3)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${BUILD:-$root/build-bench}  # BUILD: an existing build folder to reuse
threads=${THREADS:-2}
steps=${STEPS:-50}
ct_steps=${CT_STEPS:-20}
runs=${RUNS:-3}
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
for case in lenet5 unet3d unet3d_ct; do
  n=$steps
  if [ "$case" = unet3d_ct ]; then n=$ct_steps; fi
  for _ in $(seq "$runs"); do
    measure "$build/bench/train_bench" $case --threads "$threads" --steps "$n"
    measure /usr/bin/python3 "$here/torch_bench.py" $case --threads "$threads" --steps "$n"
    measure /usr/bin/python3 "$here/torch_bench.py" $case --threads "$threads" --steps "$n" \
      --script
  done
done
/usr/bin/python3 - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
for case in sorted({r["case"] for r in rows}):
    tools = {}
    for r in rows:
        if r["case"] == case:
            tools.setdefault(r["tool"], []).append(r)
    median = {t: statistics.median(r["seconds"] for r in rs) for t, rs in tools.items()}
    rss = {t: max(r["peak_rss_mib"] for r in rs) for t, rs in tools.items()}
    best = min((t for t in tools if t != "cajal"), key=median.get)
    def runs(tool):
        return ", ".join(f"{r['seconds']:.2f}" for r in tools[tool])
    print(f"{case}: cajal median {median['cajal']:.2f} s ({runs('cajal')}; {rss['cajal']} MiB), "
          f"best peer {best} median {median[best]:.2f} s ({runs(best)}; {rss[best]} MiB), "
          f"cajal/peer = {median['cajal'] / median[best]:.2f}"
          + (" (no target)" if case == "unet3d_ct_steps" else " (target <= 0.5)"))
PY
rm -f "$results" "$results.rss"
