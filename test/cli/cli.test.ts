import { describe, it, expect, beforeAll, afterAll, vi } from 'vitest';
import { mkdtempSync, writeFileSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../src/cli/main.ts';
import { decodeCheckpoint } from '../../src/prompt/checkpoint.ts';

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI in this process, capturing what it writes. */
async function cli(...args: string[]): Promise<Result> {
  let stdout = '';
  let stderr = '';
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => ((stdout += String(chunk)), true));
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => ((stderr += String(chunk)), true));
  try {
    const code = await run(['node', 'gpt2-prompt', ...args, ...(args.includes('--quiet') || args[0] === 'compose' || args[0] === 'weights' || args[0] === 'generate' ? [] : ['--quiet'])]);
    return { code, stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

let dir: string;
const positive = ['great', 'wonderful', 'superb', 'delightful', 'brilliant'];
const negative = ['awful', 'boring', 'dreadful', 'terrible', 'tedious'];

/** A small CSV with lexical cues; `quote` exercises quoting. */
function sentimentCsv(n: number, seed: number): string {
  const rows = ['text,label'];
  for (let i = 0; i < n; i++) {
    const good = (i + seed) % 2 === 0;
    const word = (good ? positive : negative)[(i * 7 + seed) % 5]!;
    rows.push(`"The film was ${word}, ""truly"" ${word}.",${good ? 'good' : 'bad'}`);
  }
  return rows.join('\n') + '\n';
}

function emotionTsv(n: number): string {
  const rows = ['ID\tTweet\tjoy\tanger\tfear'];
  for (let i = 0; i < n; i++) rows.push(`id${i}\tso ${i % 2 ? 'happy' : 'mad'} today ${i % 3 ? 'scared' : ''}\t${i % 2}\t${1 - (i % 2)}\t${i % 3 ? 1 : 0}`);
  return rows.join('\n') + '\n';
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'gpt2-prompt-cli-'));
  writeFileSync(join(dir, 'train.csv'), sentimentCsv(40, 0));
  writeFileSync(join(dir, 'val.csv'), sentimentCsv(16, 1));
  writeFileSync(join(dir, 'emotion.tsv'), emotionTsv(24));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const p = (name: string) => join(dir, name);

describe('gpt2-prompt train / eval / predict', () => {
  it('train --profile writes the trace of the third step and prints its summary', async () => {
    const r = await cli('train', '--data', p('train.csv'), '--epochs', '2', '--batch-size', '8', '--out', p('profiled.gpt2p'), '--profile', p('step.trace.json'));
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/profile of training step 3 .*; trace written to .*step\.trace\.json/);
    expect(r.stderr).toMatch(/kernel\s+calls\s+GPU ms\s+share/);
    const trace = JSON.parse(readFileSync(p('step.trace.json'), 'utf8')) as { traceEvents: { ph: string; pid: number; name: string }[] };
    const ops = new Set(trace.traceEvents.filter((e) => e.ph === 'X' && e.pid === 2).map((e) => e.name.split('.')[0]));
    expect([...ops].some((f) => f!.startsWith('matmul'))).toBe(true);
    for (const family of ['attention', 'layernorm', 'optim']) expect(ops, family).toContain(family);
  });

  it('trains, checkpoints every epoch, reports validation, and refuses to overwrite without --force', async () => {
    const r = await cli('train', '--data', p('train.csv'), '--val', p('val.csv'), '--epochs', '2', '--out', p('s.gpt2p'), '--name', 'sentiment');
    // The report on stdout (so `train > report.txt` keeps it), notices on stderr.
    expect(r.stdout).toContain('epoch 2/2: mean loss');
    expect(r.stdout).toMatch(/accuracy\s+\d\.\d\d\s+16/);
    expect(r.stderr).not.toMatch(/mean loss|accuracy/);
    expect(r.stderr).toContain('training sentiment');
    expect(r.code).toBe(0);
    const saved = decodeCheckpoint(readFileSync(p('s.gpt2p')), 's.gpt2p');
    expect(saved.tasks[0]!.labelNames).toEqual(['bad', 'good']);
    expect(saved.progress!.epochsCompleted).toBe(2);
    expect(saved.params.prompt.length).toBe(5 * 64);

    const before = readFileSync(p('s.gpt2p'));
    const again = await cli('train', '--data', p('train.csv'), '--out', p('s.gpt2p'));
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/s\.gpt2p already exists; pass --force/);
    expect(readFileSync(p('s.gpt2p')).equals(before)).toBe(true);
  });

  it('--resume continues from the last complete epoch with the saved optimizer state', async () => {
    const r = await cli('train', '--data', p('train.csv'), '--epochs', '3', '--out', p('s.gpt2p'), '--name', 'sentiment', '--resume');
    expect(r.stdout).toContain('epoch 3/3');
    expect(r.stdout).not.toContain('epoch 1/3');
    expect(r.code).toBe(0);
    const saved = decodeCheckpoint(readFileSync(p('s.gpt2p')), 's.gpt2p');
    expect(saved.progress!.epochsCompleted).toBe(3);
    expect(saved.progress!.history.map((h) => h.epoch)).toEqual([1, 2, 3]);
    expect(saved.progress!.optimizer.step).toBe(3 * 5);
  });

  it('eval --json gives the report and Pearson numbers of what predict predicts; predict gives labels and probabilities', async () => {
    const e = await cli('eval', '--prompt', p('s.gpt2p'), '--data', p('val.csv'), '--json');
    expect(e.code).toBe(0);
    const report = JSON.parse(e.stdout);
    expect(report.report['macro avg'].support).toBe(16);
    expect(report.pearson).toHaveLength(2);
    expect(Object.keys(report.pearson[0])).toEqual(['label', 'r', 'p', 'probabilityR']);
    // The numbers, computed here from predict's labels and the truth the data was written with:
    // a prompt that reads the cues (a higher learning rate), on data with three labels flipped,
    // so that neither the predictions nor the errors are constant.
    expect((await cli('train', '--data', p('train.csv'), '--epochs', '4', '--lr', '0.03', '--name', 'sentiment', '--out', p('sharp.gpt2p'))).code).toBe(0);
    const flipped = new Set([1, 4, 6]);
    const truth = Array.from({ length: 16 }, (_, i) => ((i + 1) % 2 === 0 !== flipped.has(i) ? 'good' : 'bad'));
    const rows = sentimentCsv(16, 1).trim().split('\n').slice(1);
    writeFileSync(p('noisy.csv'), ['text,label', ...rows.map((row, i) => row.replace(/,(good|bad)$/, `,${truth[i]}`))].join('\n') + '\n');
    const sharp = JSON.parse((await cli('eval', '--prompt', p('sharp.gpt2p'), '--data', p('noisy.csv'), '--json')).stdout);
    const predicted = (await cli('predict', '--prompt', p('sharp.gpt2p'), '--data', p('noisy.csv'))).stdout.trim().split('\n').map((l) => JSON.parse(l)['sentiment.label'] as string);
    expect(predicted).toHaveLength(16);
    expect(new Set(predicted).size).toBe(2);
    const count = (f: (i: number) => boolean) => truth.filter((_, i) => f(i)).length;
    const correct = count((i) => predicted[i] === truth[i]);
    expect(correct).toBeGreaterThan(0);
    expect(correct).toBeLessThan(16);
    expect(sharp.report.accuracy).toBeCloseTo(correct / 16, 12);
    for (const label of ['bad', 'good']) {
      const tp = count((i) => predicted[i] === label && truth[i] === label);
      const support = count((i) => truth[i] === label);
      expect(sharp.report[label].support).toBe(support);
      expect(sharp.report[label].recall).toBeCloseTo(tp / support, 12);
      expect(sharp.report[label].precision).toBeCloseTo(tp / count((i) => predicted[i] === label), 12);
    }
    // Pearson r of the 0/1 predicted `good` with the 0/1 truth, as scipy.stats.pearsonr computes it.
    const x = predicted.map((l): number => (l === 'good' ? 1 : 0));
    const y = truth.map((l): number => (l === 'good' ? 1 : 0));
    const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
    const [mx, my] = [mean(x), mean(y)];
    const sxy = x.reduce((a, xi, i) => a + (xi - mx) * (y[i]! - my), 0);
    const sxx = x.reduce((a, xi) => a + (xi - mx) ** 2, 0);
    const syy = y.reduce((a, yi) => a + (yi - my) ** 2, 0);
    expect(sharp.pearson.find((e: { label: string }) => e.label === 'good').r).toBeCloseTo(sxy / Math.sqrt(sxx * syy), 6);

    const text = await cli('eval', '--prompt', p('s.gpt2p'), '--data', p('val.csv'));
    expect(text.stdout).toMatch(/0\/1 predicted label.*\n +bad {2}r=.* p=.* r\(prob\)=/);

    const pr = await cli('predict', '--prompt', p('s.gpt2p'), '--text', 'A wonderful film.', '--text', '');
    expect(pr.code).toBe(0);
    const lines = pr.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines).toHaveLength(2);
    expect(['bad', 'good']).toContain(lines[0]['sentiment.label']);
    expect(lines[1]['sentiment.p(bad)'] + lines[1]['sentiment.p(good)']).toBeCloseTo(1, 5);

    const csv = await cli('predict', '--prompt', p('s.gpt2p'), '--data', p('val.csv'), '--format', 'csv', '--out', p('pred.csv'));
    expect(csv.code).toBe(0);
    expect(readFileSync(p('pred.csv'), 'utf8').split('\n')[0]).toBe('text,sentiment.label,sentiment.p(bad),sentiment.p(good)');
  });

  it('trains a multi-label task with pos_weight from the data', async () => {
    const r = await cli('train', '--data', p('emotion.tsv'), '--text-column', 'Tweet', '--label-columns', 'joy,anger,fear', '--epochs', '1', '--out', p('e.gpt2p'), '--name', 'emotion');
    expect(r.code).toBe(0);
    const saved = decodeCheckpoint(readFileSync(p('e.gpt2p')), 'e.gpt2p');
    expect(saved.tasks[0]).toMatchObject({ kind: 'multi', labelNames: ['joy', 'anger', 'fear'] });
    // 24 rows: joy 12/24, anger 12/24, fear 16/24 → negatives/positives 1, 1, 0.5
    expect(saved.training.losses).toEqual([{ classWeights: null, posWeight: [1, 1, 0.5] }]);
  });

  it('a composite head restricted to each task gives exactly that task\'s own results, from one encode', async () => {
    const c = await cli('compose', p('s.gpt2p'), p('e.gpt2p'), '--out', p('both.gpt2p'));
    expect(c.code).toBe(0);
    const texts = ['so happy today', 'A dreadful, tedious film.', ''];
    const args = texts.flatMap((t) => ['--text', t]);
    const both = (await cli('predict', '--prompt', p('both.gpt2p'), ...args)).stdout;
    const own = [(await cli('predict', '--prompt', p('s.gpt2p'), ...args)).stdout, (await cli('predict', '--prompt', p('e.gpt2p'), ...args)).stdout];
    const parse = (s: string) => s.trim().split('\n').map((l) => JSON.parse(l));
    const merged = parse(own[0]!).map((row, i) => ({ ...row, ...parse(own[1]!)[i] }));
    expect(parse(both)).toEqual(merged);
  });

  it('multi-task training (with f16 pasts): one shared prompt, a composite head, each task evaluated on its own columns', async () => {
    writeFileSync(
      p('tasks.json'),
      JSON.stringify([
        { name: 'sentiment', data: 'train.csv', val: 'val.csv', labels: ['bad', 'good'] },
        { name: 'emotion', data: 'emotion.tsv', textColumn: 'Tweet', labelColumns: ['joy', 'anger', 'fear'] },
      ]),
    );
    const r = await cli('train', '--tasks', p('tasks.json'), '--epochs', '1', '--out', p('multi.gpt2p'), '--cache-f16');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/accuracy\s+\d\.\d\d\s+16/);
    const saved = decodeCheckpoint(readFileSync(p('multi.gpt2p')), 'multi.gpt2p');
    expect(saved.training.cacheF16).toBe(true);
    expect(saved.tasks.map((t) => [t.name, t.start, t.group ?? 0])).toEqual([
      ['sentiment', 0, 0],
      ['emotion', 2, 0],
    ]);
    const e = await cli('eval', '--prompt', p('multi.gpt2p'), '--task', 'emotion', '--data', p('emotion.tsv'), '--text-column', 'Tweet', '--json');
    expect(e.code).toBe(0);
    expect(Object.keys(JSON.parse(e.stdout).report)).toEqual(expect.arrayContaining(['joy', 'anger', 'fear', 'micro avg', 'samples avg']));
  });

  it('correlate prints the Pearson r of one task\'s predictions with another dataset\'s labels, sorted', async () => {
    const r = await cli('correlate', '--prompt', p('e.gpt2p'), '--data', p('val.csv'), '--json');
    expect(r.code).toBe(0);
    const table = JSON.parse(r.stdout).correlations as { a: string; b: string; r: number | null }[];
    expect(table).toHaveLength(3 * 2);
    // r is null in JSON where a column is constant (an emotion never predicted): those come last.
    const rs = table.map((e) => e.r);
    const defined = rs.filter((x): x is number => x !== null);
    expect(rs).toEqual([...[...defined].sort((a, b) => b - a), ...rs.filter((x) => x === null)]);
    // The study's "Emotion of IMDB": each emotion against the true good indicator only.
    const good = JSON.parse((await cli('correlate', '--prompt', p('e.gpt2p'), '--data', p('val.csv'), '--against', 'good', '--json')).stdout);
    expect(good.n).toBe(16);
    expect(good.correlations.map((e: { b: string }) => e.b)).toEqual(['good', 'good', 'good']);
    const sentiment = await cli('correlate', '--prompt', p('s.gpt2p'), '--predicted', 'good', '--data', p('emotion.tsv'), '--text-column', 'Tweet', '--label-columns', 'joy,anger,fear');
    expect(sentiment.code).toBe(0);
    expect(sentiment.stdout.trim().split('\n').slice(2).map((l) => l.trim().split(/ +/).slice(0, 2).join(' ')).sort()).toEqual(['good anger', 'good fear', 'good joy']);
  });
});

