"""The small model both nn scripts build: every layer nn has that torch 1.13 has too, nested once,
so state-dict keys cover a Sequential inside a Sequential and a Linear without bias."""
import torch
from torch import nn

IDS = [[1, 7, 0, 9], [3, 3, 8, 2]]


def model():
    return nn.Sequential(
        nn.Embedding(10, 6),
        nn.Sequential(nn.Linear(6, 8), nn.LayerNorm(8), nn.GELU(approximate="tanh")),
        nn.Linear(8, 5),
        nn.Tanh(),
        nn.Linear(5, 4, bias=False),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(16, 3),
        nn.SiLU(),
        nn.Sigmoid(),
    )


def ids():
    return torch.tensor(IDS, dtype=torch.int64)
