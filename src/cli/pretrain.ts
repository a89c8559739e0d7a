// `gpt2-prompt pretrain`: trains a GPT-2 language model from random weights on a text column,
// with progress and a run directory (src/node/pretrain-run.ts) that --model reads and that
// `--resume` continues exactly where it stopped. Here: flags, the data file, and printing.
import { readTable } from '../node/dataset-file.ts';
import { DataError } from '../data/error.ts';
import { GPT2Tokenizer } from '../gpt2/tokenizer.ts';
import { parseConfig, type GPT2Config } from '../gpt2/config.ts';
import { DEFAULT_PRETRAIN_SETTINGS, type PretrainSettings } from '../gpt2/pretrain.ts';
import { openGpu, type Backend } from '../node/device.ts';
import { exists } from '../node/files.ts';
import { openRunDirectory, checkResumable, runPretraining } from '../node/pretrain-run.ts';
import { ProgressBar, formatDuration } from '../node/progress.ts';
import { positiveInt, positiveNumber, nonNegativeNumber, UsageError } from './common.ts';

export interface PretrainFlags {
  data?: string;
  textColumn?: string;
  out?: string;
  layers?: number | string;
  embd?: number | string;
  heads?: number | string;
  positions?: number | string;
  seqLen?: number | string;
  batchSize?: number | string;
  accumulation?: number | string;
  steps?: number | string;
  lr?: number | string;
  minLr?: number | string;
  warmup?: number | string;
  weightDecay?: number | string;
  clip?: number | string;
  seed?: number | string;
  saveEvery?: number | string;
  maxMinutes?: number | string;
  logEvery?: number | string;
  resume?: boolean;
  force?: boolean;
  backend?: string;
  quiet?: boolean;
}

/** The default model: small enough to learn something in an hour of CPU (see weights/imdb-gpt2). */
const DEFAULT_SHAPE = { layers: 4, embd: 128, heads: 4 };

function nonNegativeInt(value: unknown, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`${flag} must be a non-negative integer, got '${value}'`);
  return n;
}

/** The settings the flags ask for, each absent one taken from `base`. */
function settingsFromFlags(flags: PretrainFlags, base: Omit<PretrainSettings, 'steps'> & { steps?: number }): PretrainSettings {
  const pick = <T>(value: unknown, parse: (v: unknown, f: string) => T, flag: string, fallback: T | undefined): T => {
    if (value !== undefined) return parse(value, flag);
    if (fallback === undefined) throw new UsageError(`${flag} N is required (the number of optimizer updates in the run)`);
    return fallback;
  };
  return {
    seqLen: pick(flags.seqLen, positiveInt, '--seq-len', base.seqLen),
    batchSize: pick(flags.batchSize, positiveInt, '--batch-size', base.batchSize),
    accumulation: pick(flags.accumulation, positiveInt, '--accumulation', base.accumulation),
    steps: pick(flags.steps, positiveInt, '--steps', base.steps),
    lr: pick(flags.lr, positiveNumber, '--lr', base.lr),
    minLr: pick(flags.minLr, nonNegativeNumber, '--min-lr', base.minLr),
    warmupSteps: pick(flags.warmup, nonNegativeInt, '--warmup', base.warmupSteps),
    weightDecay: pick(flags.weightDecay, nonNegativeNumber, '--weight-decay', base.weightDecay),
    beta1: base.beta1,
    beta2: base.beta2,
    eps: base.eps,
    clipNorm: pick(flags.clip, nonNegativeNumber, '--clip', base.clipNorm),
    seed: pick(flags.seed, nonNegativeInt, '--seed', base.seed),
  };
}

/** The model shape the flags ask for; n_positions defaults to the sequence length. */
function configFromFlags(flags: PretrainFlags, seqLen: number): GPT2Config {
  const nEmbd = positiveInt(flags.embd ?? DEFAULT_SHAPE.embd, '--embd');
  const nHead = positiveInt(flags.heads ?? DEFAULT_SHAPE.heads, '--heads');
  if (nEmbd % nHead !== 0) throw new UsageError(`--embd ${nEmbd} is not divisible by --heads ${nHead}`);
  return parseConfig({
    vocab_size: new GPT2Tokenizer().vocabSize,
    n_positions: positiveInt(flags.positions ?? seqLen, '--positions'),
    n_embd: nEmbd,
    n_layer: positiveInt(flags.layers ?? DEFAULT_SHAPE.layers, '--layers'),
    n_head: nHead,
  });
}

/** The text column of a table file, as one token stream: each text then end-of-text. */
async function tokenStream(path: string, column: string, quiet: boolean): Promise<{ tokens: Uint32Array; texts: number }> {
  if (!(await exists(path))) throw new UsageError(`data file not found: ${path}`);
  const table = await readTable(path);
  if (!table.columns.includes(column)) throw new DataError(`${path}: no column '${column}' (columns: ${table.columns.join(', ')}); choose one with --text-column`);
  const tokenizer = new GPT2Tokenizer();
  const bar = quiet ? null : new ProgressBar({ label: 'tokenizing', total: table.rows.length });
  const parts: number[][] = [];
  let total = 0;
  table.rows.forEach((row, i) => {
    const text = row[column];
    if (typeof text !== 'string') throw new DataError(`${path}: row ${i + 1}, column '${column}': expected text, got ${JSON.stringify(text)}`);
    const ids = tokenizer.encode(text);
    ids.push(tokenizer.eosId);
    parts.push(ids);
    total += ids.length;
    bar?.update(i + 1);
  });
  bar?.done();
  const tokens = new Uint32Array(total);
  let offset = 0;
  for (const ids of parts) {
    tokens.set(ids, offset);
    offset += ids.length;
  }
  return { tokens, texts: table.rows.length };
}