describe('gpt2-prompt pretrain', () => {
  const texts = () => Array.from({ length: 30 }, (_, i) => JSON.stringify({ text: `Review ${i}: the film was ${i % 2 ? 'great fun' : 'a dull mess'}, ${'and so on '.repeat(i % 5)}.` })).join('\n') + '\n';
  const shape = ['--layers', '2', '--embd', '16', '--heads', '2', '--seq-len', '16', '--batch-size', '2', '--accumulation', '2', '--lr', '0.01'];
  // Warm-up past the end keeps the learning rate of each update independent of --steps.
  const run = (out: string, ...more: string[]) => cli('pretrain', '--data', p('lm.jsonl'), '--out', p(out), ...shape, '--warmup', '10', ...more);

  it('writes a checkpoint that --model reads, a log row per update, and refuses to overwrite without --force', async () => {
    writeFileSync(p('lm.jsonl'), texts());
    const r = await run('lm-a', '--steps', '4');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const log = readFileSync(p('lm-a/log.csv'), 'utf8').trim().split('\n');
    expect(log[0]).toBe('step,tokens,loss,lr,grad_norm,tokens_per_s,elapsed_s');
    expect(log.slice(1).map((l) => Number(l.split(',')[0]))).toEqual([1, 2, 3, 4]);
    expect(Number(log[1]!.split(',')[2])).toBeCloseTo(Math.log(50257), 0);
    expect(JSON.parse(readFileSync(p('lm-a/pretrain.json'), 'utf8'))).toMatchObject({ step: 4, tokensSeen: 4 * 2 * 2 * 16, data: { texts: 30 } });
    const g = await cli('generate', 'The film was', '--model', p('lm-a'), '--tokens', '3');
    expect(g.code).toBe(0);
    expect(g.stdout.startsWith('The film was')).toBe(true);
    const again = await run('lm-a', '--steps', '4');
    expect(again.stderr).toMatch(/lm-a\/config\.json already exists; pass --resume to continue that run or --force to start over/);
    expect(again.code).not.toBe(0);
  });

  it('--resume continues exactly: 2 updates, then the same command with --resume and --steps 4, equals 4 straight', async () => {
    expect((await run('lm-b', '--steps', '2')).code).toBe(0);
    const r = await run('lm-b', '--steps', '4', '--resume');
    expect(r.stderr).toBe('');
    expect(readFileSync(p('lm-b/model.safetensors')).equals(readFileSync(p('lm-a/model.safetensors')))).toBe(true);
    expect(readFileSync(p('lm-b/optimizer.safetensors')).equals(readFileSync(p('lm-a/optimizer.safetensors')))).toBe(true);
    const losses = (dir: string) => readFileSync(p(`${dir}/log.csv`), 'utf8').trim().split('\n').slice(1).map((l) => l.split(',').slice(0, 4).join());
    expect(losses('lm-b')).toEqual(losses('lm-a'));
  });

  it('a resumed run keeps its settings and data', async () => {
    const expectFail = async (pattern: RegExp, r: Promise<Result>) => {
      const { stderr, code } = await r;
      expect(stderr).toMatch(pattern);
      expect(stderr.trim().split('\n')).toHaveLength(1);
      expect(code).not.toBe(0);
    };
    await expectFail(/lr 0\.02 differs from the run's 0\.01/, cli('pretrain', '--out', p('lm-b'), '--steps', '6', '--lr', '0.02', '--resume'));
    await expectFail(/--embd 32: the run's model has 16/, cli('pretrain', '--out', p('lm-b'), '--steps', '6', '--embd', '32', '--resume'));
    await expectFail(/already taken 4 updates/, cli('pretrain', '--out', p('lm-b'), '--steps', '4', '--resume'));
    await expectFail(/nothing to resume/, cli('pretrain', '--out', p('lm-none'), '--steps', '4', '--resume'));
    writeFileSync(p('lm2.jsonl'), texts() + '{"text": "one more"}\n');
    await expectFail(/is not the run's/, cli('pretrain', '--data', p('lm2.jsonl'), '--out', p('lm-b'), '--steps', '6', '--resume'));
    await expectFail(/--steps N is required/, cli('pretrain', '--data', p('lm.jsonl'), '--out', p('lm-c')));
    expect(JSON.parse(readFileSync(p('lm-b/pretrain.json'), 'utf8')).step).toBe(4);
  });
});

describe('bad input: one clear message, non-zero exit, nothing damaged', () => {
  const expectError = async (pattern: RegExp, ...args: string[]) => {
    const r = await cli(...args);
    expect(r.stderr).toMatch(pattern);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.code).not.toBe(0);
  };

  it('missing data file', () => expectError(/nope\.csv/, 'train', '--data', p('nope.csv'), '--out', p('x.gpt2p')));
  it('unknown column', () => expectError(/column "txt".*(text|label)/, 'train', '--data', p('train.csv'), '--text-column', 'txt', '--out', p('x.gpt2p')));
  it('empty dataset', () => {
    writeFileSync(p('empty.csv'), 'text,label\n');
    return expectError(/empty\.csv/, 'train', '--data', p('empty.csv'), '--out', p('x.gpt2p'));
  });
  it('a label not in the label set', () => expectError(/row \d+.*"good".*not one of/, 'train', '--data', p('train.csv'), '--labels', 'bad,neutral', '--out', p('x.gpt2p')));
  it('a non-0/1 multi-label value', () => {
    writeFileSync(p('bad.tsv'), 'Tweet\tjoy\nhello\t2\n');
    return expectError(/bad\.tsv: row 1.*joy/, 'train', '--data', p('bad.tsv'), '--text-column', 'Tweet', '--label-columns', 'joy', '--out', p('x.gpt2p'));
  });
  it('a null text', () => {
    writeFileSync(p('null.jsonl'), '{"text": "fine", "label": "good"}\n{"text": null, "label": "bad"}\n');
    return expectError(/null\.jsonl: row 2.*text/, 'train', '--data', p('null.jsonl'), '--out', p('x.gpt2p'));
  });
  it('a prompt trained on another model', () =>
    expectError(/s\.gpt2p was trained on a different model/, 'eval', '--model', '../shared/fixtures/tiny-gpt2', '--prompt', p('s.gpt2p'), '--data', p('val.csv')));
  it('a corrupt or truncated checkpoint, which --resume does not damage', async () => {
    const bytes = readFileSync(p('s.gpt2p'));
    writeFileSync(p('cut.gpt2p'), bytes.subarray(0, bytes.length - 100));
    await expectError(/cut\.gpt2p: (not a readable|malformed)/, 'eval', '--prompt', p('cut.gpt2p'), '--data', p('val.csv'));
    await expectError(/cut\.gpt2p/, 'train', '--data', p('train.csv'), '--out', p('cut.gpt2p'), '--resume');
    expect(readFileSync(p('cut.gpt2p')).equals(bytes.subarray(0, bytes.length - 100))).toBe(true);
  });
  it('bad option values', () => expectError(/--batch-size must be a positive integer, got '0'/, 'train', '--data', p('train.csv'), '--batch-size', '0', '--out', p('x.gpt2p')));
  it('a flag given twice counts with its last value, not the two joined', () =>
    expectError(/--batch-size must be a positive integer, got '0'/, 'train', '--data', p('train.csv'), '--batch-size', '4', '--batch-size', '0', '--out', p('x.gpt2p')));
  it('a negative option value reaches its own check', () => expectError(/--lr must be a positive number, got '-1'/, 'train', '--data', p('train.csv'), '--lr', '-1', '--out', p('x.gpt2p')));
  it('parser errors: unknown option, missing value, missing argument', async () => {
    await expectError(/Unknown option `--learning-rate` \(see gpt2-prompt train --help\)/, 'train', '--learning-rate', '0.1');
    await expectError(/option `--epochs <n>` value is missing/, 'train', '--data', p('train.csv'), '--epochs');
    await expectError(/missing required args for command `generate <text>`/, 'generate');
    await expectError(/--temperature must be a number ≥ 0, got 'hot'/, 'generate', 'hi', '--temperature', 'hot');
  });
  it('an empty label cell in single-label data', () => {
    writeFileSync(p('blank.csv'), 'text,label\nfine,good\nmeh,\n');
    return expectError(/blank\.csv: row 2, column "label": empty label/, 'train', '--data', p('blank.csv'), '--out', p('x.gpt2p'));
  });
  it('correlate names a label the data does not have, before running', () =>
    expectError(/the data has no label 'great' \(it has bad, good\)/, 'correlate', '--prompt', p('e.gpt2p'), '--data', p('val.csv'), '--against', 'great'));
  // Each output mistake is caught before any work: a missing model and a missing data file are
  // given too, and the message is about the output, so nothing was loaded or computed first.
  it('an output file in a directory that does not exist', async () => {
    const missing = ['--model', p('no-model'), '--data', p('no-data.csv')];
    await expectError(/missing\/x\.gpt2p: directory .*missing does not exist/, 'train', ...missing, '--out', p('missing/x.gpt2p'));
    await expectError(/missing\/x\.jsonl: directory .*missing does not exist/, 'predict', ...missing, '--prompt', p('s.gpt2p'), '--out', p('missing/x.jsonl'));
    await expectError(/missing\/both\.gpt2p: directory .*missing does not exist/, 'compose', p('no.gpt2p'), '--out', p('missing/both.gpt2p'));
    await expectError(/missing\/study\.md: directory .*missing does not exist/, 'reproduce', '--model', p('no-model'), '--imdb', p('no-imdb'), '--semeval', p('no-semeval'), '--out', p('missing/study.md'));
  });
  it('an existing output file without --force', async () => {
    writeFileSync(p('old.jsonl'), 'keep me\n');
    await expectError(/old\.jsonl already exists; pass --force/, 'predict', '--model', p('no-model'), '--prompt', p('s.gpt2p'), '--text', 'hi', '--out', p('old.jsonl'));
    await expectError(/old\.jsonl already exists; pass --force/, 'compose', p('no.gpt2p'), '--out', p('old.jsonl'));
    expect(readFileSync(p('old.jsonl'), 'utf8')).toBe('keep me\n');
  });
  it('an output path that is a directory, or under a file', async () => {
    await expectError(/is a directory, not a file/, 'train', '--model', p('no-model'), '--data', p('no-data.csv'), '--out', dir);
    await expectError(/old\.jsonl is not a directory/, 'pretrain', '--data', p('no-data.csv'), '--out', p('old.jsonl/run'), '--steps', '2');
    await expectError(/old\.jsonl is not a directory/, 'reproduce', '--model', p('no-model'), '--imdb', p('no-imdb'), '--semeval', p('no-semeval'), '--work', p('old.jsonl/runs'), '--out', p('study.md'));
  });
  it('--resume of a file that is not there', () => expectError(/nowhere\.gpt2p not found: nothing to resume/, 'train', '--model', p('no-model'), '--data', p('no-data.csv'), '--out', p('nowhere.gpt2p'), '--resume'));
  it('nothing is written when training fails before the first epoch', () => {
    expect(existsSync(p('x.gpt2p'))).toBe(false);
  });
});
