// A pretraining run in a directory on disk: what `gpt2-prompt pretrain` writes and `--resume`
// continues exactly where it stopped, bit for bit the run that never stopped.
//
// The directory: config.json, model.safetensors (F32) — together what `--model` reads —,
// optimizer.safetensors (AdamW moments), pretrain.json (settings, data, step: written last, so
// it names a complete checkpoint) and log.csv (one row per update).
import { readFile, mkdir, appendFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Gpu } from '../gpu/context.ts';
import { GPT2, loadGPT2 } from '../gpt2/model.ts';
import { parseConfig, hfConfigText, type GPT2Config } from '../gpt2/config.ts';
import { saveSafetensors } from '../nn/state-dict.ts';
import { Pretrainer, TokenWindows, initialWeights, encodeOptimizerState, decodeOptimizerState, type PretrainSettings, type StepResult } from '../gpt2/pretrain.ts';
import { writeFileAtomic, exists, checkOutputDirectory, OutputExistsError } from './files.ts';

const RUN_FORMAT = 'gpt2-prompt-pretrain';
const FILES = { config: 'config.json', model: 'model.safetensors', optimizer: 'optimizer.safetensors', run: 'pretrain.json', log: 'log.csv' };
const LOG_HEADER = 'step,tokens,loss,lr,grad_norm,tokens_per_s,elapsed_s\n';

/** A run directory that cannot be started or continued as asked; the message says why. */
export class PretrainRunError extends Error {
  override name = 'PretrainRunError';
}

/** The texts a run learns from. */
export interface RunData {
  path: string;
  textColumn: string;
  texts: number;
  tokens: number;
}

/** pretrain.json: everything needed to continue the run besides the weights and moments. */
export interface RunRecord {
  format: typeof RUN_FORMAT;
  version: 1;
  step: number;
  tokensSeen: number;
  elapsedSeconds: number;
  settings: PretrainSettings;
  data: RunData;
}

/** A run directory checked before any work: a new run's, or the checkpoint of one to continue. */
export interface RunDirectory {
  dir: string;
  paths: typeof FILES;
  /** The run to continue (null: a new run). */
  previous: { record: RunRecord; config: GPT2Config; configJson: string } | null;
}

/**
 * Checks `dir` for a run, before anything is read or computed: with `resume`, it must hold a
 * complete checkpoint; otherwise it must be writable (or makeable) and hold no run, unless `force`.
 */
export async function openRunDirectory(dir: string, options: { resume?: boolean; force?: boolean } = {}): Promise<RunDirectory> {
  const paths = Object.fromEntries(Object.entries(FILES).map(([k, f]) => [k, join(dir, f)])) as typeof FILES;
  await checkOutputDirectory(dir);
  if (!options.resume) {
    if (!options.force) {
      for (const p of Object.values(paths)) {
        if (await exists(p)) throw new OutputExistsError(`${p} already exists; pass --resume to continue that run or --force to start over`);
      }
    }
    return { dir, paths, previous: null };
  }
  if (!(await exists(paths.run))) throw new PretrainRunError(`${paths.run} not found: nothing to resume in ${dir} (drop --resume to start a run)`);
  let record: RunRecord;
  try {
    record = JSON.parse(await readFile(paths.run, 'utf8')) as RunRecord;
  } catch (e) {
    throw new PretrainRunError(`${paths.run}: not a readable pretraining record (${(e as Error).message})`);
  }
  if (record?.format !== RUN_FORMAT || record.version !== 1) throw new PretrainRunError(`${paths.run}: not a ${RUN_FORMAT} version 1 record`);
  const configJson = await readFile(paths.config, 'utf8');
  return { dir, paths, previous: { record, config: parseConfig(configJson, paths.config), configJson } };
}

/**
 * A resumed run keeps its settings (`asked` may repeat them; only `steps` may grow, to extend
 * the schedule) and its data, checked before the data is tokenized.
 */
export function checkResumable(record: RunRecord, asked: PretrainSettings, data: { path: string; textColumn: string }, runPath: string): void {
  const stored = record.settings;
  for (const key of Object.keys(stored) as (keyof PretrainSettings)[]) {
    if (key !== 'steps' && asked[key] !== stored[key]) {
      throw new PretrainRunError(`${key} ${asked[key]} differs from the run's ${stored[key]} (${runPath}); a resumed run keeps its settings (only --steps may change)`);
    }
  }
  if (asked.steps <= record.step) throw new PretrainRunError(`--steps ${asked.steps}: the run has already taken ${record.step} updates; give more to continue`);
  if (resolve(data.path) !== resolve(record.data.path) || data.textColumn !== record.data.textColumn) {
    throw new PretrainRunError(`--data ${data.path} (column ${data.textColumn}) is not the run's ${record.data.path} (column ${record.data.textColumn})`);
  }
}

export interface RunProgress {
  /** Tokens trained on since the run began (across resumes). */
  tokensSeen: number;
  /** Seconds of training since the run began (across resumes). */
  elapsed: number;
  /** This update's tokens per second. */
  rate: number;
  tokensPerStep: number;
}

export interface PretrainRunOptions {
  settings: PretrainSettings;
  /** The new run's model shape (a resumed run keeps its own). */
  config: GPT2Config;
  tokens: Uint32Array;
  data: RunData;
  /** Seconds between checkpoints (also saved at the end, at maxSeconds and on SIGINT/SIGTERM). */
  saveEverySeconds: number;
  /** Stop (and save) after this many seconds of this session. */
  maxSeconds?: number;
  /** Called before the first update, with the run's size. */
  onStart?: (info: { parameters: number; windows: number; tokensPerStep: number; startStep: number; config: GPT2Config }) => void;
  onUpdate?: (result: StepResult, progress: RunProgress) => void;
  /** Notices: a signal was received. */
  onNotice?: (line: string) => void;
}

