#!/usr/bin/python3
"""Exports small PyTorch models to cajal's model format, with an input and PyTorch's output.

Each model is defined in plain PyTorch, traced with torch.fx, and written as a model folder
(model.json, weights.safetensors, card.json; see docs/model-format.md) plus io.safetensors,
which holds the input and PyTorch's output under their blob names. The engine's tests load
every folder under tests/engine/fixtures/ and check the relative error against PyTorch.

    /usr/bin/python3 tools/export_torch_models.py [OUT_DIR]   (default tests/engine/fixtures)

With --production, writes the production-size models of bench/engine instead (never committed):
model folders, their state dicts and, per benchmark case, a static-shape ONNX file from
torch.onnx.export and the input as raw float32 (see export_production).

    /usr/bin/python3 tools/export_torch_models.py --production OUT_DIR
"""
import json
import operator
import pathlib
import struct
import sys

import torch
import torch.fx
import torch.nn as nn
import torch.nn.functional as F
from torch.fx.passes.shape_prop import ShapeProp

SEED = 20261126


# ---------------------------------------------------------------- the architectures, small

def conv_block(dims, cin, cout, norm, act, stride=1):
    Conv = nn.Conv3d if dims == 3 else nn.Conv2d
    return nn.Sequential(Conv(cin, cout, 3, stride=stride, padding=1), norm(cout), act())


class LeNet5(nn.Module):
    """LeCun 1998: C1 6@5x5, S2, C3 16@5x5, S4, C5 120, F6 84, 10 outputs; tanh, avg pooling."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 6, 5)
        self.s2 = nn.AvgPool2d(2)
        self.c3 = nn.Conv2d(6, 16, 5)
        self.s4 = nn.AvgPool2d(2)
        self.flatten = nn.Flatten()
        self.c5 = nn.Linear(400, 120)
        self.f6 = nn.Linear(120, 84)
        self.output = nn.Linear(84, 10)

    def forward(self, x):
        x = self.s2(torch.tanh(self.c1(x)))
        x = self.s4(torch.tanh(self.c3(x)))
        x = torch.tanh(self.c5(self.flatten(x)))
        return self.output(torch.tanh(self.f6(x)))


class UNet2d(nn.Module):
    """Ronneberger-style: (conv, batch norm, ReLU) x 2 per stage, max pool, transposed conv."""

    def __init__(self, features=(8, 16, 32), classes=3):
        super().__init__()
        bn, relu = nn.BatchNorm2d, nn.ReLU
        f = features
        self.enc0 = nn.Sequential(conv_block(2, 1, f[0], bn, relu), conv_block(2, f[0], f[0], bn, relu))
        self.enc1 = nn.Sequential(conv_block(2, f[0], f[1], bn, relu), conv_block(2, f[1], f[1], bn, relu))
        self.bottom = nn.Sequential(conv_block(2, f[1], f[2], bn, relu), conv_block(2, f[2], f[2], bn, relu))
        self.pool = nn.MaxPool2d(2)
        self.up1 = nn.ConvTranspose2d(f[2], f[1], 2, stride=2)
        self.dec1 = nn.Sequential(conv_block(2, 2 * f[1], f[1], bn, relu), conv_block(2, f[1], f[1], bn, relu))
        self.up0 = nn.ConvTranspose2d(f[1], f[0], 2, stride=2)
        self.dec0 = nn.Sequential(conv_block(2, 2 * f[0], f[0], bn, relu), conv_block(2, f[0], f[0], bn, relu))
        self.head = nn.Conv2d(f[0], classes, 1)

    def forward(self, x):
        e0 = self.enc0(x)
        e1 = self.enc1(self.pool(e0))
        b = self.bottom(self.pool(e1))
        d1 = self.dec1(torch.cat([self.up1(b), e1], 1))
        d0 = self.dec0(torch.cat([self.up0(d1), e0], 1))
        return self.head(d0)


class PlainUNet3d(nn.Module):
    """nnU-Net-style: (conv, instance norm, leaky ReLU) x 2 per stage, strided-conv down,
    transposed-conv up."""

    def __init__(self, features=(4, 8, 16), classes=3):
        super().__init__()
        norm = lambda c: nn.InstanceNorm3d(c, affine=True)
        act = lambda: nn.LeakyReLU(0.01)
        f = features
        self.enc0 = nn.Sequential(conv_block(3, 1, f[0], norm, act), conv_block(3, f[0], f[0], norm, act))
        self.enc1 = nn.Sequential(conv_block(3, f[0], f[1], norm, act, 2), conv_block(3, f[1], f[1], norm, act))
        self.bottom = nn.Sequential(conv_block(3, f[1], f[2], norm, act, 2), conv_block(3, f[2], f[2], norm, act))
        self.up1 = nn.ConvTranspose3d(f[2], f[1], 2, stride=2)
        self.dec1 = nn.Sequential(conv_block(3, 2 * f[1], f[1], norm, act), conv_block(3, f[1], f[1], norm, act))
        self.up0 = nn.ConvTranspose3d(f[1], f[0], 2, stride=2)
        self.dec0 = nn.Sequential(conv_block(3, 2 * f[0], f[0], norm, act), conv_block(3, f[0], f[0], norm, act))
        self.head = nn.Conv3d(f[0], classes, 1)

    def forward(self, x):
        e0 = self.enc0(x)
        e1 = self.enc1(e0)
        b = self.bottom(e1)
        d1 = self.dec1(torch.cat([self.up1(b), e1], 1))
        d0 = self.dec0(torch.cat([self.up0(d1), e0], 1))
        return self.head(d0)


class ResidualUnit3d(nn.Module):
    """MONAI's ResidualUnit with two subunits: conv, instance norm, PReLU; a strided 3x3 conv
    on the residual path when the shape changes."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv3d(cin, cout, 3, stride=stride, padding=1), nn.InstanceNorm3d(cout), nn.PReLU(),
            nn.Conv3d(cout, cout, 3, padding=1), nn.InstanceNorm3d(cout), nn.PReLU())
        self.residual = nn.Conv3d(cin, cout, 3, stride=stride, padding=1)

    def forward(self, x):
        return self.conv(x) + self.residual(x)


