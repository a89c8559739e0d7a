// examples/llama-block.ts against float64 PyTorch (test/fixtures/llama-block, made by
// scripts/llama-reference.py): the block's output, its RoPE tables and the gradient of x and
// of all nine weights for the upstream gradient stored with it.
//
// Tolerance: the engine computes in f32 (unit roundoff 6e-8) on values of order 1 (|output| ≤ 4.3,
// |gradients| ≤ 18.4), through chains of a few dozen ops whose sums run over at most 32 terms.
// The errors measured on llvmpipe are ≤ 3e-6; atol 1e-5 + rtol 1e-4 leaves room for other
// adapters' summation orders and transcendentals while an error in any piece (a wrong sign in
// rotate_half, a missing mask, an off-by-one head split, a dropped residual) moves values by
// 1e-2 or more.
import { describe, it, expect, beforeAll } from 'vitest';
import { testGpu, expectClose } from '../helpers.ts';
import { readFixture, runFixture, FIXTURE_NAMES, type BlockRun, type LlamaBlockWeights, type LlamaFixture } from '../../examples/llama-block.ts';
import type { Gpu } from '../../src/gpu/context.ts';

const TOLERANCE = { atol: 1e-5, rtol: 1e-4 };

let gpu: Gpu;
let fixture: LlamaFixture;
let run: BlockRun;
beforeAll(async () => {
  gpu = await testGpu();
  fixture = readFixture();
  run = await runFixture(gpu, fixture);
});

const reference = (name: string) => fixture.tensors[name]!.data;

describe('examples/llama-block against float64 PyTorch', () => {
  it('fixture has the README shapes', () => {
    expect(fixture.config).toMatchObject({ batch: 2, seq: 5, dim: 16, heads: 2, head_dim: 8, hidden: 32 });
    expect(fixture.tensors.output!.shape).toEqual([2, 5, 16]);
  });

  it('RoPE tables (built from arange, exp, cos, sin)', () => {
    expectClose('llama rope cos', run.ropeCos, reference('rope_cos'), TOLERANCE);
    expectClose('llama rope sin', run.ropeSin, reference('rope_sin'), TOLERANCE);
  });

  it('output', () => {
    expectClose('llama output', run.output, reference('output'), TOLERANCE);
  });

  it('dL/dx', () => {
    expectClose('llama grad x', run.gradX, reference('grad_x'), TOLERANCE);
  });

  for (const name of Object.keys(FIXTURE_NAMES) as (keyof LlamaBlockWeights)[]) {
    it(`dL/d${FIXTURE_NAMES[name]}`, () => {
      expectClose(`llama grad ${FIXTURE_NAMES[name]}`, run.gradWeights[name], reference(`grad_${FIXTURE_NAMES[name]}`), TOLERANCE);
    });
  }
});