export interface PretrainRunResult {
  step: number;
  tokensSeen: number;
  elapsed: number;
  /** Why the run stopped before its last update ('' when it finished). */
  stopped: string;
}

/**
 * Runs (or continues) the pretraining in `run`'s directory: checkpoints every saveEverySeconds
 * and at the end; the first SIGINT or SIGTERM stops after the current update and saves, a
 * second quits without saving (exit 130).
 */
export async function runPretraining(gpu: Gpu, run: RunDirectory, options: PretrainRunOptions): Promise<PretrainRunResult> {
  const { paths, previous } = run;
  const { settings, tokens, data } = options;
  if (previous && tokens.length !== previous.record.data.tokens) {
    throw new PretrainRunError(`${data.path} now makes ${tokens.length} tokens, the run's data made ${previous.record.data.tokens}: it changed, so the run cannot continue exactly`);
  }
  const config = previous?.config ?? options.config;
  const windows = new TokenWindows(tokens, settings.seqLen, settings.seed);
  const model = previous ? (await loadGPT2(gpu, previous.configJson, new Uint8Array(await readFile(paths.model)), paths.model)).model : new GPT2(gpu, config, initialWeights(config, settings.seed));
  const trainer = new Pretrainer(model, windows, settings);
  const named = [...model.namedParameters()].map(([name, t]) => ({ name, size: t.size }));
  try {
    let tokensSeen = 0;
    let elapsedBefore = 0;
    if (previous) {
      const { record } = previous;
      const state = decodeOptimizerState(new Uint8Array(await readFile(paths.optimizer)), named, paths.optimizer);
      if (state.step !== record.step) throw new PretrainRunError(`${paths.optimizer} is at step ${state.step} but ${paths.run} at ${record.step}: the last save was interrupted; start over with --force`);
      trainer.loadState(state);
      tokensSeen = record.tokensSeen;
      elapsedBefore = record.elapsedSeconds;
      // Rows past the checkpoint were computed again from it: drop the old ones.
      const logText = (await exists(paths.log)) ? await readFile(paths.log, 'utf8') : LOG_HEADER;
      const kept = logText.split('\n').filter((line, i) => i === 0 || (line !== '' && Number(line.split(',')[0]) <= record.step));
      await writeFileAtomic(paths.log, `${kept.join('\n')}\n`, { overwrite: true });
    } else {
      await mkdir(run.dir, { recursive: true });
      await writeFileAtomic(paths.log, LOG_HEADER, { overwrite: true });
    }

    const started = performance.now();
    const elapsed = () => elapsedBefore + (performance.now() - started) / 1000;
    const save = async () => {
      const step = trainer.step;
      // The state dict is GPT2Model's, in transformers' layout: the directory is what --model reads.
      const safetensors = await saveSafetensors(model.stateDict(), { metadata: { format: 'pt', step: String(step) } });
      const optimizer = encodeOptimizerState(named.map((p) => p.name), await trainer.state());
      await writeFileAtomic(paths.config, hfConfigText(config), { overwrite: true });
      await writeFileAtomic(paths.model, safetensors, { overwrite: true });
      await writeFileAtomic(paths.optimizer, optimizer, { overwrite: true });
      const next: RunRecord = { format: RUN_FORMAT, version: 1, step, tokensSeen, elapsedSeconds: Math.round(elapsed() * 10) / 10, settings, data };
      await writeFileAtomic(paths.run, `${JSON.stringify(next, null, 2)}\n`, { overwrite: true });
    };
    if (!previous) await save();

    options.onStart?.({
      parameters: named.reduce((n, p) => n + p.size, 0),
      windows: windows.count,
      tokensPerStep: trainer.tokensPerStep,
      startStep: trainer.step,
      config,
    });
    let stop = '';
    const onSignal = () => {
      if (stop) process.exit(130);
      stop = 'interrupted';
      options.onNotice?.('stopping after this update (interrupt again to quit without saving)');
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    const maxSeconds = options.maxSeconds ?? Infinity;
    let lastSave = performance.now();
    try {
      while (trainer.step < settings.steps && !stop) {
        const t0 = performance.now();
        const r = await trainer.trainStep();
        const rate = r.tokens / ((performance.now() - t0) / 1000);
        tokensSeen += r.tokens;
        await appendFile(paths.log, `${r.step},${tokensSeen},${r.loss.toFixed(6)},${r.lr.toExponential(6)},${r.gradNorm.toFixed(6)},${rate.toFixed(1)},${elapsed().toFixed(1)}\n`);
        if (!Number.isFinite(r.loss)) throw new PretrainRunError(`update ${r.step}: the loss is ${r.loss}; lower --lr (the last checkpoint is intact)`);
        options.onUpdate?.(r, { tokensSeen, elapsed: elapsed(), rate, tokensPerStep: trainer.tokensPerStep });
        if (elapsed() - elapsedBefore >= maxSeconds) stop = 'time limit reached';
        if ((performance.now() - lastSave) / 1000 >= options.saveEverySeconds && !stop && trainer.step < settings.steps) {
          await save();
          lastSave = performance.now();
        }
      }
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    await save();
    return { step: trainer.step, tokensSeen, elapsed: elapsed(), stopped: trainer.step >= settings.steps ? '' : stop };
  } finally {
    trainer.dispose();
    model.dispose();
  }
}
