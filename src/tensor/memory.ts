// What holds GPU memory: the live tensors by label and shape, the pool's bytes, and a leak
// check for tests (tf.memory() and a tidy-or-leak assertion in one place).
import type { Gpu } from '../gpu/context.ts';
import { collectTensors, liveTensors, shapeString, Tensor, type DType, type Shape } from './tensor.ts';

/** Live tensors sharing a label, shape and dtype. */
export interface TensorGroup {
  label: string;
  shape: Shape;
  dtype: DType;
  count: number;
  /** Their data's bytes (views that share a buffer count each). */
  bytes: number;
}

export interface MemoryReport {
  /** Tensors not yet disposed on this device, and their data's bytes. */
  tensors: number;
  tensorBytes: number;
  /** By label and shape, largest first. */
  groups: TensorGroup[];
  /** The device pool's bytes handed out, held free for reuse, and the most ever handed out at once. */
  inUse: number;
  free: number;
  peak: number;
  /** Buffers the pool has created. */
  buffersCreated: number;
}

/** The device's live tensors and pool. */
export function memory(gpu: Gpu): MemoryReport {
  const groups = new Map<string, TensorGroup>();
  let tensors = 0;
  let tensorBytes = 0;
  for (const t of liveTensors) {
    if (t.gpu !== gpu) continue;
    tensors++;
    tensorBytes += t.byteLength;
    const label = t.label ?? '(unlabelled)';
    const key = `${label}|${t.shape.join(',')}|${t.dtype}`;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { label, shape: t.shape, dtype: t.dtype, count: 0, bytes: 0 }));
    g.count++;
    g.bytes += t.byteLength;
  }
  const pool = gpu.pool.stats();
  return {
    tensors,
    tensorBytes,
    groups: [...groups.values()].sort((a, b) => b.bytes - a.bytes),
    inUse: pool.inUse,
    free: pool.pooled,
    peak: pool.peak,
    buffersCreated: pool.created,
  };
}

/** Thrown by leakCheck, with the tensors left alive. */
export class LeakError extends Error {
  override name = 'LeakError';
  constructor(
    message: string,
    readonly leaked: readonly Tensor[],
  ) {
    super(message);
  }
}

/**
 * Runs fn (sync or async) and throws a LeakError if it left tensors alive that it did not
 * return (in its result, an array, or a plain object's values). The gradients it gave tensors
 * that were alive before are theirs, not leaks. For tests: wrap the code under test.
 */
export async function leakCheck<T>(fn: () => T | Promise<T>): Promise<T> {
  const before = new Set(liveTensors);
  const result = await fn();
  const returned = new Set<Tensor>();
  collectTensors(result, returned);
  // Gradients belong to their tensors: those alive before, and those returned.
  const owned = new Set<Tensor>();
  for (const t of [...before, ...returned]) if (t.grad) owned.add(t.grad);
  const leaked = [...liveTensors].filter((t) => !before.has(t) && !returned.has(t) && !owned.has(t));
  if (leaked.length > 0) {
    const names = leaked.slice(0, 10).map((t) => `${t.label ?? 'tensor'} ${shapeString(t.shape)}`);
    const more = leaked.length > 10 ? ` and ${leaked.length - 10} more` : '';
    throw new LeakError(`leakCheck: ${leaked.length} tensor(s) left alive that the function did not return: ${names.join(', ')}${more} (dispose them, or run the work in tidy())`, leaked);
  }
  return result;
}
