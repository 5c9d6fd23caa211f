#!/usr/bin/env python3
"""Calibration and held-out evaluation of the lesion classifier (models/lesion-classifier/).

1. Calibration: `cajal phantom --lesions` makes CAL_COUNT cases (seed 31), `cajal classify
   --calibrate` fits the temperature on their lesions and stores it in the model folder
   (calibration.json).
2. Held-out test: TEST_COUNT cases (seed 41, about 2.8 lesions a case: 210 cases give about 520
   lesions) classified with the calibrated model, scored by `cajal evaluate-classifier` (ROC AUC,
   ECE, accuracy, ...). Both seeds differ from the training config's (21). Prints a summary and
   writes WORK/summary.json and WORK/test/evaluation.json.

  /usr/bin/python3 tools/evaluate_lesion_classifier.py [--cajal build/apps/cajal] [--work DIR]
      [--model models/lesion-classifier] [--cal-count 60] [--test-count 210] [--threads 2]
"""
import argparse
import csv
import json
import os
import shutil
import subprocess
import sys

PHANTOM = ["--size", "256x256x120", "--spacing", "1.0x1.5", "--lesions"]


def run(cmd):
    print("$ " + " ".join(map(str, cmd)), file=sys.stderr)
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def make_cases(args, folder, count, seed):
    """Phantom cases with lesions; returns (manifest path, truth path, lesion count)."""
    shutil.rmtree(folder, ignore_errors=True)
    run([args.cajal, "phantom", "-o", folder, "--count", count, "--seed", seed, "--threads",
         args.threads, *PHANTOM])
    manifest = os.path.join(folder, "manifest.csv")
    truth = os.path.join(folder, "truth.csv")
    lesions = 0
    with open(manifest, "w") as m, open(truth, "w") as t:
        m.write("id,path,roi\n")
        t.write("id,label\n")
        for case in sorted(os.listdir(folder)):
            ct = os.path.join(folder, case, "ct.nii.gz")
            if not case.startswith("case_"):
                continue
            m.write(f"{case},{ct},{os.path.join(folder, case, 'lesions.nii.gz')}\n")
            with open(os.path.join(folder, case, "lesions.csv")) as f:
                rows = list(csv.DictReader(f))
            for row in rows:
                t.write(f"{row['id']},{row['label']}\n")
                lesions += 1
    return manifest, truth, lesions


def breakdown(cajal, cases_dir, predictions_csv):
    """AUC and accuracy of the test lesions by size (RECIST diameter), organ and edge contact,
    each group scored by `cajal evaluate-classifier` on its own rows."""
    truth = {}
    for case in sorted(os.listdir(cases_dir)):
        path = os.path.join(cases_dir, case, "lesions.json")
        if case.startswith("case_") and os.path.exists(path):
            for lesion in json.load(open(path))["lesions"]:
                truth[f"{case}/lesion_{lesion['id']}"] = lesion
    with open(predictions_csv, newline="") as f:
        reader = csv.DictReader(f)
        header, rows = reader.fieldnames, list(reader)
    groups = {}
    for row in rows:
        lesion = truth[row["id"]]
        size = lesion["size_mm"]
        bin_name = "5-10 mm" if size < 10 else ("10-20 mm" if size < 20 else "20-40 mm")
        for key in (f"size {bin_name}", f"organ {lesion['organ']}",
                    "touching organ edge" if lesion["touches_organ_edge"] else "inside organ"):
            groups.setdefault(key, []).append(row)
    folder = os.path.join(cases_dir, "groups")
    os.makedirs(folder, exist_ok=True)
    result = {}
    for n, (key, members) in enumerate(sorted(groups.items())):
        predictions, labels = os.path.join(folder, f"{n}.csv"), os.path.join(folder, f"{n}.truth.csv")
        with open(predictions, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=header)
            writer.writeheader()
            writer.writerows(members)
        with open(labels, "w") as f:
            f.write("id,label\n" + "".join(f"{r['id']},{truth[r['id']]['label']}\n" for r in members))
        scores = json.loads(run([cajal, "evaluate-classifier", predictions, labels]).stdout)
        result[key] = {"lesions": len(members), "auc": scores.get("macro_auc"),
                       "accuracy": scores["accuracy"]}
    return result


def main():
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cajal", default=os.path.join(repo, "build", "apps", "cajal"))
    ap.add_argument("--work", default=os.path.join(repo, "out", "lesion-classifier-eval"))
    ap.add_argument("--model", default=os.path.join(repo, "models", "lesion-classifier"))
    ap.add_argument("--cal-count", type=int, default=60)
    ap.add_argument("--test-count", type=int, default=210)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    summary = {}

    calibration_path = os.path.join(args.model, "calibration.json")
    if os.path.exists(calibration_path):
        os.remove(calibration_path)
    manifest, truth, n = make_cases(args, os.path.join(args.work, "calibration"), args.cal_count, 31)
    out = os.path.join(args.work, "calibration", "classified")
    shutil.rmtree(out, ignore_errors=True)
    run([args.cajal, "classify", "--manifest", manifest, "-o", out, "--model", args.model,
         "--calibrate", truth, "--no-png", "--threads", args.threads])
    with open(calibration_path) as f:
        summary["calibration"] = json.load(f)
    summary["calibration"]["lesions"] = n

    manifest, truth, n = make_cases(args, os.path.join(args.work, "test"), args.test_count, 41)
    out = os.path.join(args.work, "test", "classified")
    shutil.rmtree(out, ignore_errors=True)
    run([args.cajal, "classify", "--manifest", manifest, "-o", out, "--model", args.model,
         "--no-png", "--threads", args.threads])
    evaluation = os.path.join(args.work, "test", "evaluation.json")
    run([args.cajal, "evaluate-classifier", os.path.join(out, "predictions.csv"), truth,
         "--output", evaluation, "--plots", os.path.join(args.work, "test", "plots")])
    with open(evaluation) as f:
        result = json.load(f)
    summary["test"] = {"lesions": n, "evaluation": evaluation}
    for key in ("count", "accuracy", "balanced_accuracy", "macro_auc",
                "expected_calibration_error", "confusion_matrix"):
        summary["test"][key] = result.get(key)
    summary["test"]["auc"] = {c["class"]: c.get("auc") for c in result["per_class"]}
    summary["test"]["sensitivity"] = {c["class"]: c.get("sensitivity") for c in result["per_class"]}
    summary["test"]["groups"] = breakdown(args.cajal, os.path.join(args.work, "test"),
                                          os.path.join(out, "predictions.csv"))
    with open(os.path.join(args.work, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
