#!/usr/bin/python3
"""PyTorch peer of bench/engine: times one model on one input, prints one JSON line.

    torch_bench.py WORK CASE --mode eager|script [--threads 2] [--warmup 2] [--runs 5]
                   [--output Y.f32]

Builds the model of tools/export_torch_models.py with the weights export_production wrote
(WORK/models/NAME/state_dict.pt) and reads WORK/cases/CASE/input.f32, so PyTorch sees the very
weights and input cajal and ONNX Runtime see. --mode script: torch.jit.trace, torch.jit.freeze
and torch.jit.optimize_for_inference. Warm-up runs are not timed.
"""
import argparse
import json
import pathlib
import statistics
import sys
import time

import numpy as np
import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "tools"))
import export_torch_models as zoo  # noqa: E402


def loaded_blas():
    """The BLAS and LAPACK libraries mapped into this process."""
    names = set()
    with open("/proc/self/maps") as maps:
        for line in maps:
            path = line.split()[-1]
            if "blas" in path or "lapack" in path:
                names.add(path)
    return sorted(names)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("work", type=pathlib.Path)
    parser.add_argument("case")
    parser.add_argument("--mode", choices=["eager", "script"], default="eager")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--output", type=pathlib.Path)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    case = json.loads((args.work / "cases" / args.case / "case.json").read_text())
    state = torch.load(args.work / "models" / case["model"] / "state_dict.pt")
    model = zoo.make_production_model(case["model"], state)
    raw = np.fromfile(args.work / "cases" / args.case / "input.f32", dtype="<f4")
    x = torch.from_numpy(raw.reshape(case["input_shape"]).copy())

    with torch.no_grad():
        if args.mode == "script":
            model = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(model, x)))
        for _ in range(args.warmup):
            y = model(x)
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            y = model(x)
            times.append((time.perf_counter() - start) * 1e3)
    if args.output:
        y.contiguous().numpy().astype("<f4").tofile(args.output)
    print(json.dumps({"peer": f"torch-{args.mode}", "threads": torch.get_num_threads(),
                      "warmup": args.warmup, "runs": args.runs,
                      "median_ms": statistics.median(times),
                      "times_ms": [round(t, 3) for t in times], "blas": loaded_blas(),
                      "torch": torch.__version__}))


if __name__ == "__main__":
    main()
