// The table-driven op suite (test/ops/suite/) on every adapter Node has here: the test device
// (Dawn's GL ES on llvmpipe by default) and Vulkan lavapipe where it is installed. One test
// per case per adapter; and every op of the catalog must have a case, so an op added without
// one fails here. Max errors go to test-results/op-suite-<adapter>.json for the record.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as engine from '../../src/engine.ts';
import { opCatalog } from '../../src/ops/catalog.ts';
import { openGpu } from '../../src/node/device.ts';
import type { Gpu } from '../../src/gpu/context.ts';
import { testGpu } from '../helpers.ts';
import { hostSubset, suiteCases } from './suite/cases.ts';
import { describeFailure, runCase, type CaseResult } from './suite/runner.ts';
import { recordSuiteResults } from './suite/record.ts';

const cases = suiteCases();

describe('op suite coverage', () => {
  it('has a case for every op of the catalog, and names no op the catalog lacks', () => {
    const catalog = opCatalog().map((op) => op.name);
    const covered = new Set(cases.map((c) => c.op));
    expect(catalog.filter((name) => !covered.has(name))).toEqual([]);
    expect([...covered].filter((name) => !catalog.includes(name))).toEqual([]);
  });

  it('names each case once, and the host subset covers every op family but creation and comparison', () => {
    expect(new Set(cases.map((c) => c.name)).size).toBe(cases.length);
    expect(new Set(hostSubset().map((c) => c.family))).toEqual(new Set(['elementwise', 'reduction', 'movement', 'matmul', 'routine', 'loss', 'convolution']));
  });
});

interface Adapter {
  label: string;
  open(): Promise<Gpu | null>;
  /** Why the adapter is absent here, when open() gives null. */
  missing: string;
}

const ADAPTERS: Adapter[] = [
  { label: 'default', open: testGpu, missing: '' },
  {
    label: 'vulkan',
    open: () => openGpu({ backend: 'vulkan', quiet: true }).catch(() => null),
    missing: 'no Vulkan adapter here (scripts/software-vulkan.sh installs lavapipe)',
  },
];

for (const adapter of ADAPTERS) {
  describe(`op suite on the ${adapter.label} adapter`, () => {
    let gpu: Gpu | null = null;
    const results: CaseResult[] = [];
    beforeAll(async () => {
      gpu = await adapter.open();
      if (gpu) gpu.poison = true;
    }, 60_000);
    afterAll(() => {
      if (!gpu) return;
      recordSuiteResults(adapter.label, gpu.adapterName, results);
      if (adapter.label !== 'default') gpu.destroy();
    });

    for (const c of cases) {
      it(c.name, async (ctx) => {
        if (!gpu) return ctx.skip(adapter.missing);
        const result = await runCase(engine, gpu, c);
        results.push(result);
        expect(result.ok, describeFailure(result)).toBe(true);
      });
    }
  });
}
