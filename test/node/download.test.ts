// Downloads against a local HTTP server on 127.0.0.1; nothing here touches the network.
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { formatWeightsInfo, weightsDownload, weightsInfo } from '../../src/cli/weights.ts';
import { downloadFile } from '../../src/node/download.ts';
import { formatBytes, formatDuration, ProgressBar } from '../../src/node/progress.ts';
import { seededRandom } from '../../src/util/random.ts';

const FIXTURE = fileURLToPath(new URL('../../../shared/fixtures/tiny-gpt2', import.meta.url));
const random = seededRandom(3);
const PAYLOAD = Uint8Array.from({ length: 300_000 }, () => Math.floor(random() * 256));
const PAYLOAD_SHA = createHash('sha256').update(PAYLOAD).digest('hex');
const DROP_AFTER = 100_000;

interface Hit {
  path: string;
  range: string | undefined;
}
let hits: Hit[] = [];
/** How many of the next requests to /drop are cut after DROP_AFTER bytes. */
let dropsLeft = 0;

function send(req: IncomingMessage, res: ServerResponse, body: Uint8Array, honourRange: boolean): void {
  const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  if (m && honourRange) {
    const start = Number(m[1]);
    if (start >= body.length) {
      res.writeHead(416, { 'Content-Range': `bytes */${body.length}` }).end();
      return;
    }
    res.writeHead(206, { 'Content-Length': body.length - start, 'Content-Range': `bytes ${start}-${body.length - 1}/${body.length}` });
    res.end(body.subarray(start));
    return;
  }
  res.writeHead(200, { 'Content-Length': body.length });
  res.end(body);
}

function handle(req: IncomingMessage, res: ServerResponse): void {
  const path = req.url ?? '';
  hits.push({ path, range: req.headers.range });
  // Byte offsets must refer to the file itself, never to a compressed encoding of it.
  if (req.headers['accept-encoding'] !== 'identity') return void res.writeHead(400).end();
  if (path === '/file') return send(req, res, PAYLOAD, true);
  if (path === '/no-range') return send(req, res, PAYLOAD, false);
  if (path === '/drop') {
    if (dropsLeft > 0) {
      dropsLeft--;
      const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
      const start = m ? Number(m[1]) : 0;
      res.writeHead(m ? 206 : 200, {
        'Content-Length': PAYLOAD.length - start,
        ...(m ? { 'Content-Range': `bytes ${start}-${PAYLOAD.length - 1}/${PAYLOAD.length}` } : {}),
      });
      res.write(PAYLOAD.subarray(start, start + DROP_AFTER), () => res.socket?.destroy());
      return;
    }
    return send(req, res, PAYLOAD, true);
  }
  const hub = /^\/openai-community\/gpt2\/resolve\/main\/(config\.json|model\.safetensors)$/.exec(path);
  if (hub) return send(req, res, readFileSync(join(FIXTURE, hub[1]!)), true);
  res.writeHead(404).end();
}

let server: Server;
let base = '';
const temp = mkdtempSync(join(tmpdir(), 'gpt2-download-'));
let n = 0;
const fresh = () => join(temp, `d${n++}`, 'out.bin');

beforeAll(async () => {
  server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  rmSync(temp, { recursive: true, force: true });
});
beforeEach(() => {
  hits = [];
  dropsLeft = 0;
});

const same = (path: string) => Buffer.compare(readFileSync(path), PAYLOAD) === 0;

