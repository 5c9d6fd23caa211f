"""A cajal model folder (model.json + weights.safetensors) as a PyTorch module: the same graph,
layer by layer, with the same weights (docs/model-format.md gives PyTorch's name for each layer
type; tools/export_torch_models.py is the reverse mapping).

    net = load_model(MODEL_DIR)   # eval mode, weights loaded strictly (no tensor missing or extra)
    logits = net(x)               # x: [N, C, (D,) H, W] float32

Reads weights.safetensors itself (8-byte little-endian header length, JSON header, raw data), so
it needs no safetensors package.
"""
import json
import pathlib
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def read_safetensors(path):
    """{name: float32 tensor} of a .safetensors file (F32 only, as cajal writes)."""
    data = pathlib.Path(path).read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + length])
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if entry["dtype"] != "F32":
            raise ValueError(f"{path}: tensor '{name}': expected dtype F32, got {entry['dtype']}")
        begin, end = entry["data_offsets"]
        values = np.frombuffer(data, dtype="<f4", count=(end - begin) // 4,
                               offset=8 + length + begin)
        tensors[name] = torch.from_numpy(values.reshape(entry["shape"]).copy())
    return tensors


def pair(value, rank):
    return tuple(value) if isinstance(value, (list, tuple)) else (int(value),) * rank


def convolution(p, transposed):
    rank = len(p["kernel_size"])
    kind = {(2, False): nn.Conv2d, (3, False): nn.Conv3d, (2, True): nn.ConvTranspose2d,
            (3, True): nn.ConvTranspose3d}[(rank, transposed)]
    extra = {"output_padding": pair(p.get("output_padding", 0), rank)} if transposed else {}
    return kind(p["in_channels"], p["out_channels"], tuple(p["kernel_size"]),
                stride=pair(p.get("stride", 1), rank), padding=pair(p.get("padding", 0), rank),
                dilation=pair(p.get("dilation", 1), rank), groups=p.get("groups", 1),
                bias=p.get("bias", True), **extra)


class BatchNorm(nn.Module):
    """BatchNorm1d/2d/3d at inference (stored statistics), for an input of any rank."""

    def __init__(self, p):
        super().__init__()
        c = p["num_features"]
        self.eps = p.get("eps", 1e-5)
        if p.get("affine", True):
            self.weight = nn.Parameter(torch.ones(c))
            self.bias = nn.Parameter(torch.zeros(c))
        else:
            self.weight = self.bias = None
        self.register_buffer("running_mean", torch.zeros(c))
        self.register_buffer("running_var", torch.ones(c))

    def forward(self, x):
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False,
                            0.0, self.eps)


class Norm(nn.Module):
    """instance_norm (statistics over each sample's own extent) or group_norm."""

    def __init__(self, p, kind):
        super().__init__()
        self.kind = kind
        c = p["num_features"] if kind == "instance_norm" else p["num_channels"]
        self.groups = p.get("num_groups", 1)
        self.eps = p.get("eps", 1e-5)
        affine = p.get("affine", kind == "group_norm")
        self.weight = nn.Parameter(torch.ones(c)) if affine else None
        self.bias = nn.Parameter(torch.zeros(c)) if affine else None

    def forward(self, x):
        if self.kind == "instance_norm":
            return F.instance_norm(x, weight=self.weight, bias=self.bias, eps=self.eps)
        return F.group_norm(x, self.groups, self.weight, self.bias, self.eps)


class Op(nn.Module):
    """A layer without weights of its own, from its type and params."""

    def __init__(self, kind, p):
        super().__init__()
        self.kind = kind
        self.p = p

    def forward(self, *xs):
        k, p, x = self.kind, self.p, xs[0]
        rank = x.dim() - 2
        if k == "relu":
            return F.relu(x)
        if k == "leaky_relu":
            return F.leaky_relu(x, p.get("negative_slope", 0.01))
        if k == "elu":
            return F.elu(x, p.get("alpha", 1.0))
        if k in ("sigmoid", "tanh"):
            return getattr(torch, k)(x)
        if k == "gelu":
            return F.gelu(x)
        if k == "softmax":
            return torch.softmax(x, 1)
        if k == "argmax":
            return torch.argmax(x, 1, keepdim=True).to(x.dtype)
        if k == "concat":
            return torch.cat(xs, 1)
        if k == "add":
            out = xs[0]
            for y in xs[1:]:
                out = out + y
            return out
        if k == "flatten":
            return torch.flatten(x, 1)
        if k == "dropout":
            return x
        if k == "global_avg_pool":
            return F.adaptive_avg_pool3d(x, 1) if rank == 3 else F.adaptive_avg_pool2d(x, 1)
        if k in ("max_pool", "avg_pool"):
            kernel = tuple(p["kernel_size"])
            args = (kernel, pair(p.get("stride", kernel), rank), pair(p.get("padding", 0), rank))
            if k == "max_pool":
                return (F.max_pool3d if rank == 3 else F.max_pool2d)(x, *args)
            return (F.avg_pool3d if rank == 3 else F.avg_pool2d)(
                x, *args, count_include_pad=p.get("count_include_pad", True))
        if k == "upsample":
            linear = p.get("mode", "nearest") == "linear"
            mode = ("trilinear" if rank == 3 else "bilinear") if linear else "nearest"
            return F.interpolate(x, scale_factor=tuple(float(f) for f in p["scale_factor"]),
                                 mode=mode, align_corners=False if linear else None)
        raise ValueError(f"torch_graph.py: no PyTorch twin for layer type '{k}'")


def make_layer(kind, p):
    if kind in ("convolution", "transposed_convolution"):
        return convolution(p, kind == "transposed_convolution")
    if kind == "batch_norm":
        return BatchNorm(p)
    if kind in ("instance_norm", "group_norm"):
        return Norm(p, kind)
    if kind == "linear":
        return nn.Linear(p["in_features"], p["out_features"], bias=p.get("bias", True))
    if kind == "prelu":
        return nn.PReLU(p.get("num_parameters", 1))
    return Op(kind, p)


class GraphNet(nn.Module):
    """model.json's layers run in order on a dict of named blobs; returns the first output."""

    def __init__(self, spec):
        super().__init__()
        self.input = spec["inputs"][0]
        self.output = spec["outputs"][0]
        self.steps = []  # (module key, input blobs, output blob)
        self.layers = nn.ModuleDict()
        self.names = {}  # cajal layer name -> module key (ModuleDict keys cannot hold '.')
        for layer in spec["layers"]:
            key = layer["name"].replace(".", "__")
            self.layers[key] = make_layer(layer["type"], layer.get("params", {}))
            self.names[layer["name"]] = key
            self.steps.append((key, layer["inputs"], layer.get("output", layer["name"])))

    def forward(self, x):
        blobs = {self.input: x}
        for key, inputs, output in self.steps:
            blobs[output] = self.layers[key](*[blobs[i] for i in inputs])
        return blobs[self.output]


def load_model(model_dir):
    model_dir = pathlib.Path(model_dir)
    spec = json.loads((model_dir / "model.json").read_text())
    net = GraphNet(spec)
    state = {}
    for name, tensor in read_safetensors(model_dir / "weights.safetensors").items():
        layer, role = name.rsplit(".", 1)
        if layer not in net.names:
            raise ValueError(f"{model_dir}/weights.safetensors: tensor '{name}' of no layer")
        state[f"layers.{net.names[layer]}.{role}"] = tensor
    net.load_state_dict(state, strict=True)
    return net.eval(), spec
