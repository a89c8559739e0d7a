// Resumable HTTP download into a `.part` file, verified, then renamed into place.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { rangeStart, rangeTotal } from '../hub/download.ts';

export interface DownloadOptions {
  /** Fails (and discards the data) when the finished file has another size. */
  expectedSize?: number;
  /** Hex SHA-256 the finished file must have. */
  sha256?: string;
  /** Replace an existing `dest`; without it an existing file is never touched. */
  force?: boolean;
  /** How many times an interrupted transfer is resumed within this call (default 3). */
  retries?: number;
  /** Bytes on disk so far, and the full size when the server or caller told it. */
  onProgress?: (received: number, total: number | undefined) => void;
}

export interface DownloadResult {
  path: string;
  bytes: number;
  /** Whether any data came from a Range request continuing an earlier `.part`. */
  resumed: boolean;
}

async function sizeOf(path: string): Promise<number | null> {
  return (await stat(path).catch(() => null))?.size ?? null;
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

class Interrupted extends Error {}

/**
 * One request: continues `part` from `have` bytes when the server honours the Range
 * (206), starts over when it sends the whole file (200). Returns the server's full size.
 */
async function transfer(url: string, part: string, have: number, options: DownloadOptions): Promise<{ total: number | undefined; appended: boolean }> {
  // Sizes and Range offsets must count the file's bytes, not a compressed encoding's; fetch
  // itself asks for the identity encoding along with a Range.
  const headers: Record<string, string> = have > 0 ? { Range: `bytes=${have}-` } : { 'Accept-Encoding': 'identity' };
  const res = await fetch(url, { headers, redirect: 'follow' }).catch((e: Error) => {
    throw new Interrupted(`${url}: request failed (${e.message})`);
  });
  if (res.status === 416 && have > 0) {
    // Nothing left past `have`: the part is complete if the server's size agrees.
    await res.body?.cancel();
    const total = rangeTotal(res.headers.get('content-range'));
    if (total === have) return { total, appended: true };
    await rm(part, { force: true });
    throw new Interrupted(`${url}: server refused to resume at byte ${have}`);
  }
  if (!res.ok) {
    await res.body?.cancel();
    throw new Error(`${url}: HTTP ${res.status} ${res.statusText}`);
  }
  const appended = res.status === 206 && have > 0;
  if (appended && rangeStart(res.headers.get('content-range')) !== have) {
    await res.body?.cancel();
    await rm(part, { force: true });
    throw new Interrupted(`${url}: server resumed at the wrong offset (${res.headers.get('content-range')})`);
  }
  const start = appended ? have : 0;
  const length = res.headers.get('content-length');
  const total = appended ? rangeTotal(res.headers.get('content-range')) : length !== null ? Number(length) : undefined;
  const reported = options.expectedSize ?? total;
  const file = await open(part, appended ? 'a' : 'w');
  let received = start;
  try {
    options.onProgress?.(received, reported);
    const reader = res.body?.getReader();
    for (let r = await reader?.read(); r && !r.done; r = await reader!.read()) {
      await file.write(r.value);
      received += r.value.byteLength;
      options.onProgress?.(received, reported);
    }
  } catch (e) {
    throw new Interrupted(`${url}: connection lost after ${received} bytes (${(e as Error).message})`);
  } finally {
    await file.close();
  }
  if (total !== undefined && received < total) throw new Interrupted(`${url}: connection closed after ${received} of ${total} bytes`);
  return { total, appended };
}

/**
 * Downloads `url` to `dest`, resumable: data accumulates in `dest + '.part'`, which a later
 * call continues with a Range request. Only a verified file is renamed into place.
 */
export async function downloadFile(url: string, dest: string, options: DownloadOptions = {}): Promise<DownloadResult> {
  if (!options.force && (await sizeOf(dest)) !== null) {
    throw new Error(`${dest} already exists; not overwriting it (use --force to download it again)`);
  }
  await mkdir(dirname(dest), { recursive: true });
  const part = `${dest}.part`;
  const retries = options.retries ?? 3;
  let resumed = false;
  for (let attempt = 0; ; attempt++) {
    let have = (await sizeOf(part)) ?? 0;
    if (options.expectedSize !== undefined && have > options.expectedSize) {
      await rm(part);
      have = 0;
    }
    try {
      const { appended } = await transfer(url, part, have, options);
      resumed ||= appended;
      break;
    } catch (e) {
      if (!(e instanceof Interrupted)) throw e;
      if (attempt >= retries) throw new Error(`${e.message}; run again to resume from ${part}`);
    }
  }
  const bytes = (await sizeOf(part)) ?? 0;
  if (options.expectedSize !== undefined && bytes !== options.expectedSize) {
    await rm(part, { force: true });
    throw new Error(`${url}: got ${bytes} bytes, expected ${options.expectedSize}; discarded the download`);
  }
  if (options.sha256 !== undefined) {
    const actual = await sha256File(part);
    if (actual !== options.sha256.toLowerCase()) {
      await rm(part, { force: true });
      throw new Error(`${url}: SHA-256 ${actual} does not match the expected ${options.sha256}; discarded the download`);
    }
  }
  await rename(part, dest);
  return { path: dest, bytes, resumed };
}
