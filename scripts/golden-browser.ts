// `npm run golden:browser -- <fixture-dir>`: the golden comparison inside headless Chromium
// (Dawn in the browser, on SwiftShader), through the browser bundle; prints the line `npm run
// golden` prints and exits 1 above tolerance.
import type { GoldenReport } from '../src/prompt/golden.ts';
import { browserMissing, openPage } from './browser.ts';

type Engine = typeof import('../src/index.ts');

export async function goldenInBrowser(fixture: string): Promise<GoldenReport> {
  const missing = browserMissing();
  if (missing) throw new Error(missing);
  const session = await openPage('/', { fixture });
  try {
    return await session.page.evaluate(async (name) => {
      const engine: Engine = await import('/dist/browser/gpt2-prompt.js' as string);
      const gpu = await engine.openWebGpu({ host: 'chromium' });
      const read = async (file: string) => new Uint8Array(await (await fetch(`/fixture/${file}`)).arrayBuffer());
      const report = await engine.goldenReport(gpu, name, read);
      gpu.destroy();
      return report;
    }, fixture);
  } catch (error) {
    throw new Error(`${(error as Error).message}\n${session.console.join('\n')}`);
  } finally {
    await session.close();
  }
}

const isMain = process.argv[1]?.endsWith('golden-browser.ts');
if (isMain) {
  const dir = process.argv[2];
  if (!dir) {
    process.stderr.write('usage: npm run golden:browser -- <fixture-dir>\n');
    process.exit(2);
  }
  goldenInBrowser(dir).then(
    (report) => {
      process.stdout.write(JSON.stringify(report) + '\n');
      process.exit(report.failed.length === 0 ? 0 : 1);
    },
    (error: Error) => {
      process.stderr.write(`golden:browser: ${error.message}\n`);
      process.exit(2);
    },
  );
}
