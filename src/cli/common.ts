// What every command shares: opening the device and model, reading prompt files, and
// reporting errors as one clear line.
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openGpu, type Backend } from '../node/device.ts';
import { readCheckpointFiles } from '../node/checkpoint-file.ts';
import { exists } from '../node/files.ts';
import { parseConfig } from '../gpt2/config.ts';
import { loadGPT2, type GPT2 } from '../gpt2/model.ts';
import { GPT2Tokenizer } from '../gpt2/tokenizer.ts';
import type { Gpu } from '../gpu/context.ts';
import { decodeCheckpoint, checkSameModel, type ModelIdentity, type PromptCheckpoint } from '../prompt/checkpoint.ts';
import { DEFAULT_MODEL_DIR, type ReadShipped } from '../prompt/defaults.ts';

/** An error whose message is the whole story: printed without a stack, exit code 1. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** The installed package's root directory. */
const PACKAGE_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The model shipped with the package, used when no --model is given. */
export const DEFAULT_MODEL = join(PACKAGE_ROOT, DEFAULT_MODEL_DIR);

/** Reads files shipped with the package (the default task's data). */
export const readShipped: ReadShipped = async (path) => new Uint8Array(await readFile(join(PACKAGE_ROOT, path)));

export interface Session {
  gpu: Gpu;
  model: GPT2;
  tokenizer: GPT2Tokenizer;
  identity: ModelIdentity;
  modelPath: string;
}

export async function openSession(modelPath: string | undefined, backend?: Backend): Promise<Session> {
  const path = modelPath ?? DEFAULT_MODEL;
  if (!(await exists(path))) throw new UsageError(`model not found: ${path} (a directory with config.json and model.safetensors)`);
  const files = await readCheckpointFiles(path);
  const config = parseConfig(files.configText, `${files.modelPath}: config`);
  if (config.activation !== 'gelu_new') {
    throw new UsageError(`${path}: activation '${config.activation}' is not supported (GPT-2 uses gelu_new)`);
  }
  const gpu = await openGpu(backend ? { backend } : {});
  try {
    const { model, fingerprint } = await loadGPT2(gpu, files.configText, files.bytes, files.modelPath);
    return { gpu, model, tokenizer: new GPT2Tokenizer(), identity: { config, fingerprint }, modelPath: path };
  } catch (error) {
    gpu.destroy();
    throw error;
  }
}

export function closeSession(session: Session): void {
  session.model.dispose();
  session.gpu.destroy();
}

export async function readPromptFile(path: string, identity?: ModelIdentity): Promise<PromptCheckpoint> {
  if (!(await exists(path))) throw new UsageError(`prompt file not found: ${path}`);
  const checkpoint = decodeCheckpoint(new Uint8Array(await readFile(path)), path);
  if (identity) checkSameModel(checkpoint, identity, path);
  return checkpoint;
}

export function parseList(value: unknown): string[] | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  return String(value)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

export function positiveInt(value: unknown, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${flag} must be a positive integer, got '${value}'`);
  return n;
}

export function positiveNumber(value: unknown, flag: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${flag} must be a positive number, got '${value}'`);
  return n;
}

export function nonNegativeNumber(value: unknown, flag: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new UsageError(`${flag} must be a number ≥ 0, got '${value}'`);
  return n;
}

export function integer(value: unknown, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n)) throw new UsageError(`${flag} must be an integer, got '${value}'`);
  return n;
}

/** Errors users can act on print as one line; anything else keeps its stack for a bug report. */
export function reportError(error: unknown): number {
  const e = error as Error;
  const known = ['Error', 'UsageError', 'DataError', 'CheckpointError', 'ComposeError', 'OutputExistsError', 'OutputPathError', 'PretrainRunError', 'GpuError', 'RangeError'];
  if (known.includes(e?.name)) {
    process.stderr.write(`gpt2-prompt: ${e.message}\n`);
  } else {
    process.stderr.write(`gpt2-prompt: ${e?.stack ?? String(error)}\n`);
  }
  return 1;
}
