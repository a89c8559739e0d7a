"""PyTorch's torch.nn.functional.conv1d and conv2d in float64, the fixture of the op suite's
convolution cases: test/ops/suite/fixtures/conv.ts. Sizes are odd and off any tile grid; the
cases cover bias or none, stride, padding, dilation, groups, depthwise (with and without a
channel multiplier), non-square kernels and batches.
Run: /usr/bin/python3 scripts/conv-reference.py"""
import torch.nn.functional as F

from torch_cases import Cases

cases = Cases("conv-reference.py", seed=31)


def conv2d(name, x, w, bias=True, host_subset=False, **opts):
    o = w[0]
    inputs = [cases.randn(*x), cases.randn(*w)] + ([cases.randn(o)] if bias else [])
    cases.add(f"conv2d {name} x {list(x)} w {list(w)}{' + bias' if bias else ''} (PyTorch)", "conv2d", "convolution",
              lambda *t: F.conv2d(t[0], t[1], t[2] if bias else None, **opts), inputs,
              params={"bias": bias, **opts}, host_subset=host_subset)


def conv1d(name, x, w, bias=True, **opts):
    o = w[0]
    inputs = [cases.randn(*x), cases.randn(*w)] + ([cases.randn(o)] if bias else [])
    cases.add(f"conv1d {name} x {list(x)} w {list(w)}{' + bias' if bias else ''} (PyTorch)", "conv1d", "convolution",
              lambda *t: F.conv1d(t[0], t[1], t[2] if bias else None, **opts), inputs,
              params={"bias": bias, **opts})


conv2d("3×3 padding 1", (2, 3, 7, 6), (5, 3, 3, 3), padding=1, host_subset=True)
conv2d("no padding, no bias", (3, 2, 7, 9), (4, 2, 3, 3), bias=False)
conv2d("stride 2, padding (1, 2)", (2, 3, 13, 10), (4, 3, 3, 5), stride=2, padding=(1, 2))
conv2d("stride (2, 1), dilation 2", (1, 2, 15, 12), (3, 2, 3, 3), stride=(2, 1), dilation=2, padding=1)
conv2d("groups 2", (2, 4, 7, 5), (6, 2, 3, 2), groups=2, padding=(0, 1))
conv2d("depthwise", (2, 3, 9, 7), (3, 1, 3, 3), groups=3, padding=1)
conv2d("depthwise, channel multiplier 3", (2, 3, 7, 9), (9, 1, 5, 3), groups=3, padding=(2, 1), bias=False)
conv2d("1×1", (3, 5, 5, 3), (7, 5, 1, 1))
conv2d("kernel 1×7 on a 1-row input", (2, 3, 1, 17), (4, 3, 1, 7), padding=(0, 3), stride=(1, 3))
conv2d("stride 3 past a 2×2 kernel (pixels no tap reads get gradient 0)", (1, 2, 8, 7), (3, 2, 2, 2), stride=3)
conv2d("on the vec4 grid (a GPU's tiled matmuls)", (2, 4, 6, 6), (8, 4, 3, 3), padding=1)
conv1d("padding 2", (3, 4, 19), (6, 4, 5), padding=2)
conv1d("stride 2, dilation 3, no bias", (2, 3, 29), (5, 3, 4), stride=2, dilation=3, bias=False)
conv1d("depthwise, groups 6", (2, 6, 17), (12, 1, 3), groups=6, padding=1)
cases.write("conv")
