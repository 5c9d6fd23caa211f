#!/usr/bin/python3
"""PyTorch peer of bench/classify: the network of a cajal classifier on the regions of one
`cajal classify` run, in several configurations; prints one JSON line.

    torch_classify.py MODEL REPORT.json --cajal CAJAL --work DIR [--threads 2] [--runs 3]
                      [--batches 16,32,64,all] [--modes eager,inference,script,optimized]
                      [--formats contiguous,channels_last]

1. The inputs: each region of REPORT.json (its centre_mm and field_mm, and the image's grid from
   its "input" block) is cut from the input image exactly as pipeline/classify_regions.cpp's
   crop_region cuts it (trilinear at patch_size points spread evenly over the field, nearest
   border value outside, then the model's normalisation), giving the same [N, 1, (D,) H, W]
   tensor cajal fed its network.
2. The check (exit 1 when either exceeds 1e-3): PyTorch's probabilities on those inputs against
   the report's (end to end: inputs and network), and against `cajal model run` on the first 64
   of them written as DIR/check_input.npy (the network alone).
3. The timing: every configuration (mode x memory format x batch size) over all the regions, one
   timed pass each after warm-up, then RUNS timed passes of the three fastest, of which the
   fastest median wins. Modes: eager (eval, no_grad), inference (eval, inference_mode), script (torch.jit.trace +
   torch.jit.freeze), optimized (script + torch.jit.optimize_for_inference). Formats: contiguous
   or channels_last(_3d) for the weights and the input. A last smaller batch is run as it is.
   Every configuration's probabilities are compared with those of step 2.
"""
import argparse
import copy
import json
import pathlib
import statistics
import subprocess
import sys
import time

import nibabel as nib
import numpy as np
import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from torch_graph import load_model  # noqa: E402


def physical_to_index(points, origin, spacing, direction):
    """core::Geometry::physical_to_index for rows of LPS points."""
    return ((points - origin) @ direction) / spacing


def sample(flat, size, index):
    """crop_region's `sample`: trilinear at continuous indices [M, 3], clamped into the image
    (`flat`: the voxels with i fastest, as core::Volume holds them)."""
    c = np.clip(index, 0, size - 1)
    i0 = np.minimum(np.floor(c).astype(np.int64), np.maximum(size - 2, 0))
    t = np.where(size > 1, c - i0, 0.0)
    # i0 + 1 stays inside the image along every axis longer than one voxel.
    stride = np.where(size > 1, [1, size[0], size[0] * size[1]], 0)
    base = i0[:, 0] + i0[:, 1] * size[0] + i0[:, 2] * (size[0] * size[1])
    value = np.zeros(len(index))
    for corner in range(8):
        up = [(corner >> a) & 1 for a in range(3)]
        weight = ((t[:, 0] if up[0] else 1 - t[:, 0]) * (t[:, 1] if up[1] else 1 - t[:, 1]) *
                  (t[:, 2] if up[2] else 1 - t[:, 2]))
        value += weight * np.take(flat, base + int(np.dot(up, stride)))
    return value.astype(np.float32)


def normalise(values, norm):
    """classify_regions.cpp's normalise, in the same precision (double, stored as float)."""
    v = values.astype(np.float64)
    kind = norm.get("kind", "none")
    if kind == "ct":
        low, high = norm["clip_min"], norm["clip_max"]
        if high > low:
            v = np.clip(v, low, high)
        return ((v - norm["mean"]) / norm["std"]).astype(np.float32)
    if kind == "percentile":  # the order statistic at floor(q / 100 * (n - 1)), as nth_element
        low, high = (np.partition(v, k)[k] for k in (
            int(norm.get(q, default) / 100 * (len(v) - 1))
            for q, default in (("lower_percentile", 0.5), ("upper_percentile", 99.5))))
        v = np.clip(v, low, high).astype(np.float32).astype(np.float64)
        kind = "zscore"
    if kind == "zscore":
        mean = v.sum() / len(v)
        std = np.sqrt(max(0.0, (v * v).sum() / len(v) - mean * mean))
        return ((v - mean) * (1 / std if std > 1e-8 else 1.0)).astype(np.float32)
    return v.astype(np.float32)


def crops(report, run):
    """The network's input for every region of the report, [N, 1, (D,) H, W] float32."""
    geometry = report["input"]
    image = np.asarray(nib.load(geometry["path"]).dataobj, dtype=np.float64)
    if list(image.shape) != list(geometry["size"]):
        raise SystemExit(f"torch_classify.py: {geometry['path']} has {image.shape} voxels, the "
                         f"report says {geometry['size']}: read it as cajal does (NIfTI only here)")
    size = np.array(image.shape)
    flat = image.ravel(order="F")
    origin = np.array(geometry["origin"])
    spacing = np.array(geometry["spacing"])
    direction = np.array(geometry["direction"]).reshape(3, 3)
    patch = run["patch_size"]
    three_d = run["spatial_dims"] == 3
    n = np.array([patch[-1], patch[-2], patch[0] if three_d else 1])  # along x, y, z
    z, y, x = np.meshgrid(np.arange(n[2]), np.arange(n[1]), np.arange(n[0]), indexing="ij")
    grid = np.stack([x.ravel(), y.ravel(), z.ravel()], axis=1).astype(np.float64)
    out = np.empty((len(report["regions"]), 1, *patch), dtype=np.float32)
    for r, region in enumerate(report["regions"]):
        step_mm = np.array(region["field_mm"]) / n
        first = np.array(region["centre_mm"]) - 0.5 * (n - 1) * step_mm
        index0 = physical_to_index(first[None], origin, spacing, direction)[0]
        steps = physical_to_index(first[None] + np.diag(step_mm), origin, spacing, direction)
        steps -= index0
        values = sample(flat, size, index0 + grid @ steps)
        out[r, 0] = normalise(values, run.get("normalization", {})).reshape(patch)
    return out


