#!/usr/bin/env python3
"""Writes the expected outputs of scikit-learn / scipy that test/metrics/*.test.ts compare against.

Run with Debian's interpreter (its packages: python3-sklearn, python3-scipy):
    /usr/bin/python3 scripts/metrics-reference.py
Inputs are generated here from fixed seeds and stored next to the expected outputs, so the
TypeScript tests need no Python.
"""
import json
import math
import os
import sys

import numpy as np
import scipy
import sklearn
from scipy import stats
from sklearn.metrics import accuracy_score, classification_report

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "metrics", "fixtures")
EMOTIONS = ["anger", "anticipation", "disgust", "fear", "joy", "love",
            "optimism", "pessimism", "sadness", "surprise", "trust"]


def no_nan(v):
    """JSON has no NaN; the tests read null as NaN."""
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, dict):
        return {k: no_nan(x) for k, x in v.items()}
    if isinstance(v, list):
        return [no_nan(x) for x in v]
    return v


def single_case(name, y_true, y_pred, names, digits=(2,)):
    labels = list(range(len(names)))
    kw = dict(labels=labels, target_names=names, zero_division=0)
    d = classification_report(y_true, y_pred, output_dict=True, **kw)
    # Older sklearn prints "micro avg" instead of "accuracy" when a listed class occurs in neither
    # y_true nor y_pred; micro precision is the accuracy then too, and our report always says accuracy.
    if "micro avg" in d:
        micro = d.pop("micro avg")
        assert micro["precision"] == micro["recall"]
        d = {**{k: v for k, v in d.items() if k not in ("macro avg", "weighted avg")},
             "accuracy": micro["precision"], "macro avg": d["macro avg"], "weighted avg": d["weighted avg"]}
    assert d["accuracy"] == accuracy_score(y_true, y_pred)
    case = dict(name=name, labelNames=names, yTrue=[int(v) for v in y_true], yPred=[int(v) for v in y_pred],
                expected=d)
    if set(labels) == set(np.unique(np.concatenate([y_true, y_pred]))):
        case["text"] = {str(k): classification_report(y_true, y_pred, digits=k, **kw) for k in digits}
    return case


def multi_case(name, y_true, y_pred, names, digits=(2,)):
    kw = dict(target_names=names, zero_division=0)
    return dict(name=name, nLabels=len(names), labelNames=names,
                yTrue=[int(v) for v in y_true.ravel()], yPred=[int(v) for v in y_pred.ravel()],
                expected=classification_report(y_true, y_pred, output_dict=True, **kw),
                text={str(k): classification_report(y_true, y_pred, digits=k, **kw) for k in digits})


def noisy_predictions(rng, y_true, n_classes, p_correct):
    wrong = rng.integers(0, n_classes, size=len(y_true))
    return np.where(rng.random(len(y_true)) < p_correct, y_true, wrong)


def classification_cases():
    cases = []
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, size=200)
    cases.append(single_case("binary-200", y, noisy_predictions(rng, y, 2, 0.7), ["bad", "good"], digits=(2, 4)))

    rng = np.random.default_rng(2)
    y = rng.integers(0, 4, size=97)  # class 4 is never true
    p = noisy_predictions(rng, y, 5, 0.5)
    p[p == 3] = 0  # class 3 is never predicted
    names = ["anger", "joy", "fear", "sadness", "a-much-longer-class-name"]
    cases.append(single_case("five-class-unseen", y, p, names, digits=(2, 3)))

    rng = np.random.default_rng(3)
    y = rng.integers(0, 4, size=60)
    p = noisy_predictions(rng, y, 4, 0.6)  # class 4 occurs in neither
    cases.append(single_case("five-class-absent", y, p, ["c0", "c1", "c2", "c3", "c4"]))

    # Exact binary ties (0.125, 0.375, 0.625) exercise Python's round-half-even formatting.
    y = np.array([0] * 8 + [1] * 8)
    p = np.array([0] + [1] * 7 + [1] * 5 + [0] * 3)
    cases.append(single_case("rounding-ties", y, p, ["no", "yes"], digits=(0, 1, 2)))

    y = np.array([1])
    cases.append(single_case("single-sample", y, y, ["x", "y"]))
    return cases


def multilabel_cases():
    cases = []
    rng = np.random.default_rng(4)
    n, k = 150, len(EMOTIONS)
    rates = np.linspace(0.03, 0.5, k)
    y = (rng.random((n, k)) < rates).astype(int)
    flip = rng.random((n, k)) < 0.25
    p = np.where(flip, 1 - y, y)
    y[:12] = 0  # all-zero true rows: some predicted empty too, some not
    p[:6] = 0
    p[:, 9] = 0  # a label never predicted
    cases.append(multi_case("semeval-11", y, p, EMOTIONS, digits=(2, 4)))

    y = np.array([[1, 0, 0], [0, 1, 1], [0, 0, 0], [1, 1, 0], [0, 0, 0]])
    p = np.array([[1, 0, 1], [0, 0, 1], [0, 0, 0], [0, 1, 0], [1, 0, 0]])
    cases.append(multi_case("small-3", y, p, ["a", "b", "c"]))

    y = np.zeros((6, 3), dtype=int)  # no true positives at all: sklearn's zero-weight branch
    p = np.zeros((6, 3), dtype=int)
    p[1, 2] = 1
    cases.append(multi_case("no-positives", y, p, ["a", "b", "c"]))
    return cases


