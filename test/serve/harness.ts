// What the serve tests and bench share: two prompt files for the shipped small model, as
// separate training runs would leave them (a single-label task and a multi-label one, each with
// its own prompt and head; seeded random values: serving costs and numerics do not depend on
// how well a prompt was trained), and a `serve` process on a free loopback port.
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readCheckpoint } from '../../src/node/checkpoint-file.ts';
import { fingerprint } from '../../src/gpt2/checkpoint.ts';
import { encodeCheckpoint } from '../../src/prompt/checkpoint.ts';
import type { Task } from '../../src/prompt/classifier.ts';
import { seededRandom } from '../../src/util/random.ts';

export const SMALL_MODEL = join(import.meta.dirname, '..', '..', 'weights', 'small-gpt2');

export const SENTIMENT: Task = { name: 'sentiment', kind: 'single', labelNames: ['bad', 'good'], start: 0 };
export const EMOTION: Task = { name: 'emotion', kind: 'multi', labelNames: ['joy', 'love', 'anger'], start: 0 };

/** Writes sentiment.gpt2p and emotion.gpt2p into `dir`; returns their paths. */
export async function writePromptFiles(dir: string, promptTokens = 5): Promise<{ sentiment: string; emotion: string }> {
  const checkpoint = await readCheckpoint(SMALL_MODEL);
  const model = { config: checkpoint.config, fingerprint: await fingerprint(checkpoint) };
  const C = checkpoint.config.nEmbd;
  const write = (task: Task, seed: number) => {
    const random = seededRandom(seed);
    const values = (n: number, scale: number) => Float32Array.from({ length: n }, () => (2 * random() - 1) * scale);
    const K = task.labelNames.length;
    const path = join(dir, `${task.name}.gpt2p`);
    const params = { prompt: values(promptTokens * C, 0.5), headWeight: values(K * C, 1), headBias: values(K, 0.5) };
    writeFileSync(path, encodeCheckpoint({ model, tasks: [task], promptTokens, params, training: { seed } }));
    return path;
  };
  return { sentiment: write(SENTIMENT, 11), emotion: write(EMOTION, 12) };
}

const ROOT = join(import.meta.dirname, '..', '..');

export interface ServerProcess {
  process: ChildProcess;
  url: string;
  log: () => string;
  exited: Promise<number | null>;
}

/** Starts `serve` (from source) on a free port of 127.0.0.1; resolves once it listens, before the model is ready. */
export function startServer(args: string[]): Promise<ServerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/dev.ts'), 'serve', '--model', SMALL_MODEL, '--port', '0', ...args], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    child.stderr!.on('data', (chunk: Buffer) => {
      log += chunk.toString();
      const match = /listening on (http:\/\/\S+)/.exec(log);
      if (match) resolve({ process: child, url: match[1]!, log: () => log, exited });
    });
    void exited.then((code) => reject(new Error(`serve exited with ${code} before listening:\n${log}`)));
  });
}

/** Resolves once /health answers 200. */
export async function untilReady(server: ServerProcess, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const r = await fetch(`${server.url}/health`).catch(() => null);
    if (r?.status === 200) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`not ready after ${timeoutMs} ms:\n${server.log()}`);
}

/** A metric's value in Prometheus text (name with its labels), NaN when absent. */
export function metric(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.slice(name.length + 1)) : NaN;
}
