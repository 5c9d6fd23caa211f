#!/usr/bin/python3
"""Writes tests/preprocess/fixtures/tiny_seg3d/: a tiny 3D segmentation model for the segment
pipeline's tests, with weights set by hand so that it thresholds a CT.

The network is a one-level U-Net of local layers only (convolution, batch norm with stored
statistics, ReLU, max pool, transposed convolution, concat, 1x1 head), so it may run over a
whole volume or over slabs. Its three outputs are background, "bone" (bright voxels, above about
+260 HU) and "air" (dark voxels, below about -460 HU), after the run configuration's CT
normalisation (clip to [-1000, 1000] HU, then (x - 0) / 500). A small context path through the
pooled level adds a local-mean term, so the pooling and the transposed convolution matter.

    /usr/bin/python3 tools/make_segment_test_model.py [OUT_DIR]

It also writes context_seg3d/: a two-level U-Net of the same local layer types with random
weights, whose labels depend on a wide context (for the slab and test-time augmentation tests).

The model folders are written with tools/export_torch_models.py's functions (torch.fx export,
safetensors writer), so it is read exactly as the engine's other fixtures are.
"""
import json
import pathlib
import sys

import torch
import torch.nn as nn

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import export_torch_models as exporter  # noqa: E402

SEED = 20261127

RUN = {
    "task": "segmentation", "input_channels": 1, "spatial_dims": 3,
    # (D, H, W): 8 slices of 2 mm, 24 x 24 voxels of 1.5 mm in plane
    "patch_size": [8, 24, 24], "target_spacing": [2.0, 1.5, 1.5], "orientation": "RAS",
    "normalization": {"kind": "ct", "clip_min": -1000, "clip_max": 1000, "mean": 0, "std": 500},
    "crop": {"kind": "body", "threshold": -500, "margin_mm": 6},
    "labels": ["background", "bone", "air"],
    "postprocessing": {"bone": {"min_component_mm3": 20}},
}