def pearson_case(name, x, y):
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    res = stats.pearsonr(x, y)
    return dict(name=name, x=x.tolist(), y=y.tolist(), r=float(res[0]), p=float(res[1]))


def correlated(rng, n, rho):
    x = rng.standard_normal(n)
    return x, rho * x + math.sqrt(1 - rho * rho) * rng.standard_normal(n)


def pearson_cases():
    rng = np.random.default_rng(5)
    cases = [
        pearson_case("n3-random", rng.standard_normal(3), rng.standard_normal(3)),
        pearson_case("n3-strong", [1.0, 2.0, 3.0], [1.1, 1.9, 3.05]),
        pearson_case("n4", rng.standard_normal(4), rng.standard_normal(4)),
        pearson_case("n2", [0.5, 0.25], [1.0, 3.0]),
        pearson_case("n10-perfect", np.arange(10.0), 2 * np.arange(10.0) + 1),
        pearson_case("n10-perfect-negative", np.arange(10.0), -0.5 * np.arange(10.0)),
        pearson_case("constant", [1.0, 1.0, 1.0, 1.0], [1.0, 2.0, 3.0, 4.0]),
    ]
    for n, rho in [(5, 0.9), (20, 0.0), (50, 0.95), (200, 0.0), (200, 0.2), (1000, 0.3), (2000, 0.9), (1001, -0.6)]:
        x, y = correlated(rng, n, rho)
        cases.append(pearson_case(f"n{n}-rho{rho}", x, y))
    # Values that are exactly float32, as the trainer's Float32Array predictions are.
    x, y = correlated(rng, 300, 0.5)
    cases.append(pearson_case("n300-float32", x.astype(np.float32), (y > 0).astype(np.float32)))
    x, y = correlated(rng, 100, 0.7)
    cases.append(pearson_case("n100-offset", 1e6 + x, 3e-4 * y))
    # 0/1 against 0/1, as the study correlates predicted labels with the truth (phi coefficients).
    x, y = correlated(rng, 886, 0.6)
    cases.append(pearson_case("n886-binary", (x > 0.8).astype(float), (y > 1.0).astype(float)))
    x, y = correlated(rng, 3000, 0.3)
    cases.append(pearson_case("n3000-binary", (x > 0).astype(float), (y > 0).astype(float)))
    cases.append(pearson_case("binary-constant-prediction", np.zeros(50), (rng.random(50) < 0.3).astype(float)))
    return cases


def correlation_table_case():
    rng = np.random.default_rng(6)
    n, a_names, b_names = 40, ["p0", "p1", "p2"], ["t0", "t1", "t2", "t3"]
    pred = rng.standard_normal((n, len(a_names))).astype(np.float32).astype(np.float64)
    targ = (rng.random((n, len(b_names))) < 0.4).astype(np.float64)
    targ[:, 1] = (pred[:, 0] + 0.5 * rng.standard_normal(n) > 0)
    targ[:, 3] = 0.0  # constant column: r is NaN, listed last
    rows = []
    for i, a in enumerate(a_names):
        for j, b in enumerate(b_names):
            r, p = stats.pearsonr(pred[:, i], targ[:, j])
            rows.append(dict(a=a, b=b, r=float(r), p=float(p)))
    rows.sort(key=lambda e: (math.isnan(e["r"]), -e["r"] if not math.isnan(e["r"]) else 0))
    return dict(n=n, aNames=a_names, bNames=b_names, predictions=pred.ravel().tolist(),
                targets=targ.ravel().tolist(), expected=rows)


def logits32(rng, truth, scale):
    """float32 logits that lean towards the truth: noise plus a push of `scale` for positives."""
    return (rng.standard_normal(truth.shape) + scale * (2 * truth - 1)).astype(np.float32)


def label_pearson(pred, truth, prob):
    rows = []
    for k in range(pred.shape[1]):
        r, p = stats.pearsonr(pred[:, k].astype(np.float64), truth[:, k].astype(np.float64))
        rows.append(dict(r=float(r), p=float(p),
                         probabilityR=float(stats.pearsonr(prob[:, k], truth[:, k].astype(np.float64))[0])))
    return rows


def sigmoid(z):
    return 1 / (1 + np.exp(-z.astype(np.float64)))


