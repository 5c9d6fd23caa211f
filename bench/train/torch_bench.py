"""Issue 4's training benchmark, PyTorch's side: one epoch of LeNet-5 on Fashion-MNIST (55,000
images, batch 64, Adam) or N steps of the same 3D U-Net as cajal's builder makes (features 16,
32, 64, 128, batch norm, ReLU, max pool, transposed convolutions) on 1x1x64^3, eager or
TorchScript, timed; prints one JSON line like bench/train/train_bench.

    /usr/bin/python3 bench/train/torch_bench.py lenet5|unet3d|unet3d_ct [--threads 2] [--steps 50] [--script]
"""
import argparse
import json
import os
import sys
import time
from typing import List

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from lenet5_torch import LeNet5, load  # noqa: E402


class Block(nn.Sequential):
    def __init__(self, cin, cout, conv):
        super().__init__(conv(cin, cout, 3, padding=1), nn.BatchNorm3d(cout), nn.ReLU(),
                         conv(cout, cout, 3, padding=1), nn.BatchNorm3d(cout), nn.ReLU())


class Up(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.up = nn.ConvTranspose3d(cin, cout, 2, stride=2)
        self.dec = Block(2 * cout, cout, nn.Conv3d)

    def forward(self, x, skip):
        return self.dec(torch.cat([self.up(x), skip], 1))


class UNet3D(nn.Module):
    def __init__(self, features=(16, 32, 64, 128), classes=2):
        super().__init__()
        self.enc = nn.ModuleList()
        cin = 1
        for f in features:
            self.enc.append(Block(cin, f, nn.Conv3d))
            cin = f
        self.decoder = nn.ModuleList(
            [Up(features[s + 1], features[s]) for s in reversed(range(len(features) - 1))])
        self.head = nn.Conv3d(features[0], classes, 1)

    def forward(self, x):
        skips: List[torch.Tensor] = []
        for i, block in enumerate(self.enc):
            if i > 0:
                x = F.max_pool3d(x, 2)
            x = block(x)
            skips.append(x)
        for i, stage in enumerate(self.decoder):
            x = stage(x, skips[-2 - i])
        return self.head(x)


def step(model, optimizer, x, y):
    optimizer.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    return loss.item()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("case", choices=["lenet5", "unet3d", "unet3d_ct"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--script", action="store_true", help="TorchScript the model")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    tool = "torch-script" if args.script else "torch-eager"
    if args.case == "lenet5":
        model = LeNet5()
        model = torch.jit.script(model) if args.script else model
        images, labels = load("train")
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        perm = torch.randperm(55000)
        start = time.perf_counter()
        for b in range(55000 // 64):
            idx = perm[b * 64:(b + 1) * 64]
            loss = step(model, optimizer, images[idx], labels[idx])
        print(json.dumps({"tool": tool, "case": "lenet5_epoch", "threads": args.threads,
                          "seconds": time.perf_counter() - start, "last_loss": loss}))
        return
    ct = args.case == "unet3d_ct"
    # unet3d_ct: the bundled CT model's U-Net (features 8 to 128, 12 classes) on a batch of two
    # 32x96x96 patches, as cajal train runs it.
    model = UNet3D(features=(8, 16, 32, 64, 128), classes=12) if ct else UNet3D()
    model = torch.jit.script(model) if args.script else model
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    if ct:
        y = torch.randint(0, 12, (2, 32, 96, 96))
    else:
        y = (torch.rand(1, 64, 64, 64) < 0.3).long()
    x = y.float().unsqueeze(1) + 0.5 * torch.randn(y.shape[0], 1, *y.shape[1:])
    step(model, optimizer, x, y)
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        loss = step(model, optimizer, x, y)
        times.append(time.perf_counter() - start)
    print(json.dumps({"tool": tool, "case": "unet3d_ct_steps" if ct else "unet3d_64_steps",
                      "threads": args.threads,
                      "steps": args.steps, "seconds": sum(times),
                      "median_step_seconds": sorted(times)[len(times) // 2], "last_loss": loss}))


if __name__ == "__main__":
    main()
