"""`cajal train` end to end on small data made here: a LeNet-5 on generated IDX files, and a 2D
U-Net on generated shapes.

    test_train_cli.py --cajal BIN --data UNUSED --work DIR CASE   (tests/integration/it_common.py)

CASES: writes_model_folder, resume_is_exact, same_seed_same_bytes, unet_on_shapes,
unet3d_on_phantoms, volume_data_errors, transfer_freezes_layers, bad_config_is_refused. Exits 0 or 1. Run with Debian's /usr/bin/python3 (numpy).
"""
import csv
import json
import os
import shutil
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import it_common as it  # noqa: E402
from it_common import require  # noqa: E402


def write_idx(path, array):
    """An unsigned-byte IDX file (MNIST's format)."""
    with open(path, "wb") as f:
        f.write(bytes([0, 0, 0x08, array.ndim]))
        f.write(struct.pack(">" + "I" * array.ndim, *array.shape))
        f.write(array.astype(np.uint8).tobytes())


def make_idx_data(folder, count=384):
    """Ten classes a LeNet can tell apart in a few steps: a bright bar whose row is the class."""
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 10, size=count)
    images = rng.integers(0, 60, size=(count, 28, 28))
    for i, label in enumerate(labels):
        images[i, 2 + 2 * label: 4 + 2 * label, 4:24] = 230
    write_idx(os.path.join(folder, "images.idx"), images)
    write_idx(os.path.join(folder, "labels.idx"), labels)


def lenet_config(folder, **overrides):
    config = {
        "model": {"builder": "lenet5", "classes": 10},
        "run": {"task": "classification", "input_channels": 1, "spatial_dims": 2,
                "labels": [str(i) for i in range(10)]},
        "card": {"name": "lenet-test", "version": "0.0.1", "intended_use": "test"},
        "init": {"scheme": "xavier_uniform"},
        "data": {"type": "idx", "train_images": "images.idx", "train_labels": "labels.idx",
                 "test_images": "images.idx", "test_labels": "labels.idx", "pad": 2},
        "validation_fraction": 0.25,
        "loss": {"type": "cross_entropy"},
        "optimizer": {"type": "sgd", "learning_rate": 0.05, "momentum": 0.9, "nesterov": True},
        "schedule": {"type": "cosine", "warmup_steps": 2},
        "augment": {"flip_probability": 0.0, "noise_probability": 0.5, "max_noise_stddev": 0.05},
        "epochs": 3,
        "batch_size": 32,
        "seed": 5,
        "threads": 1,
        "output": "model",
    }
    config.update(overrides)
    path = os.path.join(folder, "train.json")
    with open(path, "w") as f:
        json.dump(config, f)
    return path


def run(binary, *args, expect=0):
    result = it.run_cajal(binary, *args)
    it.expect_exit(result, expect, f"cajal {' '.join(args)}")
    return result


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def case_writes_model_folder(binary, work):
    make_idx_data(work)
    out = run(binary, "train", lenet_config(work)).stdout
    model = os.path.join(work, "model")
    for name in ["model.json", "weights.safetensors", "card.json", "training_log.csv",
                 "training_curves.png", "checkpoint/state.json",
                 "checkpoint/optimizer.safetensors"]:
        require(os.path.isfile(os.path.join(model, name)), f"expected {name} in {model}")
    with open(os.path.join(model, "training_log.csv")) as f:
        rows = list(csv.DictReader(f))
    require(len(rows) == 3, f"training_log.csv: expected 3 epochs, got {len(rows)}")
    losses = [float(r["train_loss"]) for r in rows]
    require(losses[-1] < losses[0], f"train loss should fall over 3 epochs, got {losses}")
    card = json.load(open(os.path.join(model, "card.json")))
    accuracy = card["metrics"]["test_accuracy"]
    require(accuracy > 0.5, f"test accuracy on the easy data: expected > 0.5, got {accuracy}")
    require("test accuracy" in out, f"stdout should report the test accuracy, got {out!r}")
    # The folder is a model the other commands load.
    run(binary, "model", "inspect", model, "--input-shape", "1,1,32,32")


def case_resume_is_exact(binary, work):
    make_idx_data(work)
    straight = os.path.join(work, "straight")
    os.makedirs(straight)
    shutil.copy(os.path.join(work, "images.idx"), straight)
    shutil.copy(os.path.join(work, "labels.idx"), straight)
    run(binary, "train", lenet_config(straight))
    run(binary, "train", lenet_config(work), "--max-epochs", "1")
    run(binary, "train", lenet_config(work), "--resume", "--max-epochs", "2")
    run(binary, "train", lenet_config(work), "--resume")
    for name in ["checkpoint/weights.safetensors", "checkpoint/optimizer.safetensors",
                 "weights.safetensors"]:
        a = read_bytes(os.path.join(straight, "model", name))
        b = read_bytes(os.path.join(work, "model", name))
        require(a == b, f"{name}: 3 epochs straight and 1 + 1 + 1 resumed differ")


