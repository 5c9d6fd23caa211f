#!/usr/bin/env python3
"""Held-out evaluation of the bundled CT organ model (models/ct-organs/card.json's figures).

Generates COUNT phantom studies with `cajal phantom` (seeds 90000 + i, unrelated to the
training's), 512 x 512 in-plane at 0.6-1.0 mm and slices of 1.25-5 mm over about 450 mm, written
as DICOM series; segments each with `cajal segment` (the bundled model, or --model) and scores
it with `cajal evaluate` against the phantom's labels. Prints a Markdown table of Dice and HD95
per organ (mean, min) and writes WORK/summary.json.

  /usr/bin/python3 tools/evaluate_ct_organs.py [--cajal build/apps/cajal] [--work DIR]
                                               [--count 20] [--model DIR] [--threads 2]
Takes about a minute a case on 2 cores; plain Python, no modules beyond the standard library.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

ORGANS = ["External", "Lung_L", "Lung_R", "Heart", "Liver", "Spleen", "Kidney_L", "Kidney_R",
          "Esophagus", "SpinalCord", "Aorta"]
TARGET = {name: (0.80 if name in ("Esophagus", "SpinalCord") else 0.90) for name in ORGANS}
THICKNESS = [2.5, 1.25, 3.0, 5.0, 2.0, 1.5, 4.0, 2.5, 3.0, 1.25]


def case_spacing(i):
    in_plane = round(0.6 + 0.4 * ((i * 7) % 20) / 19.0, 3)
    thickness = THICKNESS[i % len(THICKNESS)]
    return in_plane, thickness, int(round(450.0 / thickness))


def run(cmd):
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(map(str, cmd))}\n{proc.stderr}")
    return proc


def generate_case(cajal, case_dir, seed, i, threads, nifti=False):
    """`cajal phantom` of case I's size and spacing into CASE_DIR; returns the case folder."""
    in_plane, thickness, slices = case_spacing(i)
    shutil.rmtree(case_dir, ignore_errors=True)
    run([cajal, "phantom", "-o", case_dir, "--count", 1, "--seed", seed,
         "--size", f"512x512x{slices}", "--spacing", f"{in_plane}x{thickness}", "--dicom",
         "--threads", threads] + ([] if nifti else ["--no-nifti"]))
    return os.path.join(case_dir, "case_0000")


def segment_and_evaluate(cajal, phantom, out, evaluation, labels, threads, model=""):
    """Segments PHANTOM's DICOM series into OUT and scores it against its labels into the JSON
    file EVALUATION; returns (rows of the evaluation by structure name, report.json)."""
    cmd = [cajal, "segment", os.path.join(phantom, "dicom"), "-o", out, "--no-qa",
           "--threads", threads]
    if model:
        cmd += ["--model", model]
    run(cmd)
    run([cajal, "evaluate", os.path.join(out, "labels.nii.gz"),
         os.path.join(phantom, "labels.nii.gz"), "--labels", labels, "--json", evaluation])
    with open(evaluation) as f:
        result = json.load(f)
    with open(os.path.join(out, "report.json")) as f:
        report = json.load(f)
    return {row["name"]: row for row in result["labels"]}, report


def main():
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cajal", default=os.path.join(repo, "build", "apps", "cajal"))
    ap.add_argument("--work", default=os.path.join(repo, "out", "ct-organs-eval"))
    ap.add_argument("--count", type=int, default=20)
    ap.add_argument("--model", default="")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    labels = ",".join(f"{v}={n}" for v, n in enumerate(ORGANS, start=1))
    scores = {name: {"dice": [], "hd95": []} for name in ORGANS}
    cases = []
    for i in range(args.count):
        in_plane, thickness, slices = case_spacing(i)
        seed = 90000 + i
        case_dir = os.path.join(args.work, f"case_{i:02d}")
        start = time.time()
        phantom = generate_case(args.cajal, case_dir, seed, i, args.threads)
        generated = time.time()
        per_label, report = segment_and_evaluate(
            args.cajal, phantom, os.path.join(case_dir, "segmented"),
            os.path.join(case_dir, "evaluation.json"), labels, args.threads, args.model)
        segmented = time.time()
        for name in ORGANS:
            scores[name]["dice"].append(per_label[name]["dice"])
            hd = per_label[name].get("hd95_mm")
            if hd is not None:
                scores[name]["hd95"].append(hd)
        cases.append({"case": i, "seed": seed, "spacing_mm": [in_plane, in_plane, thickness],
                      "size": [512, 512, slices], "segment_seconds": round(segmented - generated, 2),
                      "timings": report.get("timings_seconds", report.get("timings")),
                      "dice": {n: per_label[n]["dice"] for n in ORGANS}})
        print(f"case {i:2d}: {in_plane} x {thickness} mm, {slices} slices, segment "
              f"{segmented - generated:.1f} s; Dice " +
              " ".join(f"{n} {per_label[n]['dice']:.3f}" for n in ORGANS), file=sys.stderr)
        shutil.rmtree(os.path.join(phantom, "dicom"))
    summary = {"count": args.count, "organs": {}, "cases": cases}
    print("| structure | Dice mean | Dice min | HD95 mean (mm) | target |")
    print("|---|---|---|---|---|")
    for name in ORGANS:
        d = scores[name]["dice"]
        h = scores[name]["hd95"]
        summary["organs"][name] = {"dice_mean": statistics.mean(d), "dice_min": min(d),
                                   "hd95_mean_mm": statistics.mean(h) if h else None}
        print(f"| {name} | {statistics.mean(d):.3f} | {min(d):.3f} | "
              f"{statistics.mean(h) if h else float('nan'):.1f} | "
              f"{'-' if name == 'External' else '>= %.2f' % TARGET[name]} |")
    with open(os.path.join(args.work, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)


if __name__ == "__main__":
    main()
