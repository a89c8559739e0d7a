// The HTTP face of mixed-task serving (Node). Fastify, because it already does what a small
// hand-written server would get wrong: the body limit (413 before the body is read when the
// Content-Length says so), content-type checks (415), JSON parsing (400), JSON-schema validation
// of the request from the checked-in OpenAPI document (400), and keep-alive handling on close.
// The server listens before the model is loaded (/health answers 503 until a real forward has
// run) and drains on shutdown: new requests get 503 while every accepted one is answered.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { Registry, Counter, Gauge, Histogram, collectDefaultMetrics } from 'prom-client';
import type { ModelIdentity } from '../prompt/checkpoint.ts';
import { QueueFullError, ShuttingDownError, CancelledError, type BatchInfo, type BatcherHooks } from '../serve/batcher.ts';
import { UnknownTaskError, type MixedTaskService } from '../serve/service.ts';

/** The checked-in OpenAPI document: served at /openapi.json, and its PredictRequest validates /predict bodies. */
export const OPENAPI_PATH = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'docs', 'openapi.json');

export interface HttpOptions {
  host: string;
  port: number;
  /** Bytes a request body may have. */
  payloadLimit: number;
  /** Inputs one request may carry. */
  maxClientBatch: number;
}

type ErrorType =
  | 'bad_request'
  | 'unknown_task'
  | 'not_found'
  | 'payload_too_large'
  | 'too_many_inputs'
  | 'unsupported_media_type'
  | 'queue_full'
  | 'starting'
  | 'draining'
  | 'internal';

