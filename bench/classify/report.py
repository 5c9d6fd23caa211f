#!/usr/bin/python3
"""Turns what bench/classify/run.sh collected into its Markdown report.

    report.py RESULTS_DIR

RESULTS_DIR holds cajal.txt (one line per timed `cajal classify` run: wall seconds, peak RSS in
KiB, report.json's "timings_seconds" as JSON), torch.json (torch_classify.py's line), inspect.json (`cajal model
inspect --json`: FLOPs of one region's forward) and peak.json (bench/peak/peak_flops lines; the
largest is the peak). FLOPs are cajal's for both peers (the same work per region). The ratio is
cajal's regions/s over PyTorch's (above 1: cajal is faster).
"""
import json
import pathlib
import statistics
import sys


def main():
    results = pathlib.Path(sys.argv[1])
    runs = []
    for line in (results / "cajal.txt").read_text().splitlines():
        wall, rss, timings = line.split(" ", 2)
        runs.append({"wall_s": float(wall), "rss_kib": int(rss),
                     "timings_s": json.loads(timings)})
    torch = json.loads((results / "torch.json").read_text())
    flops = json.loads((results / "inspect.json").read_text())["flops"]
    peaks = [json.loads(line) for line in (results / "peak.json").read_text().splitlines() if line]
    peak = max(peaks, key=lambda p: p["gflops"])
    regions = torch["regions"]  # those of the last cajal run's report.json

    def median(key):
        return statistics.median(r["timings_s"].get(key, float("nan")) for r in runs)

    wall = statistics.median(r["wall_s"] for r in runs)
    network = median("inference")
    best = torch["best"]
    rows = [("cajal classify, end to end (wall)", wall, f"{len(runs)} runs"),
            ("cajal, network only (report.json `inference`)", network, f"{len(runs)} runs"),
            (f"PyTorch {torch['torch']}, network only: {best['mode']}, {best['format']}, batch "
             f"{best['batch']}", best["median_s"], f"{len(best['seconds'])} passes")]
    work = flops * regions
    print(f"{regions} regions of {'x'.join(map(str, torch['input_shape']))}, "
          f"{flops / 1e6:.1f} MFLOP each (`cajal model inspect`); FP32 peak "
          f"(bench/peak/peak_flops, {peak['threads']} threads, {peak['isa']}, the larger of "
          f"{', '.join(str(p['gflops']) for p in peaks)}): {peak['gflops']:.0f} GFLOP/s.")
    print()
    print("| what | median s | regions/s | GFLOP/s | % of peak | of |")
    print("|---|---:|---:|---:|---:|---|")
    for what, seconds, of in rows:
        gflops = work / seconds / 1e9
        print(f"| {what} | {seconds:.3f} | {regions / seconds:.1f} | {gflops:.2f} | "
              f"{100 * gflops / peak['gflops']:.1f} | {of} |")
    print()
    print(f"**cajal / PyTorch, regions/s: {best['median_s'] / network:.2f} on the network alone; "
          f"{best['median_s'] / wall:.2f} for cajal's whole command against PyTorch's network.**")
    print()
    stages = ", ".join(f"{k} {median(k):.3f} s" for k in runs[0]["timings_s"] if k != "total")
    outside = wall - median("total")
    print(f"cajal's stages (report.json, medians): {stages}; outside them (start, model load and "
          f"prepare, writing the outputs) {outside:.3f} s; peak RSS "
          f"{max(r['rss_kib'] for r in runs) / 1024:.0f} MiB. `regions` = reading the mask, "
          f"finding the regions and cutting the crops. cajal runs its network 16 regions at a "
          f"time, the last batch padded with zeros.")
    print()
    print(f"Agreement: max |p_PyTorch - p_cajal| = {torch['max_abs_dp_end_to_end']:.1e} over the "
          f"{regions} regions (PyTorch on crops cut as cajal cuts them vs cajal's report), "
          f"{torch['max_abs_dp_network']:.1e} on the network alone (`cajal model run`, 64 of the "
          f"crops); limit 1e-3.")
    print()
    print(f"PyTorch's configurations (one pass each over all {regions} regions, then "
          f"{len(best['seconds'])} passes of the three fastest; seconds, median where several):")
    print()
    print("| mode | format | batch | passes | s | regions/s | max abs dp vs eager |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for c in sorted(torch["configs"], key=lambda c: c["median_s"]):
        print(f"| {c['mode']} | {c['format']} | {c['batch']} | {len(c['seconds'])} | "
              f"{c['median_s']:.3f} | {regions / c['median_s']:.1f} | {c['max_abs_dp']:.1e} |")


if __name__ == "__main__":
    main()
