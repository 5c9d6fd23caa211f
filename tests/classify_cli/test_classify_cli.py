"""`cajal classify` end to end: a tiny 3D classifier trained here by `cajal train` on the
"lesions" data kind, run over the lesions of a `cajal phantom --lesions` case.

    test_classify_cli.py --cajal BIN --data UNUSED --work DIR CASE
(tests/integration/it_common.py)

CASES: lesions_end_to_end, batch_isolates_failure, calibrate_stores_temperature,
mask_on_other_grid_is_refused, bundled_classifier_separates_lesions (no --model). Exits 0 or 1. Run with Debian's /usr/bin/python3 (numpy, nibabel).
"""
import csv
import json
import math
import os
import sys

import nibabel as nib
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import it_common as it  # noqa: E402
from it_common import require  # noqa: E402

LABELS = ["benign", "malignant"]


def run(binary, *args, expect=0):
    result = it.run_cajal(binary, *args)
    it.expect_exit(result, expect, f"cajal {' '.join(args)}")
    return result


def train_tiny_model(binary, work):
    """A small 3D ResNet, one epoch on the lesions of two tiny phantom cases (seconds)."""
    config = {
        "model": {"builder": "resnet", "spatial_dims": 3, "in_channels": 1, "classes": 2,
                  "blocks": [1, 1], "widths": [4, 8], "small_stem": True},
        "run": {"task": "classification", "input_channels": 1, "spatial_dims": 3,
                "patch_size": [16, 16, 16], "target_spacing": [2.0, 2.0, 2.0],
                "normalization": {"kind": "ct", "clip_min": -200, "clip_max": 300,
                                  "mean": 50, "std": 100},
                "labels": LABELS},
        "card": {"name": "lesion-test", "version": "0.0.1", "intended_use": "test"},
        "data": {"type": "lesions", "count": 2, "seed": 4, "size": [96, 96, 48],
                 "in_plane_spacing": 2.0, "slice_thickness": 3.0, "margin_mm": 5},
        "loss": {"type": "cross_entropy"},
        "optimizer": {"type": "adam", "learning_rate": 0.01},
        "validation_fraction": 0.25,
        "epochs": 1,
        "batch_size": 4,
        "threads": 1,
        "output": "model",
    }
    path = os.path.join(work, "train.json")
    with open(path, "w") as f:
        json.dump(config, f)
    run(binary, "train", path)
    return os.path.join(work, "model")


def make_phantom(binary, work, seed=1):
    out = os.path.join(work, "ph")
    run(binary, "phantom", "-o", out, "--count", "1", "--seed", str(seed), "--size", "96x96x48",
        "--spacing", "2x3", "--lesions")
    return os.path.join(out, "case_0000")


