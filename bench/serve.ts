// `gpt2-prompt serve` under load on 127.0.0.1: a real server process with two prompt files
// (a single-label and a multi-label task) on the shipped small model, driven by autocannon
// with requests of both tasks interleaved, one text each. Per server setting (batching, and
// --max-batch-rows 1) and concurrency: requests/s, rows/s, p50/p99 latency and the mean rows
// per GPT-2 pass (from the server's /metrics), for review-length texts, and at the top
// concurrency for tweet-length ones too; then a constant-rate run at half the batching
// server's measured capacity, with its failures and p99. The load generator (autocannon, in
// this bench's process) shares the machine's cores with the server (whose process also holds
// llvmpipe's threads), so each run reports both processes' CPU time per request and the load
// average: what the client took from the server is measured, not guessed.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { writePromptFiles, startServer, untilReady, metric, type ServerProcess } from '../test/serve/harness.ts';
import { seededRandom } from '../src/util/random.ts';

export interface ServeBenchOptions {
  /** Seconds per closed-loop run. */
  seconds: number;
  concurrencies: number[];
  /** Seconds of the constant-rate run. */
  constantSeconds: number;
}

export interface LoadResult {
  setting: string;
  /** Words per text. */
  texts: string;
  concurrency: number;
  requestsPerSec: number;
  rowsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  meanBatchRows: number;
  failures: number;
  /** CPU ms per answered request: the server process (llvmpipe's threads included), and the load generator. */
  serverCpuMsPerRequest: number;
  clientCpuMsPerRequest: number;
  /** 1-minute load average at the run's end. */
  loadAverage: number;
}

export interface ConstantRateResult {
  ratePerSec: number;
  seconds: number;
  sent: number;
  ok: number;
  failures: number;
  p50Ms: number;
  p99Ms: number;
  meanBatchRows: number;
}

const WORDS = 'the film was a great wonderful boring awful story with actors who gave me joy and some fear but mostly love for its music and long quiet scenes'.split(' ');

/** Text lengths in words: review-like (about 10 to 80 tokens), and tweet-like (about 3 to 15). */
const REVIEWS = { minWords: 8, maxWords: 64 };
const SHORT = { minWords: 2, maxWords: 12 };
type Lengths = typeof REVIEWS;

/** 64 seeded texts of the given lengths. */
function texts(lengths: Lengths): string[] {
  const random = seededRandom(2026);
  const words = () => lengths.minWords + Math.floor(random() * (lengths.maxWords - lengths.minWords + 1));
  return Array.from({ length: 64 }, () => Array.from({ length: words() }, () => WORDS[Math.floor(random() * WORDS.length)]!).join(' '));
}

/** Requests of both tasks, interleaved, one text each. */
function requests(lengths: Lengths): autocannon.Request[] {
  return texts(lengths).map((text, i) => ({
    method: 'POST',
    path: '/predict',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ task: i % 2 ? 'emotion' : 'sentiment', inputs: text }),
  }));
}

async function serverCounts(server: ServerProcess): Promise<{ rows: number; batches: number; cpuSeconds: number }> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  return { rows: metric(text, 'gpt2_prompt_batch_rows_sum'), batches: metric(text, 'gpt2_prompt_batch_rows_count'), cpuSeconds: metric(text, 'gpt2_prompt_process_cpu_seconds_total') };
}

async function load(server: ServerProcess, options: { connections: number; seconds: number; overallRate?: number; lengths?: Lengths }) {
  const before = await serverCounts(server);
  const clientBefore = process.cpuUsage();
  const result = await autocannon({
    url: server.url,
    connections: options.connections,
    duration: options.seconds,
    requests: requests(options.lengths ?? REVIEWS),
    timeout: 30,
    ...(options.overallRate ? { overallRate: options.overallRate } : {}),
  });
  const client = process.cpuUsage(clientBefore);
  const after = await serverCounts(server);
  const ok = result['2xx'];
  return {
    ok,
    sent: result.requests.sent,
    failures: result.non2xx + result.errors + result.timeouts,
    requestsPerSec: ok / result.duration,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    meanBatchRows: (after.rows - before.rows) / Math.max(1, after.batches - before.batches),
    serverCpuMsPerRequest: ((after.cpuSeconds - before.cpuSeconds) * 1000) / Math.max(1, ok),
    clientCpuMsPerRequest: (client.user + client.system) / 1000 / Math.max(1, ok),
    loadAverage: loadavg()[0]!,
  };
}

