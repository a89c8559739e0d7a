// `serve`: many prompt files on one model behind HTTP. The flags, then the order of a start:
// listen (health 503), load the model and check every prompt file against it, run a real
// one-row forward, serve; SIGTERM or SIGINT drains and exits.
import { openSession, closeSession, readPromptFile, positiveInt, nonNegativeNumber, UsageError } from './common.ts';
import { MixedTaskService } from '../serve/service.ts';
import { PredictionServer } from '../node/serve.ts';
import type { Backend } from '../node/device.ts';

export interface ServeFlags {
  model?: string;
  prompt?: string | string[];
  host?: string;
  port?: number | string;
  maxBatchRows?: number | string;
  maxBatchTokens?: number | string;
  maxQueuedRows?: number | string;
  passCostTokens?: number | string;
  maxClientBatch?: number | string;
  payloadLimit?: number | string;
  shutdownTimeout?: number | string;
  backend?: string;
}

export const SERVE_DEFAULTS = {
  host: '127.0.0.1',
  port: 8080,
  maxBatchRows: 32,
  maxBatchTokens: 8192,
  maxQueuedRows: 1024,
  // A pass's fixed cost in padded tokens, as measured for the shipped small model on llvmpipe
  // (about 9 ms fixed, 0.125 ms a padded token): see docs/serving.md.
  passCostTokens: 72,
  maxClientBatch: 64,
  payloadLimit: 2 * 1024 * 1024,
  shutdownTimeout: 30,
};

function port(value: unknown): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new UsageError(`--port must be an integer from 0 to 65535, got '${value}'`);
  return n;
}

/** Serves until SIGTERM or SIGINT; resolves once drained, rejects when the drain ran out of time. */
export async function serveCommand(flags: ServeFlags): Promise<void> {
  const paths = flags.prompt === undefined ? [] : Array.isArray(flags.prompt) ? flags.prompt : [flags.prompt];
  if (paths.length === 0) throw new UsageError('--prompt FILE is required (repeat it to serve several prompt files)');
  const limits = {
    maxBatchRows: positiveInt(flags.maxBatchRows ?? SERVE_DEFAULTS.maxBatchRows, '--max-batch-rows'),
    maxBatchTokens: positiveInt(flags.maxBatchTokens ?? SERVE_DEFAULTS.maxBatchTokens, '--max-batch-tokens'),
    maxQueuedRows: positiveInt(flags.maxQueuedRows ?? SERVE_DEFAULTS.maxQueuedRows, '--max-queued-rows'),
    passCostTokens: positiveInt(flags.passCostTokens ?? SERVE_DEFAULTS.passCostTokens, '--pass-cost-tokens'),
  };
  const maxClientBatch = positiveInt(flags.maxClientBatch ?? SERVE_DEFAULTS.maxClientBatch, '--max-client-batch');
  const payloadLimit = positiveInt(flags.payloadLimit ?? SERVE_DEFAULTS.payloadLimit, '--payload-limit');
  const shutdownSeconds = nonNegativeNumber(flags.shutdownTimeout ?? SERVE_DEFAULTS.shutdownTimeout, '--shutdown-timeout');

  const server = new PredictionServer({ host: flags.host ?? SERVE_DEFAULTS.host, port: port(flags.port ?? SERVE_DEFAULTS.port), payloadLimit, maxClientBatch });
  let stop: (signal: string) => void = () => undefined;
  const stopped = new Promise<string>((resolve) => (stop = resolve));
  const onSignal = (signal: NodeJS.Signals) => stop(signal);
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  try {
    const address = await server.listen();
    process.stderr.write(`gpt2-prompt serve: listening on ${address} (loading the model)\n`);
    const loading = (async () => {
      const session = await openSession(flags.model, flags.backend as Backend | undefined);
      try {
        const prompts = [];
        for (const source of paths) prompts.push({ source, checkpoint: await readPromptFile(source, session.identity) });
        const service = new MixedTaskService(session.model, session.tokenizer, prompts, limits, server.batcherHooks);
        await service.warmUp();
        server.attach(service, session.identity);
        process.stderr.write(`gpt2-prompt serve: ready on ${address}: ${service.tasks.map((t) => `${t.name} (${t.kind}, ${t.source})`).join(', ')}\n`);
        return { session, service };
      } catch (error) {
        closeSession(session);
        throw error;
      }
    })();
    // A signal during loading stops the start; a failed load ends the command with its error.
    const first = await Promise.race([loading.then(() => null), stopped]);
    const signal = first ?? (await stopped);
    process.stderr.write(`gpt2-prompt serve: ${signal}: draining (new requests get 503)\n`);
    const drained = await server.shutdown(shutdownSeconds * 1000);
    const loaded = await loading.catch(() => null);
    if (loaded) {
      loaded.service.dispose();
      closeSession(loaded.session);
    }
    if (!drained) throw new UsageError(`the drain took longer than --shutdown-timeout ${shutdownSeconds} s; requests still queued were answered 503`);
    process.stderr.write('gpt2-prompt serve: stopped\n');
  } catch (error) {
    await server.app.close().catch(() => undefined);
    throw error;
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
}