def write_manifest(path, rows, roi=True):
    with open(path, "w") as f:
        f.write("id,path,roi\n" if roi else "id,path\n")
        for row in rows:
            f.write(",".join(row) + "\n")


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def case_lesions_end_to_end(binary, work):
    model = train_tiny_model(binary, work)
    case = make_phantom(binary, work)
    manifest = os.path.join(work, "manifest.csv")
    write_manifest(manifest, [("case_0000", os.path.join(case, "ct.nii.gz"),
                               os.path.join(case, "lesions.nii.gz"))])
    out = os.path.join(work, "out")
    run(binary, "classify", "--manifest", manifest, "-o", out, "--model", model, "--threads", "1")
    report = json.load(open(os.path.join(out, "case_0000", "report.json")))
    require(report["schema"] == "cajal.classify.report/1", f"schema: got {report['schema']}")
    truth = read_csv(os.path.join(case, "lesions.csv"))
    ids = [r["id"] for r in report["regions"]]
    require(sorted(ids) == sorted(t["id"] for t in truth),
            f"region ids: expected lesions.csv's {[t['id'] for t in truth]}, got {ids}")
    lesions = {f"case_0000/lesion_{l['id']}": l
               for l in json.load(open(os.path.join(case, "lesions.json")))["lesions"]}
    spacing = nib.load(os.path.join(case, "ct.nii.gz")).header.get_zooms()[:3]
    for region in report["regions"]:
        total = sum(region["probabilities"].values())
        require(abs(total - 1) < 1e-6, f"{region['id']}: probabilities sum to {total}")
        require(region["predicted"] in LABELS and region["source"] == "roi",
                f"{region['id']}: predicted {region['predicted']}, source {region['source']}")
        lesion = lesions[region["id"]]
        distance = math.dist(region["centre_mm"], lesion["centre_mm"])
        tolerance = 0.5 * lesion["size_mm"] + 2 * max(spacing)
        require(distance <= tolerance,
                f"{region['id']}: centre {region['centre_mm']} is {distance:.1f} mm from the "
                f"lesion's {lesion['centre_mm']} (tolerance {tolerance:.1f})")
        require(region["voxels"] == lesion["voxels"],
                f"{region['id']}: voxels {region['voxels']}, lesions.json {lesion['voxels']}")
        png = os.path.join(out, "case_0000", "regions", region["id"].split("/")[1] + ".png")
        require(os.path.isfile(png), f"missing {png}")
    require(report["temperature"] == 1.0,
            f"temperature without calibration: {report['temperature']}")
    require(len(report["model"]["weights_sha256"]) == 64, "weights hash")
    require(len(report["input"]["pixel_sha256"]) == 64, "pixel hash")
    rows = read_csv(os.path.join(out, "predictions.csv"))
    require(len(rows) == len(ids), f"predictions.csv: {len(rows)} rows for {len(ids)} regions")
    evaluation = run(binary, "evaluate-classifier", os.path.join(out, "predictions.csv"),
                     os.path.join(case, "lesions.csv"))
    json.loads(evaluation.stdout)
    # One input with --roi: ids from the file name, report in OUT itself.
    single = os.path.join(work, "single")
    run(binary, "classify", os.path.join(case, "ct.nii.gz"), "--roi",
        os.path.join(case, "lesions.nii.gz"), "-o", single, "--model", model, "--threads", "1",
        "--no-png")
    single_report = json.load(open(os.path.join(single, "report.json")))
    require([r["id"].replace("ct/", "case_0000/") for r in single_report["regions"]] == ids,
            "the single-input run should find the same regions")
    require(not os.path.exists(os.path.join(single, "regions")), "--no-png wrote regions/")


def case_batch_isolates_failure(binary, work):
    model = train_tiny_model(binary, work)
    case = make_phantom(binary, work)
    broken = os.path.join(work, "broken.nii.gz")
    with open(broken, "wb") as f:
        f.write(b"not a volume")
    out = os.path.join(work, "out")
    run(binary, "classify", os.path.join(case, "ct.nii.gz"), broken, "-o", out, "--model", model,
        "--threads", "1", expect=1)
    summary = {c["id"]: c for c in json.load(open(os.path.join(out, "summary.json")))["cases"]}
    require(summary["broken"]["status"] == "failed", f"broken: {summary['broken']}")
    require(summary["ct"]["status"] == "ok", f"ct: {summary['ct']}")
    report = json.load(open(os.path.join(out, "ct", "report.json")))
    require([r["source"] for r in report["regions"]] == ["whole"], "one whole-image region")
    require(not os.path.exists(os.path.join(out, "broken")), "a failed case left a folder")
    rows = read_csv(os.path.join(out, "predictions.csv"))
    require([r["id"] for r in rows] == ["ct/whole"], f"predictions: {rows}")


def case_calibrate_stores_temperature(binary, work):
    model = train_tiny_model(binary, work)
    case = make_phantom(binary, work)
    manifest = os.path.join(work, "manifest.csv")
    write_manifest(manifest, [("case_0000", os.path.join(case, "ct.nii.gz"),
                               os.path.join(case, "lesions.nii.gz"))])
    out = os.path.join(work, "out")
    result = run(binary, "classify", "--manifest", manifest, "-o", out, "--model", model,
                 "--threads", "1", "--no-png", "--calibrate", os.path.join(case, "lesions.csv"))
    require("calibration: T = " in result.stdout, "no calibration line printed")
    calibration = json.load(open(os.path.join(model, "calibration.json")))
    t = calibration["temperature"]
    require(0.05 <= t <= 20 and calibration["fitted_on"] == "lesions.csv",
            f"calibration.json: {calibration}")
    require(calibration["nll_after"] <= calibration["nll_before"] + 1e-9, "NLL got worse")
    report = json.load(open(os.path.join(out, "case_0000", "report.json")))
    require(abs(report["temperature"] - t) < 1e-12, "the calibrating run should use the new T")
    again = os.path.join(work, "again")
    run(binary, "classify", "--manifest", manifest, "-o", again, "--model", model, "--threads", "1",
        "--no-png")
    report = json.load(open(os.path.join(again, "case_0000", "report.json")))
    require(abs(report["temperature"] - t) < 1e-12,
            f"a later run should report T = {t}, got {report['temperature']}")
    bad_truth = os.path.join(work, "truth.csv")
    with open(bad_truth, "w") as f:
        f.write("id,label\ncase_0000/lesion_99,benign\n")
    result = run(binary, "classify", "--manifest", manifest, "-o", os.path.join(work, "bad"),
                 "--model", model, "--threads", "1", "--calibrate", bad_truth, expect=1)
    require("case_0000/lesion_99" in result.stderr, "the missing truth id should be named")


