#!/usr/bin/python3
"""Records PyTorch 1.13's results for cajal's training library (issue 4) as JSON fixtures:

  losses.json      loss values and gradients w.r.t. the logits (cross-entropy with class weights
                   and ignore index, BCE with logits, nnU-Net's soft Dice, Dice + CE, MSE; 2D, 3D,
                   batch > 1)
  optimizers.json  5 steps of SGD (momentum, dampening, Nesterov, weight decay), Adam, AdamW and
                   Nadam on fixed parameters and a fixed sequence of gradients
  schedules.json   learning rates over 20 steps from torch.optim.lr_scheduler
  clip.json        torch.nn.utils.clip_grad_norm_
  init.json        fan-in / fan-out and the std / bound of each torch.nn.init scheme

Run: /usr/bin/python3 tools/export_torch_train_fixtures.py [OUT_DIR]
(default tests/train/fixtures). Seeded; the tensors are tiny so the files stay small.
Tensors are {"dims": [...], "values": [...]} with float32 values written exactly.
"""
import json
import math
import pathlib
import sys

import torch
import torch.nn.functional as F

torch.manual_seed(4)
torch.use_deterministic_algorithms(True)


def tensor(t):
    t = t.detach().to(torch.float32).contiguous()
    return {"dims": list(t.shape), "values": [float(v) for v in t.flatten().tolist()]}


def labels(shape, classes, ignore=None, ignore_count=0):
    y = torch.randint(0, classes, shape)
    if ignore is not None:
        flat = y.view(-1)
        flat[torch.randperm(flat.numel())[:ignore_count]] = ignore
    return y


# ---------------------------------------------------------------- losses (references in float64)

def soft_dice(x, y, smooth, batch_dice, include_background, ignore_index):
    """nnU-Net's SoftDiceLoss on softmax, with a loss mask for the ignore label, as 1 - mean."""
    classes = x.shape[1]
    p = torch.softmax(x, 1)
    mask = (y != ignore_index).to(x.dtype).unsqueeze(1)
    onehot = F.one_hot(torch.where(y == ignore_index, 0, y), classes).movedim(-1, 1).to(x.dtype)
    axes = [0] + list(range(2, x.ndim)) if batch_dice else list(range(2, x.ndim))
    tp = (p * onehot * mask).sum(axes)
    fp = (p * (1 - onehot) * mask).sum(axes)
    fn = ((1 - p) * onehot * mask).sum(axes)
    dc = (2 * tp + smooth) / torch.clip(2 * tp + fp + fn + smooth, 1e-8)
    if not include_background:
        dc = dc[1:] if batch_dice else dc[:, 1:]
    return 1 - dc.mean()


def loss_case(name, kind, logits, target, config, compute):
    x = logits.to(torch.float64).requires_grad_(True)
    value = compute(x)
    value.backward()
    return {"name": name, "kind": kind, "config": config, "logits": tensor(logits),
            "target": tensor(target), "value": float(value), "diff_logits": tensor(x.grad)}


