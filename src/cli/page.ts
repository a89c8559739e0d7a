// `gpt2-prompt page`: the browser page (train on your own data, in WebGPU) served from the
// installed package on 127.0.0.1, so no separate static server is needed.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serveStatic } from '../node/static.ts';
import { UsageError } from './common.ts';

const PACKAGE_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The page and what it loads: its own files, the browser bundle, the shipped model. */
export const PAGE_PATHS = ['/examples/browser/', '/dist/browser/', '/weights/small-gpt2/'];
export const PAGE_URL = '/examples/browser/';

export async function pageCommand(flags: { port?: number | string }): Promise<void> {
  const port = Number(flags.port ?? 8000);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port must be a port number (0–65535), got '${flags.port}'`);
  const { server, origin } = await serveStatic({ root: PACKAGE_ROOT, prefixes: PAGE_PATHS, index: PAGE_URL }, port).catch((e: NodeJS.ErrnoException) => {
    throw new UsageError(e.code === 'EADDRINUSE' ? `port ${port} is in use; choose another with --port` : `cannot listen on 127.0.0.1:${port}: ${e.message}`);
  });
  process.stdout.write(`gpt2-prompt page: open ${origin}${PAGE_URL} in a browser with WebGPU (Ctrl-C stops the server)\n`);
  await new Promise<void>((done) => {
    const stop = () => server.close(() => done());
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}
