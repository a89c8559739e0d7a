"""PyTorch's torch.erf and torch.nn.functional.gelu (the exact, erf form: torch's default) in
float64, the op suite's fixture test/ops/suite/fixtures/erf.ts.
Run: /usr/bin/python3 scripts/erf-reference.py"""
import torch
import torch.nn.functional as F

from torch_cases import Cases

cases = Cases("erf-reference.py", seed=29)
# Both sides of the kernel's switch at |x| = 0.5, the tails where erf saturates, and tiny values
# where only the series keeps the relative accuracy.
edges = torch.tensor([0.0, 1e-6, -3e-4, 0.4999, 0.5, -0.5001, 1.0, -2.5, 3.9, -6.0, 10.0])
cases.add("erf [257] over (−6, 6) and the switch at 0.5", "erf", "elementwise",
          torch.erf, [torch.cat([cases.randn(246, scale=2.0), edges])], host_subset=True)
cases.add("gelu [3, 5, 67] exact (erf)", "gelu", "elementwise",
          lambda x: F.gelu(x), [cases.randn(3, 5, 67, scale=3.0)])
cases.write("erf")