def losses():
    cases = []
    # Cross-entropy.
    x = torch.randn(2, 4, 3, 5)
    y = labels((2, 3, 5), 4)
    cases.append(loss_case("ce_2d", "cross_entropy", x, y, {},
                           lambda v: F.cross_entropy(v, y)))
    w = [0.2, 1.0, 2.0, 0.5]
    y = labels((2, 3, 5), 4, ignore=255, ignore_count=7)
    cases.append(loss_case("ce_2d_weights_ignore", "cross_entropy", x, y,
                           {"class_weights": w, "ignore_index": 255},
                           lambda v: F.cross_entropy(v, y, torch.tensor(w, dtype=v.dtype),
                                                     ignore_index=255)))
    x = torch.randn(2, 3, 2, 3, 4)
    y = labels((2, 2, 3, 4), 3, ignore=-100, ignore_count=5)
    w3 = [1.5, 0.5, 1.0]
    cases.append(loss_case("ce_3d_weights_ignore", "cross_entropy", x, y, {"class_weights": w3},
                           lambda v: F.cross_entropy(v, y, torch.tensor(w3, dtype=v.dtype))))
    x = torch.randn(5, 10)
    y = labels((5,), 10)
    cases.append(loss_case("ce_classification", "cross_entropy", x, y, {},
                           lambda v: F.cross_entropy(v, y)))
    x = torch.randn(3, 4) * 200.0
    y = labels((3,), 4)
    cases.append(loss_case("ce_large_logits", "cross_entropy", x, y, {},
                           lambda v: F.cross_entropy(v, y)))
    # Binary cross-entropy with logits.
    x = torch.randn(2, 3, 4, 4) * 3
    t = torch.rand(2, 3, 4, 4)
    cases.append(loss_case("bce_2d", "binary_cross_entropy", x, t, {},
                           lambda v: F.binary_cross_entropy_with_logits(v, t.to(v.dtype))))
    wb = [0.5, 2.0, 1.0]
    cases.append(loss_case("bce_2d_weights", "binary_cross_entropy", x, t, {"class_weights": wb},
                           lambda v: F.binary_cross_entropy_with_logits(
                               v, t.to(v.dtype), torch.tensor(wb, dtype=v.dtype).view(1, 3, 1, 1))))
    x = torch.randn(2, 1, 2, 3, 3) * 40
    t = (torch.rand(2, 1, 2, 3, 3) > 0.5).float()
    cases.append(loss_case("bce_3d_large", "binary_cross_entropy", x, t, {},
                           lambda v: F.binary_cross_entropy_with_logits(v, t.to(v.dtype))))
    # Soft Dice and Dice + CE.
    x = torch.randn(2, 3, 4, 5)
    y = labels((2, 4, 5), 3)
    cfg = {"smooth": 1e-5, "batch_dice": True, "include_background": False}
    cases.append(loss_case("dice_2d_batch_no_bg", "soft_dice", x, y, cfg,
                           lambda v: soft_dice(v, y, 1e-5, True, False, -100)))
    x = torch.randn(2, 3, 2, 3, 4)
    y = labels((2, 2, 3, 4), 3, ignore=7, ignore_count=6)
    cfg = {"smooth": 1.0, "batch_dice": False, "include_background": True, "ignore_index": 7}
    cases.append(loss_case("dice_3d_per_sample_bg_ignore", "soft_dice", x, y, cfg,
                           lambda v: soft_dice(v, y, 1.0, False, True, 7)))
    x = torch.randn(2, 4, 3, 3)
    y = labels((2, 1, 3, 3), 4, ignore=255, ignore_count=3)
    wd = [0.5, 1.0, 1.0, 2.0]
    cfg = {"cross_entropy": {"class_weights": wd, "ignore_index": 255},
           "dice": {"smooth": 1e-5, "batch_dice": True, "include_background": False,
                    "ignore_index": 255}}
    cases.append(loss_case("dice_ce_2d", "dice_cross_entropy", x, y, cfg,
                           lambda v: F.cross_entropy(v, y[:, 0], torch.tensor(wd, dtype=v.dtype),
                                                     ignore_index=255)
                           + soft_dice(v, y[:, 0], 1e-5, True, False, 255)))
    # Mean squared error.
    x = torch.randn(2, 3, 4, 4)
    t = torch.randn(2, 3, 4, 4)
    cases.append(loss_case("mse_2d", "mean_squared_error", x, t, {},
                           lambda v: F.mse_loss(v, t.to(v.dtype))))
    return cases


# ---------------------------------------------------------------- optimisers (float32, as trained)

def optimizers():
    params0 = {"w": torch.randn(3, 4), "b": torch.randn(4)}
    grads = [{k: torch.randn_like(v) for k, v in params0.items()} for _ in range(5)]
    configs = [
        ("sgd", {"type": "sgd", "learning_rate": 0.1}),
        ("sgd_momentum_wd", {"type": "sgd", "learning_rate": 0.05, "momentum": 0.9,
                             "weight_decay": 1e-2}),
        ("sgd_nesterov_wd", {"type": "sgd", "learning_rate": 0.05, "momentum": 0.9,
                             "nesterov": True, "weight_decay": 1e-3}),
        ("sgd_dampening", {"type": "sgd", "learning_rate": 0.05, "momentum": 0.8,
                           "dampening": 0.3}),
        ("adam", {"type": "adam", "learning_rate": 1e-2}),
        ("adam_wd", {"type": "adam", "learning_rate": 1e-2, "weight_decay": 1e-2, "beta1": 0.8,
                     "beta2": 0.99, "eps": 1e-6}),
        ("adamw", {"type": "adamw", "learning_rate": 1e-2, "weight_decay": 1e-1}),
        ("nadam", {"type": "nadam", "learning_rate": 1e-2}),
        ("nadam_wd", {"type": "nadam", "learning_rate": 2e-2, "weight_decay": 1e-2,
                      "momentum_decay": 8e-3}),
    ]
    cases = []
    for name, c in configs:
        params = {k: v.clone().requires_grad_(True) for k, v in params0.items()}
        plist = [params["w"], params["b"]]
        lr, wd = c["learning_rate"], c.get("weight_decay", 0.0)
        betas = (c.get("beta1", 0.9), c.get("beta2", 0.999))
        eps = c.get("eps", 1e-8)
        if c["type"] == "sgd":
            opt = torch.optim.SGD(plist, lr=lr, momentum=c.get("momentum", 0.0),
                                  dampening=c.get("dampening", 0.0),
                                  nesterov=c.get("nesterov", False), weight_decay=wd)
        elif c["type"] == "adam":
            opt = torch.optim.Adam(plist, lr=lr, betas=betas, eps=eps, weight_decay=wd)
        elif c["type"] == "adamw":
            opt = torch.optim.AdamW(plist, lr=lr, betas=betas, eps=eps, weight_decay=wd)
        else:
            opt = torch.optim.NAdam(plist, lr=lr, betas=betas, eps=eps, weight_decay=wd,
                                    momentum_decay=c.get("momentum_decay", 4e-3))
        steps = []
        for g in grads:
            for k, p in params.items():
                p.grad = g[k].clone()
            opt.step()
            steps.append({k: tensor(p) for k, p in params.items()})
        state = {}
        for k, p in params.items():
            for key, value in opt.state[p].items():
                if value is None:
                    continue
                state[f"{k}.{key}"] = tensor(value.reshape(-1) if value.dim() == 0 else value)
        cases.append({"name": name, "config": c, "steps": steps, "state": state})
    return {"params": {k: tensor(v) for k, v in params0.items()},
            "grads": [{k: tensor(v) for k, v in g.items()} for g in grads], "cases": cases}