def softmax(logits, temperature):
    z = logits.astype(np.float64) / temperature
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=1, keepdims=True)


def configure(net, mode, fmt, example):
    """The module to time for one configuration (an example batch for tracing)."""
    layout = {5: torch.channels_last_3d, 4: torch.channels_last}[example.dim()]
    net = copy.deepcopy(net)
    if fmt == "channels_last":
        net = net.to(memory_format=layout)
        example = example.contiguous(memory_format=layout)
    if mode in ("script", "optimized"):
        with torch.no_grad():
            net = torch.jit.freeze(torch.jit.trace(net, example).eval())
            if mode == "optimized":
                net = torch.jit.optimize_for_inference(net)
    return net


def forward_all(net, x, batch, mode):
    """Logits of every region, `batch` at a time (the input already in the format)."""
    context = torch.inference_mode() if mode == "inference" else torch.no_grad()
    outs = []
    with context:
        for first in range(0, len(x), batch):
            outs.append(net(x[first:first + batch]))
        return torch.cat(outs).float().contiguous().numpy()


def time_config(base, x, mode, fmt, batch, runs):
    """Seconds of each of `runs` timed passes over all of x after warm-up, and the logits."""
    layout = {5: torch.channels_last_3d, 4: torch.channels_last}[x.dim()]
    xs = x.contiguous(memory_format=layout) if fmt == "channels_last" else x
    net = configure(base, mode, fmt, xs[:batch])
    with (torch.inference_mode() if mode == "inference" else torch.no_grad()):
        # The profiling executor specialises a scripted graph over its first calls.
        for _ in range(3 if mode in ("script", "optimized") else 1):
            net(xs[:batch])
        if len(x) % batch:
            net(xs[len(x) - len(x) % batch:])
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        logits = forward_all(net, xs, batch, mode)
        times.append(time.perf_counter() - start)
    return times, logits


def check_network(args, x, net, temperature):
    """max |p_torch - p_cajal| of `cajal model run` on the first 64 inputs."""
    check = x[:64].numpy()
    np.save(args.work / "check_input.npy", check)
    subprocess.run([str(args.cajal), "model", "run", str(args.model), "--input",
                    str(args.work / "check_input.npy"), "--output",
                    str(args.work / "check_output.npy"), "--threads", str(args.threads)],
                   check=True, stdout=subprocess.DEVNULL)
    cajal = np.load(args.work / "check_output.npy").reshape(len(check), -1)
    with torch.no_grad():
        mine = net(torch.from_numpy(check)).numpy()
    return float(np.abs(softmax(mine, temperature) - softmax(cajal, temperature)).max())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model", type=pathlib.Path)
    parser.add_argument("report", type=pathlib.Path)
    parser.add_argument("--cajal", type=pathlib.Path, required=True)
    parser.add_argument("--work", type=pathlib.Path, required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batches", default="16,32,64,all")
    parser.add_argument("--modes", default="eager,inference,script,optimized")
    parser.add_argument("--formats", default="contiguous,channels_last")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    net, spec = load_model(args.model)
    report = json.loads(args.report.read_text())
    temperature = report.get("temperature", 1.0)
    start = time.perf_counter()
    x = torch.from_numpy(crops(report, spec["run"]))
    crop_seconds = time.perf_counter() - start

    with torch.no_grad():
        reference = np.concatenate([net(x[i:i + 16]).numpy() for i in range(0, len(x), 16)])
    p_torch = softmax(reference, temperature)
    labels = report["model"]["labels"]
    p_cajal = np.array([[r["probabilities"][c] for c in labels] for r in report["regions"]])
    end_to_end = float(np.abs(p_torch - p_cajal).max())
    network = check_network(args, x, net, temperature)

    summary = {"peer": "torch", "torch": torch.__version__, "threads": torch.get_num_threads(),
               "regions": len(x), "input_shape": list(x.shape[1:]), "crop_seconds": crop_seconds,
               "max_abs_dp_end_to_end": end_to_end, "max_abs_dp_network": network}
    if max(end_to_end, network) > 1e-3:
        print(json.dumps(summary))
        print(f"torch_classify.py: PyTorch and cajal disagree: max |dp| {end_to_end:.2e} end to "
              f"end, {network:.2e} on the network alone (limit 1e-3)", file=sys.stderr)
        sys.exit(1)

    batches = [len(x) if b == "all" else int(b) for b in args.batches.split(",")]
    configs = [(m, f, b) for m in args.modes.split(",") for f in args.formats.split(",")
               for b in batches]
    results = []
    for mode, fmt, batch in configs:
        times, logits = time_config(net, x, mode, fmt, batch, 1)
        results.append({"mode": mode, "format": fmt, "batch": batch, "seconds": times,
                        "max_abs_dp": float(np.abs(softmax(logits, temperature) - p_torch).max())})
        print(f"   torch {mode:9} {fmt:13} batch {batch:5}: {times[0]:.3f} s", file=sys.stderr)
    for result in sorted(results, key=lambda r: r["seconds"][0])[:3]:
        times, _ = time_config(net, x, result["mode"], result["format"], result["batch"],
                               args.runs)
        result["seconds"] = times
        print(f"   torch {result['mode']:9} {result['format']:13} batch {result['batch']:5}: "
              f"median {statistics.median(times):.3f} s of {times}", file=sys.stderr)
    for result in results:
        result["median_s"] = statistics.median(result["seconds"])
    best = min(results, key=lambda r: (len(r["seconds"]) < args.runs, r["median_s"]))
    print(json.dumps({**summary, "best": best, "configs": results}))


if __name__ == "__main__":
    main()
