"""LeNet-5 on Fashion-MNIST trained by PyTorch with the network, initialisation, optimiser,
schedule and data of models/lenet5-fashion-mnist/train.json: the peer of `cajal train` for
issue 4 (test accuracy within one point; time per epoch on the same threads).

    /usr/bin/python3 bench/train/lenet5_torch.py [--epochs 10] [--threads 2] [--seed 1]

Prints one JSON line per epoch and a final one with the test accuracy.
"""
import argparse
import gzip
import json
import math
import os
import struct
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DATA = "/usr/share/datasets/fashion-mnist"


def read_idx(name):
    with gzip.open(os.path.join(DATA, name), "rb") as f:
        data = f.read()
    rank = data[3]
    dims = struct.unpack(">" + "I" * rank, data[4:4 + 4 * rank])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank).reshape(dims)


def load(prefix):
    images = read_idx(f"{prefix}-images-idx3-ubyte.gz").astype(np.float32) / 255.0
    labels = read_idx(f"{prefix}-labels-idx1-ubyte.gz").astype(np.int64)
    images = (images - 0.2860) / 0.3530
    background = (0.0 - 0.2860) / 0.3530
    padded = np.full((images.shape[0], 1, 32, 32), background, dtype=np.float32)
    padded[:, 0, 2:30, 2:30] = images
    return torch.from_numpy(padded), torch.from_numpy(labels)


class LeNet5(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 6, 5)
        self.c3 = nn.Conv2d(6, 16, 5)
        self.c5 = nn.Conv2d(16, 120, 5)
        self.f6 = nn.Linear(120, 84)
        self.output = nn.Linear(84, 10)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = F.avg_pool2d(torch.tanh(self.c1(x)), 2)
        x = F.avg_pool2d(torch.tanh(self.c3(x)), 2)
        x = torch.flatten(torch.tanh(self.c5(x)), 1)
        return self.output(torch.tanh(self.f6(x)))


def accuracy(model, images, labels):
    model.eval()
    with torch.no_grad():
        correct = sum((model(images[i:i + 1000]).argmax(1) == labels[i:i + 1000]).sum().item()
                      for i in range(0, len(images), 1000))
    model.train()
    return correct / len(images)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    images, labels = load("train")
    test_images, test_labels = load("t10k")
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(args.seed))
    validation = order[:5000]
    train = order[5000:]
    model = LeNet5()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    batches = len(train) // args.batch_size
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs * batches)
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        perm = train[torch.randperm(len(train))]
        total = 0.0
        for b in range(batches):
            idx = perm[b * args.batch_size:(b + 1) * args.batch_size]
            optimizer.zero_grad()
            loss = F.cross_entropy(model(images[idx]), labels[idx])
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += loss.item()
        seconds = time.perf_counter() - start
        print(json.dumps({"epoch": epoch, "train_loss": total / batches, "seconds": seconds,
                          "validation_accuracy": accuracy(model, images[validation],
                                                          labels[validation])}), flush=True)
    print(json.dumps({"test_accuracy": accuracy(model, test_images, test_labels),
                      "threads": args.threads, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
