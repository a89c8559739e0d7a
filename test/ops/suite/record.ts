// Node side of the op suite: each host's results (max errors and time per case) written to
// test-results/op-suite-<host>.json for the record.
import { mkdirSync, writeFileSync } from 'node:fs';
import type { CaseResult } from './runner.ts';

export function recordSuiteResults(host: string, adapter: string, results: readonly CaseResult[]): void {
  const cases = results.map((r) => ({
    name: r.name,
    ok: r.ok,
    ms: Math.round(r.ms),
    maxAbsError: Object.fromEntries(r.checks.filter((c) => c.what !== 'shape').map((c) => [c.what, c.maxAbsError])),
  }));
  mkdirSync('test-results', { recursive: true });
  writeFileSync(`test-results/op-suite-${host}.json`, JSON.stringify({ adapter, cases }, null, 1) + '\n');
}
