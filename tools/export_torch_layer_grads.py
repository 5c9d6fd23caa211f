#!/usr/bin/python3
"""Writes single-layer gradient fixtures from PyTorch's autograd for the engine's backward passes.

For each case: NAME.json (layer type, params, training mode, dropout seed) and NAME.safetensors
holding the layer's weights ("weight.<role>", PyTorch's values before the forward), the inputs
("input0", ...), the upstream gradient ("diff_dst"), and PyTorch's results: "dst", "diff_src0",
..., "grad.<role>" for the trainable weights and, for batch norm, "after.running_mean" and
"after.running_var" (the running statistics after one training forward). The engine's test
(tests/engine_grad/torch_layer_grad_test.cpp) runs the same layer on both backends and compares
every tensor with relative error <= 1e-4.

    /usr/bin/python3 tools/export_torch_layer_grads.py [OUT_DIR]   (default
    tests/engine_grad/fixtures)
"""
import json
import pathlib
import sys

import torch
import torch.nn as nn

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from export_torch_models import write_safetensors  # noqa: E402

SEED = 20261127
MASK64 = (1 << 64) - 1


# ---------------------------------------------------------------- dropout's mask, as the engine draws it

def mix(x):
    """SplitMix64's finaliser (engine/layers/reshape.cpp)."""
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


def hash_name(name):
    h = 0xCBF29CE484222325
    for byte in name.encode():
        h = ((h ^ byte) * 0x100000001B3) & MASK64
    return h


def dropout_mask(seed, name, step, count, p):
    stream = mix((mix(seed ^ hash_name(name)) + step) & MASK64)
    keep = [(mix((stream + i) & MASK64) >> 11) * 2.0 ** -53 >= p for i in range(count)]
    return torch.tensor(keep, dtype=torch.float32)


class EngineDropout(nn.Module):
    """PyTorch's Dropout arithmetic (x * mask / (1 - p)) with the engine's first mask after
    set_seed(seed) for a layer named 'layer'."""

    def __init__(self, p, seed):
        super().__init__()
        self.p, self.seed = p, seed

    def forward(self, x):
        mask = dropout_mask(self.seed, "layer", 0, x.numel(), self.p).reshape(x.shape)
        return x * (mask / (1.0 - self.p))


class Add(nn.Module):
    def forward(self, *xs):
        return sum(xs[1:], xs[0])


class Concat(nn.Module):
    def forward(self, *xs):
        return torch.cat(xs, dim=1)


# ---------------------------------------------------------------- the cases

def bn(cls, c, **kw):
    return cls(c, momentum=0.1, **kw)


