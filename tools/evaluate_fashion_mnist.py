#!/usr/bin/python3
"""Test accuracy of a Fashion-MNIST model folder trained by `cajal train`, computed by PyTorch on
the same weights: an independent check of the test accuracy cajal writes into the card.

    /usr/bin/python3 tools/evaluate_fashion_mnist.py models/resnet-fashion-mnist

The graph of model.json is built as PyTorch modules by bench/classify/torch_graph.py; the test
images are read from the IDX files of the folder's train.json, normalised as cajal's IDX reader
does (pixel / 255, padded by `pad` with zeros, minus `mean`, over `std`). Prints PyTorch's
accuracy (overall and per class) and cajal's from card.json; exits 1 when they differ by more
than one image.
"""
import gzip
import json
import pathlib
import sys

import numpy as np
import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "bench" / "classify"))
from torch_graph import load_model  # noqa: E402


def read_idx(path):
    data = gzip.open(path).read() if str(path).endswith(".gz") else pathlib.Path(path).read_bytes()
    rank = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(rank)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank).reshape(dims)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: evaluate_fashion_mnist.py MODEL_DIR")
    folder = pathlib.Path(sys.argv[1])
    config = json.loads((folder / "train.json").read_text())["data"]
    base = folder
    images = read_idx(base / config["test_images"])
    labels = read_idx(base / config["test_labels"]).astype(np.int64)
    pad = int(config.get("pad", 0))
    x = images.astype(np.float32) / 255.0
    x = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    x = (x - config["mean"]) / config["std"]
    net, _ = load_model(folder)
    torch.set_num_threads(2)
    predicted = []
    with torch.no_grad():
        for begin in range(0, len(x), 500):
            batch = torch.from_numpy(np.ascontiguousarray(x[begin:begin + 500, None]))
            predicted.append(net(batch).argmax(1).numpy())
    predicted = np.concatenate(predicted)
    accuracy = float((predicted == labels).mean())
    card = json.loads((folder / "card.json").read_text())
    cajal = card["metrics"]["test_accuracy"]
    print(f"{folder}: {len(labels)} test images, PyTorch accuracy {accuracy:.4f}, "
          f"cajal's card {cajal:.4f}")
    per_class = [float((predicted[labels == k] == k).mean()) for k in range(int(labels.max()) + 1)]
    print("per class: " + ", ".join(f"{a:.3f}" for a in per_class))
    if abs(accuracy - cajal) * len(labels) > 1.0:
        sys.exit(f"disagreement: PyTorch {accuracy:.4f} against cajal {cajal:.4f}")


if __name__ == "__main__":
    main()
