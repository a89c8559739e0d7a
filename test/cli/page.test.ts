// `gpt2-prompt page`: the page, the bundle's folder and the shipped model served from the
// package on 127.0.0.1, nothing else of the package.
import { spawn, type ChildProcess } from 'node:child_process';
import { get } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../hosts/hosts.ts';
import { fileUnder } from '../../src/node/static.ts';

let child: ChildProcess;
let origin = '';
beforeAll(async () => {
  child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/dev.ts', 'page', '--port', '0'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  origin = await new Promise<string>((ok, fail) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /open (http:\/\/127\.0\.0\.1:\d+)\/examples\/browser\//.exec(out);
      if (m) ok(m[1]!);
    });
    child.once('exit', (code) => fail(new Error(`page exited with ${code}: ${out}`)));
  });
}, 60_000);
afterAll(() => void child.kill('SIGTERM'));

describe('gpt2-prompt page', () => {
  it('serves the page and what it loads on 127.0.0.1, / redirecting to it', async () => {
    const root = await fetch(`${origin}/`, { redirect: 'manual' });
    expect(root.status).toBe(302);
    expect(root.headers.get('location')).toBe('/examples/browser/');
    const page = await fetch(`${origin}/examples/browser/`);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await page.text()).toContain('<script type="module" src="main.js">');
    expect((await fetch(`${origin}/examples/browser/main.js`)).headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(JSON.parse(await (await fetch(`${origin}/weights/small-gpt2/config.json`)).text()).n_embd).toBe(64);
  });

  it('serves nothing else of the package, nor anything outside it', async () => {
    for (const path of ['/package.json', '/src/index.ts', '/examples/browser/../../package.json', '/examples/browser/%2e%2e/%2e%2e/package.json', '/examples/browser/..%2f..%2fpackage.json']) {
      // Sent as written: fetch would resolve the dots itself.
      const status = await new Promise<number | undefined>((ok, fail) => get({ hostname: '127.0.0.1', port: Number(origin.split(':').at(-1)), path }, (res) => ok(res.resume().statusCode)).on('error', fail));
      expect(status, path).toBe(404);
    }
    expect(fileUnder('/srv/pkg', '/../etc/passwd')).toBeNull();
    expect(fileUnder('/srv/pkg', '/a/%2e%2e/%2e%2e/x')).toBeNull();
  });

  it('names a port that cannot be used', async () => {
    const other = spawn(process.execPath, ['--import', 'tsx', 'src/cli/dev.ts', 'page', '--port', origin.split(':').at(-1)!], { cwd: ROOT });
    let err = '';
    other.stderr.on('data', (d) => (err += d));
    const code = await new Promise((ok) => other.once('exit', ok));
    expect(code).toBe(1);
    expect(err.trim()).toMatch(/^gpt2-prompt: port \d+ is in use; choose another with --port$/);
  });
});
