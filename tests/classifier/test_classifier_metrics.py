"""The classifier metrics of `cajal evaluate-classifier` against scikit-learn's, on random
predictions written as the command's CSV files.

    test_classifier_metrics.py (--tool BIN | --cajal CAJAL) --work DIR CASE

BIN prints the metrics' JSON for PREDICTIONS.csv TRUTH.csv (tests/classifier's
classifier_metrics_json); with --cajal, `CAJAL evaluate-classifier` does. CASE is three_classes (continuous
probabilities) or two_classes_with_ties (probabilities on a 0.05 grid, so many scores tie).
Every number must match to 1e-9. Run with Debian's /usr/bin/python3 (python3-sklearn). Exits 0
or 1.
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np
from sklearn.metrics import (accuracy_score, balanced_accuracy_score, confusion_matrix,
                             recall_score, roc_auc_score, roc_curve)

TOLERANCE = 1e-9


class Fail(AssertionError):
    pass


def require(cond, message):
    """An assertion that stays on under python -O."""
    if not cond:
        raise Fail(message)


def close(name, got, expected):
    got = np.asarray(got, dtype=float)
    expected = np.asarray(expected, dtype=float)
    require(got.shape == expected.shape, f"{name}: expected shape {expected.shape}, got {got.shape}")
    require(np.allclose(got, expected, rtol=0, atol=TOLERANCE, equal_nan=True),
            f"{name}: expected {expected.tolist()}, got {got.tolist()}")


def make_case(case, rng):
    if case == "three_classes":
        classes = ["benign", "malignant", "cyst"]
        n = 300
        truth = rng.integers(0, 3, n)
        logits = rng.normal(size=(n, 3)) + 1.5 * np.eye(3)[truth]
        p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        text = [[f"{v:.17g}" for v in row] for row in p]
    else:
        classes = ["benign", "malignant"]
        n = 200
        truth = rng.integers(0, 2, n)
        steps = np.clip(rng.integers(0, 21, n) + 6 * truth - 3, 0, 20)  # 0..20 twentieths
        p1 = steps / 20
        p = np.stack([1 - p1, p1], axis=1)
        text = [[f"{(20 - s) / 20:.2f}", f"{s / 20:.2f}"] for s in steps]
        p = np.array([[float(a), float(b)] for a, b in text])
    # The command's predicted class need not be the top one (a threshold may choose it).
    predicted = np.argmax(p, axis=1)
    flip = rng.random(n) < 0.05
    predicted[flip] = rng.integers(0, len(classes), flip.sum())
    return classes, truth, predicted, p, text


def write_csvs(work, classes, truth, predicted, text, rng):
    order = rng.permutation(len(truth))  # truth rows in another order: matched by id
    with open(os.path.join(work, "predictions.csv"), "w", newline="") as f:
        f.write("id,predicted," + ",".join(f"p_{c}" for c in classes) + "\r\n")
        for i in range(len(truth)):
            f.write(f"region_{i},{classes[predicted[i]]}," + ",".join(text[i]) + "\r\n")
    with open(os.path.join(work, "truth.csv"), "w", newline="") as f:
        f.write("\ufeffid,label\n")
        for i in order:
            f.write(f"\"region_{i}\",{classes[truth[i]]}\n")


def ece(truth, p, bins=15):
    confidence = p.max(axis=1)
    correct = (p.argmax(axis=1) == truth).astype(float)
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for m in range(bins):
        inside = (confidence > edges[m]) & (confidence <= edges[m + 1])
        if m == 0:
            inside |= confidence == 0
        if inside.any():
            total += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return total


def check(report, classes, truth, predicted, p):
    k = len(classes)
    labels = list(range(k))
    close("accuracy", report["accuracy"], accuracy_score(truth, predicted))
    close("balanced_accuracy", report["balanced_accuracy"],
          balanced_accuracy_score(truth, predicted))
    require(report["confusion_matrix"] == confusion_matrix(truth, predicted, labels=labels).tolist(),
            f"confusion matrix: expected {confusion_matrix(truth, predicted).tolist()}, got "
            f"{report['confusion_matrix']}")
    recall = recall_score(truth, predicted, labels=labels, average=None)
    if k > 2:
        macro = roc_auc_score(truth, p, multi_class="ovr", average="macro")
    else:
        macro = roc_auc_score(truth, p[:, 1])
    close("macro_auc", report["macro_auc"], macro)
    for c in range(k):
        entry = report["per_class"][c]
        require(entry["class"] == classes[c], f"class {c}: expected {classes[c]}, got {entry['class']}")
        close(f"{classes[c]} sensitivity", entry["sensitivity"], recall[c])
        negative = truth != c
        specificity = recall_score(negative, predicted != c)
        close(f"{classes[c]} specificity", entry["specificity"], specificity)
        close(f"{classes[c]} auc", entry["auc"], roc_auc_score(truth == c, p[:, c]))
        fpr, tpr, thresholds = roc_curve(truth == c, p[:, c])
        close(f"{classes[c]} roc fpr", entry["roc"]["fpr"], fpr)
        close(f"{classes[c]} roc tpr", entry["roc"]["tpr"], tpr)
        require(entry["roc"]["thresholds"][0] is None,
                f"{classes[c]} roc thresholds[0]: expected null, got {entry['roc']['thresholds'][0]}")
        close(f"{classes[c]} roc thresholds", entry["roc"]["thresholds"][1:], thresholds[1:])
    close("expected_calibration_error", report["expected_calibration_error"], ece(truth, p))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    command = parser.add_mutually_exclusive_group(required=True)
    command.add_argument("--tool")
    command.add_argument("--cajal")
    parser.add_argument("--work", required=True)
    parser.add_argument("case", choices=["three_classes", "two_classes_with_ties"])
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    rng = np.random.default_rng(6 if args.case == "three_classes" else 7)
    classes, truth, predicted, p, text = make_case(args.case, rng)
    write_csvs(args.work, classes, truth, predicted, text, rng)
    program = [args.tool] if args.tool else [args.cajal, "evaluate-classifier"]
    result = subprocess.run([*program, os.path.join(args.work, "predictions.csv"),
                             os.path.join(args.work, "truth.csv")],
                            capture_output=True, text=True, timeout=100)
    try:
        require(result.returncode == 0,
                f"expected exit code 0, got {result.returncode}; stderr: {result.stderr.strip()}")
        check(json.loads(result.stdout), classes, truth, predicted, p)
    except Fail as failure:
        print(f"FAIL {args.case}: {failure}", file=sys.stderr)
        return 1
    print(f"ok {args.case}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
