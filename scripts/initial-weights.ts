// Writes the weights a pretraining run started from (GPT-2's random init with the run's seed
// and shape): the "same model before pretraining" that the README compares the shipped one with.
//   node --import tsx scripts/initial-weights.ts RUN_OR_WEIGHTS_DIR OUT_DIR
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseConfig } from '../src/gpt2/config.ts';
import { encodeModel } from '../src/gpt2/checkpoint.ts';
import { initialWeights } from '../src/gpt2/pretrain.ts';

const [runDir, outDir] = process.argv.slice(2);
if (!runDir || !outDir) throw new Error('usage: initial-weights.ts RUN_DIR OUT_DIR');
const config = parseConfig(await readFile(join(runDir, 'config.json'), 'utf8'));
const { settings } = JSON.parse(await readFile(join(runDir, 'pretrain.json'), 'utf8')) as { settings: { seed: number } };
const { configJson, safetensors } = encodeModel(config, initialWeights(config, settings.seed), 'F16', { step: '0' });
await mkdir(outDir, { recursive: true });
await writeFile(join(outDir, 'config.json'), configJson);
await writeFile(join(outDir, 'model.safetensors'), safetensors);
process.stderr.write(`wrote ${outDir}: the initial weights of ${runDir} (seed ${settings.seed})\n`);
