// Headless Chromium for the browser checks: serves the package directory (and optionally a
// fixture directory at /fixture/) on 127.0.0.1, builds the browser bundle, and opens a page
// with WebGPU on Chromium's software adapter (SwiftShader). Debian: apt-get install chromium.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { CONTENT_TYPES, serveStatic, staticHandler } from '../src/node/static.ts';

export const ROOT = resolve(fileURLToPath(import.meta.url), '..', '..');
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

const ARGS = [
  '--no-sandbox',
  '--enable-unsafe-webgpu',
  '--use-webgpu-adapter=swiftshader',
  '--enable-unsafe-swiftshader',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
];

/** Why the browser checks cannot run here, or null when they can. */
export function browserMissing(): string | null {
  return existsSync(CHROMIUM) ? null : `no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`;
}

/** The package root, a blank page at /, and `fixture` (if given) at /fixture/. */
async function serve(fixture?: string): Promise<Server> {
  const fixtureFiles = fixture ? staticHandler({ root: resolve(fixture) }) : null;
  const { server } = await serveStatic({
    root: ROOT,
    extra: async (req, res, path) => {
      if (path === '/favicon.ico') {
        res.writeHead(204).end();
        return true;
      }
      if (path === '/') {
        res.writeHead(200, { 'content-type': CONTENT_TYPES['.html']! }).end('<!doctype html><meta charset="utf-8"><title>gpt2-prompt</title>');
        return true;
      }
      if (!fixtureFiles || !path.startsWith('/fixture/')) return false;
      req.url = path.slice('/fixture'.length);
      await fixtureFiles(req, res);
      return true;
    },
  });
  return server;
}

export interface BrowserSession {
  page: Page;
  /** The server's origin, e.g. http://127.0.0.1:40123 */
  origin: string;
  /** Everything the page logged, errors included. */
  console: string[];
  close(): Promise<void>;
}

/** Builds the bundle, serves the package and opens `path` in headless Chromium. */
export async function openPage(path = '/', options: { fixture?: string; width?: number; height?: number } = {}): Promise<BrowserSession> {
  execFileSync(process.execPath, [join(ROOT, 'scripts', 'bundle.mjs')], { stdio: 'ignore' });
  const { chromium } = await import('playwright-core');
  const server = await serve(options.fixture);
  let browser: Browser | null = null;
  try {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true });
    const page = await browser.newPage({ viewport: { width: options.width ?? 1100, height: options.height ?? 900 } });
    // Functions handed to page.evaluate are compiled by tsx, which wraps named ones in an
    // esbuild __name() helper that the page does not have.
    await page.addInitScript('globalThis.__name = (f) => f');
    const log: string[] = [];
    page.on('console', (m) => log.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => log.push(`pageerror: ${e.message}`));
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    await page.goto(origin + path);
    const opened = browser;
    return {
      page,
      origin,
      console: log,
      close: async () => {
        await opened.close();
        server.close();
      },
    };
  } catch (error) {
    await browser?.close();
    server.close();
    throw error;
  }
}
