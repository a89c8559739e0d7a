// GPT-2 from the Hugging Face Hub for any host with fetch: the files' URLs, what a model needs
// (storage, GPU memory, the largest buffer) checked against an adapter's limits before anything
// large is fetched, and the download itself, resumable, verified, and kept in a ModelStore so a
// second visit opens it offline.
import { parseConfig, type GPT2Config } from '../gpt2/config.ts';
import { expectedTensors, loadCheckpoint, type GPT2Checkpoint } from '../gpt2/checkpoint.ts';
import { numel } from '../nn/safetensors.ts';
import { DownloadRefused, ResumableDownload, probeSize, type DownloadProgress } from './download.ts';

export const HUB_URL = 'https://huggingface.co';
export const DEFAULT_REPO = 'openai-community/gpt2';
/** The files of a GPT-2 checkpoint in the Hub's layout. */
export const MODEL_FILES = ['config.json', 'model.safetensors'] as const;
export type ModelFile = (typeof MODEL_FILES)[number];

/** `owner/name` or a bare name (gpt2-medium), as the Hub spells repositories. */
const REPO_ID = /^[A-Za-z0-9][\w.-]*(\/[A-Za-z0-9][\w.-]*)?$/;

/** Where the Hub (or a mirror at `base`) serves a file of `repo`'s main branch. */
export function hubFileUrl(base: string, repo: string, file: ModelFile): string {
  if (!REPO_ID.test(repo)) throw new Error(`"${repo}" is not a Hugging Face model id (owner/name, e.g. ${DEFAULT_REPO})`);
  return `${base.replace(/\/+$/, '')}/${repo}/resolve/main/${file}`;
}

/**
 * The Hub repository and base URL of a file URL made by hubFileUrl, or null for another URL.
 * The last two path segments before resolve/main are read as owner/name, a single one as a bare
 * name (gpt2); so a bare name under a mirror's path prefix reads as owner/name.
 */
export function parseHubFileUrl(url: string): { base: string; repo: string; file: string } | null {
  const m = /^(\w+:\/\/[^/]+)((?:\/[^/]+)*)\/resolve\/main\/([^/]+)$/.exec(url);
  if (!m) return null;
  const segments = m[2]!.split('/').slice(1);
  const owned = segments.length >= 2 ? 2 : 1;
  if (segments.length < owned) return null;
  return { base: m[1]! + segments.slice(0, -owned).map((s) => `/${s}`).join(''), repo: segments.slice(-owned).join('/'), file: m[3]! };
}

/** Where a store keeps the first bytes of an unfinished download of `url`. */
export function partialUrl(url: string): string {
  return `${url}?partial`;
}

/** What training a prompt on a model takes; GPU figures are estimates, named as such on the page. */
export interface ModelNeeds {
  parameters: number;
  /** The safetensors file, as stored. */
  storageBytes: number;
  /** The weights in float32 on the GPU. */
  weightBytes: number;
  /** Activations of one training batch kept for the backward pass (estimate). */
  batchBytes: number;
  /** The largest single buffer: the token embeddings or one batch's attention scores. */
  largestBuffer: { what: string; bytes: number };
}

/** The limits of a WebGPU adapter that decide whether a model fits. */
export interface AdapterLimits {
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
}

export function modelNeeds(config: GPT2Config, storageBytes: number, batch: { batchSize: number; tokens: number }): ModelNeeds {
  const parameters = expectedTensors(config).reduce((n, [, shape]) => n + numel(shape), 0);
  const { nEmbd: C, nHead: H, nLayer, vocabSize: V } = config;
  const { batchSize: B, tokens: T } = batch;
  // Per layer the tape keeps about 16 [B, T, C] arrays (norms, q/k/v, projections, the 4C MLP
  // inside) and the attention probabilities with their scores.
  const scores = 4 * B * H * T * T;
  const batchBytes = nLayer * (16 * 4 * B * T * C + 2 * scores);
  const embeddings = 4 * V * C;
  const largestBuffer = embeddings >= scores ? { what: `the token embeddings (${V} × ${C})`, bytes: embeddings } : { what: `one batch's attention scores (${B} × ${H} heads × ${T}²)`, bytes: scores };
  return { parameters, storageBytes, weightBytes: 4 * parameters, batchBytes, largestBuffer };
}

/** Why the model cannot run on an adapter with these limits, or null when it fits. */
export function whyNotFitting(needs: ModelNeeds, limits: AdapterLimits, storageFree?: number): string | null {
  const mb = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;
  const buffer = Math.min(limits.maxBufferSize, limits.maxStorageBufferBindingSize);
  if (needs.largestBuffer.bytes > buffer) {
    return `${needs.largestBuffer.what} take ${mb(needs.largestBuffer.bytes)} in one buffer, over this adapter's limit of ${mb(buffer)} (maxStorageBufferBindingSize)`;
  }
  if (storageFree !== undefined && needs.storageBytes > storageFree) {
    return `the model file takes ${mb(needs.storageBytes)}, more than the ${mb(storageFree)} this browser lets the page store`;
  }
  return null;
}

