// State dicts to and from safetensors bytes, host-neutral (a Node file, a page's download or
// upload, a fetch() response): the codec in safetensors.ts does the format; this file maps
// the engine's dtypes onto the file's. Separate from the codec because the codec runs without
// a GPU (GPT-2's loader and the Node edge read headers and host arrays with it).
import type { Gpu } from '../gpu/context.ts';
import { Tensor, rawTensor, tensor, f16Bits, type DType } from '../tensor/tensor.ts';
import { INTEGER_DTYPES, parseSafetensors, encodeSafetensors, type TensorToWrite, type WritableDtype } from './safetensors.ts';
import { stateDictEntries, type StateDict, type StateDictLike } from './module.ts';

export interface SaveOptions {
  /** String pairs stored in the header's __metadata__. */
  metadata?: Record<string, string>;
  /**
   * The file dtype of u32 tensors: I64 by default, as torch keeps ids and counters
   * (num_batches_tracked) in int64 and torch 1.x reads no U32.
   */
  integerDtype?: 'I64' | 'I32' | 'U32';
}

const FLOAT_DTYPE: Record<Exclude<DType, 'u32'>, WritableDtype> = { f32: 'F32', f16: 'F16' };

/** The file's bytes: every tensor of the state dict, in its order (f32 → F32, f16 → F16, u32 → options.integerDtype). */
export async function saveSafetensors(dict: StateDictLike, options: SaveOptions = {}): Promise<Uint8Array> {
  const entries = stateDictEntries(dict);
  const values = await Promise.all(entries.map(([, t]) => t.read()));
  const tensors = new Map<string, TensorToWrite>();
  entries.forEach(([key, t], i) => {
    const dtype = t.dtype === 'u32' ? (options.integerDtype ?? 'I64') : FLOAT_DTYPE[t.dtype];
    tensors.set(key, { dtype, shape: [...t.shape], data: values[i]! });
  });
  return encodeSafetensors(tensors, options.metadata);
}

export interface LoadOptions {
  /** The dtype of floating-point tensors: f32 (default) or f16. Integer tensors become u32. */
  dtype?: 'f32' | 'f16';
  /** Names the data in errors (a file's path). */
  name?: string;
}

/**
 * The tensors of a safetensors file, in the file's order, on `gpu`: F32, F16 and BF16 as
 * options.dtype (f32 by default; F16 to f16 is exact); I64, I32, U32 and U8 exactly, as u32
 * (a value outside 0 ≤ v < 2^32 is an error naming the tensor).
 */
export function loadSafetensors(gpu: Gpu, bytes: Uint8Array, options: LoadOptions = {}): StateDict {
  const file = parseSafetensors(bytes, options.name);
  const floatDtype = options.dtype ?? 'f32';
  if (floatDtype !== 'f32' && floatDtype !== 'f16') throw new TypeError(`loadSafetensors: dtype must be 'f32' or 'f16', got ${String(floatDtype)}`);
  const out: StateDict = new Map();
  try {
    for (const [key, entry] of file.entries) {
      let t: Tensor;
      if (INTEGER_DTYPES.has(entry.dtype)) {
        t = rawTensor(gpu, file.readIntegers(key), entry.shape, 'u32', key);
      } else if (floatDtype === 'f16' && entry.dtype === 'F16') {
        const raw = bytes.slice(entry.begin, entry.end);
        t = rawTensor(gpu, new Uint16Array(raw.buffer, 0, raw.byteLength / 2), entry.shape, 'f16', key);
      } else {
        const values = file.read(key);
        t = floatDtype === 'f16' ? rawTensor(gpu, f16Bits(values), entry.shape, 'f16', key) : tensor(gpu, values, entry.shape, { label: key });
      }
      out.set(key, t);
    }
  } catch (error) {
    for (const t of out.values()) t.dispose();
    throw error;
  }
  return out;
}
