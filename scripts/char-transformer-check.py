"""The module tree of examples/char-transformer.ts in PyTorch, written as a torch user would.
Prints JSON: its state_dict() keys and shapes, and, given a safetensors file saved by the
example, the float64 logits for the ids after loading the file strictly (load_state_dict with
strict=True), so the test compares them with the engine's. test/examples/char-transformer.test.ts
runs it. Usage: /usr/bin/python3 scripts/char-transformer-check.py CONFIG_JSON [FILE IDS_JSON]
(torch 1.13 has no F.scaled_dot_product_attention: attention is written out.)"""
import json
import math
import sys

import torch
from torch import nn

import nn_safetensors


class CausalSelfAttention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x):
        B, T, D = x.shape
        q, k, v = (u.reshape(B, T, self.heads, D // self.heads).transpose(1, 2) for u in self.qkv(x).split(D, dim=-1))
        scores = q @ k.transpose(-2, -1) / math.sqrt(D // self.heads)
        scores = scores.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
        y = scores.softmax(-1) @ v
        return self.out(y.transpose(1, 2).reshape(B, T, D))


class Block(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = CausalSelfAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(approximate="tanh"), nn.Linear(4 * dim, dim))

    def forward(self, x):
        h = x + self.attn(self.norm1(x))
        return h + self.mlp(self.norm2(h))


class CharTransformer(nn.Module):
    def __init__(self, vocab, context, dim, heads, layers):
        super().__init__()
        self.tokens = nn.Embedding(vocab, dim)
        self.positions = nn.Embedding(context, dim)
        self.blocks = nn.ModuleList([Block(dim, heads) for _ in range(layers)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab)

    def forward(self, ids):
        x = self.tokens(ids) + self.positions(torch.arange(ids.shape[1]))
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))


config = json.loads(sys.argv[1])
model = CharTransformer(config["vocab"], config["context"], config["dim"], config["heads"], config["layers"]).double()
result = {"keys": list(model.state_dict()), "shapes": [list(t.shape) for t in model.state_dict().values()]}
if len(sys.argv) > 2:
    tensors, _ = nn_safetensors.load(sys.argv[2])
    model.load_state_dict({k: v.double() for k, v in tensors.items()}, strict=True)
    with torch.no_grad():
        ids = torch.tensor(json.loads(sys.argv[3]), dtype=torch.int64)
        result["logits"] = model(ids).reshape(-1).tolist()
print(json.dumps(result))
