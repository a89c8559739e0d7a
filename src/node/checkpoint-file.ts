// Node edge for checkpoints: finds config.json + model.safetensors on disk and reads them.
import { open, readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { loadCheckpoint, type GPT2Checkpoint } from '../gpt2/checkpoint.ts';
import { headerLength, parseHeader, type SafetensorsHeader } from '../nn/safetensors.ts';

export interface CheckpointPaths {
  configPath: string;
  modelPath: string;
}

async function isFile(path: string): Promise<boolean> {
  return (await stat(path).catch(() => null))?.isFile() ?? false;
}

/**
 * `path` is a directory holding config.json and model.safetensors, or a safetensors file (or
 * the config.json) with the other file beside it.
 */
export async function resolveCheckpointPaths(path: string): Promise<CheckpointPaths> {
  const s = await stat(path).catch(() => null);
  if (!s) throw new Error(`${path}: no such file or directory`);
  const dir = s.isDirectory() ? path : dirname(path);
  const modelPath = s.isDirectory() || basename(path) === 'config.json' ? join(dir, 'model.safetensors') : path;
  const configPath = join(dir, 'config.json');
  if (!(await isFile(modelPath))) throw new Error(`${path}: no model.safetensors in ${dir}`);
  if (!(await isFile(configPath))) throw new Error(`${path}: no config.json beside ${modelPath}`);
  return { configPath, modelPath };
}

/** A checkpoint's two files as read: config.json's text and model.safetensors' bytes (for loadGPT2 or loadCheckpoint). */
export async function readCheckpointFiles(path: string): Promise<{ configText: string; bytes: Uint8Array; modelPath: string }> {
  const { configPath, modelPath } = await resolveCheckpointPaths(path);
  const configText = await readFile(configPath, 'utf8');
  const bytes = await readFile(modelPath);
  return { configText, bytes: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), modelPath };
}

/** The checkpoint's weights on the host. */
export async function readCheckpoint(path: string): Promise<GPT2Checkpoint> {
  const { configText, bytes, modelPath } = await readCheckpointFiles(path);
  return loadCheckpoint(configText, bytes, modelPath);
}

/** The header of a safetensors file, read without loading its data. */
export async function readSafetensorsHeader(path: string): Promise<SafetensorsHeader & { fileSize: number }> {
  const handle = await open(path, 'r');
  try {
    const fileSize = (await handle.stat()).size;
    const first8 = new Uint8Array(8);
    await handle.read(first8, 0, Math.min(8, fileSize), 0);
    const n = headerLength(first8, fileSize, path);
    const head = new Uint8Array(8 + n);
    await handle.read(head, 0, head.length, 0);
    return { ...parseHeader(head, fileSize, path), fileSize };
  } finally {
    await handle.close();
  }
}
