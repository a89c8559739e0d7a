// The engine core as one ES module for web pages: dist/browser/gpt2-prompt.js (exported as
// `gpt2-prompt/browser`), built from src/index.ts with everything it imports.
import { build } from 'esbuild';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const result = await build({
  entryPoints: [join(root, 'src', 'index.ts')],
  outfile: join(root, 'dist', 'browser', 'gpt2-prompt.js'),
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  // Not minified, so the bundle reads as it is; a source map would add 2 MB of the same code.
  sourcemap: false,
  legalComments: 'linked',
  logLevel: 'warning',
  metafile: true,
  // csv-parse's default build uses Node's Buffer; its browser build carries its own.
  alias: { 'csv-parse/sync': 'csv-parse/browser/esm/sync' },
});
const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
console.log(`bundle: dist/browser/gpt2-prompt.js (${(bytes / 1e6).toFixed(1)} MB)`);
