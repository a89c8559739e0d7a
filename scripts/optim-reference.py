"""float64 PyTorch ground truth for the optimizers in src/optim/optim.ts and adam.ts.

Writes test/optim/fixtures/optim-reference.json: for each configuration, the initial
parameters, the gradients of every step, and the parameters torch.optim.SGD / AdamW leave
after each step. Inputs are float32 values (so the f32 engine sees them exactly); the
optimizer runs in float64. A configuration with "clip" applies
torch.nn.utils.clip_grad_norm_(max_norm=clip) before each step and records the norms.

Run with Debian's python3-torch: /usr/bin/python3 scripts/optim-reference.py
"""
import json
import pathlib

import torch

SHAPES = [[5, 7], [33]]
STEPS = 4

CONFIGS = [
    ("sgd momentum + weight decay", "SGD", dict(lr=0.1, momentum=0.9, weight_decay=0.01), None),
    ("sgd nesterov", "SGD", dict(lr=0.05, momentum=0.9, nesterov=True), None),
    ("sgd dampening", "SGD", dict(lr=0.2, momentum=0.8, dampening=0.3, weight_decay=0.05), None),
    ("sgd plain + weight decay", "SGD", dict(lr=0.1, weight_decay=0.1), None),
    ("adamw defaults", "AdamW", dict(lr=1e-2), None),
    ("adamw custom", "AdamW", dict(lr=0.05, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1), None),
    ("adamw clipped", "AdamW", dict(lr=0.02), 0.5),
    ("sgd momentum clipped", "SGD", dict(lr=0.1, momentum=0.9), 1.0),
]


def f32_randn(gen, shape, scale=1.0):
    return (torch.randn(shape, generator=gen, dtype=torch.float64) * scale).float().double()


def main():
    gen = torch.Generator().manual_seed(20261206)
    cases = []
    for name, kind, kwargs, clip in CONFIGS:
        init = [f32_randn(gen, s) for s in SHAPES]
        grads = [[f32_randn(gen, s, 10.0 ** (step % 3 - 1)) for s in SHAPES] for step in range(STEPS)]
        params = [p.clone().requires_grad_(True) for p in init]
        opt = getattr(torch.optim, kind)(params, **kwargs)
        after, norms = [], []
        for step in range(STEPS):
            for p, g in zip(params, grads[step]):
                p.grad = g.clone()
            if clip is not None:
                norms.append(float(torch.nn.utils.clip_grad_norm_(params, clip)))
            opt.step()
            after.append([p.detach().flatten().tolist() for p in params])
        options = {k: (list(v) if isinstance(v, tuple) else v) for k, v in kwargs.items()}
        cases.append({
            "name": name,
            "optimizer": kind,
            "options": options,
            "clip": clip,
            "shapes": SHAPES,
            "init": [p.flatten().tolist() for p in init],
            "grads": [[g.flatten().tolist() for g in gs] for gs in grads],
            "after": after,
            "norms": norms,
        })
    out = pathlib.Path(__file__).resolve().parent.parent / "test/optim/fixtures/optim-reference.json"
    out.write_text(json.dumps({"torch": torch.__version__, "cases": cases}) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
