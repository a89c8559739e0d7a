// Deno entry of the short training (test/hosts/deno.test.ts runs it): prints its result as JSON.
import { openWebGpu } from '../../src/index.ts';
import { shortTraining } from './short-training.ts';

declare const Deno: { readFile(path: string): Promise<Uint8Array>; exit(code: number): never };

const root = new URL('../../', import.meta.url);
const gpu = await openWebGpu({ host: 'deno' });
console.log(JSON.stringify(await shortTraining(gpu, (path) => Deno.readFile(new URL(path, root).pathname))));
gpu.destroy();
Deno.exit(0);
