// Draws a Chrome trace written by profile() (src/tensor/profile.ts) as an SVG timeline: the
// host's op spans, encoding, submits and waits, and the GPU's kernels coloured by family, over
// one time axis, with each family's GPU time summed below. For docs and for a look at a trace
// where Perfetto cannot be reached (ui.perfetto.dev needs a network).
//
//   node --import tsx scripts/trace-svg.ts trace.json out.svg [--title "…"]
import { readFileSync, writeFileSync } from 'node:fs';
import type { ChromeTrace, TraceEvent } from '../src/tensor/profile.ts';

const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac', '#1f77b4', '#8c564b', '#17becf', '#bcbd22'];
const WIDTH = 1400;
const LEFT = 150;
const RIGHT = 20;
const LANE = 26;

const escape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** The SVG of a trace's events. */
export function traceSvg(trace: ChromeTrace, title: string): string {
  const spans = trace.traceEvents.filter((e) => e.ph === 'X');
  const gpuName = String(trace.traceEvents.find((e) => e.ph === 'M' && e.pid === 2 && e.name === 'thread_name')?.args?.name ?? 'kernels');
  const t0 = Math.min(...spans.map((e) => e.ts));
  const t1 = Math.max(...spans.map((e) => e.ts + e.dur));
  const plot = WIDTH - LEFT - RIGHT;
  const x = (ts: number) => LEFT + ((ts - t0) / (t1 - t0)) * plot;
  const w = (dur: number) => Math.max(0.5, (dur / (t1 - t0)) * plot);
  const families = new Map<string, { color: string; us: number; calls: number }>();
  const family = (e: TraceEvent) => (e.cat ?? '').split(',')[1] ?? e.name;
  for (const e of spans.filter((s) => s.pid === 2)) {
    const f = family(e);
    let entry = families.get(f);
    if (!entry) families.set(f, (entry = { color: PALETTE[families.size % PALETTE.length]!, us: 0, calls: 0 }));
    entry.us += e.dur;
    entry.calls++;
  }
  const lanes: { label: string; events: TraceEvent[]; color: (e: TraceEvent) => string }[] = [
    { label: 'host: step', events: spans.filter((e) => e.cat === 'step'), color: () => '#ddd' },
    { label: 'host: ops', events: spans.filter((e) => e.cat?.startsWith('op')), color: (e) => (e.cat!.includes('backward') ? '#c9a0dc' : '#9ecae1') },
    { label: 'host: encode', events: spans.filter((e) => e.cat === 'encode'), color: () => '#6baed6' },
    { label: 'host: submit, wait', events: spans.filter((e) => e.cat === 'submit' || e.cat === 'wait'), color: (e) => (e.cat === 'wait' ? '#fdae6b' : '#74c476') },
    { label: 'GPU: kernels', events: spans.filter((e) => e.pid === 2), color: (e) => families.get(family(e))!.color },
  ];
  const top = 70;
  const parts: string[] = [];
  parts.push(`<text x="${LEFT}" y="24" font-size="16" font-weight="bold">${escape(title)}</text>`);
  parts.push(`<text x="${LEFT}" y="44" font-size="11" fill="#555">${escape(`${trace.otherData.adapter} — ${gpuName}`)}</text>`);
  // Time axis: about 10 ticks at a round step.
  const spanMs = (t1 - t0) / 1000;
  const step = [0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000].find((s) => spanMs / s <= 12) ?? 10000;
  const bottom = top + lanes.length * LANE;
  for (let ms = 0; ms <= spanMs; ms += step) {
    const tx = x(t0 + ms * 1000);
    parts.push(`<line x1="${tx.toFixed(1)}" y1="${top - 6}" x2="${tx.toFixed(1)}" y2="${bottom}" stroke="#eee"/>`);
    parts.push(`<text x="${tx.toFixed(1)}" y="${top - 10}" font-size="10" text-anchor="middle" fill="#666">${+ms.toFixed(1)} ms</text>`);
  }
  lanes.forEach((lane, i) => {
    const y = top + i * LANE;
    parts.push(`<text x="${LEFT - 8}" y="${y + LANE / 2 + 4}" font-size="11" text-anchor="end">${lane.label}</text>`);
    for (const e of lane.events) {
      const title = `${e.name} ${(e.dur / 1000).toFixed(3)} ms${e.args?.shapes ? ` ${String(e.args.shapes)}` : ''}${e.args?.caller ? ` @ ${String(e.args.caller)}` : ''}`;
      parts.push(`<rect x="${x(e.ts).toFixed(2)}" y="${y + 3}" width="${w(e.dur).toFixed(2)}" height="${LANE - 6}" fill="${lane.color(e)}" stroke="#fff" stroke-width="0.2"><title>${escape(title)}</title></rect>`);
    }
  });
  parts.push(`<text x="${LEFT}" y="${bottom + 16}" font-size="10" fill="#555">ops: blue forward, purple backward · green: submit (on Dawn's GL ES backend it blocks while the GPU works) · orange: wait for a readback · hover a bar for its name, shapes and caller</text>`);
  // Per-family GPU time, largest first, as bars.
  const total = [...families.values()].reduce((s, f) => s + f.us, 0) || 1;
  const sorted = [...families.entries()].sort((a, b) => b[1].us - a[1].us);
  const barTop = bottom + 52;
  parts.push(`<text x="${LEFT}" y="${barTop - 12}" font-size="13" font-weight="bold">GPU time by kernel family (${(total / 1000).toFixed(1)} ms in ${spans.filter((e) => e.pid === 2).length} dispatches)</text>`);
  const maxUs = sorted[0]?.[1].us ?? 1;
  sorted.forEach(([name, f], i) => {
    const y = barTop + i * 18;
    parts.push(`<text x="${LEFT - 8}" y="${y + 12}" font-size="11" text-anchor="end">${escape(name)}</text>`);
    parts.push(`<rect x="${LEFT}" y="${y + 2}" width="${((f.us / maxUs) * (plot * 0.6)).toFixed(1)}" height="13" fill="${f.color}"/>`);
    parts.push(`<text x="${LEFT + (f.us / maxUs) * plot * 0.6 + 6}" y="${y + 12}" font-size="11">${(f.us / 1000).toFixed(2)} ms · ${((100 * f.us) / total).toFixed(1)}% · ${f.calls} calls</text>`);
  });
  const height = barTop + sorted.length * 18 + 20;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif">\n<rect width="100%" height="100%" fill="#fff"/>\n${parts.join('\n')}\n</svg>\n`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [input, output] = process.argv.slice(2);
  if (!input || !output) {
    console.error('usage: node --import tsx scripts/trace-svg.ts trace.json out.svg [--title "…"]');
    process.exit(2);
  }
  const at = process.argv.indexOf('--title');
  const title = at >= 0 ? process.argv[at + 1]! : 'Profiled step';
  writeFileSync(output, traceSvg(JSON.parse(readFileSync(input, 'utf8')), title));
  console.log(`wrote ${output}`);
}