export async function serveBench(options: ServeBenchOptions): Promise<{ closedLoop: LoadResult[]; constantRate: ConstantRateResult; speedupAtMaxConcurrency: number; shortTextSpeedupAtMaxConcurrency: number; textsPerRequest: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'gpt2-prompt-serve-bench-'));
  const started: ServerProcess[] = [];
  try {
    const files = await writePromptFiles(dir);
    const settings = [
      { setting: 'batching (--max-batch-rows 32)', flags: ['--max-batch-rows', '32'] },
      { setting: 'one row per pass (--max-batch-rows 1)', flags: ['--max-batch-rows', '1'] },
    ];
    const closedLoop: LoadResult[] = [];
    for (const { setting, flags } of settings) {
      const server = await startServer(['--prompt', files.sentiment, '--prompt', files.emotion, ...flags]);
      started.push(server);
      await untilReady(server);
      await load(server, { connections: 4, seconds: 2 }); // warm the pipelines of every batch shape in reach
      for (const concurrency of options.concurrencies) {
        // Tweet-length texts only at the top concurrency: where a pass's fixed cost dominates.
        const workloads = concurrency === Math.max(...options.concurrencies) ? [REVIEWS, SHORT] : [REVIEWS];
        for (const lengths of workloads) {
          const r = await load(server, { connections: concurrency, seconds: options.seconds, lengths });
          const texts = `${lengths.minWords}-${lengths.maxWords} words`;
          closedLoop.push({ setting, texts, concurrency, requestsPerSec: r.requestsPerSec, rowsPerSec: r.requestsPerSec, p50Ms: r.p50Ms, p99Ms: r.p99Ms, meanBatchRows: r.meanBatchRows, failures: r.failures, serverCpuMsPerRequest: r.serverCpuMsPerRequest, clientCpuMsPerRequest: r.clientCpuMsPerRequest, loadAverage: r.loadAverage });
          console.log(`  ${setting}, ${texts}, concurrency ${concurrency}: ${r.requestsPerSec.toFixed(1)} requests/s, p99 ${r.p99Ms} ms, ${r.meanBatchRows.toFixed(2)} rows a pass, CPU ms a request: server ${r.serverCpuMsPerRequest.toFixed(2)}, client ${r.clientCpuMsPerRequest.toFixed(2)}; load ${r.loadAverage.toFixed(1)}`);
        }
      }
      server.process.kill('SIGTERM');
      await server.exited;
    }
    const top = Math.max(...options.concurrencies);
    const at = (setting: string, lengths = REVIEWS) => closedLoop.find((r) => r.setting === setting && r.concurrency === top && r.texts === `${lengths.minWords}-${lengths.maxWords} words`)!.requestsPerSec;
    const capacity = at(settings[0]!.setting);
    const rate = Math.max(1, Math.round(capacity / 2));
    const server = await startServer(['--prompt', files.sentiment, '--prompt', files.emotion]);
    started.push(server);
    await untilReady(server);
    await load(server, { connections: 4, seconds: 2 });
    const c = await load(server, { connections: top, seconds: options.constantSeconds, overallRate: rate });
    server.process.kill('SIGTERM');
    await server.exited;
    return {
      closedLoop,
      constantRate: { ratePerSec: rate, seconds: options.constantSeconds, sent: c.sent, ok: c.ok, failures: c.failures, p50Ms: c.p50Ms, p99Ms: c.p99Ms, meanBatchRows: c.meanBatchRows },
      speedupAtMaxConcurrency: capacity / at(settings[1]!.setting),
      shortTextSpeedupAtMaxConcurrency: at(settings[0]!.setting, SHORT) / at(settings[1]!.setting, SHORT),
      textsPerRequest: 1,
    };
  } finally {
    for (const s of started) if (s.process.exitCode === null) s.process.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}
