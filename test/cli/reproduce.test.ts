// `gpt2-prompt reproduce` end to end with the shipped small model on a few rows of the real
// data: the report's structure, the composite head's rows equal to the single-task rows, and
// resuming from the kept prompt files. The numbers themselves mean nothing at this size.
import { describe, it, expect, beforeAll, afterAll, vi } from 'vitest';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../src/cli/main.ts';

const DATA = new URL('../../../shared/data/', import.meta.url).pathname;
const LIMIT = 16;

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
let firstRun: { code: number; stderr: string };
const study = (extra: string[] = [], limit = LIMIT) =>
  cli('reproduce', '--imdb', join(DATA, 'imdb'), '--semeval', join(DATA, 'semeval2018-ec'), '--out', join(dir, 'study.md'), '--limit', String(limit), '--quiet', ...extra);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gpt2-prompt-study-'));
  firstRun = await study();
  report = existsSync(join(dir, 'study.md')) ? readFileSync(join(dir, 'study.md'), 'utf8') : '';
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
    expect(s.get('gpt2-prompt: the study, rerun > Training')).toMatch(/\| joy-10 \| 10 \| (\d\.\d{4}, ){9}\d\.\d{4} \|/);
  });

  it('the composite head restricted to each task gives exactly the task\'s own rows', () => {
    const s = sections(report);
    for (const epochs of [3, 10]) {
      const at = (name: string) => s.get(`gpt2-prompt: the study, rerun > After ${epochs} epochs > ${name}`)!;
      const composite = 'Composite head (sentiment + emotion), restricted to each task';
      expect(at(composite)).toContain('bit for bit: yes. Reports identical to the two sections above: yes.');
      expect(at(`${composite} > sentiment (IMDB test)`)).toBe(at('IMDB sentiment (IMDB test)'));
      expect(at(`${composite} > emotion (SemEval dev)`)).toBe(at('SemEval-2018 E-c emotions (SemEval dev)'));
      expect(at('IMDB sentiment (IMDB test)')).toMatch(/accuracy +\d\.\d\d +16\n/);
      expect(at('SemEval-2018 E-c emotions (SemEval dev)')).toMatch(/samples avg/);
    }
  });

  it('sets the published numbers beside ours, n/a where none is known', () => {
    const s = sections(report);
    const emotion3 = s.get('gpt2-prompt: the study, rerun > After 3 epochs > SemEval-2018 E-c emotions (SemEval dev)')!;
    expect(emotion3).toMatch(/\| joy \| [^|]+ \| [^|]+ \| [^|]+ \| 0\.68 \| 0\.62 \|/);
    expect(emotion3).toMatch(/\| sadness \| [^|]+ \| [^|]+ \| [^|]+ \| 0\.45 \| 0\.64 \|/);
    expect(emotion3).toMatch(/\| love \| [^|]+ \| [^|]+ \| [^|]+ \| n\/a \| n\/a \|/);
    const emotion10 = s.get('gpt2-prompt: the study, rerun > After 10 epochs > SemEval-2018 E-c emotions (SemEval dev)')!;
    expect(emotion10).toMatch(/\| anger \| [^|]+ \| [^|]+ \| [^|]+ \| n\/a \| 0\.50 \|/);
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

    const other = await study(['--force'], 8);
    expect(other.code).not.toBe(0);
    expect(other.stderr).toMatch(/study\.runs holds a study run with other settings/);
  }, 300_000);
});
