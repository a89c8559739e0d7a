// Op-suite cases whose expected forward and gradients come from PyTorch in float64: the
// fixtures under fixtures/ are written by scripts/<family>-reference.py (through
// scripts/torch_cases.py) and read here; no expected value comes from the engine. Each case's
// gradients are PyTorch's of Σ w·output for the recorded w, which the runner feeds backward().
import type { Engine, Family, Gpu, OpCase, Tensor, Tolerance } from './cases.ts';

export interface TorchCase {
  name: string;
  op: string;
  family: Family;
  /** The op's arguments besides its tensors, as the reference script passed them. */
  params: Record<string, unknown>;
  inputs: { shape: number[]; dtype: 'f32' | 'u32'; data: number[]; grad: boolean }[];
  output: { shape: number[]; data: number[] };
  outputGradient: number[];
  /** PyTorch's gradient of each input (null where not checked). */
  gradients: (number[] | null)[];
  hostSubset?: boolean;
  tol?: Tolerance;
  gradTol?: Tolerance;
}

/** Runs a case's op on the engine: its input tensors (made from the fixture) and its params. */
export type TorchRunner = (e: Engine, xs: Tensor[], params: Record<string, unknown>, gpu: Gpu) => Tensor;

/** Suite cases from a fixture, each op run by the runner of its name. */
export function torchCases(fixture: readonly TorchCase[], runners: Record<string, TorchRunner>): OpCase[] {
  return fixture.map((c): OpCase => {
    const run = runners[c.op];
    if (!run) throw new Error(`torch case ${c.name}: no runner for op ${c.op}`);
    const output = Float64Array.from(c.output.data);
    return {
      op: c.op,
      name: c.name,
      family: c.family,
      inputs: c.inputs.map((x) => ({ shape: x.shape, data: Float64Array.from(x.data), grad: x.grad, ...(x.dtype === 'u32' ? { dtype: 'u32' as const } : {}) })),
      shape: c.output.shape,
      run: (e, xs, gpu) => run(e, xs, c.params, gpu),
      reference: () => output,
      expected: { outputGradient: Float64Array.from(c.outputGradient), gradients: c.gradients.map((g) => (g ? Float64Array.from(g) : null)) },
      ...(c.tol ? { tol: c.tol } : {}),
      ...(c.gradTol ? { gradTol: c.gradTol } : {}),
      ...(c.hostSubset ? { hostSubset: true } : {}),
    };
  });
}