describe('downloadFile', () => {
  it('downloads a complete file, reporting progress, and leaves no .part', async () => {
    const dest = fresh();
    const seen: Array<[number, number | undefined]> = [];
    const result = await downloadFile(`${base}/file`, dest, { expectedSize: PAYLOAD.length, sha256: PAYLOAD_SHA, onProgress: (r, t) => seen.push([r, t]) });
    expect(result).toEqual({ path: dest, bytes: PAYLOAD.length, resumed: false });
    expect(same(dest)).toBe(true);
    expect(existsSync(`${dest}.part`)).toBe(false);
    expect(seen.at(-1)).toEqual([PAYLOAD.length, PAYLOAD.length]);
    expect(seen.every(([r], i) => i === 0 || r >= seen[i - 1]![0])).toBe(true);
    expect(hits).toEqual([{ path: '/file', range: undefined }]);
  });

  it('keeps a .part when the connection drops, and the next call resumes it with a Range request', async () => {
    const dest = fresh();
    dropsLeft = 1;
    await expect(downloadFile(`${base}/drop`, dest, { retries: 0 })).rejects.toThrow(/\/drop: connection (lost|closed) after \d+ .*run again to resume from .*out\.bin\.part/);
    const partial = statSync(`${dest}.part`).size;
    expect(partial).toBeGreaterThan(0);
    expect(partial).toBeLessThanOrEqual(DROP_AFTER);
    expect(existsSync(dest)).toBe(false);

    hits = [];
    const result = await downloadFile(`${base}/drop`, dest, { sha256: PAYLOAD_SHA });
    expect(result.resumed).toBe(true);
    expect(hits).toEqual([{ path: '/drop', range: `bytes=${partial}-` }]);
    expect(same(dest)).toBe(true);
    expect(existsSync(`${dest}.part`)).toBe(false);
  });

  it('resumes by itself within one call after repeated drops', async () => {
    const dest = fresh();
    dropsLeft = 2;
    const result = await downloadFile(`${base}/drop`, dest, { expectedSize: PAYLOAD.length });
    expect(result.resumed).toBe(true);
    expect(hits.length).toBe(3);
    expect(hits[0]!.range).toBeUndefined();
    expect(hits[2]!.range).toMatch(/^bytes=\d+-$/);
    expect(same(dest)).toBe(true);
  });

  it('starts over when the server ignores the Range and answers 200', async () => {
    const dest = fresh();
    mkdirSync(join(dest, '..'), { recursive: true });
    writeFileSync(`${dest}.part`, PAYLOAD.subarray(0, 1234).map((b) => b ^ 0xff)); // stale bytes that must not survive
    const result = await downloadFile(`${base}/no-range`, dest);
    expect(hits).toEqual([{ path: '/no-range', range: 'bytes=1234-' }]);
    expect(result.resumed).toBe(false);
    expect(same(dest)).toBe(true);
  });

  it('finishes a .part that already holds the whole file (416)', async () => {
    const dest = fresh();
    mkdirSync(join(dest, '..'), { recursive: true });
    writeFileSync(`${dest}.part`, PAYLOAD);
    await downloadFile(`${base}/file`, dest, { sha256: PAYLOAD_SHA });
    expect(same(dest)).toBe(true);
  });

  it('fails on a size mismatch and discards the data', async () => {
    const dest = fresh();
    await expect(downloadFile(`${base}/file`, dest, { expectedSize: PAYLOAD.length + 1 })).rejects.toThrow(
      `${base}/file: got ${PAYLOAD.length} bytes, expected ${PAYLOAD.length + 1}; discarded the download`,
    );
    expect(existsSync(dest)).toBe(false);
    expect(existsSync(`${dest}.part`)).toBe(false);
  });

  it('fails on a SHA-256 mismatch and discards the data', async () => {
    const dest = fresh();
    const wrong = PAYLOAD_SHA.replace(/^./, (c) => (c === '0' ? '1' : '0'));
    await expect(downloadFile(`${base}/file`, dest, { sha256: wrong })).rejects.toThrow(`SHA-256 ${PAYLOAD_SHA} does not match the expected ${wrong}`);
    expect(existsSync(dest)).toBe(false);
    expect(existsSync(`${dest}.part`)).toBe(false);
    await downloadFile(`${base}/file`, dest, { sha256: PAYLOAD_SHA.toUpperCase() });
    expect(same(dest)).toBe(true);
  });

  it('never overwrites an existing file unless forced', async () => {
    const dest = fresh();
    mkdirSync(join(dest, '..'), { recursive: true });
    writeFileSync(dest, 'precious');
    await expect(downloadFile(`${base}/file`, dest)).rejects.toThrow(`${dest} already exists; not overwriting it`);
    expect(readFileSync(dest, 'utf8')).toBe('precious');
    expect(hits).toEqual([]);
    await downloadFile(`${base}/file`, dest, { force: true });
    expect(same(dest)).toBe(true);
  });

  it('reports HTTP errors with the URL', async () => {
    await expect(downloadFile(`${base}/missing`, fresh())).rejects.toThrow(`${base}/missing: HTTP 404`);
  });
});

