#!/usr/bin/env bash
# README's first command: installs what cajal needs, builds it, and runs the main job on
# sample_data/. Run from anywhere, as root on Debian 12 (or with sudo).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install_deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCAJAL_BUILD_TESTS=OFF >/dev/null
cmake --build build --target cajal -j "$(nproc)"
mkdir -p out
echo "== cajal info sample_data/ct" >&2
build/apps/cajal info sample_data/ct
echo "== cajal convert sample_data/ct out/ct.nii.gz" >&2
build/apps/cajal convert sample_data/ct out/ct.nii.gz
echo "outputs are in $(pwd)/out" >&2