/** Where downloaded model files are kept (a page: Cache Storage; tests: a Map). */
export interface ModelStore {
  get(url: string): Promise<Uint8Array | null>;
  put(url: string, bytes: Uint8Array): Promise<void>;
  delete(url: string): Promise<void>;
  /** Every stored file with its size. */
  list(): Promise<{ url: string; bytes: number }[]>;
}

/** A ModelStore in the browser's Cache Storage, under `name`. */
export function cacheStorageStore(cacheStorage: CacheStorage, name = 'gpt2-prompt-models'): ModelStore {
  const open = () => cacheStorage.open(name);
  return {
    async get(url) {
      const hit = await (await open()).match(url);
      return hit ? new Uint8Array(await hit.arrayBuffer()) : null;
    },
    async put(url, bytes) {
      const body = new Blob([bytes as Uint8Array<ArrayBuffer>]);
      await (await open()).put(url, new Response(body, { headers: { 'content-length': String(bytes.byteLength), 'x-stored': new Date().toISOString() } }));
    },
    async delete(url) {
      await (await open()).delete(url);
    },
    async list() {
      const cache = await open();
      const out: { url: string; bytes: number }[] = [];
      for (const request of await cache.keys()) {
        const hit = await cache.match(request);
        out.push({ url: request.url, bytes: Number(hit?.headers.get('content-length') ?? 0) });
      }
      return out;
    },
  };
}

export interface HubModelOptions {
  /** The Hub or a mirror (default https://huggingface.co). */
  base?: string;
  repo: string;
  store?: ModelStore;
  /** Unfinished downloads by URL: a later call continues them (the caller keeps the map). */
  downloads?: Map<string, ResumableDownload>;
  signal?: AbortSignal;
  /** Before the weights are fetched: throw to refuse the model (too large for the adapter). */
  check?: (config: GPT2Config, storageBytes: number) => void | Promise<void>;
  onProgress?: (file: ModelFile, progress: DownloadProgress) => void;
  fetch?: typeof fetch;
}

export interface HubModel {
  checkpoint: GPT2Checkpoint;
  /** Whether both files came from the store, without any request. */
  fromStore: boolean;
  /** Whether any bytes came from a Range request continuing an interrupted download. */
  resumed: boolean;
}

/**
 * A GPT-2 checkpoint of the Hub: from the store when both files are there, else downloaded
 * (config.json first, so `check` can refuse the model before its weights are fetched), checked
 * as loadCheckpoint checks a file on disk, and only then stored.
 */
export async function openHubModel(options: HubModelOptions): Promise<HubModel> {
  const base = options.base ?? HUB_URL;
  const urls = { config: hubFileUrl(base, options.repo, 'config.json'), weights: hubFileUrl(base, options.repo, 'model.safetensors') };
  const name = `${options.repo}/model.safetensors`;
  const [storedConfig, storedWeights] = options.store ? await Promise.all([options.store.get(urls.config), options.store.get(urls.weights)]) : [null, null];
  if (storedConfig && storedWeights) {
    return { checkpoint: loadCheckpoint(new TextDecoder().decode(storedConfig), storedWeights, name), fromStore: true, resumed: false };
  }
  const fetchImpl = options.fetch ?? globalThis.fetch;
  const downloads = options.downloads ?? new Map<string, ResumableDownload>();
  const configBytes = storedConfig ?? (await new ResumableDownload(urls.config, { fetch: fetchImpl }).run(options.signal));
  const configText = new TextDecoder().decode(configBytes);
  const config = parseConfig(configText, `${options.repo}/config.json`);
  const size = await probeSize(urls.weights, fetchImpl);
  await options.check?.(config, size);
  // An unfinished download continues: from this visit's memory, else from the store.
  const partUrl = partialUrl(urls.weights);
  let download = downloads.get(urls.weights);
  if (!download) {
    const start = (await options.store?.get(partUrl)) ?? undefined;
    download = new ResumableDownload(urls.weights, { expectedSize: size, start, fetch: fetchImpl, onProgress: (p) => options.onProgress?.('model.safetensors', p) });
    downloads.set(urls.weights, download);
  }
  let weights: Uint8Array;
  try {
    weights = await download.run(options.signal);
  } catch (error) {
    if (error instanceof DownloadRefused) {
      downloads.delete(urls.weights);
      await options.store?.delete(partUrl);
    } else if (download.received > 0) {
      // Kept for a later visit, which asks only for the rest.
      await options.store?.put(partUrl, download.bytesSoFar()).catch(() => {});
    }
    throw error;
  }
  downloads.delete(urls.weights);
  await options.store?.delete(partUrl);
  let checkpoint: GPT2Checkpoint;
  try {
    checkpoint = loadCheckpoint(configText, weights, name);
  } catch (error) {
    throw new DownloadRefused(`${(error as Error).message}; the download was discarded`);
  }
  if (options.store) await Promise.all([options.store.put(urls.config, configBytes), options.store.put(urls.weights, weights)]);
  return { checkpoint, fromStore: false, resumed: download.resumed };
}
