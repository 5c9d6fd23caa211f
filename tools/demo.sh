#!/usr/bin/env bash
# README's first command: installs what cajal needs, builds it, and runs the main job on
# sample_data/: segments the sample CT series with the bundled CT organ model and compares the
# result with the sample's reference labels. Run from anywhere, as root on Debian 12 (or sudo).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install_deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCAJAL_BUILD_TESTS=OFF >/dev/null
cmake --build build --target cajal -j "$(nproc)"
mkdir -p out
echo "== cajal segment sample_data/ct -o out/sample --masks" >&2
build/apps/cajal segment sample_data/ct -o out/sample --masks
echo "== cajal evaluate out/sample/labels.nii.gz sample_data/labels.nii.gz" >&2
build/apps/cajal evaluate out/sample/labels.nii.gz sample_data/labels.nii.gz \
  --labels 1=External,2=Lung_L,3=Lung_R,4=Heart,5=Liver,6=Spleen,7=Kidney_L,8=Kidney_R,9=Esophagus,10=SpinalCord,11=Aorta \
  --json out/sample/evaluation.json
echo "outputs are in $(pwd)/out/sample: labels.nii.gz, masks/, report.json, qa/, evaluation.json" >&2
