// GPT-2 from a Hub laid out on 127.0.0.1 (test/hub/hub-server.ts): stored, resumed after a cut,
// refused when truncated or of another size, cancelled and continued, and checked against an
// adapter's limits before the weights are fetched. Nothing here touches the network.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openHubModel, modelNeeds, whyNotFitting, hubFileUrl, parseHubFileUrl, partialUrl, type ModelStore } from '../../src/hub/hub.ts';
import { DownloadRefused, ResumableDownload } from '../../src/hub/download.ts';
import { fingerprint } from '../../src/gpt2/checkpoint.ts';
import { parseConfig } from '../../src/gpt2/config.ts';
import { readCheckpoint } from '../../src/node/checkpoint-file.ts';
import { startHubServer, CUT_AFTER, type HubServer } from './hub-server.ts';

function mapStore(): ModelStore & { files: Map<string, Uint8Array> } {
  const files = new Map<string, Uint8Array>();
  return {
    files,
    get: async (url) => files.get(url) ?? null,
    put: async (url, bytes) => void files.set(url, bytes),
    delete: async (url) => void files.delete(url),
    list: async () => [...files].map(([url, b]) => ({ url, bytes: b.byteLength })),
  };
}

let hub: HubServer;
let shipped: string;
beforeAll(async () => {
  hub = await startHubServer();
  shipped = await fingerprint(await readCheckpoint('weights/small-gpt2'));
});
afterAll(() => hub.close());

const weightsHits = (repo: string) => hub.hits.filter((h) => h.method === 'GET' && h.path === `/${repo}/resolve/main/model.safetensors`);

