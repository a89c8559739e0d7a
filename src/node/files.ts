// Writing outputs without ever damaging what is there: temp file, fsync, rename.
import { open, rename, rm, access } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';

export class OutputExistsError extends Error {
  override name = 'OutputExistsError';
}

export async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** Writes `data` to `path` atomically; refuses to replace an existing file unless `overwrite`. */
export async function writeFileAtomic(path: string, data: Uint8Array | string, options: { overwrite?: boolean } = {}): Promise<void> {
  if (!options.overwrite && (await exists(path))) {
    throw new OutputExistsError(`${path} already exists; pass --force to overwrite it`);
  }
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now()}.tmp`);
  const handle = await open(temp, 'w');
  try {
    await handle.writeFile(data);
    await handle.sync();
  } catch (error) {
    await handle.close();
    await rm(temp, { force: true });
    throw error;
  }
  await handle.close();
  await rename(temp, path);
}