class MonaiUNet3d(nn.Module):
    """MONAI-style UNet: residual units, instance norm, PReLU, strides 2, transposed-conv up."""

    def __init__(self, channels=(4, 8, 16), classes=2):
        super().__init__()
        c = channels
        self.down0 = ResidualUnit3d(1, c[0], 2)
        self.down1 = ResidualUnit3d(c[0], c[1], 2)
        self.bottom = ResidualUnit3d(c[1], c[2], 1)
        self.up1 = nn.Sequential(nn.ConvTranspose3d(c[1] + c[2], c[0], 3, stride=2, padding=1,
                                                    output_padding=1),
                                 nn.InstanceNorm3d(c[0]), nn.PReLU())
        self.up0 = nn.ConvTranspose3d(2 * c[0], classes, 3, stride=2, padding=1, output_padding=1)

    def forward(self, x):
        d0 = self.down0(x)
        d1 = self.down1(d0)
        b = self.bottom(d1)
        u1 = self.up1(torch.cat([d1, b], 1))
        return self.up0(torch.cat([d0, u1], 1))


class BasicBlock(nn.Module):
    def __init__(self, dims, cin, cout, stride):
        super().__init__()
        Conv = nn.Conv3d if dims == 3 else nn.Conv2d
        Norm = nn.BatchNorm3d if dims == 3 else nn.BatchNorm2d
        self.conv1 = Conv(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = Norm(cout)
        self.relu = nn.ReLU()
        self.conv2 = Conv(cout, cout, 3, padding=1, bias=False)
        self.bn2 = Norm(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(Conv(cin, cout, 1, stride=stride, bias=False), Norm(cout))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """ResNet-18-style (torchvision's layout), two stages of basic blocks, 2D or 3D."""

    def __init__(self, dims, width=8, classes=5):
        super().__init__()
        Conv = nn.Conv3d if dims == 3 else nn.Conv2d
        Norm = nn.BatchNorm3d if dims == 3 else nn.BatchNorm2d
        Pool = nn.MaxPool3d if dims == 3 else nn.MaxPool2d
        Gap = nn.AdaptiveAvgPool3d if dims == 3 else nn.AdaptiveAvgPool2d
        self.conv1 = Conv(3 if dims == 2 else 1, width, 7, stride=2, padding=3, bias=False)
        self.bn1 = Norm(width)
        self.relu = nn.ReLU()
        self.maxpool = Pool(3, stride=2, padding=1)
        self.layer1 = nn.Sequential(BasicBlock(dims, width, width, 1), BasicBlock(dims, width, width, 1))
        self.layer2 = nn.Sequential(BasicBlock(dims, width, 2 * width, 2),
                                    BasicBlock(dims, 2 * width, 2 * width, 1))
        self.avgpool = Gap(1)
        self.fc = nn.Linear(2 * width, classes)
        self.softmax = nn.Softmax(dim=1)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer2(self.layer1(x))
        return self.softmax(self.fc(torch.flatten(self.avgpool(x), 1)))


class AlexNetStyle(nn.Module):
    """AlexNet-style classifier, small: large strided first conv, ReLU, max pool, dropout."""

    def __init__(self, classes=4):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 11, stride=4, padding=2), nn.ReLU(), nn.MaxPool2d(3, stride=2),
            nn.Conv2d(16, 24, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, stride=2),
            nn.Conv2d(24, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, stride=2))
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Dropout(0.5), nn.Linear(32 * 2 * 2, 64), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(64, classes))

    def forward(self, x):
        return self.classifier(self.features(x))