# ---------------------------------------------------------------- schedules and clipping

def schedules():
    S = torch.optim.lr_scheduler

    def run(make, base=0.1, steps=20):
        opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base)
        sched = make(opt)
        rates = []
        for _ in range(steps):
            rates.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        return rates

    warm_cos = lambda o: S.SequentialLR(o, [S.LinearLR(o, start_factor=1 / 3, total_iters=5),
                                            S.CosineAnnealingLR(o, T_max=15, eta_min=1e-4)], [5])
    warm_poly = lambda o: S.SequentialLR(o, [S.LinearLR(o, start_factor=0.1, total_iters=4),
                                             S.PolynomialLR(o, total_iters=16, power=0.9)], [4])
    cases = [
        ("constant", {"type": "constant"}, lambda o: S.ConstantLR(o, factor=1.0, total_iters=0)),
        ("step", {"type": "step", "step_size": 3, "gamma": 0.5},
         lambda o: S.StepLR(o, step_size=3, gamma=0.5)),
        ("polynomial", {"type": "polynomial", "total_steps": 20, "exponent": 0.9},
         lambda o: S.PolynomialLR(o, total_iters=20, power=0.9)),
        ("cosine", {"type": "cosine", "total_steps": 20, "eta_min": 1e-4},
         lambda o: S.CosineAnnealingLR(o, T_max=20, eta_min=1e-4)),
        ("warmup_cosine", {"type": "cosine", "total_steps": 15, "eta_min": 1e-4,
                           "warmup_steps": 5, "warmup_start_factor": 1 / 3}, warm_cos),
        ("warmup_polynomial", {"type": "polynomial", "total_steps": 16, "exponent": 0.9,
                               "warmup_steps": 4, "warmup_start_factor": 0.1}, warm_poly),
    ]
    out = []
    for name, config, make in cases:
        config = dict(config, base_learning_rate=0.1)
        out.append({"name": name, "config": config, "rates": run(make)})
    return out


def clip():
    out = []
    for max_norm in (1.0, 100.0):
        torch.manual_seed(11)
        params = [torch.zeros(3, 4, requires_grad=True), torch.zeros(5, requires_grad=True),
                  torch.zeros(2, 2, 3, requires_grad=True)]
        for p in params:
            p.grad = torch.randn_like(p) * 2
        before = [tensor(p.grad) for p in params]
        norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
        out.append({"max_norm": max_norm, "grads": before, "norm": float(norm),
                    "clipped": [tensor(p.grad) for p in params]})
    return out


def init():
    nn_init = torch.nn.init
    out = []
    for dims in ([16, 1, 3, 3, 3], [8, 4, 5, 5], [10, 84], [32, 16, 1, 1]):
        t = torch.empty(dims)
        fan_in, fan_out = nn_init._calculate_fan_in_and_fan_out(t)
        relu = nn_init.calculate_gain("relu")
        leaky = nn_init.calculate_gain("leaky_relu", 0.2)
        out.append({
            "dims": dims, "fan_in": fan_in, "fan_out": fan_out,
            "kaiming_fan_in_std": relu / math.sqrt(fan_in),
            "kaiming_fan_out_leaky_std": leaky / math.sqrt(fan_out),
            "xavier_std": math.sqrt(2.0 / (fan_in + fan_out)),
            "xavier_uniform_bound": math.sqrt(3.0) * math.sqrt(2.0 / (fan_in + fan_out)),
            # Conv/Linear reset_parameters: kaiming_uniform_(a=sqrt(5)).
            "default_bound": math.sqrt(3.0) * nn_init.calculate_gain("leaky_relu", math.sqrt(5))
                             / math.sqrt(fan_in),
        })
    return out


def main():
    out = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "tests/train/fixtures")
    out.mkdir(parents=True, exist_ok=True)
    for name, data in (("losses", losses()), ("optimizers", optimizers()),
                       ("schedules", schedules()), ("clip", clip()), ("init", init())):
        (out / f"{name}.json").write_text(json.dumps(data, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
