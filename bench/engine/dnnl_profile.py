#!/usr/bin/python3
"""Sums a DNNL_VERBOSE=1 log by primitive kind and implementation, as a Markdown table.

    dnnl_profile.py VERBOSE_LOG

Activation reorders between layers show up as many `reorder` rows; slow kernels (the older
transposed-convolution kernel, `gemm` or `ref` implementations) by their implementation name.
"""
import collections
import sys


def main():
    total = collections.defaultdict(lambda: [0, 0.0])
    with open(sys.argv[1]) as log:
        for line in log:
            fields = line.strip().split(",")
            if len(fields) < 6 or fields[1] != "exec":
                continue
            key = (fields[3], fields[4])
            total[key][0] += 1
            total[key][1] += float(fields[-1])
    all_ms = sum(ms for _, ms in total.values()) or 1.0
    print("| primitive | implementation | calls | ms | share |")
    print("|---|---|---:|---:|---:|")
    for (kind, impl), (calls, ms) in sorted(total.items(), key=lambda kv: -kv[1][1]):
        print(f"| {kind} | {impl} | {calls} | {ms:.1f} | {100 * ms / all_ms:.0f} % |")


if __name__ == "__main__":
    main()
