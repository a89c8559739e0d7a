// Copies a pretraining run's latest checkpoint into the package: weights/imdb-gpt2/ gets
// config.json, model.safetensors in F16 (half the size; --model reads it like the F32 one),
// the run's record and log, and loss.svg, the loss curve. The run directory itself (F32
// weights and AdamW moments, for --resume) stays where it is.
//   node --import tsx scripts/ship-pretrained.ts RUN_DIR [weights/imdb-gpt2]
import { mkdir, readFile, writeFile, copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadCheckpoint, encodeModel } from '../src/gpt2/checkpoint.ts';

const [runDir, outDir = 'weights/imdb-gpt2'] = process.argv.slice(2);
if (!runDir) throw new Error('usage: ship-pretrained.ts RUN_DIR [OUT_DIR]');

const configText = await readFile(join(runDir, 'config.json'), 'utf8');
const checkpoint = loadCheckpoint(configText, new Uint8Array(await readFile(join(runDir, 'model.safetensors'))), runDir);
const run = JSON.parse(await readFile(join(runDir, 'pretrain.json'), 'utf8')) as { step: number; tokensSeen: number };
const { configJson, safetensors } = encodeModel(checkpoint.config, checkpoint.tensors, 'F16', { step: String(run.step), tokens_seen: String(run.tokensSeen) });
await mkdir(outDir, { recursive: true });
await writeFile(join(outDir, 'config.json'), configJson);
await writeFile(join(outDir, 'model.safetensors'), safetensors);
await copyFile(join(runDir, 'pretrain.json'), join(outDir, 'pretrain.json'));
// The log up to the checkpoint: rows past it were not saved.
const log = (await readFile(join(runDir, 'log.csv'), 'utf8')).trim().split('\n');
const rows = log.slice(1).map((l) => l.split(',').map(Number)).filter((r) => r[0]! <= run.step);
await writeFile(join(outDir, 'log.csv'), `${[log[0], ...rows.map((r) => r.join(','))].join('\n')}\n`);
await writeFile(join(outDir, 'loss.svg'), lossCurve(rows.map((r) => [r[1]!, r[2]!])));
process.stderr.write(`wrote ${outDir}: update ${run.step}, ${run.tokensSeen} tokens, ${(safetensors.length / 2 ** 20).toFixed(1)} MiB of F16 weights\n`);

/** An SVG of loss against tokens seen: each update's loss (light) and a 20-update running mean. */
function lossCurve(points: [number, number][]): string {
  const [W, H, left, bottom, top, right] = [640, 360, 56, 40, 20, 16];
  const maxX = Math.max(...points.map((p) => p[0]));
  const losses = points.map((p) => p[1]);
  const lo = Math.floor(Math.min(...losses));
  const hi = Math.ceil(Math.max(...losses));
  const x = (v: number) => left + ((W - left - right) * v) / maxX;
  const y = (v: number) => top + ((H - top - bottom) * (hi - v)) / (hi - lo);
  const path = (ps: [number, number][]) => ps.map(([a, b], i) => `${i ? 'L' : 'M'}${x(a).toFixed(1)},${y(b).toFixed(1)}`).join(' ');
  const mean = points.map(([t], i) => {
    const window = losses.slice(Math.max(0, i - 19), i + 1);
    return [t, window.reduce((s, v) => s + v, 0) / window.length] as [number, number];
  });
  const yTicks = Array.from({ length: hi - lo + 1 }, (_, k) => lo + k);
  const xStep = 10 ** Math.floor(Math.log10(maxX / 2));
  const xTicks = Array.from({ length: Math.floor(maxX / xStep) + 1 }, (_, k) => k * xStep);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">
<rect width="${W}" height="${H}" fill="white"/>
${yTicks.map((v) => `<line x1="${left}" x2="${W - right}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/><text x="${left - 6}" y="${y(v) + 4}" text-anchor="end">${v}</text>`).join('\n')}
${xTicks.map((v) => `<text x="${x(v)}" y="${H - bottom + 16}" text-anchor="middle">${v >= 1e6 ? `${v / 1e6}M` : `${v / 1e3}k`}</text>`).join('\n')}
<path d="${path(points)}" fill="none" stroke="#9ecae1" stroke-width="1"/>
<path d="${path(mean)}" fill="none" stroke="#08519c" stroke-width="2"/>
<text x="${(left + W - right) / 2}" y="${H - 6}" text-anchor="middle">tokens seen</text>
<text x="14" y="${(top + H - bottom) / 2}" text-anchor="middle" transform="rotate(-90 14 ${(top + H - bottom) / 2})">next-token loss (nats)</text>
<text x="${W - right}" y="${top + 12}" text-anchor="end">IMDB train reviews; light: each update, dark: mean of 20</text>
</svg>
`;
}
