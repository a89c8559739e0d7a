// Writing outputs without ever damaging what is there: temp file, fsync, rename. And checking,
// before any work, that an output can be written at all.
import { open, rename, rm, access, stat, constants } from 'node:fs/promises';
import { dirname, basename, join, resolve } from 'node:path';

export class OutputExistsError extends Error {
  override name = 'OutputExistsError';
}

/** An output path that cannot be written: its directory is missing, not a directory, or read-only. */
export class OutputPathError extends Error {
  override name = 'OutputPathError';
}

async function checkWritableDirectory(dir: string, what: string): Promise<void> {
  const info = await stat(dir).catch(() => null);
  if (!info) throw new OutputPathError(`${what}: directory ${dir} does not exist`);
  if (!info.isDirectory()) throw new OutputPathError(`${what}: ${dir} is not a directory`);
  if (!(await access(dir, constants.W_OK).then(() => true, () => false))) throw new OutputPathError(`${what}: directory ${dir} is not writable`);
}

/**
 * Checks that the file `path` can be written, before the work that produces it: its directory
 * exists and is writable, it is not a directory, and it does not exist unless `overwrite`
 * (`existsHint` says how to allow it: by default, pass --force).
 */
export async function checkOutputFile(path: string, options: { overwrite?: boolean; existsHint?: string } = {}): Promise<void> {
  await checkWritableDirectory(dirname(resolve(path)), path);
  const info = await stat(path).catch(() => null);
  if (info?.isDirectory()) throw new OutputPathError(`${path} is a directory, not a file`);
  if (info && !options.overwrite) throw new OutputExistsError(`${path} already exists; ${options.existsHint ?? 'pass --force to overwrite it'}`);
}

/**
 * Checks that the directory `path` can be written or made: it is a writable directory, or it is
 * missing and its nearest existing ancestor is one (it will be made with its parents).
 */
export async function checkOutputDirectory(path: string): Promise<void> {
  let dir = resolve(path);
  while (!(await exists(dir))) {
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  await checkWritableDirectory(dir, path);
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
