// Pooling, batch norm, embedding and the shape functions against PyTorch
// (scripts/nn-ops-reference.py): forward and every checked gradient from its float64 values.
import fixture from './fixtures/nn-ops.ts';
import { torchCases } from './torch.ts';
import type { OpCase } from './cases.ts';
import { dropoutKeeps, normals } from './reference.ts';

type Size = number | [number, number];

export function nnOpCases(): OpCase[] {
  const pool = (params: Record<string, unknown>) => ({
    kernelSize: params.kernelSize as Size,
    stride: params.stride as Size,
    padding: params.padding as Size,
  });
  return torchCases(fixture, {
    maxPool2d: (e, [x], params) => e.maxPool2d(x!, pool(params)),
    avgPool2d: (e, [x], params) => e.avgPool2d(x!, pool(params)),
    // PyTorch's call took copies of the running statistics, as the runner's own tensors are updated in place.
    batchNorm: (e, [x, rm, rv, w, b], params) =>
      e.batchNorm(x!, rm!, rv!, params.affine ? w! : null, params.affine ? b! : null, { training: params.training === true }),
    embedding: (e, [ids, w]) => e.embedding(ids!, w!),
    flatten: (e, [x], params) => e.flatten(x!, (params.startDim as number | undefined) ?? 0, (params.endDim as number | undefined) ?? -1),
    squeeze: (e, [x], params) => e.squeeze(x!, params.dim as number | undefined),
    unsqueeze: (e, [x], params) => e.unsqueeze(x!, params.dim as number),
    reshape: (e, [x], params) => e.reshape(x!, params.shape as number[]),
  });
}

/**
 * dropout against the mask restated from kernels/dropout.wgsl's hash in float64, so the case
 * checks the kernel applies it, scales by 1/(1 − p) and sends the gradient through it (finite
 * differences); test/ops/dropout.test.ts checks the mask's statistics. Not training: x itself.
 */
export function dropoutCases(): OpCase[] {
  const shapes = [[257], [3, 5, 7]];
  return [0.25, 0.5].flatMap((p, k): OpCase[] => {
    const shape = shapes[k]!;
    const n = shape.reduce((a, b) => a * b, 1);
    const seed = 1234 + k;
    return [
      {
        op: 'dropout', name: `dropout p ${p} training ${JSON.stringify(shape)}`, family: 'routine', shape,
        inputs: [{ shape, data: normals(n, 400 + k), grad: true }],
        run: (e, [x]) => e.dropout(x!, p, { training: true, seed }),
        reference: ([x]) => x!.map((v, i) => (dropoutKeeps(i, p, seed) ? v * Math.fround(1 / (1 - p)) : 0)),
        ...(k === 0 ? { hostSubset: true } : {}),
      },
      {
        op: 'dropout', name: `dropout p ${p} not training ${JSON.stringify(shape)} is x`, family: 'routine', shape,
        inputs: [{ shape, data: normals(n, 410 + k), grad: true }],
        run: (e, [x]) => e.dropout(x!, p, { training: false, seed }),
        reference: ([x]) => Float64Array.from(x!),
      },
    ];
  });
}