def case_mask_on_other_grid_is_refused(binary, work):
    model = train_tiny_model(binary, work)
    case = make_phantom(binary, work)
    mask = nib.load(os.path.join(case, "lesions.nii.gz"))
    data = np.asarray(mask.dataobj)[:, :, :-1]
    other = os.path.join(work, "other.nii.gz")
    nib.save(nib.Nifti1Image(data, mask.affine), other)
    out = os.path.join(work, "out")
    result = run(binary, "classify", os.path.join(case, "ct.nii.gz"), "--roi", other, "-o", out,
                 "--model", model, "--threads", "1", expect=1)
    shape = [int(n) for n in mask.shape[:3]]
    want = ["size [%d,%d,%d]" % tuple(shape),
            "size [%d,%d,%d]" % (shape[0], shape[1], shape[2] - 1)]
    require(all(w in result.stderr for w in want),
            f"the message should name both grids: {result.stderr}")
    require(not os.path.exists(out), "a refused run left an output folder")


# The bundled classifier's floor on the lesions of BUNDLED_CASES phantoms it never saw (its card:
# models/lesion-classifier/README.md has the figures on 500 held-out lesions).
BUNDLED_CASES = 16
BUNDLED_AUC_FLOOR = 0.9


def case_bundled_classifier_separates_lesions(binary, work):
    cases = os.path.join(work, "ph")
    run(binary, "phantom", "-o", cases, "--count", str(BUNDLED_CASES), "--seed", "6101",
        "--size", "256x256x120", "--spacing", "1.0x1.5", "--lesions", "--threads", "2")
    rows, truth = [], {}
    for case in sorted(c for c in os.listdir(cases) if c.startswith("case_")):
        folder = os.path.join(cases, case)
        rows.append((case, os.path.join(folder, "ct.nii.gz"),
                     os.path.join(folder, "lesions.nii.gz")))
        truth.update({r["id"]: r["label"] for r in read_csv(os.path.join(folder, "lesions.csv"))})
    manifest = os.path.join(work, "manifest.csv")
    write_manifest(manifest, rows)
    out = os.path.join(work, "out")
    run(binary, "classify", "--manifest", manifest, "-o", out, "--no-png", "--threads", "2")
    report = json.load(open(os.path.join(out, rows[0][0], "report.json")))
    require(report["model"]["name"] == "lesion-classifier",
            f"without --model: expected the bundled lesion-classifier, got {report['model']}")
    predictions = read_csv(os.path.join(out, "predictions.csv"))
    require(sorted(p["id"] for p in predictions) == sorted(truth),
            f"regions: expected the {len(truth)} lesions, got {len(predictions)}")
    truth_csv = os.path.join(work, "truth.csv")
    with open(truth_csv, "w") as f:
        f.write("id,label\n" + "".join(f"{i},{label}\n" for i, label in truth.items()))
    evaluation = json.loads(run(binary, "evaluate-classifier",
                                os.path.join(out, "predictions.csv"), truth_csv).stdout)
    auc = evaluation["macro_auc"]
    print(f"bundled classifier: ROC AUC {auc:.3f} on {len(predictions)} lesions")
    require(auc >= BUNDLED_AUC_FLOOR,
            f"ROC AUC on {len(predictions)} unseen lesions: expected >= {BUNDLED_AUC_FLOOR}, "
            f"got {auc:.3f}")


if __name__ == "__main__":
    it.main({name[len("case_"):]: (lambda fn: lambda args: fn(args.cajal, args.work))(fn)
             for name, fn in list(globals().items()) if name.startswith("case_")})
