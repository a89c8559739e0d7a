// Writes docs/ops.md from the op catalog (src/ops/catalog.ts): `npm run ops-doc`.
import { writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { opsMarkdown } from '../src/ops/catalog.ts';

const target = join(dirname(fileURLToPath(import.meta.url)), '..', 'docs', 'ops.md');
writeFileSync(target, opsMarkdown());
console.log(`wrote ${target}`);
