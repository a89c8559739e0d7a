// `gpt2-prompt serve` as a client sees it, on loopback: a real server process with two prompt
// files on the shipped small model. Every response is validated against docs/openapi.json.
import { describe, it, expect, beforeAll, afterAll, vi } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { run } from '../../src/cli/main.ts';
import { encodeCheckpoint, decodeCheckpoint } from '../../src/prompt/checkpoint.ts';
import { OPENAPI_PATH } from '../../src/node/serve.ts';
import { writePromptFiles, startServer, untilReady, metric, SMALL_MODEL, type ServerProcess as Server } from './harness.ts';

const document = JSON.parse(readFileSync(OPENAPI_PATH, 'utf8'));
const ajv = new Ajv({ strict: false, allErrors: true });
ajv.addSchema(document, 'openapi');

/** Checks a response body against the document's schema for the route, method and status. */
function conforms(route: string, method: string, status: number, body: unknown): void {
  const pointer = (s: string) => s.replace(/~/g, '~0').replace(/\//g, '~1');
  const operation = document.paths[route][method];
  const response = operation.responses[String(status)];
  expect(response, `${method.toUpperCase()} ${route} documents status ${status}`).toBeDefined();
  const ref = response.$ref ? `openapi${response.$ref}/content/application~1json/schema` : `openapi#/paths/${pointer(route)}/${method}/responses/${status}/content/application~1json/schema`;
  const validate = ajv.getSchema(ref)!;
  expect(validate, ref).toBeDefined();
  expect(validate(body), `${method.toUpperCase()} ${route} ${status}: ${ajv.errorsText(validate.errors)} in ${JSON.stringify(body).slice(0, 300)}`).toBe(true);
}

interface Answer {
  status: number;
  body: any;
  headers: Headers;
}

async function post(server: Server, body: unknown, init: { raw?: string; contentType?: string; signal?: AbortSignal } = {}): Promise<Answer> {
  const r = await fetch(`${server.url}/predict`, {
    method: 'POST',
    headers: { 'content-type': init.contentType ?? 'application/json' },
    body: init.raw ?? JSON.stringify(body),
    signal: init.signal ?? null,
  });
  const text = await r.text();
  return { status: r.status, body: JSON.parse(text), headers: r.headers };
}

async function get(server: Server, route: string): Promise<Answer> {
  const r = await fetch(`${server.url}${route}`);
  const text = await r.text();
  return { status: r.status, body: r.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text, headers: r.headers };
}

/** `predict`'s JSON lines for texts, in this process. */
async function predict(prompt: string, texts: string[]): Promise<Record<string, string | number>[]> {
  let stdout = '';
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => ((stdout += String(chunk)), true));
  const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    const code = await run(['node', 'gpt2-prompt', 'predict', '--model', SMALL_MODEL, '--prompt', prompt, ...texts.flatMap((t) => ['--text', t]), '--quiet']);
    expect(code).toBe(0);
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
  return stdout.trim().split('\n').map((l) => JSON.parse(l));
}

let dir: string;
let files: { sentiment: string; emotion: string };
let server: Server;
const started: Server[] = [];

const LIMITS = ['--max-batch-rows', '4', '--max-queued-rows', '64', '--max-client-batch', '8', '--payload-limit', '64000', '--shutdown-timeout', '60'];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gpt2-prompt-serve-'));
  files = await writePromptFiles(dir);
  server = await startServer(['--prompt', files.sentiment, '--prompt', files.emotion, ...LIMITS]);
  started.push(server);
}, 60_000);