class LayerZoo(nn.Module):
    """The layers the architectures above leave out: group norm, GELU, ELU, sigmoid, grouped and
    dilated convolution, nearest and linear upsampling, average pooling without padding counts."""

    def __init__(self):
        super().__init__()
        self.conv0 = nn.Conv2d(2, 8, 3, padding=1)
        self.gn = nn.GroupNorm(4, 8)
        self.gelu = nn.GELU()
        self.pool = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
        self.up_linear = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.conv1 = nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=2)
        self.elu = nn.ELU(0.5)
        self.down = nn.MaxPool2d(2)
        self.up_nearest = nn.Upsample(scale_factor=2, mode="nearest")
        self.prelu = nn.PReLU(8)
        self.head = nn.Conv2d(16, 3, 1)

    def forward(self, x):
        a = self.gelu(self.gn(self.conv0(x)))
        b = self.elu(self.conv1(self.up_linear(self.pool(a))))
        c = self.prelu(self.up_nearest(self.down(b)))
        return torch.sigmoid(self.head(torch.cat([a + c, torch.relu(b)], 1)))


# ---------------------------------------------------------------- the architectures, production size

class PlainUNet3dDeep(nn.Module):
    """PlainUNet3d at nnU-Net's 3d_fullres size: six stages of 32 up to 320 features, the first
    at stride 1, the others strided-conv down, transposed-conv up."""

    def __init__(self, features=(32, 64, 128, 256, 320, 320), classes=3):
        super().__init__()
        norm = lambda c: nn.InstanceNorm3d(c, affine=True)
        act = lambda: nn.LeakyReLU(0.01)
        f = features
        self.enc = nn.ModuleList(
            nn.Sequential(conv_block(3, f[i - 1] if i else 1, f[i], norm, act, 2 if i else 1),
                          conv_block(3, f[i], f[i], norm, act)) for i in range(len(f)))
        self.up = nn.ModuleList(nn.ConvTranspose3d(f[i + 1], f[i], 2, stride=2)
                                for i in reversed(range(len(f) - 1)))
        self.dec = nn.ModuleList(
            nn.Sequential(conv_block(3, 2 * f[i], f[i], norm, act), conv_block(3, f[i], f[i], norm, act))
            for i in reversed(range(len(f) - 1)))
        self.head = nn.Conv3d(f[0], classes, 1)

    def forward(self, x):
        skips = []
        for enc in self.enc:
            x = enc(x)
            skips.append(x)
        x = skips.pop()
        for up, dec in zip(self.up, self.dec):
            x = dec(torch.cat([up(x), skips.pop()], 1))
        return self.head(x)


