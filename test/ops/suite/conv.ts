// torch.nn.functional.conv1d and conv2d's cases (scripts/conv-reference.py): forward and the
// gradients of input, weight and bias against PyTorch in float64.
import fixture from './fixtures/conv.ts';
import { torchCases } from './torch.ts';
import type { OpCase } from './cases.ts';

type Pair = number | [number, number];

export function convCases(): OpCase[] {
  const options = (params: Record<string, unknown>) => ({
    ...(params.stride !== undefined ? { stride: params.stride as Pair } : {}),
    ...(params.padding !== undefined ? { padding: params.padding as Pair } : {}),
    ...(params.dilation !== undefined ? { dilation: params.dilation as Pair } : {}),
    ...(params.groups !== undefined ? { groups: params.groups as number } : {}),
  });
  return torchCases(fixture, {
    conv2d: (e, [x, w, b], params) => e.conv2d(x!, w!, params.bias ? b! : null, options(params)),
    conv1d: (e, [x, w, b], params) => e.conv1d(x!, w!, params.bias ? b! : null, options(params) as { stride?: number; padding?: number; dilation?: number; groups?: number }),
  });
}
