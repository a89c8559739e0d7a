// Deno entry of the op-suite subset (test/hosts/deno.test.ts runs it): the cases of
// test/ops/suite/cases.ts's hostSubset() on Deno's own WebGPU; prints the results as one JSON line.
import * as engine from '../../src/engine.ts';
import { hostSubset } from '../ops/suite/cases.ts';
import { runSuite } from '../ops/suite/runner.ts';

declare const Deno: { exit(code: number): never };

const gpu = await engine.openWebGpu({ host: 'deno' });
const results = await runSuite(engine, gpu, hostSubset());
console.log(JSON.stringify({ adapter: gpu.adapterName, results }));
gpu.destroy();
Deno.exit(0);