describe('openHubModel', () => {
  it('downloads a model laid out as the Hub does, stores it, and opens it from the store without a request', async () => {
    const store = mapStore();
    const first = await openHubModel({ base: hub.base, repo: 'openai-community/gpt2', store });
    expect(first.fromStore).toBe(false);
    expect(await fingerprint(first.checkpoint)).toBe(shipped);
    expect((await store.list()).map((f) => parseHubFileUrl(f.url)?.file).sort()).toEqual(['config.json', 'model.safetensors']);
    const requests = hub.hits.length;
    const second = await openHubModel({ base: hub.base, repo: 'openai-community/gpt2', store });
    expect(second.fromStore).toBe(true);
    expect(hub.hits.length).toBe(requests);
    expect(await fingerprint(second.checkpoint)).toBe(shipped);
  });

  it('resumes a cut transfer with a Range request from the byte where it stopped', async () => {
    hub.cutNext();
    const model = await openHubModel({ base: hub.base, repo: 'test/flaky' });
    expect(model.resumed).toBe(true);
    expect(weightsHits('test/flaky').map((h) => h.range)).toEqual(['bytes=0-0', undefined, `bytes=${CUT_AFTER}-`]);
    expect(await fingerprint(model.checkpoint)).toBe(shipped);
  });

  it('refuses a truncated file and stores nothing', async () => {
    const store = mapStore();
    const error = await openHubModel({ base: hub.base, repo: 'test/truncated', store }).catch((e: Error) => e);
    expect(error).toBeInstanceOf(DownloadRefused);
    expect((error as Error).message).toMatch(/truncated \(tensor .* ends at byte \d+, but the file has only \d+ bytes\); the download was discarded/);
    expect(store.files.size).toBe(0);
  });

  it('refuses a file whose size is not the one announced', async () => {
    const error = await openHubModel({ base: hub.base, repo: 'test/mismatch', store: mapStore() }).catch((e: Error) => e);
    expect(error).toBeInstanceOf(DownloadRefused);
    expect((error as Error).message).toMatch(/the server sends 6668232 bytes, but the file should have 6669232; the download was discarded/);
  });

  it('a cancelled download keeps its bytes and the next call continues them', async () => {
    const downloads = new Map<string, ResumableDownload>();
    const stop = new AbortController();
    const cancelled = await openHubModel({
      base: hub.base, repo: 'test/cancel', downloads, signal: stop.signal,
      onProgress: (_, p) => void (p.received > 0 && stop.abort(new Error('cancelled by the visitor'))),
    }).catch((e: Error) => e);
    expect((cancelled as Error).message).toBe('cancelled by the visitor');
    const kept = downloads.get(hubFileUrl(hub.base, 'test/cancel', 'model.safetensors'))!.received;
    expect(kept).toBeGreaterThan(0);
    const model = await openHubModel({ base: hub.base, repo: 'test/cancel', downloads });
    expect(model.resumed).toBe(true);
    expect(weightsHits('test/cancel').at(-1)!.range).toBe(`bytes=${kept}-`);
    expect(await fingerprint(model.checkpoint)).toBe(shipped);
  });

  it('an unfinished download is kept in the store, and a later visit (a fresh page: no downloads in memory) asks only for the rest', async () => {
    const store = mapStore();
    const stop = new AbortController();
    const url = hubFileUrl(hub.base, 'test/visits', 'model.safetensors');
    const cancelled = await openHubModel({
      base: hub.base, repo: 'test/visits', store, signal: stop.signal,
      onProgress: (_, p) => void (p.received > 0 && stop.abort(new Error('tab closed'))),
    }).catch((e: Error) => e);
    expect((cancelled as Error).message).toBe('tab closed');
    const kept = store.files.get(partialUrl(url))!.byteLength;
    expect(kept).toBeGreaterThan(0);
    const model = await openHubModel({ base: hub.base, repo: 'test/visits', store });
    expect(model.resumed).toBe(true);
    expect(weightsHits('test/visits').at(-1)!.range).toBe(`bytes=${kept}-`);
    expect(await fingerprint(model.checkpoint)).toBe(shipped);
    expect([...store.files.keys()].sort()).toEqual([hubFileUrl(hub.base, 'test/visits', 'config.json'), url]);
  });

  it('a refusal by check() comes before any weights are fetched', async () => {
    const error = await openHubModel({ base: hub.base, repo: 'test/refused', check: () => { throw new Error('too large'); } }).catch((e: Error) => e);
    expect((error as Error).message).toBe('too large');
    expect(weightsHits('test/refused').map((h) => h.range)).toEqual(['bytes=0-0']);
  });

  it('reads the repository and base back from a file URL', () => {
    expect(parseHubFileUrl(hubFileUrl('https://huggingface.co', 'openai-community/gpt2', 'config.json'))).toEqual({ base: 'https://huggingface.co', repo: 'openai-community/gpt2', file: 'config.json' });
    expect(parseHubFileUrl(hubFileUrl('https://huggingface.co/', 'gpt2', 'model.safetensors'))).toEqual({ base: 'https://huggingface.co', repo: 'gpt2', file: 'model.safetensors' });
    expect(parseHubFileUrl(hubFileUrl('http://127.0.0.1:8080/mirror', 'a/b', 'config.json'))).toEqual({ base: 'http://127.0.0.1:8080/mirror', repo: 'a/b', file: 'config.json' });
    expect(parseHubFileUrl('https://example.com/model.safetensors')).toBeNull();
  });

  it('names a model id that is not one', () => {
    expect(() => hubFileUrl(hub.base, '../etc', 'config.json')).toThrow('"../etc" is not a Hugging Face model id');
  });
});

describe('modelNeeds', () => {
  const gpt2 = parseConfig({ vocab_size: 50257, n_positions: 1024, n_embd: 768, n_layer: 12, n_head: 12, activation_function: 'gelu_new', layer_norm_epsilon: 1e-5 });
  it('counts GPT-2 small\'s 124,439,808 parameters and refuses it where a buffer cannot hold its embeddings', () => {
    const needs = modelNeeds(gpt2, 548_105_171, { batchSize: 8, tokens: 128 });
    expect(needs.parameters).toBe(124_439_808);
    expect(needs.weightBytes).toBe(4 * 124_439_808);
    expect(needs.largestBuffer.bytes).toBe(4 * 50257 * 768);
    // WebGPU's default maxStorageBufferBindingSize, 128 MiB, is below the 147 MiB embedding table.
    expect(whyNotFitting(needs, { maxBufferSize: 2 ** 28, maxStorageBufferBindingSize: 2 ** 27 })).toBe(
      'the token embeddings (50257 × 768) take 147 MiB in one buffer, over this adapter\'s limit of 128 MiB (maxStorageBufferBindingSize)',
    );
    expect(whyNotFitting(needs, { maxBufferSize: 2 ** 30, maxStorageBufferBindingSize: 2 ** 30 })).toBeNull();
    expect(whyNotFitting(needs, { maxBufferSize: 2 ** 30, maxStorageBufferBindingSize: 2 ** 30 }, 100 * 2 ** 20)).toMatch(/the model file takes 523 MiB, more than the 100 MiB/);
  });
});
