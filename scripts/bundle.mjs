// Single ES modules for web pages: dist/browser/gpt2-prompt.js (exported as
// `gpt2-prompt/browser`), built from src/index.ts with everything it imports, and
// dist/browser/engine.js (`gpt2-prompt/engine/browser`), the engine alone from
// src/engine.ts. Prints each bundle's size, and what minifying would make of it, and the
// same for the page (examples/browser/main.js with the bundle it loads; the target is 1.5 MB).
import { build } from 'esbuild';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const BUNDLES = [
  { entry: join(root, 'src', 'index.ts'), outfile: join(root, 'dist', 'browser', 'gpt2-prompt.js') },
  { entry: join(root, 'src', 'engine.ts'), outfile: join(root, 'dist', 'browser', 'engine.js') },
];
const common = {
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  logLevel: 'warning',
  // csv-parse's default build uses Node's Buffer; its browser build carries its own.
  alias: { 'csv-parse/sync': 'csv-parse/browser/esm/sync' },
};

const kB = (bytes) => `${(bytes / 1e3).toFixed(0)} kB`;
for (const { entry, outfile } of BUNDLES) {
  const result = await build({ ...common, entryPoints: [entry], outfile, sourcemap: false, legalComments: 'linked', metafile: true });
  const minified = await build({ ...common, entryPoints: [entry], outfile, minify: true, write: false });
  const js = result.metafile.outputs[Object.keys(result.metafile.outputs).find((o) => o.endsWith('.js'))].bytes;
  const min = minified.outputFiles.find((f) => f.path.endsWith('.js')).contents.byteLength;
  console.log(`bundle: ${outfile.slice(root.length + 1)} ${kB(js)} (minified ${kB(min)})`);
}
const page = await build({ ...common, entryPoints: [join(root, 'examples', 'browser', 'main.js')], minify: true, write: false });
console.log(`page: examples/browser/main.js with the bundle, minified ${kB(page.outputFiles[0].contents.byteLength)}`);