def case_same_seed_same_bytes(binary, work):
    make_idx_data(work)
    run(binary, "train", lenet_config(work, epochs=1))
    first = read_bytes(os.path.join(work, "model", "checkpoint", "weights.safetensors"))
    shutil.rmtree(os.path.join(work, "model"))
    run(binary, "train", lenet_config(work, epochs=1))
    second = read_bytes(os.path.join(work, "model", "checkpoint", "weights.safetensors"))
    require(first == second, "two runs with the same seed and threads gave different weights")
    shutil.rmtree(os.path.join(work, "model"))
    run(binary, "train", lenet_config(work, epochs=1, seed=6))
    third = read_bytes(os.path.join(work, "model", "checkpoint", "weights.safetensors"))
    require(first != third, "another seed should give other weights")


def case_unet_on_shapes(binary, work):
    config = {
        "model": {"builder": "unet", "spatial_dims": 2, "out_channels": 3, "features": [8, 16]},
        "run": {"task": "segmentation", "input_channels": 1, "spatial_dims": 2,
                "labels": ["background", "disc", "square"]},
        "card": {"name": "unet-test", "version": "0.0.1", "intended_use": "test"},
        "data": {"type": "shapes2d", "count": 48, "test_count": 8, "size": 32, "classes": 3},
        "loss": {"type": "dice_cross_entropy"},
        "optimizer": {"type": "adam", "learning_rate": 0.01},
        "augment": {"flip_probability": 0.5, "rotate90_probability": 0.5},
        "validation_fraction": 0.25,
        "epochs": 2,
        "batch_size": 4,
        "threads": 1,
        "output": "model",
    }
    path = os.path.join(work, "train.json")
    with open(path, "w") as f:
        json.dump(config, f)
    run(binary, "train", path)
    card = json.load(open(os.path.join(work, "model", "card.json")))
    dice = card["metrics"]["test_dice"]
    require(0.0 <= dice <= 1.0, f"test Dice: expected a value in [0, 1], got {dice}")
    run(binary, "model", "inspect", os.path.join(work, "model"), "--input-shape", "1,1,32,32")


def phantom_unet_config(folder, **overrides):
    """A tiny 3D U-Net on cases generated in memory like `cajal phantom`'s, coarse spacing."""
    labels = ["background", "External", "Lung_L", "Lung_R", "Heart", "Liver", "Spleen",
              "Kidney_L", "Kidney_R", "Esophagus", "SpinalCord", "Aorta"]
    config = {
        "model": {"builder": "unet", "spatial_dims": 3, "out_channels": 12, "features": [4, 8],
                  "norm": "batch"},
        "run": {"task": "segmentation", "input_channels": 1, "spatial_dims": 3,
                "patch_size": [16, 32, 32], "target_spacing": [8.0, 8.0, 8.0],
                "orientation": "LPS",
                "normalization": {"kind": "ct", "clip_min": -1000, "clip_max": 1000,
                                  "mean": 0, "std": 250},
                "crop": {"kind": "body"}, "labels": labels},
        "card": {"name": "unet3d-test", "version": "0.0.1", "intended_use": "test"},
        "data": {"type": "phantom", "count": 2, "test_count": 1, "seed": 4,
                 "min_in_plane_spacing": 3.0, "max_in_plane_spacing": 4.0,
                 "min_slice_thickness": 4.0, "max_slice_thickness": 5.0,
                 "patches_per_case": 4, "test_patches_per_case": 2},
        "loss": {"type": "dice_cross_entropy"},
        "optimizer": {"type": "adam", "learning_rate": 0.01},
        "augment": {"flip_probability": 0.0, "rotate_probability": 0.5},
        "validation_fraction": 0.25,
        "epochs": 2,
        "batch_size": 2,
        "threads": 1,
        "output": "model",
    }
    config.update(overrides)
    path = os.path.join(folder, "train.json")
    with open(path, "w") as f:
        json.dump(config, f)
    return path


