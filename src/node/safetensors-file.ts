// State dicts as safetensors files on disk: written atomically (a crash leaves the old file or
// none, never half a file), and never over an existing file unless asked.
import { readFile } from 'node:fs/promises';
import type { Gpu } from '../gpu/context.ts';
import type { StateDict, StateDictLike } from '../nn/module.ts';
import { saveSafetensors, loadSafetensors, type SaveOptions, type LoadOptions } from '../nn/state-dict.ts';
import { writeFileAtomic } from './files.ts';

export async function saveSafetensorsFile(path: string, dict: StateDictLike, options: SaveOptions & { force?: boolean } = {}): Promise<void> {
  const bytes = await saveSafetensors(dict, options);
  await writeFileAtomic(path, bytes, { overwrite: options.force });
}

export async function loadSafetensorsFile(gpu: Gpu, path: string, options: Omit<LoadOptions, 'name'> = {}): Promise<StateDict> {
  return loadSafetensors(gpu, await readFile(path), { ...options, name: path });
}