afterAll(async () => {
  for (const s of started) if (s.process.exitCode === null) s.process.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

const TEXTS = [
  'A wonderful, moving film.',
  'Dull and far too long.',
  'so happy today',
  '',
  'I love this and I am a little scared of it',
  // Longer than the model takes (251 text tokens): cut as predict cuts it.
  Array.from({ length: 400 }, (_, i) => `word${i % 37}`).join(' '),
  'Meh.',
  'terrible acting, great music',
];

describe('gpt2-prompt serve', () => {
  it('answers /health and /predict with 503 until a real forward has run, then 200', async () => {
    // Both at once, as soon as it listens: loading the model and its warm-up forward take far longer.
    const [health, early] = await Promise.all([get(server, '/health'), post(server, { task: 'sentiment', inputs: 'hi' })]);
    expect(health.status).toBe(503);
    expect(health.body.error_type).toBe('starting');
    conforms('/health', 'get', 503, health.body);
    expect(early.status).toBe(503);
    conforms('/predict', 'post', 503, early.body);
    await untilReady(server);
    const ready = await get(server, '/health');
    conforms('/health', 'get', 200, ready.body);
  }, 120_000);

  it('answers concurrent requests of both tasks with the probabilities predict writes, in batches of several rows', async () => {
    const before = await get(server, '/metrics');
    const requests = TEXTS.flatMap((text, i) => [
      { task: 'sentiment', inputs: i % 2 ? text : [text] },
      { task: 'emotion', inputs: text },
    ]);
    requests.push({ tasks: ['emotion', 'sentiment'], inputs: TEXTS.slice(0, 3) } as never);
    const answers = await Promise.all(requests.map((r) => post(server, r)));
    const bySentiment = await predict(files.sentiment, TEXTS);
    const byEmotion = await predict(files.emotion, TEXTS);
    const close = (got: number, expected: number) => expect(Math.abs(got - expected)).toBeLessThanOrEqual(5e-7 + 1e-9);
    const checkSentiment = (p: any, row: Record<string, string | number>) => {
      expect(p.label).toBe(row['sentiment.label']);
      expect(Object.keys(p.scores)).toEqual(['bad', 'good']);
      close(p.scores.bad, row['sentiment.p(bad)'] as number);
      close(p.scores.good, row['sentiment.p(good)'] as number);
    };
    const checkEmotion = (p: any, row: Record<string, string | number>) => {
      expect(p.labels.join('|')).toBe(row['emotion.label']);
      for (const label of ['joy', 'love', 'anger']) close(p.scores[label], row[`emotion.p(${label})`] as number);
    };
    TEXTS.forEach((_, i) => {
      const s = answers[2 * i]!;
      const e = answers[2 * i + 1]!;
      for (const a of [s, e]) {
        expect(a.status, JSON.stringify(a.body)).toBe(200);
        conforms('/predict', 'post', 200, a.body);
        expect(a.body.predictions).toHaveLength(1);
        expect(Number(a.headers.get('x-queue-time'))).toBeGreaterThanOrEqual(0);
        expect(Number(a.headers.get('x-inference-time'))).toBeGreaterThan(0);
      }
      checkSentiment(s.body.predictions[0], bySentiment[i]!);
      checkEmotion(e.body.predictions[0], byEmotion[i]!);
    });
    const both = answers.at(-1)!;
    expect(both.status).toBe(200);
    conforms('/predict', 'post', 200, both.body);
    both.body.predictions.forEach((p: any, i: number) => {
      expect(Object.keys(p)).toEqual(['emotion', 'sentiment']);
      checkSentiment(p.sentiment, bySentiment[i]!);
      checkEmotion(p.emotion, byEmotion[i]!);
    });
    const after = (await get(server, '/metrics')).body as string;
    const batches = metric(after, 'gpt2_prompt_batch_rows_count') - metric(before.body, 'gpt2_prompt_batch_rows_count');
    const rows = metric(after, 'gpt2_prompt_batch_rows_sum') - metric(before.body, 'gpt2_prompt_batch_rows_sum');
    expect(rows).toBe(2 * TEXTS.length + 3);
    expect(batches).toBeLessThan(rows); // concurrent requests shared passes
  }, 120_000);

  it('answers each bad request with its status and a one-line JSON error, and keeps serving', async () => {
    const cases: [string, () => Promise<Answer>, number, string][] = [
      ['malformed JSON', () => post(server, null, { raw: '{"task": "sentiment", "inputs": ' }), 400, 'bad_request'],
      ['inputs not strings', () => post(server, { task: 'sentiment', inputs: ['ok', 3] }), 400, 'bad_request'],
      ['inputs a number', () => post(server, { task: 'sentiment', inputs: 5 }), 400, 'bad_request'],
      ['no inputs', () => post(server, { task: 'sentiment' }), 400, 'bad_request'],
      ['no task', () => post(server, { inputs: 'x' }), 400, 'bad_request'],
      ['task and tasks', () => post(server, { task: 'sentiment', tasks: ['emotion'], inputs: 'x' }), 400, 'bad_request'],
      ['task not a string', () => post(server, { task: ['sentiment'], inputs: 'x' }), 400, 'bad_request'],
      ['a JSON array', () => post(server, [1, 2]), 400, 'bad_request'],
      ['empty inputs', () => post(server, { task: 'sentiment', inputs: [] }), 400, 'bad_request'],
      ['unknown task', () => post(server, { task: 'sarcasm', inputs: 'x' }), 404, 'unknown_task'],
      ['one unknown of tasks', () => post(server, { tasks: ['sentiment', 'sarcasm'], inputs: 'x' }), 404, 'unknown_task'],
      ['body over --payload-limit', () => post(server, { task: 'sentiment', inputs: 'x'.repeat(70_000) }), 413, 'payload_too_large'],
      ['more inputs than --max-client-batch', () => post(server, { task: 'sentiment', inputs: Array(9).fill('x') }), 413, 'too_many_inputs'],
      ['a text/plain body', () => post(server, { task: 'sentiment', inputs: 'x' }, { contentType: 'text/plain' }), 415, 'unsupported_media_type'],
      ['a form body', () => post(server, null, { raw: 'task=sentiment&inputs=x', contentType: 'application/x-www-form-urlencoded' }), 415, 'unsupported_media_type'],
    ];
    for (const [name, send, status, type] of cases) {
      const a = await send();
      expect(a.status, name).toBe(status);
      expect(a.body.error_type, name).toBe(type);
      expect(a.body.error, name).not.toMatch(/\n|\bat .*\.ts:\d+/);
      conforms('/predict', 'post', status, a.body);
    }
    expect((await post(server, { task: 'sentiment', tasks: undefined, inputs: 'still here' })).status).toBe(200);
    const unknown = await get(server, '/nowhere');
    expect(unknown.status).toBe(404);
    expect(unknown.body.error_type).toBe('not_found');
    const metrics = (await get(server, '/metrics')).body as string;
    expect(metrics).toMatch(/gpt2_prompt_http_requests_total\{route="\/predict",status="413"\} 2/);
    expect(metrics).toMatch(/gpt2_prompt_http_requests_total\{route="\/predict",status="415"\} 2/);
  }, 120_000);

  it('refuses with 429 what would overfill the queue, and answers every other request 200', async () => {
    const requests = Array.from({ length: 40 }, (_, i) => post(server, { task: i % 2 ? 'emotion' : 'sentiment', inputs: Array(8).fill(TEXTS[5]) }));
    const statuses = (await Promise.all(requests)).map((a) => {
      conforms('/predict', 'post', a.status, a.body);
      return a.status;
    });
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThan(0);
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThan(0);
    expect(statuses.every((s) => s === 200 || s === 429)).toBe(true);
    expect((await post(server, { task: 'emotion', inputs: 'after the rush' })).status).toBe(200);
  }, 120_000);

  it('drops the queued rows of a client that disconnects, and keeps serving others', async () => {
    const counts = async () => {
      const text = (await get(server, '/metrics')).body as string;
      return { run: metric(text, 'gpt2_prompt_batch_rows_sum'), dropped: metric(text, 'gpt2_prompt_dropped_rows_total{reason="cancelled"}') || 0 };
    };
    const before = await counts();
    // 56 long rows in batches of four keep the device busy while the leaving request waits behind them.
    const blockers = Array.from({ length: 7 }, () => post(server, { task: 'sentiment', inputs: Array(8).fill(TEXTS[5]) }));
    await new Promise((resolve) => setTimeout(resolve, 30));
    const gone = new AbortController();
    const leaving = post(server, { task: 'emotion', inputs: Array(8).fill('never run') }, { signal: gone.signal });
    await new Promise((resolve) => setTimeout(resolve, 30));
    gone.abort();
    await expect(leaving).rejects.toThrow();
    expect((await Promise.all(blockers)).map((a) => a.status)).toEqual(Array(7).fill(200));
    expect((await post(server, { task: 'emotion', inputs: 'next' })).status).toBe(200);
    const after = await counts();
    const dropped = after.dropped - before.dropped;
    expect(dropped).toBeGreaterThan(0);
    expect(after.run - before.run).toBe(56 + (8 - dropped) + 1);
  }, 120_000);

  it('GET /tasks, /metrics and /openapi.json describe the server', async () => {
    const tasks = await get(server, '/tasks');
    expect(tasks.status).toBe(200);
    conforms('/tasks', 'get', 200, tasks.body);
    expect(tasks.body.tasks.map((t: any) => [t.name, t.kind, t.labels])).toEqual([
      ['sentiment', 'single', ['bad', 'good']],
      ['emotion', 'multi', ['joy', 'love', 'anger']],
    ]);
    expect(tasks.body.model.fingerprint).toMatch(/^[0-9a-f]{16}$/);
    expect(tasks.body.limits).toEqual({ maxBatchRows: 4, maxBatchTokens: 8192, maxQueuedRows: 64, passCostTokens: 72, maxClientBatch: 8, payloadLimit: 64000 });
    const metrics = await get(server, '/metrics');
    expect(metrics.headers.get('content-type')).toMatch(/^text\/plain/);
    for (const name of ['gpt2_prompt_http_requests_total', 'gpt2_prompt_queued_rows', 'gpt2_prompt_batch_rows_bucket', 'gpt2_prompt_queue_seconds_bucket', 'gpt2_prompt_inference_seconds_bucket']) {
      expect(metrics.body).toContain(name);
    }
    const openapi = await get(server, '/openapi.json');
    expect(openapi.body).toEqual(document);
  }, 60_000);
});

describe('gpt2-prompt serve start and shutdown', () => {
  it('on SIGTERM under load answers every accepted request, gives new ones 503, and exits 0', async () => {
    const s = await startServer(['--prompt', files.sentiment, '--prompt', files.emotion, '--max-batch-rows', '1', '--shutdown-timeout', '60']);
    started.push(s);
    await untilReady(s);
    // 160 long rows, one per pass: the drain has work to finish.
    const accepted = Array.from({ length: 10 }, (_, i) => post(s, { task: i % 2 ? 'emotion' : 'sentiment', inputs: Array(16).fill(TEXTS[5]) }));
    const deadline = Date.now() + 30_000;
    // Every request accepted (its rows queued, running (at most one) or run), and work still queued.
    const accounted = async () => {
      const text = (await get(s, '/metrics')).body as string;
      const queued = metric(text, 'gpt2_prompt_queued_rows');
      return queued > 0 && queued + metric(text, 'gpt2_prompt_batch_rows_sum') >= 159;
    };
    while (!(await accounted())) {
      if (Date.now() > deadline) throw new Error('the requests were not all accepted within 30 s');
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    s.process.kill('SIGTERM');
    while (!s.log().includes('draining')) await new Promise((resolve) => setTimeout(resolve, 5));
    const late = await post(s, { task: 'sentiment', inputs: 'too late' });
    expect(late.status).toBe(503);
    expect(late.body.error_type).toBe('draining');
    conforms('/predict', 'post', 503, late.body);
    const health = await get(s, '/health');
    expect(health.status).toBe(503);
    const answers = await Promise.all(accepted);
    expect(answers.map((a) => a.status)).toEqual(Array(10).fill(200));
    expect(await s.exited).toBe(0);
    expect(s.log()).toContain('stopped');
  }, 120_000);

  it('refuses prompt files of another model and duplicate task names at start', async () => {
    const foreign = decodeCheckpoint(readFileSync(files.sentiment), files.sentiment);
    foreign.model = { ...foreign.model, fingerprint: '0000000000000000' };
    const foreignPath = join(dir, 'foreign.gpt2p');
    writeFileSync(foreignPath, encodeCheckpoint(foreign));
    for (const [args, message] of [
      [['--prompt', foreignPath], /foreign\.gpt2p was trained on a different model/],
      [['--prompt', files.sentiment, '--prompt', files.sentiment], /task name 'sentiment' appears twice/],
    ] as const) {
      const s = await startServer([...args]);
      started.push(s);
      expect(await s.exited).toBe(1);
      expect(s.log()).toMatch(message);
    }
  }, 120_000);
});
