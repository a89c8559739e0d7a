#!/usr/bin/env python3
"""Checks gpt2-prompt's Pearson numbers on real predictions against scipy.stats.pearsonr.

The predicted labels come from `gpt2-prompt predict` (its JSONL `<task>.label` field), the truth
from the data file read here with Python's csv/json modules; scipy correlates the two, and every
r and p in the given `eval --json` and `correlate --json` outputs must agree within --tol.
Run with Debian's interpreter (python3-scipy):

    gpt2-prompt predict --prompt emotion.gpt2p --data dev.tsv --text-column Tweet --out pred.jsonl
    gpt2-prompt eval --prompt emotion.gpt2p --data dev.tsv --text-column Tweet --json > eval.json
    /usr/bin/python3 scripts/check-pearson-scipy.py --predictions pred.jsonl --task emotion \
        --truth dev.tsv --label-columns anger,...,trust --eval eval.json
"""
import argparse
import csv
import json
import math
import sys
import warnings

import numpy as np
from scipy import stats


def read_rows(path):
    if path.endswith((".jsonl", ".json", ".ndjson")):
        with open(path, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]
    with open(path, encoding="utf-8-sig", newline="") as f:
        if path.endswith((".tsv", ".tab")):
            return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
        return list(csv.DictReader(f))


def truth_columns(rows, args):
    """name → 0/1 float64 column: each label column (multi-label), or each class's indicator."""
    if args.label_columns:
        return {c: np.array([float(r[c]) for r in rows]) for c in args.label_columns.split(",")}
    values = [str(r[args.label_column]) for r in rows]
    return {c: np.array([float(v == c) for v in values]) for c in sorted(set(values))}


def predicted_columns(path, task, names):
    with open(path, encoding="utf-8") as f:
        labels = [json.loads(line)[f"{task}.label"] for line in f if line.strip()]
    chosen = [set(lab.split("|")) if lab else set() for lab in labels]
    return {n: np.array([float(n in c) for c in chosen]) for n in names}


def pearson(x, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns on a constant column and returns nan
        r, p = stats.pearsonr(x, y)
    return float(r), float(p)


class Diff:
    def __init__(self, tol):
        self.tol, self.r, self.p, self.count, self.bad = tol, 0.0, 0.0, 0, []

    def check(self, what, got_r, got_p, want_r, want_p):
        self.count += 1
        for name, got, want in (("r", got_r, want_r), ("p", got_p, want_p)):
            if math.isnan(want):
                if got is not None:
                    self.bad.append(f"{what} {name}: {got}, scipy nan")
                continue
            if got is None:
                self.bad.append(f"{what} {name}: null, scipy {want}")
                continue
            d = abs(got - want)
            setattr(self, name, max(getattr(self, name), d))
            if d > self.tol:
                self.bad.append(f"{what} {name}: {got}, scipy {want} (|diff| {d:.3g})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--predictions", required=True, help="JSONL from gpt2-prompt predict")
    ap.add_argument("--task", required=True, help="the task whose <task>.label field to read")
    ap.add_argument("--truth", required=True, help="the labelled data file (.tsv, .csv or .jsonl)")
    group = ap.add_mutually_exclusive_group(required=True)
    group.add_argument("--label-columns", help="multi-label truth: the 0/1 columns")
    group.add_argument("--label-column", help="single-label truth: the class column")
    ap.add_argument("--eval", help="gpt2-prompt eval --json output for the same task and data")
    ap.add_argument("--correlate", help="gpt2-prompt correlate --json output for the same task and data")
    ap.add_argument("--tol", type=float, default=1e-9)
    args = ap.parse_args()

    truth = truth_columns(read_rows(args.truth), args)
    diff = Diff(args.tol)
    if args.eval:
        with open(args.eval) as f:
            ev = json.load(f)
        names = [e["label"] for e in ev["pearson"]]
        pred = predicted_columns(args.predictions, args.task, names)
        for e in ev["pearson"]:
            diff.check(f"eval {e['label']}", e["r"], e["p"], *pearson(pred[e["label"]], truth[e["label"]]))
    if args.correlate:
        with open(args.correlate) as f:
            table = json.load(f)["correlations"]
        pred = predicted_columns(args.predictions, args.task, sorted({e["a"] for e in table}))
        want = [dict(a=e["a"], b=e["b"], rp=pearson(pred[e["a"]], truth[e["b"]])) for e in table]
        want.sort(key=lambda e: (math.isnan(e["rp"][0]), -e["rp"][0] if not math.isnan(e["rp"][0]) else 0))
        if [(e["a"], e["b"]) for e in want] != [(e["a"], e["b"]) for e in table]:
            diff.bad.append("correlate: rows are not in scipy's descending order of r")
        for e, w in zip(table, want):
            diff.check(f"correlate {e['a']}/{e['b']}", e["r"], e["p"], *w["rp"])
    n = len(next(iter(truth.values())))
    print(f"{diff.count} correlations over n={n}: max |r - scipy| = {diff.r:.3g}, max |p - scipy| = {diff.p:.3g}")
    for line in diff.bad:
        print("MISMATCH", line, file=sys.stderr)
    return 1 if diff.bad or diff.count == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