# name: (engine type, engine params, module, input shapes, training)
CASES = {
    "relu": ("relu", {}, nn.ReLU(), [(2, 3, 4, 5)], True),
    "leaky_relu": ("leaky_relu", {"negative_slope": 0.1}, nn.LeakyReLU(0.1), [(2, 3, 5)], True),
    "elu": ("elu", {"alpha": 0.7}, nn.ELU(0.7), [(2, 2, 3, 4, 3)], True),
    "sigmoid": ("sigmoid", {}, nn.Sigmoid(), [(3, 5)], True),
    "tanh": ("tanh", {}, nn.Tanh(), [(2, 3, 4, 5)], True),
    "gelu": ("gelu", {}, nn.GELU(), [(2, 3, 4, 5)], True),
    "prelu_shared": ("prelu", {}, nn.PReLU(), [(2, 3, 4, 5)], True),
    "prelu_channels3d": ("prelu", {"num_parameters": 2}, nn.PReLU(2), [(2, 2, 3, 4, 3)], True),
    "softmax": ("softmax", {}, nn.Softmax(dim=1), [(2, 4, 3, 5)], True),
    "softmax3d": ("softmax", {}, nn.Softmax(dim=1), [(2, 3, 2, 3, 4)], True),
    "batch_norm2d": ("batch_norm", {"num_features": 3}, bn(nn.BatchNorm2d, 3), [(2, 3, 4, 5)],
                     True),
    "batch_norm3d": ("batch_norm", {"num_features": 2}, bn(nn.BatchNorm3d, 2),
                     [(2, 2, 3, 4, 3)], True),
    "batch_norm1d": ("batch_norm", {"num_features": 5}, bn(nn.BatchNorm1d, 5), [(6, 5)], True),
    "batch_norm_no_affine": ("batch_norm", {"num_features": 3, "affine": False},
                             bn(nn.BatchNorm2d, 3, affine=False), [(2, 3, 3, 5)], True),
    "batch_norm_momentum": ("batch_norm", {"num_features": 2, "momentum": 0.3, "eps": 1e-3},
                            nn.BatchNorm2d(2, momentum=0.3, eps=1e-3), [(3, 2, 3, 3)], True),
    "leaky_relu_negative_slope": ("leaky_relu", {"negative_slope": -0.2}, nn.LeakyReLU(-0.2),
                                  [(2, 3, 4)], True),
    "batch_norm_eval": ("batch_norm", {"num_features": 3}, bn(nn.BatchNorm2d, 3), [(2, 3, 4, 5)],
                        False),
    "instance_norm2d": ("instance_norm", {"num_features": 3, "affine": True},
                        nn.InstanceNorm2d(3, affine=True), [(2, 3, 4, 5)], True),
    "instance_norm3d": ("instance_norm", {"num_features": 2}, nn.InstanceNorm3d(2),
                        [(2, 2, 3, 4, 3)], True),
    "group_norm": ("group_norm", {"num_groups": 2, "num_channels": 4}, nn.GroupNorm(2, 4),
                   [(2, 4, 3, 5)], True),
    "group_norm3d": ("group_norm", {"num_groups": 3, "num_channels": 6, "eps": 1e-3},
                     nn.GroupNorm(3, 6, eps=1e-3), [(2, 6, 2, 3, 3)], True),
    "add": ("add", {}, Add(), [(2, 3, 4, 5), (2, 3, 4, 5)], True),
    "concat": ("concat", {}, Concat(), [(2, 2, 3, 4), (2, 3, 3, 4), (2, 1, 3, 4)], True),
    "flatten": ("flatten", {}, nn.Flatten(), [(2, 3, 2, 5)], True),
    "dropout": ("dropout", {"p": 0.3}, EngineDropout(0.3, 5), [(2, 3, 4, 5)], True),
    "upsample_nearest2d": ("upsample", {"scale_factor": [2, 3]},
                           nn.Upsample(scale_factor=(2, 3), mode="nearest"), [(2, 3, 3, 4)],
                           True),
    "upsample_nearest3d": ("upsample", {"scale_factor": [2, 2, 2]},
                           nn.Upsample(scale_factor=(2, 2, 2), mode="nearest"), [(1, 2, 2, 3, 3)],
                           True),
    "upsample_bilinear": ("upsample", {"scale_factor": [2, 3], "mode": "linear"},
                          nn.Upsample(scale_factor=(2, 3), mode="bilinear", align_corners=False),
                          [(2, 2, 3, 4)], True),
    "upsample_trilinear": ("upsample", {"scale_factor": [2, 2, 3], "mode": "linear"},
                           nn.Upsample(scale_factor=(2, 2, 3), mode="trilinear",
                                       align_corners=False), [(1, 2, 2, 3, 3)], True),
}


def randomize(module, generator):
    """Moves weights off their initial values, as tools/export_torch_models.py does."""
    with torch.no_grad():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.running_mean.copy_(torch.randn(module.num_features, generator=generator) * 0.2)
            module.running_var.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
        if getattr(module, "weight", None) is not None:
            module.weight.copy_(torch.rand(module.weight.shape, generator=generator) + 0.5)
        if getattr(module, "bias", None) is not None:
            module.bias.copy_(torch.randn(module.bias.shape, generator=generator) * 0.2)
        if isinstance(module, nn.PReLU):
            module.weight.copy_(torch.rand(module.weight.shape, generator=generator) * 0.5)


def export_case(out_dir, name, case, generator):
    layer_type, params, module, shapes, training = case
    randomize(module, generator)
    module.train(training)
    tensors = {f"weight.{k}": v.clone() for k, v in module.state_dict().items()
               if not k.endswith("num_batches_tracked")}
    inputs = [torch.randn(*s, generator=generator, requires_grad=True) for s in shapes]
    dst = module(*inputs)
    diff_dst = torch.randn(dst.shape, generator=generator)
    dst.backward(diff_dst)
    for i, x in enumerate(inputs):
        tensors[f"input{i}"] = x.detach()
        tensors[f"diff_src{i}"] = x.grad
    tensors["diff_dst"] = diff_dst
    tensors["dst"] = dst.detach()
    for role, p in module.named_parameters():
        tensors[f"grad.{role}"] = p.grad
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        tensors["after.running_mean"] = module.running_mean
        tensors["after.running_var"] = module.running_var
    spec = {"type": layer_type, "params": params, "training": training}
    if isinstance(module, EngineDropout):
        spec["dropout_seed"] = module.seed
    (out_dir / f"{name}.json").write_text(json.dumps(spec) + "\n")
    write_safetensors(out_dir / f"{name}.safetensors", tensors)


def main():
    out_dir = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else
                           pathlib.Path(__file__).resolve().parent.parent /
                           "tests/engine_grad/fixtures")
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(SEED)
    generator = torch.Generator().manual_seed(SEED)
    for name, case in CASES.items():
        export_case(out_dir, name, case, generator)
    size = sum(p.stat().st_size for p in out_dir.iterdir())
    print(f"{len(CASES)} cases, {size} bytes in {out_dir}", file=sys.stderr)


if __name__ == "__main__":
    main()
