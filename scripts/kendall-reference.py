#!/usr/bin/env python3
"""Writes test/metrics/fixtures/kendall.json: scipy.stats.kendalltau (tau-b, its default) on
seeded random inputs, with and without ties, that test/metrics/correlation.test.ts compares
kendallTau against.

Run with any python3 that has scipy (Debian: python3-scipy):
    python3 scripts/kendall-reference.py
"""
import json
import math
import os

import numpy as np
import scipy
from scipy import stats

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "metrics", "fixtures", "kendall.json")

rng = np.random.default_rng(24)
cases = []


def add(name, x, y):
    tau = stats.kendalltau(x, y).statistic
    cases.append({"name": name, "x": [float(v) for v in x], "y": [float(v) for v in y],
                  "tau": None if math.isnan(tau) else float(tau)})


for n in (2, 3, 5, 11, 40):
    add(f"continuous n={n}", rng.normal(size=n), rng.normal(size=n))
for n in (4, 11, 30):
    add(f"ties on both sides n={n}", rng.integers(0, 3, size=n), rng.integers(0, 4, size=n))
x = rng.normal(size=11)
add("identical order", x, 2 * x + 1)
add("reversed order", x, -x)
add("ties in x only", np.round(rng.normal(size=12)), rng.normal(size=12))
add("constant x", np.ones(6), rng.normal(size=6))
add("correlated with ties", np.round(x * 2) / 2, x + rng.normal(scale=0.3, size=11))

with open(OUT, "w") as f:
    json.dump({"generator": "scripts/kendall-reference.py", "scipy": scipy.__version__, "cases": cases}, f, indent=1)
    f.write("\n")
