#!/usr/bin/env bash
# README's second command: installs what cajal and its tests need, builds everything with
# warnings as errors, runs the main job on sample_data/ as README's first command does, and runs
# the whole test suite (unit, integration against independent tools, formatting). Run from anywhere, as root on Debian 12 (or with sudo).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install_deps.sh --test
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCAJAL_WERROR=ON -DCAJAL_IT_REQUIRE_TOOLS=ON >/dev/null
cmake --build build -j "$(nproc)"
mkdir -p out
echo "== cajal segment sample_data/ct -o out/sample --masks" >&2
build/apps/cajal segment sample_data/ct -o out/sample --masks
ctest --test-dir build --output-on-failure -j "$(nproc)"
