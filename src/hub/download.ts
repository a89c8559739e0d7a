// Resumable HTTP downloads into memory, for any host with fetch (a page, Deno, Node): the bytes
// received so far survive a failure or a cancel, and the next run() continues them with a Range
// request. The Node edge's download to disk (src/node/download.ts) reads the same headers.

/** Full size from `Content-Range: bytes a-b/total` (or `bytes *\/total` on a 416). */
export function rangeTotal(header: string | null): number | undefined {
  const m = header ? /\/(\d+)\s*$/.exec(header) : null;
  return m ? Number(m[1]) : undefined;
}

/** First byte of `Content-Range: bytes a-b/total`. */
export function rangeStart(header: string | null): number | undefined {
  const m = header ? /^\s*bytes\s+(\d+)-/.exec(header) : null;
  return m ? Number(m[1]) : undefined;
}

/** A transfer that stopped early and may be continued from where it stopped. */
export class InterruptedDownload extends Error {
  override name = 'InterruptedDownload';
}

/** The download was refused: its size is not the one expected (nothing is kept). */
export class DownloadRefused extends Error {
  override name = 'DownloadRefused';
}

export interface DownloadProgress {
  received: number;
  /** The full size, once the server or the caller told it. */
  total: number | undefined;
  /** Bytes per second since this run() started (0 at first). */
  rate: number;
  /** Seconds left at that rate, when the total is known and the rate is not 0. */
  secondsLeft: number | undefined;
}

export interface ResumableOptions {
  /** The size the file must have (a probe's answer); a server reporting another is refused. */
  expectedSize?: number;
  /** The file's first bytes, kept from an earlier download (another visit): the rest is asked with a Range request. */
  start?: Uint8Array;
  /** How many times an interrupted transfer is continued within one run() (default 3). */
  retries?: number;
  onProgress?: (progress: DownloadProgress) => void;
  /** The fetch to use (default: globalThis.fetch). */
  fetch?: typeof fetch;
}

/**
 * The size of the file at `url`, asked with a one-byte Range request (the Hub, and most servers,
 * answer 206 with the full size in Content-Range; a server ignoring Range tells it in
 * Content-Length). No body is read.
 */
export async function probeSize(url: string, fetchImpl: typeof fetch = globalThis.fetch): Promise<number> {
  const res = await fetchImpl(url, { headers: { Range: 'bytes=0-0' } }).catch((e: Error) => {
    throw new Error(`${url}: request failed (${e.message})`);
  });
  await res.body?.cancel();
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`);
  const size = res.status === 206 ? rangeTotal(res.headers.get('content-range')) : Number(res.headers.get('content-length') ?? NaN);
  if (size === undefined || !Number.isSafeInteger(size)) throw new Error(`${url}: the server does not say how large the file is`);
  return size;
}

/** One file's download, in memory; run() again after a failure or a cancel continues it. */
export class ResumableDownload {
  private chunks: Uint8Array[] = [];
  private have = 0;
  private total: number | undefined;
  /** Whether any data came from a Range request continuing earlier bytes. */
  resumed = false;

  constructor(
    readonly url: string,
    private readonly options: ResumableOptions = {},
  ) {
    this.total = options.expectedSize;
    if (options.start && options.start.byteLength > 0 && (this.total === undefined || options.start.byteLength <= this.total)) {
      this.chunks = [options.start];
      this.have = options.start.byteLength;
    }
  }

  /** Bytes held so far. */
  get received(): number {
    return this.have;
  }

  /** Downloads the rest (all of it the first time); rejects with `signal`'s reason once aborted, keeping what arrived. */
  async run(signal?: AbortSignal): Promise<Uint8Array> {
    const retries = this.options.retries ?? 3;
    const started = { time: Date.now(), bytes: this.have };
    for (let attempt = 0; ; attempt++) {
      try {
        if (await this.transfer(started, signal)) break;
      } catch (error) {
        signal?.throwIfAborted();
        if (!(error instanceof InterruptedDownload)) throw error;
        if (attempt >= retries) throw new InterruptedDownload(`${error.message}; ${this.have} bytes are kept, and downloading again resumes from there`);
      }
    }
    return this.bytesSoFar();
  }

  /** The bytes received so far, in one array. */
  bytesSoFar(): Uint8Array {
    const bytes = new Uint8Array(this.have);
    let at = 0;
    for (const c of this.chunks) {
      bytes.set(c, at);
      at += c.byteLength;
    }
    this.chunks = [bytes];
    return bytes;
  }

  private forget(): void {
    this.chunks = [];
    this.have = 0;
  }

  private refuse(message: string): never {
    this.forget();
    throw new DownloadRefused(`${this.url}: ${message}; the download was discarded`);
  }

  /** One request: true once the file is complete. */
  private async transfer(started: { time: number; bytes: number }, signal?: AbortSignal): Promise<boolean> {
    if (this.total !== undefined && this.have === this.total) return true;
    const fetchImpl = this.options.fetch ?? globalThis.fetch;
    // Sizes and offsets must count the file's bytes, not those of a compressed encoding.
    const headers: Record<string, string> = this.have > 0 ? { Range: `bytes=${this.have}-` } : { 'Accept-Encoding': 'identity' };
    const res = await fetchImpl(this.url, { headers, signal }).catch((e: Error) => {
      throw new InterruptedDownload(`${this.url}: request failed (${e.message})`);
    });
    if (res.status === 416 && this.have > 0) {
      await res.body?.cancel();
      if (rangeTotal(res.headers.get('content-range')) === this.have) return true;
      this.forget();
      throw new InterruptedDownload(`${this.url}: the server refused to resume at byte ${this.have}`);
    }
    if (!res.ok) {
      await res.body?.cancel();
      throw new Error(`${this.url}: HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`);
    }
    const appended = res.status === 206 && this.have > 0;
    if (appended && rangeStart(res.headers.get('content-range')) !== this.have) {
      await res.body?.cancel();
      this.forget();
      throw new InterruptedDownload(`${this.url}: the server resumed at the wrong offset (${res.headers.get('content-range')})`);
    }
    if (!appended) this.forget();
    this.resumed ||= appended;
    const length = res.headers.get('content-length');
    const told = appended ? rangeTotal(res.headers.get('content-range')) : length !== null ? Number(length) : undefined;
    if (told !== undefined && this.total !== undefined && told !== this.total) {
      await res.body?.cancel();
      this.refuse(`the server sends ${told} bytes, but the file should have ${this.total}`);
    }
    this.total ??= told;
    const report = () => {
      const seconds = (Date.now() - started.time) / 1000;
      const rate = seconds > 0 ? (this.have - started.bytes) / seconds : 0;
      const secondsLeft = this.total !== undefined && rate > 0 ? (this.total - this.have) / rate : undefined;
      this.options.onProgress?.({ received: this.have, total: this.total, rate, secondsLeft });
    };
    report();
    const reader = res.body?.getReader();
    try {
      for (let r = await reader?.read(); r && !r.done; r = await reader!.read()) {
        this.chunks.push(r.value);
        this.have += r.value.byteLength;
        if (this.total !== undefined && this.have > this.total) {
          await reader!.cancel();
          this.refuse(`more than the ${this.total} bytes announced arrived`);
        }
        report();
      }
    } catch (e) {
      if (e instanceof DownloadRefused) throw e;
      throw new InterruptedDownload(`${this.url}: the connection was lost after ${this.have} bytes (${(e as Error).message})`);
    }
    if (this.total !== undefined && this.have < this.total) throw new InterruptedDownload(`${this.url}: the connection closed after ${this.have} of ${this.total} bytes`);
    return true;
  }
}