class MonaiUNet3dDeep(nn.Module):
    """MonaiUNet3d at MONAI's usual size: channels 16-32-64-128-256, strides 2, 2, 2, 2."""

    def __init__(self, channels=(16, 32, 64, 128, 256), classes=2):
        super().__init__()
        c = channels
        self.down = nn.ModuleList(ResidualUnit3d(c[i - 1] if i else 1, c[i], 2)
                                  for i in range(len(c) - 1))
        self.bottom = ResidualUnit3d(c[-2], c[-1], 1)
        ups = []
        for i in reversed(range(len(c) - 1)):
            cin = c[i] + (c[i + 1] if i == len(c) - 2 else c[i])
            cout = c[i - 1] if i else classes
            conv = nn.ConvTranspose3d(cin, cout, 3, stride=2, padding=1, output_padding=1)
            ups.append(nn.Sequential(conv, nn.InstanceNorm3d(cout), nn.PReLU()) if i else conv)
        self.up = nn.ModuleList(ups)

    def forward(self, x):
        skips = []
        for down in self.down:
            x = down(x)
            skips.append(x)
        x = self.bottom(x)
        for up in self.up:
            x = up(torch.cat([skips.pop(), x], 1))
        return x


class UNet2dDeep(nn.Module):
    """UNet2d with five stages of 32 up to 512 features (Ronneberger's, at half the width)."""

    def __init__(self, features=(32, 64, 128, 256, 512), classes=3):
        super().__init__()
        bn, relu = nn.BatchNorm2d, nn.ReLU
        f = features
        self.enc = nn.ModuleList(
            nn.Sequential(conv_block(2, f[i - 1] if i else 1, f[i], bn, relu),
                          conv_block(2, f[i], f[i], bn, relu)) for i in range(len(f)))
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList(nn.ConvTranspose2d(f[i + 1], f[i], 2, stride=2)
                                for i in reversed(range(len(f) - 1)))
        self.dec = nn.ModuleList(
            nn.Sequential(conv_block(2, 2 * f[i], f[i], bn, relu), conv_block(2, f[i], f[i], bn, relu))
            for i in reversed(range(len(f) - 1)))
        self.head = nn.Conv2d(f[0], classes, 1)

    def forward(self, x):
        skips = []
        for i, enc in enumerate(self.enc):
            x = enc(self.pool(x) if i else x)
            skips.append(x)
        x = skips.pop()
        for up, dec in zip(self.up, self.dec):
            x = dec(torch.cat([up(x), skips.pop()], 1))
        return self.head(x)


