// `npm run golden -- <fixture-dir>`: compares the engine with a reference fixture and prints
// one JSON line of max abs errors per tensor; exits 1 if any is above tolerance.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openGpu } from '../node/device.ts';
import { goldenReport } from '../prompt/golden.ts';

export async function golden(dir: string): Promise<boolean> {
  const gpu = await openGpu();
  try {
    const report = await goldenReport(gpu, dir, async (name) => new Uint8Array(await readFile(join(dir, name))));
    process.stdout.write(JSON.stringify(report) + '\n');
    return report.failed.length === 0;
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