describe('weights commands', () => {
  const C = 32;
  const TINY_PARAMS = 50257 * C + 64 * C + 2 * C + 2 * (12 * C * C + 13 * C);

  it('weightsDownload fetches config.json and model.safetensors from the hub layout and checks them', async () => {
    const dir = join(temp, 'hub');
    const lines: string[] = [];
    const progress: string[] = [];
    const info = await weightsDownload(dir, { baseUrl: base, log: (l) => lines.push(l), onProgress: (f) => progress.push(f) });
    expect(hits.map((h) => h.path)).toEqual(['/openai-community/gpt2/resolve/main/config.json', '/openai-community/gpt2/resolve/main/model.safetensors']);
    expect(new Set(progress)).toEqual(new Set(['config.json', 'model.safetensors']));
    expect(Buffer.compare(readFileSync(join(dir, 'model.safetensors')), readFileSync(join(FIXTURE, 'model.safetensors')))).toBe(0);
    expect(info.parameterCount).toBe(TINY_PARAMS);
    expect(info.tensorCount).toBe(30);

    await expect(weightsDownload(dir, { baseUrl: base, log: (l) => lines.push(l) })).rejects.toThrow(/already holds config\.json and model\.safetensors; use --force/);

    // An interrupted earlier run left only config.json: it is kept and the model fetched.
    rmSync(join(dir, 'model.safetensors'));
    hits = [];
    await weightsDownload(dir, { baseUrl: base, log: (l) => lines.push(l), onProgress: () => {} });
    expect(hits.map((h) => h.path)).toEqual(['/openai-community/gpt2/resolve/main/model.safetensors']);
    expect(lines).toEqual([`${join(dir, 'config.json')} is already there; keeping it`]);
  });

  it('weightsInfo describes a checkpoint from its header', async () => {
    const info = await weightsInfo(FIXTURE);
    expect(info).toMatchObject({ tensorCount: 30, parameterCount: TINY_PARAMS, dtypes: ['F32'], ignored: [], fileSize: statSync(join(FIXTURE, 'model.safetensors')).size });
    expect(info.config).toMatchObject({ nLayer: 2, nHead: 4, nEmbd: 32, vocabSize: 50257, nPositions: 64 });
    const text = formatWeightsInfo(info);
    expect(text).toContain('layers       2, heads 4, n_embd 32');
    expect(text).toContain(`parameters   ${TINY_PARAMS.toLocaleString('en-US')} (1.6M)`);
    expect(text).toContain('dtype        F32');
  });
});

describe('ProgressBar', () => {
  function fake(tty: boolean) {
    const out: string[] = [];
    let t = 0;
    return { out, advance: (ms: number) => (t += ms), stream: { write: (s: string) => out.push(s), isTTY: tty }, now: () => t };
  }

  it('writes a plain line per 10% off a terminal, with rate and ETA, and a final line', () => {
    const f = fake(false);
    const bar = new ProgressBar({ label: 'model.safetensors', total: 1_000_000, unit: 'bytes', stream: f.stream, now: f.now });
    bar.update(0);
    for (let i = 1; i <= 100; i++) {
      f.advance(100);
      bar.update(i * 10_000);
    }
    expect(f.out.length).toBe(11);
    expect(f.out[0]).toMatch(/^model\.safetensors \[-+\] 0\.0% 0 B\/1\.0 MB\n$/);
    expect(f.out[5]).toBe('model.safetensors [############------------] 50.0% 500.0 kB/1.0 MB 100.0 kB/s ETA 0:05\n');
    bar.done('ok');
    expect(f.out[11]).toBe('model.safetensors 1.0 MB in 0:10 100.0 kB/s ok\n');
    bar.update(5);
    expect(f.out.length).toBe(12);
  });

  it('redraws in place on a terminal at most every 100 ms, and counts items', () => {
    const f = fake(true);
    const bar = new ProgressBar({ label: 'train', total: 50, unit: 'items', stream: f.stream, now: f.now });
    bar.update(1, 'loss 0.69');
    f.advance(50);
    bar.update(2);
    f.advance(60);
    bar.update(3);
    expect(f.out.length).toBe(2);
    expect(f.out[1]).toMatch(/^\rtrain \[#-+\] 6\.0% 3\/50 18\.2 it\/s ETA 0:03 loss 0\.69\x1b\[K$/);
    bar.done();
    expect(f.out[2]).toMatch(/^\rtrain 3 items in 0:00 .*\n$/);
  });

  it('formats sizes and durations', () => {
    expect(formatBytes(999)).toBe('999 B');
    expect(formatBytes(548_105_171)).toBe('548.1 MB');
    expect(formatDuration(59.6)).toBe('1:00');
    expect(formatDuration(3725)).toBe('1:02:05');
    expect(formatDuration(Infinity)).toBe('?');
  });
});
