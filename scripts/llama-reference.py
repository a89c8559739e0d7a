"""float64 PyTorch ground truth for one Llama-style decoder block.

Writes test/fixtures/llama-block/block.json (layout described in that directory's README.md):
inputs, weights, a fixed upstream gradient, the block's output, a few intermediates and the
gradient of every input and weight, for loss = sum(output * output_grad).

The block (pre-norm, no biases, Hugging Face Llama conventions):
  h   = x + o_proj(attention(rope(q_proj(n1)), rope(k_proj(n1)), v_proj(n1)))  with n1 = rmsnorm(x, w1)
  out = h + down_proj(silu(gate_proj(n2)) * up_proj(n2))                          with n2 = rmsnorm(h, w2)
Attention is causal scaled dot product over H heads; RoPE is the "rotate half" form.

Run with Debian's python3-torch: /usr/bin/python3 scripts/llama-reference.py
"""
import json
import math
import pathlib

import torch

B, T, D, H, HIDDEN = 2, 5, 16, 2, 32
HEAD = D // H
EPS = 1e-6
ROPE_BASE = 10000.0


def f32_randn(gen, shape, scale=1.0, shift=0.0):
    """float32-representable values, so an f32 engine reads exactly these inputs."""
    return (torch.randn(shape, generator=gen, dtype=torch.float64) * scale + shift).float().double()


def rms_norm(x, weight):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS) * weight


def rope_tables():
    """cos and sin [T, HEAD]: angle(t, j) = t * base^(-2(j mod HEAD/2)/HEAD), the half repeated."""
    inv_freq = ROPE_BASE ** (-torch.arange(0, HEAD, 2, dtype=torch.float64) / HEAD)
    angles = torch.arange(T, dtype=torch.float64)[:, None] * inv_freq[None, :]
    emb = torch.cat([angles, angles], dim=-1)
    return emb.cos(), emb.sin()


def rotate_half(x):
    x1, x2 = x[..., : HEAD // 2], x[..., HEAD // 2 :]
    return torch.cat([-x2, x1], dim=-1)


def heads(y):
    """[B, T, D] -> [B, H, T, HEAD]."""
    return y.view(B, T, H, HEAD).transpose(1, 2)


def block(x, w, cos, sin):
    n1 = rms_norm(x, w["attn_norm"])
    q = heads(n1 @ w["q_proj"].T)
    k = heads(n1 @ w["k_proj"].T)
    v = heads(n1 @ w["v_proj"].T)
    q = q * cos + rotate_half(q) * sin
    k = k * cos + rotate_half(k) * sin
    scores = (q @ k.transpose(-1, -2)) / math.sqrt(HEAD)
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    scores = scores.masked_fill(~causal, float("-inf"))
    attn = (scores.softmax(-1) @ v).transpose(1, 2).reshape(B, T, D)
    h = x + attn @ w["o_proj"].T
    n2 = rms_norm(h, w["mlp_norm"])
    mlp = (torch.nn.functional.silu(n2 @ w["gate_proj"].T) * (n2 @ w["up_proj"].T)) @ w["down_proj"].T
    return h + mlp, {"q_rope": q, "k_rope": k, "attn": attn, "h": h}


def main():
    gen = torch.Generator().manual_seed(20261206)
    x = f32_randn(gen, (B, T, D)).requires_grad_(True)
    shapes = {
        "attn_norm": (D,),
        "q_proj": (D, D),
        "k_proj": (D, D),
        "v_proj": (D, D),
        "o_proj": (D, D),
        "mlp_norm": (D,),
        "gate_proj": (HIDDEN, D),
        "up_proj": (HIDDEN, D),
        "down_proj": (D, HIDDEN),
    }
    weights = {}
    for name, shape in shapes.items():
        if len(shape) == 1:
            weights[name] = f32_randn(gen, shape, 0.1, 1.0)
        else:
            weights[name] = f32_randn(gen, shape, 1 / math.sqrt(shape[1]))
        weights[name].requires_grad_(True)
    output_grad = f32_randn(gen, (B, T, D))
    cos, sin = rope_tables()
    out, inner = block(x, weights, cos, sin)
    (out * output_grad).sum().backward()

    def entry(t):
        t = t.detach()
        return {"shape": list(t.shape), "data": t.flatten().tolist()}

    tensors = {"x": entry(x), "output_grad": entry(output_grad), "rope_cos": entry(cos), "rope_sin": entry(sin)}
    tensors.update({name: entry(w) for name, w in weights.items()})
    tensors["output"] = entry(out)
    tensors.update({name: entry(t) for name, t in inner.items()})
    tensors["grad_x"] = entry(x.grad)
    tensors.update({f"grad_{name}": entry(w.grad) for name, w in weights.items()})
    config = {"batch": B, "seq": T, "dim": D, "heads": H, "head_dim": HEAD, "hidden": HIDDEN, "rms_eps": EPS, "rope_base": ROPE_BASE}
    out_dir = pathlib.Path(__file__).resolve().parent.parent / "test/fixtures/llama-block"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "block.json"
    path.write_text(json.dumps({"torch": torch.__version__, "dtype": "float64", "config": config, "tensors": tensors}) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