class ResNet18(nn.Module):
    """ResNet-18 in torchvision's layout: 64 to 512 channels, four stages of two basic blocks."""

    def __init__(self, classes=1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        w = (64, 128, 256, 512)
        self.layer1 = nn.Sequential(BasicBlock(2, 64, 64, 1), BasicBlock(2, 64, 64, 1))
        self.layer2 = nn.Sequential(BasicBlock(2, w[0], w[1], 2), BasicBlock(2, w[1], w[1], 1))
        self.layer3 = nn.Sequential(BasicBlock(2, w[1], w[2], 2), BasicBlock(2, w[2], w[2], 1))
        self.layer4 = nn.Sequential(BasicBlock(2, w[2], w[3], 2), BasicBlock(2, w[3], w[3], 1))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


# ---------------------------------------------------------------- fx graph -> model.json

def ints(value, rank):
    return list(value) if isinstance(value, (tuple, list)) else [int(value)] * rank


def module_layer(m, rank):
    """(type, params) of one module, or raise for what cajal cannot run as PyTorch does."""
    if isinstance(m, (nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
        if m.padding_mode != "zeros" or isinstance(m.padding, str):
            raise ValueError(f"unsupported padding {m.padding!r}/{m.padding_mode}")
        params = {"in_channels": m.in_channels, "out_channels": m.out_channels,
                  "kernel_size": list(m.kernel_size), "stride": list(m.stride),
                  "padding": list(m.padding), "dilation": list(m.dilation), "groups": m.groups,
                  "bias": m.bias is not None}
        if m.transposed:
            params["output_padding"] = list(m.output_padding)
            return "transposed_convolution", params
        return "convolution", params
    if isinstance(m, nn.modules.batchnorm._BatchNorm):
        assert m.track_running_stats
        return "batch_norm", {"num_features": m.num_features, "eps": m.eps, "affine": m.affine}
    if isinstance(m, nn.modules.instancenorm._InstanceNorm):
        assert not m.track_running_stats
        return "instance_norm", {"num_features": m.num_features, "eps": m.eps, "affine": m.affine}
    if isinstance(m, nn.GroupNorm):
        return "group_norm", {"num_groups": m.num_groups, "num_channels": m.num_channels,
                              "eps": m.eps, "affine": m.affine}
    if isinstance(m, (nn.MaxPool2d, nn.MaxPool3d)):
        assert m.dilation in (1, (1,) * rank) and not m.ceil_mode and not m.return_indices
        return "max_pool", {"kernel_size": ints(m.kernel_size, rank),
                            "stride": ints(m.stride, rank), "padding": ints(m.padding, rank)}
    if isinstance(m, (nn.AvgPool2d, nn.AvgPool3d)):
        assert not m.ceil_mode and m.divisor_override is None
        return "avg_pool", {"kernel_size": ints(m.kernel_size, rank),
                            "stride": ints(m.stride, rank), "padding": ints(m.padding, rank),
                            "count_include_pad": m.count_include_pad}
    if isinstance(m, (nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d)):
        assert ints(m.output_size, rank) == [1] * rank
        return "global_avg_pool", {}
    if isinstance(m, nn.Upsample):
        assert m.size is None and m.mode in ("nearest", "bilinear", "trilinear")
        assert not m.align_corners
        factors = ints(m.scale_factor, rank)
        assert all(float(f).is_integer() for f in factors)
        return "upsample", {"scale_factor": [int(f) for f in factors],
                            "mode": "nearest" if m.mode == "nearest" else "linear"}
    simple = {nn.ReLU: "relu", nn.Sigmoid: "sigmoid", nn.Tanh: "tanh", nn.Flatten: "flatten"}
    for cls, name in simple.items():
        if isinstance(m, cls):
            if isinstance(m, nn.Flatten):
                assert m.start_dim == 1 and m.end_dim == -1
            return name, {}
    if isinstance(m, nn.LeakyReLU):
        return "leaky_relu", {"negative_slope": m.negative_slope}
    if isinstance(m, nn.ELU):
        return "elu", {"alpha": m.alpha}
    if isinstance(m, nn.GELU):
        assert m.approximate == "none"
        return "gelu", {}
    if isinstance(m, nn.PReLU):
        return "prelu", {"num_parameters": m.num_parameters}
    if isinstance(m, nn.Softmax):
        assert m.dim == 1
        return "softmax", {}
    if isinstance(m, nn.Linear):
        return "linear", {"in_features": m.in_features, "out_features": m.out_features,
                          "bias": m.bias is not None}
    if isinstance(m, nn.Dropout):
        return "dropout", {"p": m.p}
    raise ValueError(f"no cajal layer for {type(m).__name__}")


def function_layer(node):
    f = node.target
    if f in (torch.cat,):
        dim = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else 0)
        assert dim == 1, "concat over channels only"
        return "concat", {}, list(node.args[0])
    if f in (operator.add, torch.add):
        return "add", {}, list(node.args)
    if f in (torch.flatten,):
        assert node.args[1:] == (1,) or node.kwargs.get("start_dim") == 1
        return "flatten", {}, [node.args[0]]
    names = {torch.relu: "relu", F.relu: "relu", torch.tanh: "tanh", torch.sigmoid: "sigmoid"}
    if f in names:
        return names[f], {}, [node.args[0]]
    raise ValueError(f"no cajal layer for function {f}")


def export_graph(model, example):
    gm = torch.fx.symbolic_trace(model)
    ShapeProp(gm).propagate(example)
    inputs, outputs, layers, used = [], [], [], {}
    modules = dict(gm.named_modules())
    for node in gm.graph.nodes:
        if node.op == "placeholder":
            inputs.append(node.name)
        elif node.op == "output":
            result = node.args[0]
            outputs = [n.name for n in (result if isinstance(result, (tuple, list)) else [result])]
        elif node.op == "call_module":
            m = modules[node.target]
            rank = len(node.args[0].meta["tensor_meta"].shape) - 2
            kind, params = module_layer(m, rank)
            name = node.target
            if name in used:
                if any(True for _ in m.parameters()):
                    raise ValueError(f"module '{name}' with weights is called twice")
                name = f"{name}_{used[node.target]}"
            used[node.target] = used.get(node.target, 0) + 1
            layers.append({"name": name, "type": kind, "inputs": [node.args[0].name],
                           "output": node.name, "params": params})
        elif node.op in ("call_function", "call_method"):
            kind, params, args = function_layer(node)
            layers.append({"name": node.name, "type": kind, "inputs": [a.name for a in args],
                           "output": node.name, "params": params})
        else:
            raise ValueError(f"unsupported fx node {node.op} {node.target}")
    return inputs, outputs, layers


# ---------------------------------------------------------------- files

def write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        data = tensors[name].detach().to(torch.float32).contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for data in blobs:
            f.write(data)


def dump_spec(spec):
    """model.json with one line per layer, so a diff shows which layer changed."""
    compact = lambda v: json.dumps(v, separators=(", ", ": "))
    lines = [f'  {compact(k)}: {compact(v)}' for k, v in spec.items() if k != "layers"]
    layers = ",\n".join("    " + compact(layer) for layer in spec["layers"])
    lines.insert(4, f'  "layers": [\n{layers}\n  ]')
    return "{\n" + ",\n".join(lines) + "\n}\n"


def randomize(model, generator):
    """Moves norm layers off their identity initialisation, so the test sees them work."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.randn(m.num_features, generator=generator) * 0.2)
            m.running_var.copy_(torch.rand(m.num_features, generator=generator) + 0.5)
        if isinstance(m, (nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm,
                          nn.GroupNorm)) and m.affine:
            m.weight.copy_(torch.rand(m.weight.shape, generator=generator) + 0.5)
            m.bias.copy_(torch.randn(m.bias.shape, generator=generator) * 0.2)
        if isinstance(m, nn.PReLU):
            m.weight.copy_(torch.rand(m.weight.shape, generator=generator) * 0.5)


def export(out_dir, name, model, input_shape, run, description):
    torch.manual_seed(SEED)
    generator = torch.Generator().manual_seed(SEED)
    with torch.no_grad():
        randomize(model, generator)
    model.eval()
    x = torch.randn(*input_shape, generator=generator)
    inputs, outputs, layers = export_graph(model, x)
    with torch.no_grad():
        y = model(x)
    folder = out_dir / name
    folder.mkdir(parents=True, exist_ok=True)
    spec = {"format": "cajal-model", "format_version": 1, "inputs": inputs, "outputs": outputs,
            "layers": layers, "run": run}
    (folder / "model.json").write_text(dump_spec(spec))
    weights = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    write_safetensors(folder / "weights.safetensors", weights)
    card = {"name": name, "version": "0.1.0",
            "intended_use": "test fixture with random weights: " + description,
            "metrics": {}, "provenance": {"generator": "tools/export_torch_models.py",
                                          "torch": torch.__version__, "seed": SEED}}
    (folder / "card.json").write_text(json.dumps(card, indent=1) + "\n")
    write_safetensors(folder / "io.safetensors", {inputs[0]: x, outputs[0]: y})
    size = sum(p.stat().st_size for p in folder.iterdir())
    print(f"{name}: {len(layers)} layers, input {list(x.shape)}, output {list(y.shape)}, "
          f"{size} bytes", file=sys.stderr)


def segmentation(dims, labels, patch, channels=1):
    return {"task": "segmentation", "input_channels": channels, "spatial_dims": dims,
            "patch_size": patch, "target_spacing": [1.0] * dims,
            "orientation": "RAS", "normalization": {"kind": "zscore"}, "labels": labels}


def classification(dims, channels, classes):
    return {"task": "classification", "input_channels": channels, "spatial_dims": dims,
            "normalization": {"kind": "zscore"}, "labels": [f"class{i}" for i in range(classes)]}


# ---------------------------------------------------------------- production sizes for bench/engine

# name: (constructor, run configuration, a small input to trace the graph at: instance norm needs
# more than one voxel at the bottom)
PRODUCTION_MODELS = {
    "plain_unet3d": (PlainUNet3dDeep, segmentation(3, ["background", "a", "b"], [128, 128, 128]),
                     (1, 1, 64, 64, 64)),
    "monai_unet3d": (MonaiUNet3dDeep, segmentation(3, ["background", "a"], [96, 96, 96]),
                     (1, 1, 32, 32, 32)),
    "unet2d": (UNet2dDeep, segmentation(2, ["background", "a", "b"], [512, 512]), (1, 1, 32, 32)),
    "resnet18": (ResNet18, classification(2, 3, 1000), (1, 3, 64, 64)),
    "lenet5": (LeNet5, classification(2, 1, 10), (1, 1, 32, 32)),
}

# case: (model, input shape); the inputs of issue 3's speed benchmark
PRODUCTION_CASES = {
    "plain_unet3d_96": ("plain_unet3d", (1, 1, 96, 96, 96)),
    "plain_unet3d_128": ("plain_unet3d", (1, 1, 128, 128, 128)),
    "monai_unet3d_96": ("monai_unet3d", (1, 1, 96, 96, 96)),
    "monai_unet3d_128": ("monai_unet3d", (1, 1, 128, 128, 128)),
    "unet2d_512": ("unet2d", (1, 1, 512, 512)),
    "resnet18_224": ("resnet18", (1, 3, 224, 224)),
    "lenet5_b256": ("lenet5", (256, 1, 32, 32)),
}


def make_production_model(name, state_dict=None):
    """The model `name` of PRODUCTION_MODELS with seeded random weights, in eval mode; with
    `state_dict`, those weights instead."""
    torch.manual_seed(SEED)
    model = PRODUCTION_MODELS[name][0]()
    if state_dict is None:
        with torch.no_grad():
            randomize(model, torch.Generator().manual_seed(SEED))
    else:
        model.load_state_dict(state_dict)
    return model.eval()


def export_production(out_dir, only=None):
    """OUT_DIR/models/NAME/: model.json, weights.safetensors, card.json and state_dict.pt (the
    same tensors for PyTorch). OUT_DIR/cases/CASE/: model.onnx (static shape) and input.f32
    (seeded randn, raw little-endian float32 in NCDHW order) and case.json."""
    for name, (_, run, trace_shape) in PRODUCTION_MODELS.items():
        if only and not any(PRODUCTION_CASES[c][0] == name for c in only):
            continue
        model = make_production_model(name)
        inputs, outputs, layers = export_graph(model, torch.zeros(*trace_shape))
        folder = out_dir / "models" / name
        folder.mkdir(parents=True, exist_ok=True)
        spec = {"format": "cajal-model", "format_version": 1, "inputs": inputs,
                "outputs": outputs, "layers": layers, "run": run}
        (folder / "model.json").write_text(dump_spec(spec))
        weights = {k: v for k, v in model.state_dict().items()
                   if not k.endswith("num_batches_tracked")}
        write_safetensors(folder / "weights.safetensors", weights)
        torch.save(model.state_dict(), folder / "state_dict.pt")
        card = {"name": name, "version": "0.1.0",
                "intended_use": "benchmark model with random weights (bench/engine)",
                "metrics": {}, "provenance": {"generator": "tools/export_torch_models.py --production",
                                              "torch": torch.__version__, "seed": SEED}}
        (folder / "card.json").write_text(json.dumps(card, indent=1) + "\n")
        print(f"{name}: {len(layers)} layers, "
              f"{sum(p.numel() for p in model.parameters())} parameters", file=sys.stderr)
    for case, (name, shape) in PRODUCTION_CASES.items():
        if only and case not in only:
            continue
        model = make_production_model(name)
        folder = out_dir / "cases" / case
        folder.mkdir(parents=True, exist_ok=True)
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(SEED))
        (folder / "input.f32").write_bytes(x.numpy().astype("<f4").tobytes())
        with torch.no_grad():
            torch.onnx.export(model, x, str(folder / "model.onnx"), input_names=["input"],
                              output_names=["output"], opset_version=17)
        (folder / "case.json").write_text(json.dumps({"case": case, "model": name,
                                                      "input_shape": list(shape)}) + "\n")
        print(f"{case}: input {list(shape)}", file=sys.stderr)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--production":
        if len(sys.argv) < 3:
            sys.exit("usage: export_torch_models.py --production OUT_DIR [CASE ...]")
        torch.set_num_threads(2)
        export_production(pathlib.Path(sys.argv[2]), sys.argv[3:])
        return
    out_dir = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else
                           pathlib.Path(__file__).resolve().parent.parent / "tests/engine/fixtures")
    torch.set_num_threads(1)
    torch.manual_seed(SEED)
    export(out_dir, "lenet5", LeNet5(), (4, 1, 32, 32), classification(2, 1, 10), "LeNet-5")
    torch.manual_seed(SEED)
    export(out_dir, "unet2d", UNet2d(), (1, 1, 32, 32),
           segmentation(2, ["background", "a", "b"], [32, 32]), "Ronneberger-style 2D U-Net")
    torch.manual_seed(SEED)
    export(out_dir, "plain_unet3d", PlainUNet3d(), (1, 1, 16, 16, 16),
           segmentation(3, ["background", "a", "b"], [16, 16, 16]), "nnU-Net-style 3D U-Net")
    torch.manual_seed(SEED)
    export(out_dir, "monai_unet3d", MonaiUNet3d(), (1, 1, 16, 16, 16),
           segmentation(3, ["background", "a"], [16, 16, 16]), "MONAI-style 3D UNet")
    torch.manual_seed(SEED)
    export(out_dir, "resnet2d", ResNet(2), (2, 3, 32, 32), classification(2, 3, 5),
           "ResNet-18-style 2D classifier")
    torch.manual_seed(SEED)
    export(out_dir, "resnet3d", ResNet(3), (1, 1, 16, 16, 16), classification(3, 1, 5),
           "ResNet-18-style 3D classifier")
    torch.manual_seed(SEED)
    export(out_dir, "alexnet", AlexNetStyle(), (2, 3, 99, 99), classification(2, 3, 4),
           "AlexNet-style 2D classifier")
    torch.manual_seed(SEED)
    export(out_dir, "layer_zoo", LayerZoo(), (1, 2, 12, 10),
           segmentation(2, ["a", "b", "c"], [12, 10], channels=2), "layers the architectures leave out")


if __name__ == "__main__":
    main()
