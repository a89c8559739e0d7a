// torch.erf and the exact GELU (torch's default form) from PyTorch (scripts/erf-reference.py):
// erf has no closed form, so its float64 reference is PyTorch's rather than a restatement.
import fixture from './fixtures/erf.ts';
import { torchCases } from './torch.ts';
import type { OpCase } from './cases.ts';

export function erfCases(): OpCase[] {
  return torchCases(fixture, {
    erf: (e, [x]) => e.erf(x!),
    gelu: (e, [x]) => e.gelu(x!),
  });
}
