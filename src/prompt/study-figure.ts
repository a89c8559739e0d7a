// The study's training losses as an SVG figure: one panel per task (sentiment, emotion, joy),
// each with the 3- and 10-epoch runs' mean loss per epoch, ours solid against the study's dashed.
// A string builder only; the caller writes it where it likes.
import { STUDY_EPOCHS, type StudyRun } from './study.ts';
import type { PublishedStudy } from './study-published.ts';

const PANEL = { width: 300, height: 250, left: 52, right: 12, top: 30, bottom: 40 };
const LEGEND_HEIGHT = 46;
/** One colour per epoch count, readable on white and by colour-blind readers (Okabe–Ito). */
const COLOURS: Record<number, string> = { [STUDY_EPOCHS[0]]: '#E69F00', [STUDY_EPOCHS[1]]: '#0072B2' };

const escape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const num = (x: number) => String(Math.round(x * 100) / 100);

/** Round tick values covering [lo, hi]: steps of 1, 2 or 5 × 10^k, about five of them. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw)!;
  const ticks: number[] = [];
  for (let t = Math.ceil(lo / step - 1e-9) * step; t <= hi + step * 1e-9; t += step) ticks.push(Math.round(t / step) * step);
  return ticks;
}

interface Series {
  /** e.g. "ours, emotion-3": each point's tooltip names it. */
  name: string;
  epochs: number;
  mine: boolean;
  losses: number[];
}

function panel(title: string, series: Series[], x0: number): string {
  const values = series.flatMap((s) => s.losses).filter(Number.isFinite);
  const lo0 = values.length ? Math.min(...values) : 0;
  const hi0 = values.length ? Math.max(...values) : 1;
  const pad = Math.max((hi0 - lo0) * 0.08, 0.01);
  const ticks = niceTicks(lo0 - pad, hi0 + pad);
  const lo = Math.min(ticks[0]!, lo0 - pad);
  const hi = Math.max(ticks[ticks.length - 1]!, hi0 + pad);
  const maxEpoch = Math.max(STUDY_EPOCHS[1], ...series.map((s) => s.losses.length));
  const plotW = PANEL.width - PANEL.left - PANEL.right;
  const plotH = PANEL.height - PANEL.top - PANEL.bottom;
  const x = (epoch: number) => x0 + PANEL.left + ((epoch - 1) / Math.max(1, maxEpoch - 1)) * plotW;
  const y = (loss: number) => PANEL.top + (1 - (loss - lo) / (hi - lo)) * plotH;
  const out: string[] = [];
  out.push(`<text x="${num(x0 + PANEL.left + plotW / 2)}" y="18" text-anchor="middle" font-weight="bold">${escape(title)}</text>`);
  out.push(`<rect x="${num(x0 + PANEL.left)}" y="${PANEL.top}" width="${num(plotW)}" height="${num(plotH)}" fill="none" stroke="#999"/>`);
  const step = ticks.length > 1 ? ticks[1]! - ticks[0]! : 1;
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  for (const t of ticks) {
    if (t < lo || t > hi) continue;
    out.push(`<line x1="${num(x0 + PANEL.left)}" x2="${num(x0 + PANEL.left + plotW)}" y1="${num(y(t))}" y2="${num(y(t))}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${num(x0 + PANEL.left - 5)}" y="${num(y(t) + 4)}" text-anchor="end">${t.toFixed(decimals)}</text>`);
  }
  for (let e = 1; e <= maxEpoch; e++) out.push(`<text x="${num(x(e))}" y="${num(PANEL.top + plotH + 15)}" text-anchor="middle">${e}</text>`);
  out.push(`<text x="${num(x0 + PANEL.left + plotW / 2)}" y="${num(PANEL.top + plotH + 32)}" text-anchor="middle">epoch</text>`);
  // The study's runs first, so ours are drawn on top where they meet; longer runs first, so
  // our 3-epoch run stays visible over the first epochs of the 10-epoch run that continues it.
  for (const s of [...series].sort((a, b) => Number(a.mine) - Number(b.mine) || b.epochs - a.epochs)) {
    const points = s.losses.flatMap((l, i) => (Number.isFinite(l) ? [[x(i + 1), y(l), `${s.name}, epoch ${i + 1}: ${l.toFixed(4)}`] as const] : []));
    if (points.length === 0) continue;
    const colour = COLOURS[s.epochs] ?? '#000';
    const dash = s.mine ? '' : ' stroke-dasharray="6 4"';
    out.push(`<polyline points="${points.map(([px, py]) => `${num(px)},${num(py)}`).join(' ')}" fill="none" stroke="${colour}" stroke-width="2"${dash}/>`);
    const style = s.mine ? `fill="${colour}"` : `fill="white" stroke="${colour}" stroke-width="1.5"`;
    for (const [px, py, label] of points) out.push(`<circle cx="${num(px)}" cy="${num(py)}" r="3" ${style}><title>${escape(label)}</title></circle>`);
  }
  return out.join('\n');
}

function legend(y0: number): string {
  const items = STUDY_EPOCHS.flatMap((epochs) => [
    { label: `ours, ${epochs} epochs`, colour: COLOURS[epochs]!, mine: true },
    { label: `published, ${epochs} epochs`, colour: COLOURS[epochs]!, mine: false },
  ]);
  return items
    .map((item, i) => {
      const x = 60 + i * 210;
      const dash = item.mine ? '' : ' stroke-dasharray="6 4"';
      const dot = item.mine ? `fill="${item.colour}"` : `fill="white" stroke="${item.colour}" stroke-width="1.5"`;
      return (
        `<line x1="${x}" x2="${x + 36}" y1="${y0}" y2="${y0}" stroke="${item.colour}" stroke-width="2"${dash}/>` +
        `<circle cx="${x + 18}" cy="${y0}" r="3" ${dot}/>` +
        `<text x="${x + 44}" y="${y0 + 4}">${escape(item.label)}</text>`
      );
    })
    .join('\n');
}

/**
 * Each experiment's mean training loss per epoch, ours against the study's, one panel per task
 * (the runs named `<task>-<epochs>`). `note` is printed under the panels (e.g. a quick run's warning).
 */
export function studyLossFigure(runs: StudyRun[], published: PublishedStudy, note?: string): string {
  const tasks = [...new Set(runs.map((r) => r.name.replace(/-\d+$/, '')))];
  const titles: Record<string, string> = { sentiment: 'IMDB sentiment', emotion: 'SemEval emotions', joy: 'joy only' };
  const width = tasks.length * PANEL.width;
  const height = PANEL.height + LEGEND_HEIGHT + (note ? 18 : 0);
  const panels = tasks.map((task, i) => {
    const series: Series[] = STUDY_EPOCHS.flatMap((epochs) => {
      const name = `${task}-${epochs}`;
      const ours = runs.find((r) => r.name === name);
      const theirs = published.experiments[name];
      return [
        ...(ours ? [{ name: `ours, ${name}`, epochs, mine: true, losses: ours.history.map((h) => h.loss) }] : []),
        ...(theirs ? [{ name: `published, ${name}`, epochs, mine: false, losses: theirs.meanLoss }] : []),
      ];
    });
    return panel(`${titles[task] ?? task}: mean training loss`, series, i * PANEL.width);
  });
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    ...panels,
    legend(PANEL.height + 20),
    ...(note ? [`<text x="${width / 2}" y="${PANEL.height + LEGEND_HEIGHT + 8}" text-anchor="middle" fill="#b00">${escape(note)}</text>`] : []),
    '</svg>',
    '',
  ].join('\n');
}
