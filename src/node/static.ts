// Serving files of a directory over HTTP on 127.0.0.1: the package's web page for
// `gpt2-prompt page`, and the package itself for the headless-browser checks. Only paths
// under the given prefixes are served, never a file outside the root.
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize, resolve, sep } from 'node:path';

export const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
};

/** A file under `base` for a URL path, never outside it (null for one that would be). */
export function fileUnder(base: string, path: string): string | null {
  const root = resolve(base);
  const file = normalize(join(root, decodeURIComponent(path)));
  return file === root || file.startsWith(root + sep) ? file : null;
}

export interface StaticOptions {
  root: string;
  /** URL path prefixes that are served ('/dist/browser/'); anything else is 404. Default: all. */
  prefixes?: string[];
  /** Where a request for / is redirected. */
  index?: string;
  /** Answers a request before the files do (return true when it did). */
  extra?: (req: IncomingMessage, res: ServerResponse, path: string) => boolean | Promise<boolean>;
}

/** An HTTP handler serving `root`'s files, uncached (a rebuilt bundle is seen at once). */
export function staticHandler(options: StaticOptions): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  return async (req, res) => {
    const path = new URL(req.url ?? '/', 'http://127.0.0.1').pathname;
    if (options.extra && (await options.extra(req, res, path))) return;
    if (path === '/' && options.index) return void res.writeHead(302, { location: options.index }).end();
    const file = fileUnder(options.root, path.endsWith('/') ? `${path}index.html` : path);
    // Prefixes are checked on the resolved file, so an encoded ".." cannot step out of them.
    const allowed = file !== null && (!options.prefixes || options.prefixes.some((p) => file.startsWith(join(resolve(options.root), p))));
    const body = allowed ? await readFile(file).catch(() => null) : null;
    if (!body) return void res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    res.writeHead(200, { 'content-type': CONTENT_TYPES[extname(file!)] ?? 'application/octet-stream', 'cache-control': 'no-store' }).end(body);
  };
}

/** Listens on 127.0.0.1 (port 0: any free one); resolves with the server and its origin. */
export async function serveStatic(options: StaticOptions, port = 0): Promise<{ server: Server; origin: string }> {
  const server = createServer((req, res) => void staticHandler(options)(req, res));
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(port, '127.0.0.1', () => ok());
  });
  return { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}
