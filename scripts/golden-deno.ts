// `npm run golden:deno -- <fixture-dir>`: the golden comparison under Deno's own WebGPU
// (wgpu), importing the engine's sources as a Deno user would; prints the line `npm run
// golden` prints and exits 1 above tolerance.
import { openWebGpu, goldenReport } from '../src/index.ts';

declare const Deno: { args: string[]; readFile(path: string): Promise<Uint8Array>; exit(code: number): never };

const dir = Deno.args[0];
if (!dir) {
  console.error('usage: npm run golden:deno -- <fixture-dir>');
  Deno.exit(2);
}
try {
  const gpu = await openWebGpu({ host: 'deno' });
  const report = await goldenReport(gpu, dir, (name) => Deno.readFile(`${dir}/${name}`));
  console.log(JSON.stringify(report));
  gpu.destroy();
  Deno.exit(report.failed.length === 0 ? 0 : 1);
} catch (error) {
  console.error(`golden:deno: ${(error as Error).message}`);
  Deno.exit(2);
}
