// What the host tests share: the fixture, Node's own results to compare against, and running
// a program in another host.
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { testGpu } from '../helpers.ts';
import { goldenReport, type GoldenReport } from '../../src/prompt/golden.ts';
import { shortTraining, type ShortTraining } from './short-training.ts';

export const ROOT = resolve(import.meta.dirname, '..', '..');
export const FIXTURE = '../shared/fixtures/tiny-gpt2';
/** Hosts agree on training losses within this (absolute). */
export const LOSS_AGREEMENT = 1e-5;

export const readFromRoot = async (path: string) => new Uint8Array(await readFile(join(ROOT, path)));

let nodeGolden: Promise<GoldenReport> | null = null;
/** The golden report on Node's test device. */
export function nodeGoldenReport(): Promise<GoldenReport> {
  nodeGolden ??= testGpu().then((gpu) => goldenReport(gpu, FIXTURE, async (name) => new Uint8Array(await readFile(join(ROOT, FIXTURE, name)))));
  return nodeGolden;
}

let nodeShort: Promise<ShortTraining> | null = null;
export function nodeShortTraining(): Promise<ShortTraining> {
  nodeShort ??= testGpu().then((gpu) => shortTraining(gpu, readFromRoot));
  return nodeShort;
}

export function maxDifference(a: readonly number[], b: readonly number[]): number {
  if (a.length !== b.length) throw new Error(`${a.length} values against ${b.length}`);
  return Math.max(...a.map((x, i) => Math.abs(x - b[i]!)));
}

/** Runs a command (from the package root unless `cwd` says otherwise); resolves with its exit code and output. */
export function run(command: string, args: string[], timeoutMs: number, cwd = ROOT): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done, fail) => {
    const child = spawn(command, args, { cwd, timeout: timeoutMs });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', fail);
    child.on('close', (code) => done({ code, stdout, stderr }));
  });
}

/** The one JSON line a golden command prints. */
export function goldenLine(stdout: string): GoldenReport {
  const line = stdout.split('\n').find((l) => l.startsWith('{"fixture"'));
  if (!line) throw new Error(`no golden line in:\n${stdout}`);
  return JSON.parse(line) as GoldenReport;
}

/** Every compared tensor within tolerance, and step losses matching Node's. */
export function expectMatchesFixture(report: GoldenReport, node: GoldenReport, expect: (v: unknown) => { toEqual(x: unknown): void; toBeLessThan(x: number): void; toBeLessThanOrEqual(x: number): void }): void {
  expect(report.failed).toEqual([]);
  expect(Object.keys(report.maxAbsError).sort()).toEqual(Object.keys(node.maxAbsError).sort());
  for (const error of Object.values(report.maxAbsError)) expect(error).toBeLessThanOrEqual(1e-4);
  for (const tag of ['ce', 'bce']) expect(maxDifference(report.losses[tag]!, node.losses[tag]!)).toBeLessThan(LOSS_AGREEMENT);
}
