"""`cajal model run` and `cajal model inspect --json` on the PyTorch fixtures of
tests/engine/fixtures (written by tools/export_torch_models.py): each folder holds the model, and
io.safetensors holds the input and PyTorch's output.

    test_model_cli.py --cajal BIN --work DIR CASE FIXTURE_DIR

CASE is run_matches_pytorch (the input through .npy files, relative error <= 1e-4 against
PyTorch's output) or inspect_counts_parameters (the parameter count against the tensors of
weights.safetensors, which are PyTorch's state_dict less num_batches_tracked). Exits 0 or 1.
Run with Debian's /usr/bin/python3 (numpy).
"""
import argparse
import json
import os
import shutil
import struct
import subprocess
import sys

import numpy as np

TOLERANCE = 1e-4


class Fail(AssertionError):
    pass


def require(cond, message):
    """An assertion that stays on under python -O."""
    if not cond:
        raise Fail(message)


def safetensors_header(path):
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
    header.pop("__metadata__", None)
    return header, 8 + length


def read_safetensors(path):
    """name -> float32 array, read with numpy alone."""
    header, start = safetensors_header(path)
    with open(path, "rb") as f:
        data = f.read()[start:]
    tensors = {}
    for name, entry in header.items():
        require(entry["dtype"] == "F32", f"{path}: tensor {name}: expected F32, got {entry['dtype']}")
        begin, end = entry["data_offsets"]
        tensors[name] = np.frombuffer(data[begin:end], dtype="<f4").reshape(entry["shape"])
    return tensors


def cajal(binary, *args):
    result = subprocess.run([binary, *args], capture_output=True, text=True, timeout=110)
    require(result.returncode == 0,
            f"cajal {' '.join(args)}: expected exit code 0, got {result.returncode}; "
            f"stderr: {result.stderr.strip()}")
    return result


def model_io(fixture):
    model = json.load(open(os.path.join(fixture, "model.json")))
    io = read_safetensors(os.path.join(fixture, "io.safetensors"))
    return io[model["inputs"][0]], io[model["outputs"][0]], model["outputs"][0]


def relative_error(got, expected):
    """max |got - expected| / max |expected|, as tests/engine's harness computes it."""
    scale = max(float(np.max(np.abs(expected))), 1e-30)
    return float(np.max(np.abs(got.astype(np.float64) - expected))) / scale


def run_matches_pytorch(binary, fixture, work):
    x, expected, output_blob = model_io(fixture)
    np.save(os.path.join(work, "x.npy"), np.ascontiguousarray(x, dtype="<f4"))
    out = os.path.join(work, "y.npy")
    cajal(binary, "model", "run", fixture, "--input", os.path.join(work, "x.npy"),
          "--output", out, "--output-blob", output_blob, "--threads", "2")
    got = np.load(out, allow_pickle=False)
    require(got.dtype == np.dtype("<f4"), f"output dtype: expected float32, got {got.dtype}")
    require(got.shape == expected.shape,
            f"output shape: expected {list(expected.shape)} (PyTorch's), got {list(got.shape)}")
    error = relative_error(got, expected)
    require(error <= TOLERANCE,
            f"output '{output_blob}': expected relative error <= {TOLERANCE} against PyTorch, "
            f"got {error:.3g}")
    leftovers = sorted(set(os.listdir(work)) - {"x.npy", "y.npy"})
    require(not leftovers, f"work folder: expected only x.npy and y.npy, got also {leftovers}")


def inspect_counts_parameters(binary, fixture, work):
    x, expected, output_blob = model_io(fixture)
    header, _ = safetensors_header(os.path.join(fixture, "weights.safetensors"))
    torch_count = int(sum(np.prod(entry["shape"], dtype=np.int64) for entry in header.values()))
    shape = ",".join(str(n) for n in x.shape)
    result = cajal(binary, "model", "inspect", fixture, "--input-shape", shape, "--json")
    report = json.loads(result.stdout)
    require(report["parameter_count"] == torch_count,
            f"parameter_count: expected {torch_count} (PyTorch's state_dict), got "
            f"{report['parameter_count']}")
    per_layer = sum(layer["parameter_count"] for layer in report["layers"])
    require(per_layer == torch_count,
            f"sum of the layers' parameter_count: expected {torch_count}, got {per_layer}")
    shapes = {layer["output"]: layer["output_shape"] for layer in report["layers"]}
    require(shapes.get(output_blob) == list(expected.shape),
            f"output shape of '{output_blob}': expected {list(expected.shape)} (PyTorch's), got "
            f"{shapes.get(output_blob)}")
    require(report["flops"] > 0 and report["peak_activation_bytes"] >= 4 * x.size,
            f"flops and peak_activation_bytes: expected positive, got {report['flops']} and "
            f"{report['peak_activation_bytes']}")


CASES = {"run_matches_pytorch": run_matches_pytorch,
         "inspect_counts_parameters": inspect_counts_parameters}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cajal", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("case", choices=sorted(CASES))
    parser.add_argument("fixture")
    args = parser.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    try:
        CASES[args.case](args.cajal, args.fixture, args.work)
    except Fail as e:
        print(f"FAIL: {e}", file=sys.stderr)
        return 1
    print(f"ok: {args.case} {os.path.basename(args.fixture)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