def case_unet3d_on_phantoms(binary, work):
    """Phantom training data end to end: trains, resumes exactly, and the model folder it writes
    segments a study from `cajal phantom` through `cajal segment`."""
    straight = os.path.join(work, "straight")
    os.makedirs(straight)
    run(binary, "train", phantom_unet_config(straight))
    run(binary, "train", phantom_unet_config(work), "--max-epochs", "1")
    run(binary, "train", phantom_unet_config(work), "--resume")
    for name in ["checkpoint/weights.safetensors", "checkpoint/optimizer.safetensors"]:
        a = read_bytes(os.path.join(straight, "model", name))
        b = read_bytes(os.path.join(work, "model", name))
        require(a == b, f"{name}: 2 epochs straight and 1 + 1 resumed differ")
    card = json.load(open(os.path.join(work, "model", "card.json")))
    dice = card["metrics"]["test_dice"]
    require(0.0 <= dice <= 1.0, f"test Dice: expected a value in [0, 1], got {dice}")
    run(binary, "phantom", "-o", os.path.join(work, "ph"), "--count", "1", "--seed", "8",
        "--size", "64x64x40", "--spacing", "5x8")
    out = os.path.join(work, "seg")
    run(binary, "segment", os.path.join(work, "ph", "case_0000", "ct.nii.gz"), "-o", out,
        "--model", os.path.join(work, "model"), "--no-qa", "--threads", "1")
    report = json.load(open(os.path.join(out, "report.json")))
    require([s["name"] for s in report["structures"]] == card_labels(work)[1:],
            "the report's structures should be the model's labels")


def card_labels(work):
    return json.load(open(os.path.join(work, "model", "model.json")))["run"]["labels"]


def case_volume_data_errors(binary, work):
    """Volume data: a missing folder and a label map beyond the model's labels are refused with
    what was expected, and nothing is written."""
    path = phantom_unet_config(work, data={"type": "volumes", "cases": "nowhere"})
    err = run(binary, "train", path, expect=1).stderr
    require("nowhere" in err, f"the message should name the missing path, got {err!r}")
    run(binary, "phantom", "-o", os.path.join(work, "cases"), "--count", "1", "--seed", "3",
        "--size", "48x48x24", "--spacing", "6x10")
    config = json.load(open(path))
    config["data"] = {"type": "volumes", "cases": "cases"}
    config["run"]["labels"] = config["run"]["labels"][:5]
    config["model"]["out_channels"] = 5
    json.dump(config, open(path, "w"))
    err = run(binary, "train", path, expect=1).stderr
    require("whole values 0 to 4" in err and "case_0000" in err,
            f"the message should name the case and the expected labels, got {err!r}")
    require(not os.path.exists(os.path.join(work, "model")), "nothing should be written")
    config["data"]["foreground_label_weights"] = {"Kidney_L": "high"}
    json.dump(config, open(path, "w"))
    err = run(binary, "train", path, expect=1).stderr
    require("foreground_label_weights" in err and "'Kidney_L': \"high\"" in err,
            f"the message should name the key and the weight, got {err!r}")
    require(not os.path.exists(os.path.join(work, "model")), "nothing should be written")


def read_safetensors(path):
    """name -> float32 array."""
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
        data = f.read()
    header.pop("__metadata__", None)
    return {name: np.frombuffer(data[e["data_offsets"][0]:e["data_offsets"][1]], dtype="<f4")
            for name, e in header.items()}


def case_transfer_freezes_layers(binary, work):
    make_idx_data(work)
    run(binary, "train", lenet_config(work, epochs=1))
    source = read_safetensors(os.path.join(work, "model", "checkpoint", "weights.safetensors"))
    run(binary, "train", lenet_config(work, epochs=1, seed=9, output="tuned",
                                      transfer={"from": "model", "freeze": ["c1", "c3"]}))
    tuned = read_safetensors(os.path.join(work, "tuned", "checkpoint", "weights.safetensors"))
    for name in source:
        same = np.array_equal(source[name], tuned[name])
        frozen = name.split(".")[0] in ("c1", "c3")
        require(same == frozen, f"{name}: expected {'the source' if frozen else 'new'} values")
    bad = lenet_config(work, epochs=1, output="bad", transfer={"from": "model", "freeze": ["c9"]})
    err = run(binary, "train", bad, expect=1).stderr
    require("c9" in err, f"a freeze prefix naming no layer should be an error, got {err!r}")
    require(not os.path.exists(os.path.join(work, "bad")), "nothing should be written")


def case_bad_config_is_refused(binary, work):
    make_idx_data(work)
    path = lenet_config(work, epochs=1)
    config = json.load(open(path))
    config["optimizer"]["learnig_rate"] = 0.1
    json.dump(config, open(path, "w"))
    err = run(binary, "train", path, expect=1).stderr
    require("learnig_rate" in err, f"the message should name the unknown key, got {err!r}")
    require(not os.path.exists(os.path.join(work, "model")), "nothing should be written")
    config["optimizer"].pop("learnig_rate")
    config["data"]["train_labels"] = "missing.idx"
    json.dump(config, open(path, "w"))
    err = run(binary, "train", path, expect=1).stderr
    require("missing.idx" in err, f"the message should name the missing file, got {err!r}")


if __name__ == "__main__":
    it.main({name[len("case_"):]: (lambda fn: lambda args: fn(args.cajal, args.work))(fn)
             for name, fn in list(globals().items()) if name.startswith("case_")})