export async function pretrainCommand(flags: PretrainFlags): Promise<void> {
  const out = flags.out ?? 'pretrained';
  const quiet = Boolean(flags.quiet);
  const say = (line: string) => {
    if (!quiet) process.stderr.write(`${line}\n`);
  };
  // Every check of the directory, the flags and the data's name comes before the data is read.
  const run = await openRunDirectory(out, { resume: Boolean(flags.resume), force: Boolean(flags.force) });
  const record = run.previous?.record ?? null;
  if (!record && !flags.data) throw new UsageError('--data FILE is required: a table with a text column to learn from (.parquet, .csv, .tsv, .jsonl)');
  const dataPath = flags.data ?? record!.data.path;
  const textColumn = flags.textColumn ?? record?.data.textColumn ?? 'text';
  const settings = settingsFromFlags(flags, record?.settings ?? DEFAULT_PRETRAIN_SETTINGS);
  if (run.previous) {
    checkResumable(run.previous.record, settings, { path: dataPath, textColumn }, run.paths.run);
    // The command that started the run may be repeated as it was; a different shape is refused.
    const { config } = run.previous;
    const shape = { layers: config.nLayer, embd: config.nEmbd, heads: config.nHead, positions: config.nPositions };
    for (const [flag, value] of Object.entries(shape) as [keyof typeof shape, number][]) {
      if (flags[flag] !== undefined && Number(flags[flag]) !== value) {
        throw new UsageError(`--${flag} ${flags[flag]}: the run's model has ${value} (${run.paths.config}); a resumed run keeps its shape`);
      }
    }
  }
  const config = run.previous?.config ?? configFromFlags(flags, settings.seqLen);
  if (settings.seqLen > config.nPositions) throw new UsageError(`--seq-len ${settings.seqLen} exceeds the model's n_positions of ${config.nPositions}`);
  const saveEverySeconds = 60 * (flags.saveEvery === undefined ? 5 : positiveNumber(flags.saveEvery, '--save-every'));
  const maxSeconds = flags.maxMinutes === undefined ? Infinity : 60 * positiveNumber(flags.maxMinutes, '--max-minutes');
  const logEvery = positiveInt(flags.logEvery ?? 10, '--log-every');

  const { tokens, texts } = await tokenStream(dataPath, textColumn, quiet);
  const gpu = await openGpu({ quiet, ...(flags.backend ? { backend: flags.backend as Backend } : {}) });
  // Progress lines average the loss and rate over the updates since the last line.
  let windowStart = performance.now();
  let windowTokens = 0;
  let lossSum = 0;
  let lossCount = 0;
  try {
    const result = await runPretraining(gpu, run, {
      settings,
      config,
      tokens,
      data: { path: dataPath, textColumn, texts, tokens: tokens.length },
      saveEverySeconds,
      maxSeconds,
      onStart: ({ parameters, windows, tokensPerStep, startStep }) => {
        say(
          `${record ? `resuming ${out} at update ${record.step}` : `pretraining into ${out}`}: GPT-2 ${config.nLayer} layers × ${config.nEmbd} wide, ${config.nHead} heads, ` +
            `${config.nPositions} positions, ${(parameters / 1e6).toFixed(2)}M parameters; ${texts} texts, ${tokens.length} tokens, ${windows} windows of ${settings.seqLen}; ` +
            `${settings.steps} updates of ${tokensPerStep} tokens on ${gpu.adapterName}`,
        );
        if (startStep < settings.steps) say('first update compiles every kernel it uses (about a minute on a software adapter, the first time on a machine)');
        windowStart = performance.now();
      },
      onUpdate: (r, progress) => {
        windowTokens += r.tokens;
        lossSum += r.loss;
        lossCount++;
        if (r.step % logEvery !== 0 && r.step !== settings.steps && r.step !== 1) return;
        const rate = windowTokens / ((performance.now() - windowStart) / 1000);
        const eta = ((settings.steps - r.step) * progress.tokensPerStep) / rate;
        say(
          `update ${r.step}/${settings.steps}  loss ${(lossSum / lossCount).toFixed(4)}  lr ${r.lr.toExponential(2)}  |g| ${r.gradNorm.toFixed(3)}  ` +
            `${rate.toFixed(0)} tok/s  ${progress.tokensSeen} tokens  ${formatDuration(progress.elapsed)}  ETA ${formatDuration(eta)}`,
        );
        windowStart = performance.now();
        windowTokens = 0;
        lossSum = 0;
        lossCount = 0;
      },
      onNotice: say,
    });
    const stopped = result.stopped === 'time limit reached' ? `--max-minutes ${flags.maxMinutes} reached` : result.stopped;
    // The result on stdout; with --resume the same command continues a stopped run.
    process.stdout.write(
      `${stopped ? `stopped (${stopped})` : 'done'}: update ${result.step}/${settings.steps}, ${result.tokensSeen} tokens seen, ${formatDuration(result.elapsed)} in all; saved ${out}\n` +
        (stopped ? 'continue with the same command plus --resume\n' : ''),
    );
  } finally {
    gpu.destroy();
  }
}
