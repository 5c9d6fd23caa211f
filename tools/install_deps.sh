#!/usr/bin/env bash
# Installs what cajal needs from Debian 12's archive. Idempotent; waits for another apt's lock.
#   tools/install_deps.sh          build and run dependencies
#   tools/install_deps.sh --test   the same plus the reference tools and data the tests use
#   tools/install_deps.sh --bench  the same as --test plus what the benchmarks compare against
set -euo pipefail

want_test=0
want_bench=0
for arg in "$@"; do
  case "$arg" in
    --test) want_test=1 ;;
    --bench) want_test=1; want_bench=1 ;;
    *) echo "install_deps.sh: unknown option '$arg' (expected --test or --bench)" >&2; exit 1 ;;
  esac
done

# ocl-icd-opencl-dev: Debian's dnnl-config.cmake does find_package(OpenCL REQUIRED) (GPU runtime).
build_pkgs=(
  build-essential cmake ninja-build clang-format
  libinsighttoolkit5-dev
  libopencv-core-dev libopencv-imgproc-dev
  libdnnl-dev ocl-icd-opencl-dev nlohmann-json3-dev libdcmtk-dev libssl-dev libcli11-dev zlib1g-dev
  libgtest-dev libgmock-dev libbenchmark-dev
)
# libopencv-imgcodecs-dev: the tests decode cajal's PNG files with OpenCV (cajal writes them
# itself); it brings GDAL and a hundred other libraries, which cajal no longer needs.
test_pkgs=(
  libopencv-imgcodecs-dev
  python3 python3-numpy python3-scipy python3-nibabel python3-pydicom python3-torch python3-onnx python3-sklearn
  plastimatch dcm2niix dicom3tools dcmtk libgdcm-tools
  mricron-data insighttoolkit5-examples dataset-fashion-mnist
)
bench_pkgs=(libopenblas0-openmp time)
# onnxruntime-node comes from the npm registry; use the machine's Node.js if it has one.
command -v npm >/dev/null 2>&1 || bench_pkgs+=(nodejs npm)

pkgs=("${build_pkgs[@]}")
[ "$want_test" = 1 ] && pkgs+=("${test_pkgs[@]}")
[ "$want_bench" = 1 ] && pkgs+=("${bench_pkgs[@]}")

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install_deps.sh: all ${#pkgs[@]} packages already installed" >&2
  exit 0
fi

sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
apt_opts=(-o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)
echo "install_deps.sh: installing ${#missing[@]} packages: ${missing[*]}" >&2
$sudo apt-get "${apt_opts[@]}" update -q
$sudo apt-get "${apt_opts[@]}" install -y -q --no-install-recommends "${missing[@]}"
