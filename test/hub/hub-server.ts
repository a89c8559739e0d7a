// A local stand-in for the Hugging Face Hub on 127.0.0.1: the shipped small model laid out as
// the Hub serves it (/<owner>/<name>/resolve/main/{config.json,model.safetensors}), with Range
// requests and CORS as the Hub answers them, and repositories that misbehave on purpose:
//   test/flaky    the first transfer of the weights is cut after CUT_AFTER bytes, then it serves
//   test/truncated  serves a weights file cut short, with a Content-Length that agrees with it
//   test/mismatch   announces one size to a probe and sends a file of another size
//   test/slow       its first weights transfer sends 300 kB in three pieces, then stalls, so a
//                   visitor sees the rate and time left and cancels; later ones send it all
//   test/huge       a config of a model too large for any adapter (the weights are never sent)
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';

const MODEL_DIR = resolve(import.meta.dirname, '..', '..', 'weights', 'small-gpt2');
export const CUT_AFTER = 1_000_000;
/** 50257 × 32768 float32 token embeddings: 6.1 GiB in one buffer, over any adapter's binding limit. */
const HUGE_CONFIG = new TextEncoder().encode(JSON.stringify({ model_type: 'gpt2', vocab_size: 50257, n_positions: 1024, n_embd: 32768, n_layer: 1, n_head: 64, activation_function: 'gelu_new', layer_norm_epsilon: 1e-5 }));
/** Its float32 file: 4 bytes for each of 14,565,769,216 parameters. */
const HUGE_BYTES = 4 * 14_565_769_216;

export interface HubServer {
  base: string;
  /** Every request: method, path and Range header. */
  hits: { method: string; path: string; range: string | undefined }[];
  /** Arms test/flaky again: its next weights transfer is cut. */
  cutNext(): void;
  close(): Promise<void>;
}

const CORS = {
  'access-control-allow-origin': '*',
  'access-control-expose-headers': 'content-length, content-range, accept-ranges',
};

/**
 * Sends `part` and closes the connection short of the announced length. The close is an orderly
 * FIN a moment later: a reset could overtake the bytes, and the client would then see fewer.
 */
function cut(res: ServerResponse, part: Uint8Array): void {
  res.write(part, () => setTimeout(() => res.socket?.end(), 50));
}

/** Writes three pieces of `bytesPerTick`, 100 ms apart, then nothing more until the client goes away. */
function stall(res: ServerResponse, body: Uint8Array, bytesPerTick: number): void {
  let at = 0;
  const next = () => {
    if (res.destroyed || at >= 3 * bytesPerTick) return;
    res.write(body.subarray(at, (at += bytesPerTick)));
    setTimeout(next, 100);
  };
  next();
}

function send(req: IncomingMessage, res: ServerResponse, body: Uint8Array, options: { cutAfter?: number; announce?: number; bytesPerTick?: number } = {}): void {
  const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
  const size = options.announce ?? body.length;
  if (m) {
    const start = Number(m[1]);
    const end = m[2] ? Math.min(Number(m[2]), size - 1) : size - 1;
    if (start >= size) return void res.writeHead(416, { ...CORS, 'content-range': `bytes */${size}` }).end();
    res.writeHead(206, { ...CORS, 'accept-ranges': 'bytes', 'content-length': end - start + 1, 'content-range': `bytes ${start}-${end}/${size}` });
    const part = body.subarray(start, end + 1);
    if (options.cutAfter !== undefined) return cut(res, part.subarray(0, options.cutAfter));
    if (options.bytesPerTick !== undefined) return stall(res, part, options.bytesPerTick);
    return void res.end(part);
  }
  res.writeHead(200, { ...CORS, 'accept-ranges': 'bytes', 'content-length': body.length });
  if (options.cutAfter !== undefined) return cut(res, body.subarray(0, options.cutAfter));
  if (options.bytesPerTick !== undefined) return stall(res, body, options.bytesPerTick);
  res.end(body);
}

export async function startHubServer(): Promise<HubServer> {
  const config = readFileSync(join(MODEL_DIR, 'config.json'));
  const weights = readFileSync(join(MODEL_DIR, 'model.safetensors'));
  const hits: HubServer['hits'] = [];
  let cut = true;
  let stallSlow = true;
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://127.0.0.1').pathname;
    hits.push({ method: req.method ?? 'GET', path, range: req.headers.range });
    if (req.method === 'OPTIONS') {
      return void res.writeHead(204, { ...CORS, 'access-control-allow-headers': 'range, accept-encoding', 'access-control-allow-methods': 'GET, HEAD' }).end();
    }
    const m = /^\/([^/]+\/[^/]+)\/resolve\/main\/(config\.json|model\.safetensors)$/.exec(path);
    if (!m) return void res.writeHead(404, CORS).end();
    const [, repo, file] = m;
    if (file === 'config.json') return send(req, res, repo === 'test/huge' ? HUGE_CONFIG : config);
    const isProbe = req.headers.range === 'bytes=0-0';
    switch (repo) {
      case 'test/flaky':
        if (cut && !isProbe) {
          cut = false;
          return send(req, res, weights, { cutAfter: CUT_AFTER });
        }
        return send(req, res, weights);
      case 'test/truncated':
        return send(req, res, weights.subarray(0, weights.length - 4096));
      case 'test/slow':
        if (stallSlow && !isProbe) {
          stallSlow = false;
          return send(req, res, weights, { bytesPerTick: 100_000 });
        }
        return send(req, res, weights);
      case 'test/huge':
        return isProbe ? send(req, res, weights, { announce: HUGE_BYTES }) : void res.writeHead(500, CORS).end();
      case 'test/mismatch':
        return isProbe ? send(req, res, weights, { announce: weights.length + 1000 }) : send(req, res, weights);
      default:
        return send(req, res, weights);
    }
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    hits,
    cutNext: () => void (cut = true),
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}
