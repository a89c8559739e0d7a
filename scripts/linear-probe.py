#!/usr/bin/env python3
"""Linear probes on the features scripts/linear-probe.ts wrote (Debian's python3-numpy).

Fits L2-regularised logistic regression (Newton's method, standardised features, bias not
penalised) on the 2,000 train reviews and prints train and test accuracy for: the hidden state
the prompt head reads (untrained prompt), the mean of the text's final hidden states, and the
reviews' bags of tokens (tokens in at least 3 train reviews, present or not) — what a classifier
that knows only which tokens occur can reach on these texts.

    /usr/bin/python3 scripts/linear-probe.py OUT_DIR
"""
import json
import sys

import numpy as np


def logistic_regression(X, y, l2, iterations):
    X = np.hstack([X, np.ones((len(X), 1))])
    w = np.zeros(X.shape[1])
    penalty = l2 * np.eye(X.shape[1])
    penalty[-1, -1] = 0
    for _ in range(iterations):
        p = 1 / (1 + np.exp(-X @ w))
        hessian = (X * (p * (1 - p))[:, None]).T @ X + penalty
        step = np.linalg.solve(hessian, X.T @ (p - y) + penalty @ w)
        w -= step
        if np.abs(step).max() < 1e-9:
            break
    return lambda Z: (np.hstack([Z, np.ones((len(Z), 1))]) @ w) > 0


def report(name, train, test, y_train, y_test, l2s, iterations=100):
    for l2 in l2s:
        predict = logistic_regression(train, y_train, l2, iterations)
        print(f"{name:<28} l2 {l2:<6g} train {np.mean(predict(train) == y_train):.3f}  test {np.mean(predict(test) == y_test):.3f}")


def main(out):
    meta = {split: json.load(open(f"{out}/{split}.json")) for split in ("train", "test")}
    width = meta["train"]["width"]
    y = {split: np.array(meta[split]["labels"], dtype=float) for split in meta}
    for kind in ("prompted", "pooled"):
        X = {s: np.fromfile(f"{out}/{s}-{kind}.f32", dtype=np.float32).reshape(-1, width).astype(np.float64) for s in meta}
        mean, std = X["train"].mean(0), X["train"].std(0) + 1e-12
        print(f"{kind}: spread across reviews {X['train'].std(0).mean():.4f}, mean magnitude {np.abs(mean).mean():.4f} (per dimension)")
        report(kind, (X["train"] - mean) / std, (X["test"] - mean) / std, y["train"], y["test"], (0.01, 1, 10, 100))
    counts = {}
    for tokens in meta["train"]["tokens"]:
        for t in set(tokens):
            counts[t] = counts.get(t, 0) + 1
    column = {t: i for i, t in enumerate(t for t, n in counts.items() if n >= 3)}

    def bag(split):
        B = np.zeros((len(meta[split]["tokens"]), len(column)))
        for i, tokens in enumerate(meta[split]["tokens"]):
            B[i, [column[t] for t in tokens if t in column]] = 1
        return B

    print(f"bag of tokens: {len(column)} tokens")
    report("bag of tokens", bag("train"), bag("test"), y["train"], y["test"], (1, 10, 30), iterations=30)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: linear-probe.py OUT_DIR")
    main(sys.argv[1])