class TinySeg3d(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = nn.Conv3d(1, 4, 3, padding=1)
        self.enc_bn = nn.BatchNorm3d(4)
        self.enc_act = nn.ReLU()
        self.pool = nn.MaxPool3d(2)
        self.mid = nn.Conv3d(4, 4, 3, padding=1)
        self.mid_bn = nn.BatchNorm3d(4)
        self.mid_act = nn.ReLU()
        self.up = nn.ConvTranspose3d(4, 4, 2, stride=2)
        self.head = nn.Conv3d(8, 3, 1)

    def forward(self, x):
        e = self.enc_act(self.enc_bn(self.enc(x)))
        m = self.mid_act(self.mid_bn(self.mid(self.pool(e))))
        return self.head(torch.cat([e, self.up(m)], 1))


def set_weights(model, generator):
    """enc: 4 features of a lightly smoothed x: relu(x - 0.4), relu(-x - 0.8), relu(x), relu(-x).
    The pooled path carries a small random local mean; the head thresholds the features."""
    with torch.no_grad():
        smooth = torch.full((3, 3, 3), 0.2 / 26)
        smooth[1, 1, 1] = 0.8
        signs = torch.tensor([1.0, -1.0, 1.0, -1.0])
        model.enc.weight.copy_(signs.view(4, 1, 1, 1, 1) * smooth.view(1, 1, 3, 3, 3))
        model.enc.bias.copy_(torch.tensor([-0.4, -0.8, 0.0, 0.0]))
        # Batch norm with stored statistics that it undoes: (v - mean) / sqrt(var + eps) * w + b.
        for bn in (model.enc_bn, model.mid_bn):
            bn.running_mean.copy_(torch.rand(4, generator=generator) * 0.2)
            bn.running_var.copy_(torch.rand(4, generator=generator) + 0.5)
            bn.weight.copy_(torch.sqrt(bn.running_var + bn.eps))
            bn.bias.copy_(bn.running_mean)
        model.mid.weight.copy_(torch.rand(4, 4, 3, 3, 3, generator=generator) * 0.02)
        model.mid.bias.zero_()
        model.up.weight.copy_(torch.rand(4, 4, 2, 2, 2, generator=generator) * 0.1)
        model.up.bias.zero_()
        head = torch.zeros(3, 8)
        head[1, 0] = 4.0   # bone: bright excess
        head[2, 1] = 4.0   # air: dark excess
        head[1, 6] = 0.05  # context: the pooled path's mean of relu(x), relu(-x)
        head[2, 7] = 0.05
        model.head.weight.copy_(head.view(3, 8, 1, 1, 1))
        model.head.bias.copy_(torch.tensor([0.5, 0.0, 0.0]))


class ContextSeg3d(nn.Module):
    """Two levels (total stride 4), random weights: labels that depend on a wide context, so that
    a slab halo that is too shallow, or a mirroring not undone, changes them."""

    def __init__(self):
        super().__init__()
        block = lambda cin, cout: nn.Sequential(nn.Conv3d(cin, cout, 3, padding=1),
                                                nn.BatchNorm3d(cout), nn.ReLU())
        self.enc0 = block(1, 4)
        self.enc1 = block(4, 8)
        self.bottom = block(8, 8)
        self.pool = nn.MaxPool3d(2)
        self.up1 = nn.ConvTranspose3d(8, 8, 2, stride=2)
        self.dec1 = block(16, 8)
        self.up0 = nn.ConvTranspose3d(8, 4, 2, stride=2)
        self.head = nn.Conv3d(8, 3, 1)

    def forward(self, x):
        e0 = self.enc0(x)
        e1 = self.enc1(self.pool(e0))
        b = self.bottom(self.pool(e1))
        d1 = self.dec1(torch.cat([self.up1(b), e1], 1))
        return self.head(torch.cat([e0, self.up0(d1)], 1))


def write_model(folder, model, run, intended_use):
    """model.json, weights.safetensors and card.json of `model` (eval mode) in `folder`."""
    x = torch.linspace(-2, 2, 8 * 8 * 8).view(1, 1, 8, 8, 8)
    inputs, outputs, layers = exporter.export_graph(model, x)
    folder.mkdir(parents=True, exist_ok=True)
    spec = {"format": "cajal-model", "format_version": 1, "inputs": inputs, "outputs": outputs,
            "layers": layers, "run": run}
    (folder / "model.json").write_text(exporter.dump_spec(spec))
    weights = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    exporter.write_safetensors(folder / "weights.safetensors", weights)
    card = {"name": folder.name, "version": "0.1.0", "intended_use": intended_use,
            "metrics": {}, "provenance": {"generator": "tools/make_segment_test_model.py",
                                          "torch": torch.__version__, "seed": SEED}}
    (folder / "card.json").write_text(json.dumps(card, indent=1) + "\n")
    with torch.no_grad():
        labels = model(x).argmax(1)
    counts = [int((labels == c).sum()) for c in range(3)]
    size = sum(p.stat().st_size for p in folder.iterdir())
    print(f"{folder.name}: {len(layers)} layers, labels of a ramp {counts}, {size} bytes",
          file=sys.stderr)


def main():
    out_dir = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).resolve()
                           .parent.parent / "tests/preprocess/fixtures")
    torch.manual_seed(SEED)
    generator = torch.Generator().manual_seed(SEED)
    model = TinySeg3d()
    set_weights(model, generator)
    write_model(out_dir / "tiny_seg3d", model.eval(), RUN,
                "test fixture, hand-set weights: thresholds a CT into bone and air")
    torch.manual_seed(SEED)
    context = ContextSeg3d()
    with torch.no_grad():
        exporter.randomize(context, generator)
        # Centre each class's logit on a wavy input, so that all three labels occur.
        d, h, w = torch.meshgrid(*(torch.arange(n, dtype=torch.float32) for n in (16, 24, 24)),
                                 indexing="ij")
        wavy = 1.6 * torch.sin(d * 0.45 + 0.3) * torch.cos(h * 0.37) + 0.9 * torch.sin(w * 0.29)
        context.eval()
        logits = context(wavy.view(1, 1, 16, 24, 24))
        context.head.bias -= logits.mean(dim=(0, 2, 3, 4))
    # Mirroring allowed on every axis: the TTA test averages all 8 mirrorings.
    context_run = dict(RUN, patch_size=[16, 16, 16], postprocessing={}, mirror_axes=["x", "y", "z"])
    write_model(out_dir / "context_seg3d", context.eval(), context_run,
                "test fixture, random weights: labels that depend on a wide context")


if __name__ == "__main__":
    main()