/** An error answered as JSON {error, error_type} with its status. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly type: ErrorType,
    message: string,
  ) {
    super(message);
  }
}

interface PredictBody {
  task?: string;
  tasks?: string[];
  inputs: string | string[];
}

/** Fastify's own client errors, by code. */
const FRAMEWORK_ERRORS: Record<string, { status: number; type: ErrorType }> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { status: 413, type: 'payload_too_large' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { status: 415, type: 'unsupported_media_type' },
  FST_ERR_CTP_INVALID_JSON_BODY: { status: 400, type: 'bad_request' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { status: 400, type: 'bad_request' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { status: 400, type: 'bad_request' },
};

const oneLine = (s: string) => s.replace(/\s+/g, ' ').trim();

interface ValidationIssue {
  instancePath: string;
  message?: string;
}

/** The schema's complaint in the request's terms (ajv's for "inputs" lists every branch of its oneOf). */
function validationMessage(issues: ValidationIssue[], fallback: string): string {
  const first = issues[0];
  if (first?.instancePath.startsWith('/inputs')) return '"inputs" must be a text or a non-empty list of texts';
  if (first?.instancePath.startsWith('/tasks')) return '"tasks" must be a non-empty list of task names';
  if (first?.instancePath === '/task') return '"task" must be a task name (a string)';
  if (first && first.instancePath === '' && /required property 'inputs'/.test(first.message ?? '')) return 'missing "inputs" (a text or a list of texts)';
  if (first && first.instancePath === '') return 'the body must be a JSON object with "task" or "tasks" and "inputs"';
  return oneLine(fallback);
}

export class PredictionServer {
  readonly app: FastifyInstance;
  readonly registry = new Registry();
  private service: MixedTaskService | null = null;
  private identity: ModelIdentity | null = null;
  private draining = false;
  private inFlight = 0;
  private inFlightDone: (() => void)[] = [];
  private readonly metrics;

  constructor(readonly options: HttpOptions) {
    const document = JSON.parse(readFileSync(OPENAPI_PATH, 'utf8')) as { components: { schemas: Record<string, object> } };
    this.app = Fastify({
      bodyLimit: options.payloadLimit,
      // Types as sent: "inputs": 5 is an error, not the text "5".
      ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
      logger: false,
    });
    // Only JSON bodies: a text/plain body is a 415, not a string to validate.
    this.app.removeContentTypeParser(['text/plain']);
    collectDefaultMetrics({ register: this.registry, prefix: 'gpt2_prompt_' });
    const registers = [this.registry];
    const server = this;
    this.metrics = {
      requests: new Counter({ name: 'gpt2_prompt_http_requests_total', help: 'HTTP requests answered, by route and status', labelNames: ['route', 'status'], registers }),
      queued: new Gauge({
        name: 'gpt2_prompt_queued_rows',
        help: 'Rows (texts) waiting for a batch',
        registers,
        collect() {
          this.set(server.service?.batcher.queuedRows ?? 0);
        },
      }),
      droppedRows: new Counter({ name: 'gpt2_prompt_dropped_rows_total', help: 'Rows taken out of the queue unrun: cancelled (the client went away) or shutdown (the drain ran out of time)', labelNames: ['reason'], registers }),
      batchRows: new Histogram({ name: 'gpt2_prompt_batch_rows', help: 'Rows per GPT-2 pass', buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256], registers }),
      batchSeconds: new Histogram({ name: 'gpt2_prompt_batch_seconds', help: 'Time of one batch on the device', buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers }),
      queueSeconds: new Histogram({ name: 'gpt2_prompt_queue_seconds', help: "A request's time from acceptance until its first row ran", buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers }),
      inferenceSeconds: new Histogram({ name: 'gpt2_prompt_inference_seconds', help: "A request's time from its first batch starting until its last finished", buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers }),
    };

    this.app.addHook('onRequest', async () => {
      if (this.draining) throw new HttpError(503, 'draining', 'the server is shutting down');
    });
    this.app.addHook('onResponse', async (request, reply) => {
      this.metrics.requests.inc({ route: request.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) });
    });
    this.app.setErrorHandler((error: Error & { code?: string; statusCode?: number; validation?: unknown }, _request, reply) => {
      const known = error instanceof HttpError ? { status: error.status, type: error.type } : FRAMEWORK_ERRORS[error.code ?? ''];
      if (known) return reply.code(known.status).send({ error: oneLine(error.message), error_type: known.type });
      if (error.validation) return reply.code(400).send({ error: validationMessage(error.validation as ValidationIssue[], error.message), error_type: 'bad_request' });
      if (error.statusCode && error.statusCode >= 400 && error.statusCode < 500) return reply.code(error.statusCode).send({ error: oneLine(error.message), error_type: 'bad_request' });
      process.stderr.write(`gpt2-prompt serve: internal error: ${error.stack ?? error.message}\n`);
      return reply.code(500).send({ error: 'internal error (see the server log)', error_type: 'internal' });
    });
    this.app.setNotFoundHandler((request, reply) => {
      reply.code(404).send({ error: `no route ${request.method} ${request.url.split('?')[0]}`, error_type: 'not_found' });
    });

    this.app.post('/predict', { schema: { body: document.components.schemas.PredictRequest } }, (request, reply) => this.predict(request as FastifyRequest<{ Body: PredictBody }>, reply));
    this.app.get('/tasks', async () => {
      const service = this.ready();
      const c = this.identity!.config;
      const limits = service.batcher.limits;
      return {
        tasks: service.tasks,
        model: { fingerprint: this.identity!.fingerprint, nLayer: c.nLayer, nEmbd: c.nEmbd, nHead: c.nHead, nPositions: c.nPositions, vocabSize: c.vocabSize },
        limits: { ...limits, maxClientBatch: options.maxClientBatch, payloadLimit: options.payloadLimit },
      };
    });
    this.app.get('/health', async () => {
      this.ready();
      return { status: 'ready' };
    });
    this.app.get('/metrics', async (_request, reply) => {
      reply.header('content-type', this.registry.contentType);
      return this.registry.metrics();
    });
    this.app.get('/openapi.json', async () => document);
  }

  /** Starts listening (the model may still be loading); resolves with the address. */
  async listen(): Promise<string> {
    return this.app.listen({ host: this.options.host, port: this.options.port });
  }

  /** Serves `service` from now on: call once its warm-up forward has succeeded. */
  attach(service: MixedTaskService, identity: ModelIdentity): void {
    this.service = service;
    this.identity = identity;
  }

  /** The service's batcher hooks: batch sizes and times, dropped rows. */
  readonly batcherHooks: BatcherHooks = {
    onBatch: (info: BatchInfo) => {
      this.metrics.batchRows.observe(info.rows);
      this.metrics.batchSeconds.observe(info.milliseconds / 1000);
    },
    onDropped: (rows, reason) => this.metrics.droppedRows.inc({ reason }, rows),
  };

  /**
   * Drains: new requests answer 503 at once, accepted ones are answered, then the server
   * closes. Resolves true when everything was answered within `timeoutMs`; otherwise requests
   * still queued get 503, and it resolves false.
   */
  async shutdown(timeoutMs: number): Promise<boolean> {
    this.draining = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
    const drained = (async () => {
      await this.service?.batcher.close();
      if (this.inFlight > 0) await new Promise<void>((resolve) => this.inFlightDone.push(resolve));
      return true as const;
    })();
    const complete = await Promise.race([drained, timeout]);
    if (!complete) this.service?.batcher.dropQueued();
    // Give the responses to dropped requests a moment to go out before the sockets close.
    if (!complete) await Promise.race([drained, new Promise((resolve) => setTimeout(resolve, 200))]);
    clearTimeout(timer);
    await this.app.close();
    return complete;
  }

  private ready(): MixedTaskService {
    if (this.draining) throw new HttpError(503, 'draining', 'the server is shutting down');
    if (!this.service) throw new HttpError(503, 'starting', 'the model is still loading');
    return this.service;
  }

  private async predict(request: FastifyRequest<{ Body: PredictBody }>, reply: FastifyReply): Promise<unknown> {
    const service = this.ready();
    const { task, tasks, inputs } = request.body;
    if ((task === undefined) === (tasks === undefined)) throw new HttpError(400, 'bad_request', 'give exactly one of "task" (a name) and "tasks" (a list of names)');
    const texts = typeof inputs === 'string' ? [inputs] : inputs;
    if (texts.length > this.options.maxClientBatch) {
      throw new HttpError(413, 'too_many_inputs', `${texts.length} inputs, at most ${this.options.maxClientBatch} per request (--max-client-batch)`);
    }
    const names = task !== undefined ? [task] : tasks!;
    try {
      service.taskIndices(names);
    } catch (error) {
      if (error instanceof UnknownTaskError) throw new HttpError(404, 'unknown_task', error.message);
      throw error;
    }
    // A client that goes away takes its rows that have not run out of the queue.
    const gone = new AbortController();
    const onClose = () => {
      if (!reply.raw.writableFinished) gone.abort();
    };
    reply.raw.once('close', onClose);
    this.inFlight++;
    try {
      const answer = await service.predict(names, texts, gone.signal);
      this.metrics.queueSeconds.observe(answer.queueMs / 1000);
      this.metrics.inferenceSeconds.observe(answer.inferenceMs / 1000);
      reply.header('x-queue-time', answer.queueMs.toFixed(3)).header('x-inference-time', answer.inferenceMs.toFixed(3));
      return { predictions: task !== undefined ? answer.predictions.map((p) => p[task]) : answer.predictions };
    } catch (error) {
      if (error instanceof QueueFullError) throw new HttpError(429, 'queue_full', error.message);
      if (error instanceof ShuttingDownError) throw new HttpError(503, 'draining', error.message);
      if (error instanceof CancelledError) return reply.code(499).send({ error: error.message, error_type: 'bad_request' });
      throw error;
    } finally {
      reply.raw.off('close', onClose);
      if (--this.inFlight === 0) for (const wake of this.inFlightDone.splice(0)) wake();
    }
  }
}
