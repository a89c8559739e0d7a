// `npm run golden -- <fixture-dir>`: compares the engine with a reference fixture and prints
// one JSON line of max abs errors per tensor; exits 1 if any is above tolerance.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openGpu } from '../node/device.js';
import { readCheckpoint } from '../node/checkpoint-file.js';
import { parseSafetensors } from '../gpt2/safetensors.js';
import { compareWithFixture, GOLDEN_TOLERANCE } from '../prompt/golden.js';

export async function golden(dir: string): Promise<boolean> {
  const checkpoint = await readCheckpoint(dir);
  const expectedPath = join(dir, 'expected.safetensors');
  const expected = parseSafetensors(new Uint8Array(await readFile(expectedPath)), expectedPath);
  const gpu = await openGpu();
  try {
    const result = await compareWithFixture(gpu, checkpoint, expected);
    process.stdout.write(JSON.stringify({ fixture: dir, adapter: gpu.adapterName, tolerance: GOLDEN_TOLERANCE, maxAbsError: result.errors, failed: result.failed }) + '\n');
    return result.failed.length === 0;
  } finally {
    gpu.destroy();
  }
}

const isMain = process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/\\/g, '/').split('/').pop()!);
if (isMain) {
  const dir = process.argv[2];
  if (!dir) {
    process.stderr.write('usage: npm run golden -- <fixture-dir>\n');
    process.exit(2);
  }
  golden(dir).then(
    (ok) => process.exit(ok ? 0 : 1),
    (error: Error) => {
      process.stderr.write(`golden: ${error.message}\n`);
      process.exit(2);
    },
  );
}
