"""PyTorch's torch.nn.functional.linear in float64, the fixture of the op suite's linear cases
(matmul with a transposed weight and a fused bias, as nn.Linear computes):
test/ops/suite/fixtures/linear.ts. Run: /usr/bin/python3 scripts/linear-reference.py"""
import torch.nn.functional as F

from torch_cases import Cases

cases = Cases("linear-reference.py", seed=27)
cases.add("matmul as F.linear [3, 5, 13] · [7, 13]ᵀ + [7] (PyTorch)", "matmul", "matmul",
          lambda x, w, b: F.linear(x, w, b), [cases.randn(3, 5, 13), cases.randn(7, 13), cases.randn(7)],
          params={"transB": True, "bias": True}, host_subset=True)
cases.add("matmul as F.linear [33] · [5, 33]ᵀ, no bias (PyTorch)", "matmul", "matmul",
          lambda x, w: F.linear(x, w), [cases.randn(33), cases.randn(5, 33)], params={"transB": True})
cases.write("linear")
