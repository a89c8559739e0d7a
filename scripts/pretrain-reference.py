#!/usr/bin/python3
"""Float64 PyTorch ground truth for GPT-2 pretraining (test/gpt2/fixtures/pretrain-reference.safetensors).

An independent GPT-2 language model written here from the paper (not the engine's code):
token + position embeddings, blocks x + attn(ln_1(x)), x + mlp(ln_2(x)) with gelu_new, ln_f,
logits through the tied token embedding, mean next-token cross entropy. On a tiny config it
records, in float64 rounded to float32 for storage:
  - init.<name>: the starting weights (float32 values, used exactly by both sides);
  - batch.<j>: the token windows of micro-batch j (B windows of T + 1 tokens);
  - grad.<name>: d loss(micro-batch 0) / d weight, for every weight (loss0 in the metadata);
  - losses (metadata): the mean loss of each of a few updates of torch.optim.AdamW with weight
    decay on matrices only, warm-up + cosine learning rate, gradient accumulation and clipping
    by global norm (torch.nn.utils.clip_grad_norm_);
  - final.<name>: the weights after those updates.

Run: /usr/bin/python3 scripts/pretrain-reference.py test/gpt2/fixtures/pretrain-reference.safetensors
(needs Debian's python3-torch). Seeded: a rerun writes the same file.
"""
import json
import math
import struct
import sys

import torch

torch.manual_seed(1234)
DT = torch.float64

CONFIG = dict(vocab_size=67, n_positions=16, n_embd=16, n_layer=2, n_head=2, layer_norm_epsilon=1e-5)
SETTINGS = dict(seqLen=10, batchSize=3, accumulation=2, steps=5, lr=1e-2, minLr=1e-3, warmupSteps=2,
                weightDecay=0.1, beta1=0.9, beta2=0.95, eps=1e-8, clipNorm=0.5, seed=0)
V, P, C, L, H = (CONFIG[k] for k in ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head"))
T, B = SETTINGS["seqLen"], SETTINGS["batchSize"]


def names_and_shapes():
    out = [("wte.weight", [V, C]), ("wpe.weight", [P, C])]
    for i in range(L):
        h = f"h.{i}."
        out += [(h + "ln_1.weight", [C]), (h + "ln_1.bias", [C]),
                (h + "attn.c_attn.weight", [C, 3 * C]), (h + "attn.c_attn.bias", [3 * C]),
                (h + "attn.c_proj.weight", [C, C]), (h + "attn.c_proj.bias", [C]),
                (h + "ln_2.weight", [C]), (h + "ln_2.bias", [C]),
                (h + "mlp.c_fc.weight", [C, 4 * C]), (h + "mlp.c_fc.bias", [4 * C]),
                (h + "mlp.c_proj.weight", [4 * C, C]), (h + "mlp.c_proj.bias", [C])]
    return out + [("ln_f.weight", [C]), ("ln_f.bias", [C])]


def initial():
    # Not GPT-2's init: larger, non-trivial values everywhere (layer norms and biases included),
    # so every gradient is exercised. Rounded to float32 so the engine starts from the same numbers.
    w = {}
    for name, shape in names_and_shapes():
        if name.endswith("ln_1.weight") or name.endswith("ln_2.weight") or name == "ln_f.weight":
            t = 1 + 0.2 * torch.randn(shape, dtype=DT)
        elif name.endswith(".bias"):
            t = 0.1 * torch.randn(shape, dtype=DT)
        else:
            t = 0.3 * torch.randn(shape, dtype=DT)
        w[name] = t.float().to(DT)
    return w


def layer_norm(x, g, b):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + CONFIG["layer_norm_epsilon"]) * g + b


