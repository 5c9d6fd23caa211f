#!/usr/bin/python3
"""Turns the JSON lines run.sh collected into one Markdown table.

    report.py RESULTS_DIR PEAK_JSON   (PEAK_JSON: peak_flops lines; the largest is the peak)

RESULTS_DIR/CASE/PEER.json (one JSON line of engine_bench, torch_bench.py or ort_bench.js),
PEER.rss (peak resident set of that process in KiB, from /usr/bin/time -f %M) and PEER.f32 (its
output). FLOPs are cajal's Net::flops() for every peer (the same work). The ratio is a peer's
median over the best median among the other peers (cajal < 1 means cajal is faster). The error
is max|y - y_torch| / max|y_torch| against PyTorch eager, the measure the engine tests use.
"""
import json
import pathlib
import sys

import numpy as np

PEERS = ["cajal", "torch-eager", "torch-script", "onnxruntime"]


def read_peer(folder, peer):
    result = folder / f"{peer}.json"
    if not result.exists() or not result.read_text().strip():
        return None
    data = json.loads(result.read_text().strip().splitlines()[-1])
    rss = folder / f"{peer}.rss"
    data["rss_mib"] = int(rss.read_text().split()[-1]) / 1024 if rss.exists() else float("nan")
    output = folder / f"{peer}.f32"
    data["output"] = np.fromfile(output, dtype="<f4") if output.exists() else None
    return data


def relative_error(got, expected):
    if got is None or expected is None or got.shape != expected.shape:
        return float("nan")
    return float(np.max(np.abs(got.astype(np.float64) - expected)) / max(np.max(np.abs(expected)), 1e-30))


def main():
    results = pathlib.Path(sys.argv[1])
    peaks = [json.loads(line) for line in pathlib.Path(sys.argv[2]).read_text().split("\n") if line]
    peak = max(peaks, key=lambda p: p["gflops"])
    peak_gflops = peak["gflops"]
    lines = [f"FP32 peak (bench/peak/peak_flops, {peak['threads']} threads, {peak['isa']}, the larger "
             f"of {', '.join(str(p['gflops']) for p in peaks)} measured during the run): "
             f"{peak_gflops:.0f} GFLOP/s", "",
             "| model, input | peer | median ms | runs | vs best other | GFLOP/s | % of peak "
             "| peak RSS MiB | rel. error vs torch |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for folder in sorted(p for p in results.iterdir() if p.is_dir()):
        case = json.loads((folder / "case.json").read_text())
        peers = {p: read_peer(folder, p) for p in PEERS}
        peers = {p: d for p, d in peers.items() if d is not None}
        flops = peers["cajal"]["flops"] if "cajal" in peers else float("nan")
        reference = peers.get("torch-eager", {}).get("output")
        title = f"{case['model']} {'x'.join(map(str, case['input_shape']))}"
        for peer, d in peers.items():
            others = [o["median_ms"] for p, o in peers.items() if p != peer]
            ratio = d["median_ms"] / min(others) if others else float("nan")
            gflops = flops / (d["median_ms"] * 1e6)
            error = "" if peer == "torch-eager" else f"{relative_error(d['output'], reference):.1e}"
            lines.append(f"| {title} | {peer} | {d['median_ms']:.1f} | {d['runs']} | {ratio:.2f}x "
                         f"| {gflops:.0f} | {100 * gflops / peak_gflops:.0f} % | {d['rss_mib']:.0f} "
                         f"| {error} |")
            title = ""
    print("\n".join(lines))


if __name__ == "__main__":
    main()