def softmax(z):
    e = np.exp(z.astype(np.float64) - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def evaluation_cases():
    """Per-label Pearson as the study computes it: on 0/1 predicted labels (logit > 0, argmax)."""
    cases = []
    rng = np.random.default_rng(7)
    n, k = 300, len(EMOTIONS)
    truth = (rng.random((n, k)) < np.linspace(0.05, 0.45, k)).astype(int)
    truth[:, 10] = 0
    truth[::7, 10] = 1
    logits = logits32(rng, truth, 0.8)
    logits[:, 9] = -np.abs(logits[:, 9]) - 0.1  # surprise never predicted: r undefined (nan)
    pred = (logits > 0).astype(int)
    cases.append(dict(name="multi-11", kind="multi", labelNames=EMOTIONS, logits=logits.ravel().tolist(),
                      targets=truth.ravel().tolist(), labels=[],
                      expected=label_pearson(pred, truth, sigmoid(logits))))
    n = 200
    labels = rng.integers(0, 2, size=n)
    onehot = np.eye(2, dtype=int)[labels]
    logits = logits32(rng, onehot, 0.5)
    pred = np.eye(2, dtype=int)[np.argmax(logits, axis=1)]
    cases.append(dict(name="single-2", kind="single", labelNames=["bad", "good"], logits=logits.ravel().tolist(),
                      targets=[], labels=labels.tolist(), expected=label_pearson(pred, onehot, softmax(logits))))
    labels = rng.integers(0, 3, size=n)
    onehot = np.eye(4, dtype=int)[labels]  # class 3 never true: r undefined
    logits = logits32(rng, onehot, 0.7)
    pred = np.eye(4, dtype=int)[np.argmax(logits, axis=1)]
    cases.append(dict(name="single-4-unseen", kind="single", labelNames=["a", "b", "c", "d"], logits=logits.ravel().tolist(),
                      targets=[], labels=labels.tolist(), expected=label_pearson(pred, onehot, softmax(logits))))
    return cases


def table(pred, a_names, truth, b_names):
    rows = []
    for i, a in enumerate(a_names):
        for j, b in enumerate(b_names):
            r, p = stats.pearsonr(pred[:, i].astype(np.float64), truth[:, j].astype(np.float64))
            rows.append(dict(a=a, b=b, r=float(r), p=float(p)))
    rows.sort(key=lambda e: (math.isnan(e["r"]), -e["r"] if not math.isnan(e["r"]) else 0))
    return rows


def cross_task_cases():
    """The study's two cross-task tables, on 0/1 predicted labels."""
    rng = np.random.default_rng(8)
    # "Emotion of IMDB": an emotion head's predictions on IMDB texts against IMDB's true good indicator.
    n, k = 400, len(EMOTIONS)
    good = rng.integers(0, 2, size=n)
    lean = np.outer(2 * good - 1, np.linspace(-1, 1, k))  # some emotions follow good, some bad
    logits = (rng.standard_normal((n, k)) + lean - 0.3).astype(np.float32)
    logits[:, 5] = -1.0  # love never predicted: nan, listed last
    emotion_of_imdb = dict(name="emotion-of-imdb", task=dict(name="emotion", kind="multi", labelNames=EMOTIONS),
                           logits=logits.ravel().tolist(), other=dict(kind="single", labelNames=["bad", "good"],
                                                                       labels=good.tolist(), targets=[]),
                           against=["good"], expected=table((logits > 0).astype(int), EMOTIONS, good[:, None], ["good"]))
    # "Sentiment of SemEval": a sentiment head's good prediction on tweets against each true emotion.
    n = 300
    truth = (rng.random((n, k)) < 0.3).astype(int)
    score = truth @ np.linspace(-1, 1, k)
    logits = np.stack([np.zeros(n), score + rng.standard_normal(n)], axis=1).astype(np.float32)
    good_pred = np.argmax(logits, axis=1)[:, None]
    sentiment_of_semeval = dict(name="sentiment-of-semeval", task=dict(name="sentiment", kind="single", labelNames=["bad", "good"]),
                                logits=logits.ravel().tolist(), other=dict(kind="multi", labelNames=EMOTIONS, labels=[],
                                                                          targets=truth.ravel().tolist()),
                                predicted=["good"], expected=table(good_pred, ["good"], truth, EMOTIONS))
    return [emotion_of_imdb, sentiment_of_semeval]


def write(name, payload):
    payload = dict(generator=f"scripts/metrics-reference.py (scikit-learn {sklearn.__version__}, "
                             f"scipy {scipy.__version__}, numpy {np.__version__})", **payload)
    with open(os.path.join(OUT, name), "w") as f:
        json.dump(no_nan(payload), f, indent=1, allow_nan=False)
        f.write("\n")


def main():
    os.makedirs(OUT, exist_ok=True)
    write("classification.json", dict(cases=classification_cases()))
    write("multilabel.json", dict(cases=multilabel_cases()))
    write("pearson.json", dict(cases=pearson_cases(), table=correlation_table_case()))
    write("evaluation.json", dict(cases=evaluation_cases(), crossTask=cross_task_cases()))
    print("wrote fixtures to", os.path.normpath(OUT), file=sys.stderr)


if __name__ == "__main__":
    main()
