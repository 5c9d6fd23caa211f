#!/usr/bin/python3
"""Exports gradient fixtures: small PyTorch models in training mode, with an input, the gradient
of a scalar loss with respect to the output, and PyTorch autograd's gradients of the input and of
every parameter. The engine's tests (tests/engine/torch_grad_fixture_test.cpp) run forward and
backward in training mode and compare every gradient (relative error <= 1e-4).

    /usr/bin/python3 tools/export_torch_grad_fixtures.py [OUT_DIR]   (default tests/engine/fixtures)

Each folder grad_NAME/ holds a model folder (model.json, weights.safetensors, card.json; see
docs/model-format.md) and:
  io.safetensors     the input and PyTorch's output under their blob names, "diff.<output>": the
                     output's gradient (the loss is sum(output * diff), diff fixed random), and
                     "after.<layer>.<stat>": batch norm running statistics after the forward
  grads.safetensors  the input's gradient under its blob name and each parameter's under
                     "<layer>.<role>", as in the weights file
The models and graph export come from tools/export_torch_models.py. Gradients are computed in
float64 from the float32 weights and input, so they are the exact target for float32 code.
"""
import json
import pathlib
import sys

import torch
import torch.nn as nn

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import export_torch_models as etm  # noqa: E402

SEED = etm.SEED


class ConvPoolZoo(nn.Module):
    """The convolution and pooling options the U-Nets leave out: dilation, groups, anisotropic
    stride and padding, output padding, overlapping padded max pooling, average pooling without
    padding counts, global average pooling; 3D."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv3d(2, 4, 3, stride=(1, 2, 1), padding=(1, 1, 0), dilation=(2, 1, 1),
                              groups=2)
        self.up = nn.ConvTranspose3d(4, 4, 3, stride=2, padding=1, output_padding=1, groups=2)
        self.pool = nn.MaxPool3d(3, stride=2, padding=1)
        self.avg = nn.AvgPool3d(2, stride=1, padding=1, count_include_pad=False)
        self.gap = nn.AdaptiveAvgPool3d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        x = self.avg(self.pool(self.up(self.conv(x))))
        return self.fc(self.flatten(self.gap(x)))


def export(out_dir, name, model, input_shape, run, description):
    torch.manual_seed(SEED)
    generator = torch.Generator().manual_seed(SEED)
    with torch.no_grad():
        etm.randomize(model, generator)
    model.train()
    x = torch.randn(*input_shape, generator=generator)
    # Trace in eval mode: the graph is the same, and tracing must not touch running statistics.
    inputs, outputs, layers = etm.export_graph(model.eval(), x)
    model.train()
    weights = {k: v.clone() for k, v in model.state_dict().items()
               if not k.endswith("num_batches_tracked")}

    exact = model.double()
    x64 = x.double().requires_grad_(True)
    y = exact(x64)
    diff = torch.randn(y.shape, generator=generator)
    (y * diff.double()).sum().backward()

    folder = out_dir / name
    folder.mkdir(parents=True, exist_ok=True)
    spec = {"format": "cajal-model", "format_version": 1, "inputs": inputs, "outputs": outputs,
            "layers": layers, "run": run}
    (folder / "model.json").write_text(etm.dump_spec(spec))
    etm.write_safetensors(folder / "weights.safetensors", weights)
    card = {"name": name, "version": "0.1.0",
            "intended_use": "gradient test fixture with random weights: " + description,
            "metrics": {}, "provenance": {"generator": "tools/export_torch_grad_fixtures.py",
                                          "torch": torch.__version__, "seed": SEED}}
    (folder / "card.json").write_text(json.dumps(card, indent=1) + "\n")
    io = {inputs[0]: x, outputs[0]: y, "diff." + outputs[0]: diff}
    for module_name, m in exact.named_modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            io[f"after.{module_name}.running_mean"] = m.running_mean
            io[f"after.{module_name}.running_var"] = m.running_var
    etm.write_safetensors(folder / "io.safetensors", io)
    grads = {inputs[0]: x64.grad}
    grads.update({k: p.grad for k, p in exact.named_parameters()})
    etm.write_safetensors(folder / "grads.safetensors", grads)
    size = sum(p.stat().st_size for p in folder.iterdir())
    print(f"{name}: {len(layers)} layers, {len(grads) - 1} parameter tensors, input "
          f"{list(x.shape)}, output {list(y.shape)}, {size} bytes", file=sys.stderr)


def main():
    out_dir = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else
                           pathlib.Path(__file__).resolve().parent.parent / "tests/engine/fixtures")
    torch.set_num_threads(1)
    torch.manual_seed(SEED)
    export(out_dir, "grad_lenet5", etm.LeNet5(), (4, 1, 32, 32), etm.classification(2, 1, 10),
           "LeNet-5 (tanh, average pooling)")
    torch.manual_seed(SEED)
    export(out_dir, "grad_unet2d", etm.UNet2d(features=(4, 8, 16), classes=2), (2, 1, 16, 12),
           etm.segmentation(2, ["background", "a"], [16, 12]),
           "2D U-Net (batch norm in training mode, ReLU, max pool, transposed conv, concat)")
    torch.manual_seed(SEED)
    export(out_dir, "grad_unet3d", etm.PlainUNet3d(features=(2, 4, 8), classes=2), (1, 1, 8, 12, 8),
           etm.segmentation(3, ["background", "a"], [8, 12, 8]),
           "3D U-Net (instance norm, leaky ReLU, strided conv, transposed conv, concat)")
    torch.manual_seed(SEED)
    export(out_dir, "grad_conv_pool_zoo", ConvPoolZoo(), (2, 2, 7, 9, 6),
           etm.classification(3, 2, 3), "convolution and pooling options")
    torch.manual_seed(SEED)
    export(out_dir, "grad_layer_zoo", etm.LayerZoo(), (2, 2, 12, 10),
           etm.segmentation(2, ["a", "b", "c"], [12, 10], channels=2),
           "group norm, GELU, ELU, sigmoid, PReLU, upsampling, add, grouped dilated conv")


if __name__ == "__main__":
    main()
