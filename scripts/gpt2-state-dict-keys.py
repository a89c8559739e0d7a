"""Hugging Face GPT2Model's state_dict() keys, order and shapes, for test/gpt2/state-dict.test.ts;
and, with --check, an engine-written model.safetensors loaded strictly into that module tree,
whose float64 forward over the given ids is printed as JSON (the test compares it with ours).

transformers is not installed here, so the module tree of transformers' modeling_gpt2.py is
rebuilt by hand with the same attribute names, registration order and parameter shapes:
GPT2Model(wte, wpe, drop, h[GPT2Block(ln_1, attn=GPT2Attention(c_attn, c_proj, dropouts), ln_2,
mlp=GPT2MLP(c_fc, c_proj, act, dropout))], ln_f), with transformers' Conv1D (weight [nx, nf],
y = x·W + b). The causal-mask buffer `bias` is non-persistent, as in transformers ≥ 4.31
(older versions saved `h.N.attn.bias`/`masked_bias`, which the engine's loader skips).

    /usr/bin/python3 scripts/gpt2-state-dict-keys.py test/gpt2/fixtures/hf-gpt2-keys.json
    /usr/bin/python3 scripts/gpt2-state-dict-keys.py --check DIR 5,60,0   (DIR: config.json + model.safetensors)
"""
import json
import sys

import torch
from torch import nn

from nn_safetensors import load


class Conv1D(nn.Module):
    def __init__(self, nf, nx):  # transformers' argument order: out features, then in
        super().__init__()
        self.nf = nf
        self.weight = nn.Parameter(torch.empty(nx, nf))
        self.bias = nn.Parameter(torch.zeros(nf))

    def forward(self, x):
        return torch.addmm(self.bias, x.view(-1, x.size(-1)), self.weight).view(x.size()[:-1] + (self.nf,))


class GPT2Attention(nn.Module):
    def __init__(self, C, n_positions):
        super().__init__()
        self.register_buffer("bias", torch.tril(torch.ones(n_positions, n_positions, dtype=torch.bool)).view(1, 1, n_positions, n_positions), persistent=False)
        self.register_buffer("masked_bias", torch.tensor(-1e4), persistent=False)
        self.c_attn = Conv1D(3 * C, C)
        self.c_proj = Conv1D(C, C)
        self.attn_dropout = nn.Dropout(0.1)
        self.resid_dropout = nn.Dropout(0.1)

    def forward(self, x, n_head):
        T, C = x.shape
        q, k, v = (t.view(T, n_head, C // n_head).transpose(0, 1) for t in self.c_attn(x).split(C, dim=-1))
        scores = q @ k.transpose(-1, -2) / (C // n_head) ** 0.5
        scores = scores.masked_fill(~self.bias[0, 0, :T, :T], float("-inf"))
        return self.c_proj((scores.softmax(-1) @ v).transpose(0, 1).reshape(T, C))


class GPT2MLP(nn.Module):
    def __init__(self, inner, C):
        super().__init__()
        self.c_fc = Conv1D(inner, C)
        self.c_proj = Conv1D(C, inner)
        self.act = nn.GELU(approximate="tanh")
        self.dropout = nn.Dropout(0.1)

    def forward(self, x):
        return self.c_proj(self.act(self.c_fc(x)))


class GPT2Block(nn.Module):
    def __init__(self, C, n_positions, eps):
        super().__init__()
        self.ln_1 = nn.LayerNorm(C, eps=eps)
        self.attn = GPT2Attention(C, n_positions)
        self.ln_2 = nn.LayerNorm(C, eps=eps)
        self.mlp = GPT2MLP(4 * C, C)

    def forward(self, x, n_head):
        x = x + self.attn(self.ln_1(x), n_head)
        return x + self.mlp(self.ln_2(x))


class GPT2Model(nn.Module):
    def __init__(self, vocab_size, n_positions, n_embd, n_layer, eps=1e-5):
        super().__init__()
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.wpe = nn.Embedding(n_positions, n_embd)
        self.drop = nn.Dropout(0.1)
        self.h = nn.ModuleList([GPT2Block(n_embd, n_positions, eps) for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(n_embd, eps=eps)

    def forward(self, ids, n_head):
        x = self.wte(ids) + self.wpe(torch.arange(len(ids)))
        for block in self.h:
            x = block(x, n_head)
        return self.ln_f(x)


def main(out_path):
    config = {"vocab_size": 50, "n_positions": 16, "n_embd": 8, "n_layer": 2, "n_head": 2}
    model = GPT2Model(config["vocab_size"], config["n_positions"], config["n_embd"], config["n_layer"])
    entries = ",\n".join(f"  {json.dumps([name, list(t.shape)])}" for name, t in model.state_dict().items())
    with open(out_path, "w") as f:
        f.write(f'{{\n "config": {json.dumps(config)},\n "state_dict": [\n{entries}\n ]\n}}\n')


def check(directory, ids):
    with open(f"{directory}/config.json") as f:
        c = json.load(f)
    tensors, metadata = load(f"{directory}/model.safetensors")
    model = GPT2Model(c["vocab_size"], c["n_positions"], c["n_embd"], c["n_layer"], c["layer_norm_epsilon"]).double()
    model.load_state_dict({k: t.double() for k, t in tensors.items()}, strict=True)
    with torch.no_grad():
        hidden = model(torch.tensor(ids), c["n_head"])
    print(json.dumps({"keys": list(tensors), "metadata": metadata, "hidden": hidden.reshape(-1).tolist()}))


if __name__ == "__main__":
    if sys.argv[1] == "--check":
        check(sys.argv[2], [int(i) for i in sys.argv[3].split(",")])
    else:
        main(sys.argv[1])
