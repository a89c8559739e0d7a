// `gpt2-prompt pretrain`: trains a GPT-2 language model from random weights on a text column,
// with progress, a loss log, and a checkpoint directory that --model reads (config.json +
// model.safetensors) and that `--resume` continues exactly where it stopped.
//
// The directory: config.json, model.safetensors (F32), optimizer.safetensors (AdamW moments),
// pretrain.json (settings, data, step: written last, so it names a complete checkpoint) and
// log.csv (one row per update).
import { readFile, mkdir, appendFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { readTable } from '../node/dataset-file.ts';
import { DataError } from '../data/error.ts';
import { GPT2 } from '../gpt2/model.ts';
import { GPT2Tokenizer } from '../gpt2/tokenizer.ts';
import { parseConfig, type GPT2Config } from '../gpt2/config.ts';
import { encodeModel, loadCheckpoint } from '../gpt2/checkpoint.ts';
import {
  Pretrainer, TokenWindows, initialWeights, encodeOptimizerState, decodeOptimizerState, DEFAULT_PRETRAIN_SETTINGS,
  type PretrainSettings, type StepResult,
} from '../gpt2/pretrain.ts';
import { openGpu, type Backend } from '../node/device.ts';
import { writeFileAtomic, exists, OutputExistsError } from '../node/files.ts';
import { ProgressBar, formatDuration } from '../node/progress.ts';
import { positiveInt, positiveNumber, UsageError } from './common.ts';

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

const RUN_FORMAT = 'gpt2-prompt-pretrain';
const FILES = { config: 'config.json', model: 'model.safetensors', optimizer: 'optimizer.safetensors', run: 'pretrain.json', log: 'log.csv' };
const LOG_HEADER = 'step,tokens,loss,lr,grad_norm,tokens_per_s,elapsed_s\n';

/** pretrain.json: everything needed to continue the run besides the weights and moments. */
interface RunRecord {
  format: typeof RUN_FORMAT;
  version: 1;
  step: number;
  tokensSeen: number;
  elapsedSeconds: number;
  settings: PretrainSettings;
  data: { path: string; textColumn: string; texts: number; tokens: number };
}

function nonNegative(value: unknown, flag: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new UsageError(`${flag} must be a non-negative number, got '${value}'`);
  return n;
}

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
    minLr: pick(flags.minLr, nonNegative, '--min-lr', base.minLr),
    warmupSteps: pick(flags.warmup, nonNegativeInt, '--warmup', base.warmupSteps),
    weightDecay: pick(flags.weightDecay, nonNegative, '--weight-decay', base.weightDecay),
    beta1: base.beta1,
    beta2: base.beta2,
    eps: base.eps,
    clipNorm: pick(flags.clip, nonNegative, '--clip', base.clipNorm),
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

async function readRunRecord(path: string): Promise<RunRecord> {
  let record: RunRecord;
  try {
    record = JSON.parse(await readFile(path, 'utf8')) as RunRecord;
  } catch (e) {
    throw new UsageError(`${path}: not a readable pretraining record (${(e as Error).message})`);
  }
  if (record?.format !== RUN_FORMAT || record.version !== 1) throw new UsageError(`${path}: not a ${RUN_FORMAT} version 1 record`);
  return record;
}

/** A resumed run keeps its settings; a flag may repeat one, and only --steps may change (to extend the schedule). */
function resumedSettings(flags: PretrainFlags, record: RunRecord, runPath: string): PretrainSettings {
  const stored = record.settings;
  const asked = settingsFromFlags(flags, stored);
  for (const key of Object.keys(stored) as (keyof PretrainSettings)[]) {
    if (key !== 'steps' && asked[key] !== stored[key]) {
      throw new UsageError(`${key} ${asked[key]} differs from the run's ${stored[key]} (${runPath}); a resumed run keeps its settings (only --steps may change)`);
    }
  }
  if (asked.steps <= record.step) throw new UsageError(`--steps ${asked.steps}: the run has already taken ${record.step} updates; give more to continue`);
  return asked;
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

function logRow(r: StepResult, tokensSeen: number, rate: number, elapsed: number): string {
  return `${r.step},${tokensSeen},${r.loss.toFixed(6)},${r.lr.toExponential(6)},${r.gradNorm.toFixed(6)},${rate.toFixed(1)},${elapsed.toFixed(1)}\n`;
}

export async function pretrainCommand(flags: PretrainFlags): Promise<void> {
  const out = flags.out ?? 'pretrained';
  const paths = Object.fromEntries(Object.entries(FILES).map(([k, f]) => [k, join(out, f)])) as typeof FILES;
  const resume = Boolean(flags.resume);
  const quiet = Boolean(flags.quiet);
  const say = (line: string) => {
    if (!quiet) process.stderr.write(`${line}\n`);
  };

  let record: RunRecord | null = null;
  let settings: PretrainSettings;
  let dataPath: string;
  let textColumn: string;
  if (resume) {
    if (!(await exists(paths.run))) throw new UsageError(`${paths.run} not found: nothing to resume in ${out} (drop --resume to start a run)`);
    record = await readRunRecord(paths.run);
    settings = resumedSettings(flags, record, paths.run);
    dataPath = flags.data ?? record.data.path;
    textColumn = flags.textColumn ?? record.data.textColumn;
    if (resolve(dataPath) !== resolve(record.data.path) || textColumn !== record.data.textColumn) {
      throw new UsageError(`--data ${dataPath} (column ${textColumn}) is not the run's ${record.data.path} (column ${record.data.textColumn})`);
    }
  } else {
    if (!flags.data) throw new UsageError('--data FILE is required: a table with a text column to learn from (.parquet, .csv, .tsv, .jsonl)');
    dataPath = flags.data;
    textColumn = flags.textColumn ?? 'text';
    settings = settingsFromFlags(flags, DEFAULT_PRETRAIN_SETTINGS);
    if (!flags.force) {
      for (const p of Object.values(paths)) {
        if (await exists(p)) throw new OutputExistsError(`${p} already exists; pass --resume to continue that run or --force to start over`);
      }
    }
  }

  const configText = record ? await readFile(paths.config, 'utf8') : null;
  const config = configText ? parseConfig(configText, paths.config) : configFromFlags(flags, settings.seqLen);
  if (configText) {
    // The command that started the run may be repeated as it was; a different shape is refused.
    const shape = { layers: config.nLayer, embd: config.nEmbd, heads: config.nHead, positions: config.nPositions };
    for (const [flag, value] of Object.entries(shape) as [keyof typeof shape, number][]) {
      if (flags[flag] !== undefined && Number(flags[flag]) !== value) {
        throw new UsageError(`--${flag} ${flags[flag]}: the run's model has ${value} (${paths.config}); a resumed run keeps its shape`);
      }
    }
  }
  if (settings.seqLen > config.nPositions) throw new UsageError(`--seq-len ${settings.seqLen} exceeds the model's n_positions of ${config.nPositions}`);
  const { tokens, texts } = await tokenStream(dataPath, textColumn, quiet);
  if (record && tokens.length !== record.data.tokens) {
    throw new UsageError(`${dataPath} now makes ${tokens.length} tokens, the run's data made ${record.data.tokens}: it changed, so the run cannot continue exactly`);
  }
  const windows = new TokenWindows(tokens, settings.seqLen, settings.seed);

  const weights = configText ? loadCheckpoint(configText, new Uint8Array(await readFile(paths.model)), paths.model).tensors : initialWeights(config, settings.seed);
  const gpu = await openGpu({ quiet, ...(flags.backend ? { backend: flags.backend as Backend } : {}) });
  const model = new GPT2(gpu, config, weights);
  const trainer = new Pretrainer(model, windows, settings);
  const names = model.parameters().map((p) => p.name);
  try {
    let tokensSeen = 0;
    let elapsedBefore = 0;
    if (record) {
      const state = decodeOptimizerState(new Uint8Array(await readFile(paths.optimizer)), model.parameters().map((p) => ({ name: p.name, size: p.tensor.size })), paths.optimizer);
      if (state.step !== record.step) throw new UsageError(`${paths.optimizer} is at step ${state.step} but ${paths.run} at ${record.step}: the last save was interrupted; start over with --force`);
      trainer.loadState(state);
      tokensSeen = record.tokensSeen;
      elapsedBefore = record.elapsedSeconds;
      // Rows past the checkpoint were computed again from it: drop the old ones.
      const logText = (await exists(paths.log)) ? await readFile(paths.log, 'utf8') : LOG_HEADER;
      const kept = logText.split('\n').filter((line, i) => i === 0 || (line !== '' && Number(line.split(',')[0]) <= record!.step));
      await writeFileAtomic(paths.log, `${kept.join('\n')}\n`, { overwrite: true });
    } else {
      await mkdir(out, { recursive: true });
      await writeFileAtomic(paths.log, LOG_HEADER, { overwrite: true });
    }

    const parameterCount = model.parameters().reduce((n, p) => n + p.tensor.size, 0);
    say(
      `${record ? `resuming ${out} at update ${record.step}` : `pretraining into ${out}`}: GPT-2 ${config.nLayer} layers × ${config.nEmbd} wide, ${config.nHead} heads, ` +
        `${config.nPositions} positions, ${(parameterCount / 1e6).toFixed(2)}M parameters; ${texts} texts, ${tokens.length} tokens, ${windows.count} windows of ${settings.seqLen}; ` +
        `${settings.steps} updates of ${trainer.tokensPerStep} tokens on ${gpu.adapterName}`,
    );

    const started = performance.now();
    const elapsed = () => elapsedBefore + (performance.now() - started) / 1000;
    const save = async () => {
      const step = trainer.step;
      const { configJson, safetensors } = encodeModel(config, await model.hostWeights(), 'F32', { step: String(step) });
      const optimizer = encodeOptimizerState(names, await trainer.state());
      await writeFileAtomic(paths.config, configJson, { overwrite: true });
      await writeFileAtomic(paths.model, safetensors, { overwrite: true });
      await writeFileAtomic(paths.optimizer, optimizer, { overwrite: true });
      const next: RunRecord = {
        format: RUN_FORMAT, version: 1, step, tokensSeen, elapsedSeconds: Math.round(elapsed() * 10) / 10, settings,
        data: { path: dataPath, textColumn, texts, tokens: tokens.length },
      };
      await writeFileAtomic(paths.run, `${JSON.stringify(next, null, 2)}\n`, { overwrite: true });
    };
    if (!record) await save();

    let stop = '';
    const onSignal = () => {
      if (stop) process.exit(130);
      stop = 'interrupted';
      say('stopping after this update (interrupt again to quit without saving)');
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    const saveEverySeconds = 60 * (flags.saveEvery === undefined ? 5 : positiveNumber(flags.saveEvery, '--save-every'));
    const maxSeconds = flags.maxMinutes === undefined ? Infinity : 60 * positiveNumber(flags.maxMinutes, '--max-minutes');
    const logEvery = positiveInt(flags.logEvery ?? 10, '--log-every');
    let lastSave = performance.now();
    let windowStart = performance.now();
    let windowTokens = 0;
    let lossSum = 0;
    let lossCount = 0;
    if (trainer.step < settings.steps) say('first update compiles every kernel it uses (about a minute on a software adapter, the first time on a machine)');
    try {
      while (trainer.step < settings.steps && !stop) {
        const t0 = performance.now();
        const r = await trainer.trainStep();
        const seconds = (performance.now() - t0) / 1000;
        tokensSeen += r.tokens;
        windowTokens += r.tokens;
        lossSum += r.loss;
        lossCount++;
        await appendFile(paths.log, logRow(r, tokensSeen, r.tokens / seconds, elapsed()));
        if (!Number.isFinite(r.loss)) throw new Error(`update ${r.step}: the loss is ${r.loss}; lower --lr (the last checkpoint is intact)`);
        if ((r.step % logEvery === 0 || r.step === settings.steps || r.step === 1)) {
          const rate = windowTokens / ((performance.now() - windowStart) / 1000);
          const eta = ((settings.steps - r.step) * trainer.tokensPerStep) / rate;
          say(
            `update ${r.step}/${settings.steps}  loss ${(lossSum / lossCount).toFixed(4)}  lr ${r.lr.toExponential(2)}  |g| ${r.gradNorm.toFixed(3)}  ` +
              `${rate.toFixed(0)} tok/s  ${tokensSeen} tokens  ${formatDuration(elapsed())}  ETA ${formatDuration(eta)}`,
          );
          windowStart = performance.now();
          windowTokens = 0;
          lossSum = 0;
          lossCount = 0;
        }
        if (elapsed() - elapsedBefore >= maxSeconds) stop = `--max-minutes ${flags.maxMinutes} reached`;
        if ((performance.now() - lastSave) / 1000 >= saveEverySeconds && !stop && trainer.step < settings.steps) {
          await save();
          lastSave = performance.now();
        }
      }
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    await save();
    const done = trainer.step >= settings.steps;
    say(
      `${done ? 'done' : `stopped (${stop})`}: update ${trainer.step}/${settings.steps}, ${tokensSeen} tokens seen, ${formatDuration(elapsed())} in all; saved ${out}` +
        (done ? '' : `\ncontinue with the same command plus --resume`),
    );
  } finally {
    trainer.dispose();
    model.dispose();
    gpu.destroy();
  }
}
