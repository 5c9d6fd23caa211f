#!/usr/bin/env bash
# Benchmark (not a test): time loading a 300-slice 512x512 CT series with `cajal convert` against
# dcm2niix on the same files, both writing uncompressed .nii, page cache warm for both.
#
#   bench/dicom_load/run.sh [CAJAL_BIN]        (default: build/apps/cajal, then build-*/apps/cajal)
#   REPS=7 WORK=/tmp/cajal_bench_dicom_load bench/dicom_load/run.sh
#
# Needs /usr/bin/python3 with numpy+nibabel, plastimatch, dcm2niix, GNU time (/usr/bin/time).
# Prints the median wall time of each, the ratio cajal/dcm2niix, and each one's peak RSS.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
reps="${REPS:-5}"
work="${WORK:-/tmp/cajal_bench_dicom_load}"

cajal="${1:-}"
if [ -z "$cajal" ]; then
  for c in "$repo"/build/apps/cajal "$repo"/build-*/apps/cajal; do
    [ -x "$c" ] && { cajal="$c"; break; }
  done
fi
if [ -z "$cajal" ] || [ ! -x "$cajal" ]; then
  echo "run.sh: cajal binary not found; pass its path" >&2
  exit 1
fi
# /usr/bin/time is Debian's package 'time'; the rest comes with tools/install_deps.sh --bench.
for tool in plastimatch dcm2niix /usr/bin/time /usr/bin/python3; do
  if ! command -v "$tool" >/dev/null; then
    echo "run.sh: $tool not found (tools/install_deps.sh --bench; apt-get install time)" >&2
    exit 1
  fi
done

series="$work/series"
mkdir -p "$work"
if [ ! -f "$work/series.complete" ]; then
  echo "making the 512x512x300 series in $series ..." >&2
  rm -rf "$series"
  /usr/bin/python3 "$here/make_series.py" "$work/volume.nii"
  plastimatch convert --input "$work/volume.nii" --output-dicom "$series" --modality CT >/dev/null
  rm -f "$work/volume.nii"
  touch "$work/series.complete"
fi
nfiles=$(find "$series" -name '*.dcm' | wc -l)
echo "series: $series ($nfiles files, $(du -sh "$series" | cut -f1))"

out="$work/out"
run_cajal() {
  rm -rf "$out" && mkdir -p "$out"
  "$cajal" --quiet convert "$series" "$out/cajal.nii"
}
run_dcm2niix() {
  rm -rf "$out" && mkdir -p "$out"
  dcm2niix -z n -b n -f d2n -o "$out" "$series" >/dev/null
}

# One run each, unmeasured: warms the page cache (and checks that both produce the same volume).
cat "$series"/*.dcm >/dev/null
run_cajal
mv "$out/cajal.nii" "$work/check_cajal.nii"
run_dcm2niix
mv "$out/d2n.nii" "$work/check_d2n.nii"
/usr/bin/python3 - "$work/check_cajal.nii" "$work/check_d2n.nii" <<'PY'
import sys
import nibabel as nib
import numpy as np
a, b = (nib.as_closest_canonical(nib.load(p)) for p in sys.argv[1:3])
same = a.shape == b.shape and np.allclose(a.affine, b.affine, atol=1e-3) and \
    np.array_equal(np.asanyarray(a.dataobj), np.asanyarray(b.dataobj))
print("outputs agree (voxels, affine to 1e-3 mm):", "yes" if same else "NO")
sys.exit(0 if same else 1)
PY
rm -f "$work/check_cajal.nii" "$work/check_d2n.nii"

# measure NAME FUNCTION: appends "wall_ms peak_rss_kb cpu_user_s cpu_sys_s" to $work/NAME.times.
# CPU time is reported too: on a shared machine it moves less than wall time.
measure() {
  local t0 t1
  t0=$(date +%s%N)
  /usr/bin/time -f "%M %U %S" -o "$work/rss" \
    bash -c "$(declare -f "$2"); cajal='$cajal' series='$series' out='$out' $2"
  t1=$(date +%s%N)
  echo "$(( (t1 - t0) / 1000000 )) $(tail -1 "$work/rss")" >> "$work/$1.times"
}
rm -f "$work"/cajal.times "$work"/dcm2niix.times
for i in $(seq "$reps"); do   # interleaved, so drift in machine load hits both alike
  measure cajal run_cajal
  measure dcm2niix run_dcm2niix
done

/usr/bin/python3 - "$work" "$reps" <<'PY'
import statistics, sys
work, reps = sys.argv[1], int(sys.argv[2])
res = {}
for name in ("cajal", "dcm2niix"):
    rows = [l.split() for l in open(f"{work}/{name}.times")]
    wall = [int(r[0]) / 1000 for r in rows]
    cpu = [float(r[2]) + float(r[3]) for r in rows]
    rss = max(int(r[1]) for r in rows) / 1024
    res[name] = (statistics.median(wall), statistics.median(cpu), rss)
    print(f"{name:9s} median wall {res[name][0]:.3f} s, median CPU {res[name][1]:.2f} s over "
          f"{reps} runs (wall: {', '.join(f'{w:.2f}' for w in wall)}), peak RSS {rss:.0f} MiB")
c, d = res["cajal"], res["dcm2niix"]
print(f"ratio cajal/dcm2niix: {c[0] / d[0]:.2f}x wall, {c[1] / d[1]:.2f}x CPU, "
      f"{c[2] / d[2]:.2f}x peak RSS")
PY
