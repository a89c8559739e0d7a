// torch.nn.functional.linear's cases (scripts/linear-reference.py): matmul with a transposed
// weight and a fused bias, as nn.Linear computes it.
import fixture from './fixtures/linear.ts';
import { torchCases } from './torch.ts';
import type { OpCase } from './cases.ts';

export function linearCases(): OpCase[] {
  return torchCases(fixture, {
    matmul: (e, [x, w, b], params) => e.matmul(x!, w!, { transB: params.transB === true, ...(params.bias ? { bias: b! } : {}) }),
  });
}
