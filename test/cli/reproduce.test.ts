// `gpt2-prompt reproduce` end to end with the shipped small model on a few rows of the real
// data: the report's structure, the published numbers beside ours, the loss figure, the
// composite head's rows equal to the single-task rows, and resuming from the kept prompt files.
// The numbers themselves mean nothing at this size.
import { describe, it, expect, beforeAll, afterAll, vi } from 'vitest';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../src/cli/main.ts';
import { numbersIn, publishedLeaves } from '../prompt/published-numbers.ts';

const DATA = new URL('../../../shared/data/', import.meta.url).pathname;
const LIMIT = 16;
const PUBLISHED = JSON.parse(readFileSync(new URL('../../data/study/published.json', import.meta.url), 'utf8'));

async function cli(...args: string[]): Promise<{ code: number; stderr: string }> {
  let stderr = '';
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => ((stderr += String(chunk)), true));
  try {
    return { code: await run(['node', 'gpt2-prompt', ...args]), stderr };
  } finally {
    err.mockRestore();
  }
}

/** The text under each heading (up to the next heading of any level), by heading path. */
function sections(markdown: string): Map<string, string> {
  const out = new Map<string, string>();
  const path: string[] = [];
  let key = '';
  for (const line of markdown.split('\n')) {
    const h = /^(#+) (.*)$/.exec(line);
    if (h) {
      path.length = h[1]!.length - 1;
      path.push(h[2]!);
      key = path.join(' > ');
      out.set(key, '');
    } else if (key) out.set(key, out.get(key)! + line + '\n');
  }
  return out;
}

let dir: string;
let report: string;
let figure: string;
let firstRun: { code: number; stderr: string };
const study = (extra: string[] = [], limit = LIMIT) =>
  cli('reproduce', '--imdb', join(DATA, 'imdb'), '--semeval', join(DATA, 'semeval2018-ec'), '--out', join(dir, 'study.md'), '--limit', String(limit), '--quiet', ...extra);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gpt2-prompt-study-'));
  firstRun = await study();
  report = existsSync(join(dir, 'study.md')) ? readFileSync(join(dir, 'study.md'), 'utf8') : '';
  figure = existsSync(join(dir, 'study.svg')) ? readFileSync(join(dir, 'study.svg'), 'utf8') : '';
}, 300_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('gpt2-prompt reproduce --limit', () => {
  it('runs every experiment in the study\'s order, keeping one prompt file each', () => {
    expect(firstRun.code, firstRun.stderr).toBe(0);
    const order = [...firstRun.stderr.matchAll(/\[(\d)\/6\] (\S+): (\d+) epochs on (\d+) examples/g)].map((m) => `${m[2]} ${m[3]} ${m[4]}`);
    expect(order).toEqual([`sentiment-3 3 ${LIMIT}`, `sentiment-10 10 ${LIMIT}`, `emotion-3 3 ${LIMIT}`, `emotion-10 10 ${LIMIT}`, `joy-3 3 ${LIMIT}`, `joy-10 10 ${LIMIT}`]);
    for (const name of ['sentiment-3', 'sentiment-10', 'emotion-3', 'emotion-10', 'joy-3', 'joy-10']) expect(existsSync(join(dir, 'study.runs', `${name}.gpt2p`))).toBe(true);
  });

  it('writes every section of the study, per epoch count', () => {
    const s = sections(report);
    const stage = ['IMDB sentiment (IMDB test)', 'SemEval-2018 E-c emotions (SemEval dev)', 'Composite head (sentiment + emotion), restricted to each task', 'Emotion of IMDB', 'Sentiment of SemEval', 'Joy only (SemEval dev)'];
    for (const epochs of [3, 10]) {
      for (const name of stage) expect(s.has(`gpt2-prompt: the study, rerun > After ${epochs} epochs > ${name}`), `${epochs} ${name}`).toBe(true);
    }
    expect(report).toContain(`**Quick run (--limit ${LIMIT})`);
    expect(report).toContain('the comparison with the published study is meaningless for a subset: it is shown for its layout only');
    const training = s.get('gpt2-prompt: the study, rerun > Training')!;
    expect(training).toMatch(/\| joy-10 \|( epoch \d+ \|){10}\n.*\n\| ours \|( \d\.\d{4} \|){10}\n\| published \| 0\.5273 \| 0\.4281 \|( \d\.\d{4} \|){8}\n\| Δ \|( [-+]?\d\.\d{4} \|){10}\n/);
    expect(training).toContain('](study.svg)');
    expect(s.get('gpt2-prompt: the study, rerun > Beside the published study')).toMatch(/10-epoch runs were fresh runs.*Ours continue the 3-epoch checkpoints/);
  });

  it('holds every number the study published, and an SVG beside it with every published and own loss', () => {
    const shown = numbersIn(report);
    expect(publishedLeaves(PUBLISHED).filter(([, v]) => !shown.has(v))).toEqual([]);
    expect(figure).toMatch(/^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    expect(figure).not.toMatch(/NaN|undefined/);
    for (const [name, e] of Object.entries(PUBLISHED.experiments as Record<string, { mean_loss: number[] }>)) {
      e.mean_loss.forEach((loss, i) => expect(figure).toContain(`<title>published, ${name}, epoch ${i + 1}: ${loss.toFixed(4)}</title>`));
      for (let i = 1; i <= e.mean_loss.length; i++) expect(figure).toMatch(new RegExp(`<title>ours, ${name}, epoch ${i}: \\d\\.\\d{4}</title>`));
    }
    expect(figure).toContain(`Quick run (--limit ${LIMIT})`);
  });

  it('the composite head restricted to each task gives exactly the task\'s own rows', () => {
    const s = sections(report);
    for (const epochs of [3, 10]) {
      const at = (name: string) => s.get(`gpt2-prompt: the study, rerun > After ${epochs} epochs > ${name}`)!;
      const composite = 'Composite head (sentiment + emotion), restricted to each task';
      expect(at(composite)).toContain('bit for bit: yes. Reports identical to the two sections above: yes.');
      expect(at(`${composite} > sentiment (IMDB test)`)).toBe(at('IMDB sentiment (IMDB test)'));
      expect(at(`${composite} > emotion (SemEval dev)`)).toBe(at('SemEval-2018 E-c emotions (SemEval dev)'));
      expect(at('IMDB sentiment (IMDB test)')).toMatch(new RegExp(`\\| accuracy \\| ( \\| ){6}\\d\\.\\d\\d \\| 0\\.9${epochs === 3 ? 2 : 3} \\| [-+]?\\d\\.\\d\\d \\| 16 \\| 25000 \\| -24984 \\|`));
      expect(at('SemEval-2018 E-c emotions (SemEval dev)')).toMatch(/\| samples avg \| (\d\.\d\d \| [\d.]+ \| [-+]?\d\.\d\d \| ){3}\d+ \| 2161 \| -\d+ \|/);
    }
  });

  it('sets the published Pearson r and p and the LSTM reference beside ours, n/a where the study printed none', () => {
    const s = sections(report);
    const emotion3 = s.get('gpt2-prompt: the study, rerun > After 3 epochs > SemEval-2018 E-c emotions (SemEval dev)')!;
    const cells = '[^|]+ \\| [^|]+ \\| [^|]+';
    expect(emotion3).toMatch(new RegExp(`\\| joy \\| ${cells} \\| 0\\.683822 \\| 3\\.851568e-123 \\| [^|]+ \\| 0\\.62 \\|`));
    expect(emotion3).toMatch(new RegExp(`\\| sadness \\| ${cells} \\| 0\\.446928 \\| 1\\.008134e-44 \\| [^|]+ \\| 0\\.63 \\|`));
    expect(emotion3).toMatch(new RegExp(`\\| love \\| ${cells} \\| n/a \\| n/a \\| n/a \\| n/a \\|`));
    expect(emotion3).toMatch(/\| joy \| \d\.\d\d \| 0\.82 \| [-+]?\d\.\d\d \| \d\.\d\d \| 0\.83 \| [-+]?\d\.\d\d \| \d\.\d\d \| 0\.83 \| [-+]?\d\.\d\d \| \d+ \| 400 \| -\d+ \|/);
    const emotion10 = s.get('gpt2-prompt: the study, rerun > After 10 epochs > SemEval-2018 E-c emotions (SemEval dev)')!;
    expect(emotion10).toMatch(new RegExp(`\\| anger \\| ${cells} \\| 0\\.607317 \\| 2\\.032116e-90 \\| [^|]+ \\| 0\\.48 \\|`));
    const joy10 = s.get('gpt2-prompt: the study, rerun > After 10 epochs > Joy only (SemEval dev)')!;
    expect(joy10).toMatch(/\| not-joy \| \d\.\d\d \| 0\.81 \| [-+]?\d\.\d\d \| \d\.\d\d \| 0\.92 \|/);
    expect(s.get('gpt2-prompt: the study, rerun > References the study compared with > SemEval-2018 E-c leaderboard')).toMatch(
      /\| SpanEmo \| 0\.713 \| 0\.578 \| 0\.601 \|[\s\S]*\| \*\*ours, 3 epochs\*\* \| \d\.\d{3} \| \d\.\d{3} \| n\/a \|/,
    );
  });

  it('cross-task tables: eleven emotions against good, sorted by r with undefined r last', () => {
    const s = sections(report);
    for (const name of ['Emotion of IMDB', 'Sentiment of SemEval']) {
      const rows = s.get(`gpt2-prompt: the study, rerun > After 3 epochs > ${name}`)!.split('\n').filter((l) => /^\| [a-z]+ \| (nan|-?\d)/.test(l));
      expect(rows.map((l) => l.split(' | ')[0]!.slice(2)).sort()).toEqual(['anger', 'anticipation', 'disgust', 'fear', 'joy', 'love', 'optimism', 'pessimism', 'sadness', 'surprise', 'trust']);
      const rs = rows.map((l) => l.split(' | ')[1]!);
      const defined = rs.filter((r) => r !== 'nan').map(Number);
      expect(defined).toEqual([...defined].sort((a, b) => b - a));
      expect(rs.slice(defined.length).every((r) => r === 'nan')).toBe(true);
      const published = PUBLISHED.cross_task[name === 'Emotion of IMDB' ? 'emotion_of_imdb' : 'sentiment_of_semeval'] as Record<string, number>;
      for (const row of rows) expect(Number(row.split(' | ')[4])).toBe(published[row.split(' | ')[0]!.slice(2)]);
      expect(s.get(`gpt2-prompt: the study, rerun > After 3 epochs > ${name}`)).toMatch(new RegExp(`Kendall's τ-b over the ${defined.length} labels with a defined r: \\*\\*(-?\\d\\.\\d{4}|undefined)\\*\\*`));
    }
  });

  it('keeps an existing report, resumes a stored partial run to the same report, and refuses a work directory of other settings', async () => {
    const again = await study();
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/study\.md already exists; pass --force/);

    // joy-10 as if interrupted after its third epoch.
    copyFileSync(join(dir, 'study.runs', 'joy-3.gpt2p'), join(dir, 'study.runs', 'joy-10.gpt2p'));
    const resumed = await study(['--force']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr.match(/\(done before\)/g)).toHaveLength(5);
    expect(resumed.stderr).toMatch(/joy-10: 10 epochs on 16 examples \(resuming after epoch 3\)/);
    const withoutDate = (md: string) => md.replace(/^\| date \|.*$/m, '');
    expect(withoutDate(readFileSync(join(dir, 'study.md'), 'utf8'))).toBe(withoutDate(report));
    expect(readFileSync(join(dir, 'study.svg'), 'utf8')).toBe(figure);

    // The figure is an output too: an existing one is kept unless --force.
    rmSync(join(dir, 'study.md'));
    const keepFigure = await study();
    expect(keepFigure.code).not.toBe(0);
    expect(keepFigure.stderr).toMatch(/study\.svg already exists; pass --force/);

    const other = await study(['--force'], 8);
    expect(other.code).not.toBe(0);
    expect(other.stderr).toMatch(/study\.runs holds a study run with other settings/);
  }, 300_000);
});