def gelu_new(x):
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def lm_loss(w, windows):
    ids, targets = windows[:, :-1], windows[:, 1:]
    x = w["wte.weight"][ids] + w["wpe.weight"][:T]
    D = C // H
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    for i in range(L):
        p = lambda n: w[f"h.{i}.{n}"]
        qkv = layer_norm(x, p("ln_1.weight"), p("ln_1.bias")) @ p("attn.c_attn.weight") + p("attn.c_attn.bias")
        q, k, v = (t.reshape(B, T, H, D).transpose(1, 2) for t in qkv.split(C, dim=-1))
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(D)
        att = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1) @ v
        x = x + att.transpose(1, 2).reshape(B, T, C) @ p("attn.c_proj.weight") + p("attn.c_proj.bias")
        hidden = gelu_new(layer_norm(x, p("ln_2.weight"), p("ln_2.bias")) @ p("mlp.c_fc.weight") + p("mlp.c_fc.bias"))
        x = x + hidden @ p("mlp.c_proj.weight") + p("mlp.c_proj.bias")
    x = layer_norm(x, w["ln_f.weight"], w["ln_f.bias"])
    logits = x @ w["wte.weight"].T
    return torch.nn.functional.cross_entropy(logits.reshape(B * T, V), targets.reshape(B * T))


def learning_rate(step, s):
    # Linear warm-up to lr over warmupSteps, then half a cosine down to minLr at the last update.
    if step < s["warmupSteps"]:
        return s["lr"] * (step + 1) / s["warmupSteps"]
    span = max(1, s["steps"] - 1 - s["warmupSteps"])
    progress = min(1.0, (step - s["warmupSteps"]) / span)
    return s["minLr"] + 0.5 * (s["lr"] - s["minLr"]) * (1 + math.cos(math.pi * progress))


def main(out_path):
    init = initial()
    s = SETTINGS
    batches = [torch.randint(0, V, (B, T + 1)) for _ in range(s["steps"] * s["accumulation"])]

    w = {n: t.clone().requires_grad_(True) for n, t in init.items()}
    loss0 = lm_loss(w, batches[0])
    loss0.backward()
    grads = {n: t.grad.clone() for n, t in w.items()}

    w = {n: t.clone().requires_grad_(True) for n, t in init.items()}
    params = list(w.values())
    decay = [t for t in params if t.dim() >= 2]
    no_decay = [t for t in params if t.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": s["weightDecay"]}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=s["lr"], betas=(s["beta1"], s["beta2"]), eps=s["eps"])
    losses, norms = [], []
    for step in range(s["steps"]):
        total = 0.0
        for m in range(s["accumulation"]):
            loss = lm_loss(w, batches[step * s["accumulation"] + m])
            (loss / s["accumulation"]).backward()
            total += loss.item()
        norms.append(torch.nn.utils.clip_grad_norm_(params, s["clipNorm"]).item())
        for group in opt.param_groups:
            group["lr"] = learning_rate(step, s)
        opt.step()
        opt.zero_grad()
        losses.append(total / s["accumulation"])

    tensors = {}
    for n, t in init.items():
        tensors[f"init.{n}"] = ("F32", t)
    for j, b in enumerate(batches):
        tensors[f"batch.{j}"] = ("I32", b)
    for n, t in grads.items():
        tensors[f"grad.{n}"] = ("F32", t)
    for n, t in w.items():
        tensors[f"final.{n}"] = ("F32", t.detach())
    metadata = {"loss0": json.dumps(loss0.item()), "config": json.dumps(CONFIG), "settings": json.dumps(s), "losses": json.dumps(losses), "grad_norms": json.dumps(norms)}
    write_safetensors(out_path, tensors, metadata)
    print(f"wrote {out_path}: losses {losses}, grad norms {norms}")


def write_safetensors(path, tensors, metadata):
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name, (dtype, t) in tensors.items():
        flat = t.reshape(-1).tolist()
        blob = struct.pack(f"<{len(flat)}{'f' if dtype == 'F32' else 'i'}", *flat)
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "test/gpt2/fixtures/pretrain-reference.safetensors")
