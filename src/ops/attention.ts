// Causal multi-head attention of new tokens over a per-example past (a KV cache) and each
// other, forward and backward (to qkv only: the past is constant), and the head split that
// turns a c_attn output into such a past, in f32 or, to halve a cached past's memory, f16.
import { packParams, f32, grid } from '../gpu/params.ts';
import { Tensor, record, tensor, shapeString, type DType } from '../tensor/tensor.ts';

export interface Past {
  /** [B, H, Tp, D], f32 or f16 (both k and v alike; f16 needs an even D). */
  k: Tensor;
  /** [B, H, Tp, D] */
  v: Tensor;
  /** lengths[b] ≤ Tp real past positions of example b. */
  lengths: Uint32Array;
}

const WG = 64;
/** Key tiles (of WG keys) per chunk of a past split across workgroups (CHUNK_TILES in attention.wgsl). */
const CHUNK_TILES = 4;
const SPLIT_WG = 256;
const KV_KB = 8;
// Largest head dim: the dk/dv kernel's per-thread accumulators (MAX_NPT in attention.wgsl) hold KV_KB·D/WG values.
const MAX_HEAD_DIM = 128;

/** Queries per workgroup: 8, or 4 when that covers all of T (the kernels work in vec4s of queries). */
function queryBlock(t: number): number {
  return t <= 4 ? 4 : 8;
}

/** Queries per tile of the dk/dv kernel, within the 32 KiB of workgroup memory WebGPU guarantees. */
function queryTile(d: number): number {
  return d <= 64 ? 32 : 16;
}

function heads(qkv: Tensor, nHead: number): { B: number; T: number; C: number; D: number } {
  const [B, T, C3] = qkv.shape;
  if (qkv.shape.length !== 3 || C3! % 3 !== 0 || (C3! / 3) % nHead !== 0 || !(nHead > 0)) {
    throw new RangeError(`attention expects qkv [B, T, 3C] with C divisible by ${nHead} heads, got ${shapeString(qkv.shape)}`);
  }
  const C = C3! / 3;
  return { B: B!, T: T!, C, D: C / nHead };
}

/** The kernel flags of a past in `dtype`: f16 pasts store pairs of head dims (see attention.wgsl). */
function pastFlags(dtype: DType, D: number): string[] {
  if (dtype === 'f32') return [];
  if (dtype !== 'f16') throw new TypeError(`past k/v must be f32 or f16, got ${dtype}`);
  if (D % 2 !== 0) throw new RangeError(`an f16 past needs an even head dim, got ${D}`);
  return ['past_f16'];
}

function checkLengths(name: string, lengths: Uint32Array, B: number, max: number): void {
  if (lengths.length !== B) throw new RangeError(`${name} has ${lengths.length} entries for a batch of ${B}`);
  for (const l of lengths) if (l > max) throw new RangeError(`${name} entry ${l} exceeds ${max}`);
}

/**
 * qkv: [B, T, 3C] = the c_attn output (q, k, v concatenated along the last dim, each [.., C],
 * head h uses columns h*D..h*D+D-1 of each).
 * newLengths[b] (default T for all): how many of the T new tokens of example b are real (right padding).
 * New query t of example b attends to past keys j < past.lengths[b] and new keys s ≤ t with
 * s < newLengths[b]. Scale 1/sqrt(D).
 * Returns [B, T, C] with heads merged back (column h*D+d). Query rows whose attention set is
 * empty (e.g. newLengths[b]=0) output 0, never NaN.
 */
export function attention(qkv: Tensor, nHead: number, opts: { past?: Past; newLengths?: Uint32Array } = {}): Tensor {
  const { B, T, C, D } = heads(qkv, nHead);
  const gpu = qkv.gpu;
  const { past } = opts;
  const newLengths = opts.newLengths ?? new Uint32Array(B).fill(T);
  checkLengths('newLengths', newLengths, B, T);
  const Tp = past ? past.k.shape[2]! : 0;
  let flags: string[] = [];
  if (past) {
    const want = [B, nHead, Tp, D];
    for (const t of [past.k, past.v]) {
      if (t.shape.join() !== want.join()) throw new RangeError(`past k/v must be ${shapeString(want)}, got ${shapeString(t.shape)}`);
    }
    if (past.k.dtype !== past.v.dtype) throw new TypeError(`past k is ${past.k.dtype} but v is ${past.v.dtype}`);
    flags = pastFlags(past.k.dtype, D);
    checkLengths('past.lengths', past.lengths, B, Tp);
  }
  if (D > MAX_HEAD_DIM) throw new RangeError(`attention supports head dims up to ${MAX_HEAD_DIM}, got ${D}`);
  const qb = queryBlock(T);
  const scale = 1 / Math.sqrt(D);
  const lens = new Uint32Array(2 * B);
  if (past) lens.set(past.lengths);
  lens.set(newLengths, B);
  const lensT = tensor(gpu, lens, [2 * B], { dtype: 'u32', label: 'attention lengths' });

  const out = Tensor.empty(gpu, [B, T, C], 'f32', 'attention out');
  const lse = Tensor.empty(gpu, [B, nHead, T], 'f32', 'attention lse');
  const qBlocks = Math.ceil(T / qb);
  const params = packParams(B, nHead, T, Tp, C, qBlocks, f32(scale), 0);
  const constants = { WG, HD: D, QB: qb };
  // Without a past the kernel reads no past element; qkv stands in so every binding is bound.
  const pk = past?.k ?? qkv;
  const pv = past?.v ?? qkv;
  // On a GPU the past is streamed in chunks, each by its own workgroups (see attn_merge). The
  // choice depends on the device only, never on the batch: the two forms round differently.
  if (past && gpu.kernelClass === 'gpu') {
    const chunks = Math.ceil(Tp / (WG * CHUNK_TILES)) + 1;
    const sums = Tensor.empty(gpu, [B, nHead, chunks, T, D], 'f32', 'attention chunk sums');
    const rowStats = Tensor.empty(gpu, [B, nHead, chunks, T, 2], 'f32', 'attention chunk maxima and sums');
    gpu.dispatch({
      kernel: 'attention',
      entry: 'attn_forward',
      constants,
      flags: [...flags, 'past_split'],
      params: packParams(B, nHead, T, Tp, C, qBlocks, f32(scale), chunks),
      bindings: [qkv.binding(), pk.binding(), pv.binding(), lensT.binding(), sums.binding(), rowStats.binding()],
      workgroups: grid(B * nHead * qBlocks * chunks, 1),
    });
    gpu.dispatch({
      kernel: 'attention',
      entry: 'attn_merge',
      constants: { WG, HD: D },
      params: packParams(B, nHead, T, C, chunks, 0, 0, 0),
      bindings: [sums.binding(), rowStats.binding(), out.binding(), lse.binding()],
      workgroups: grid(B * nHead * T * D, WG),
    });
    sums.dispose();
    rowStats.dispose();
  } else {
    gpu.dispatch({
      kernel: 'attention',
      entry: 'attn_forward',
      constants,
      flags,
      params,
      bindings: [qkv.binding(), pk.binding(), pv.binding(), lensT.binding(), out.binding(), lse.binding()],
      workgroups: grid(B * nHead * qBlocks, 1),
    });
  }

  const y = record(out, [qkv], (gradOut, needsGrad) => {
    if (!needsGrad[0]) return [null];
    const grad = Tensor.empty(gpu, [B, T, 3 * C], 'f32', 'attention dqkv');
    const delta = Tensor.empty(gpu, [B, nHead, T], 'f32', 'attention delta');
    gpu.dispatch({
      kernel: 'attention',
      entry: 'attn_backward_dq',
      constants,
      flags,
      params,
      bindings: [qkv.binding(), pk.binding(), pv.binding(), lensT.binding(), out.binding(), gradOut.binding(), lse.binding(), grad.binding(), delta.binding()],
      workgroups: grid(B * nHead * qBlocks, 1),
    });
    const kBlocks = Math.ceil(T / KV_KB);
    gpu.dispatch({
      kernel: 'attention',
      entry: 'attn_backward_dkv',
      constants: { WG, HD: D, KV_KB, KV_QT: queryTile(D) },
      params: packParams(B, nHead, T, Tp, C, kBlocks, f32(scale), 0),
      bindings: [qkv.binding(), lensT.binding(), gradOut.binding(), lse.binding(), delta.binding(), grad.binding()],
      workgroups: grid(B * nHead * kBlocks, 1),
    });
    delta.dispose();
    return [grad];
  });
  // Nothing will run backward: the lengths and the row statistics are not needed past the kernel
  // (outside tidy() they would otherwise hold their buffers until the process ends).
  if (!y.node) {
    lensT.dispose();
    lse.dispose();
  }
  return y;
}

/**
 * The keys and values of qkv as a past for later steps: k, v [B, H, T, D]. Constant: no gradient
 * flows into a past. `f16` stores them in half precision (half the memory; D must be even),
 * each value rounded to one of its two nearest halves (WGSL leaves which to the device).
 */
export function splitPast(qkv: Tensor, nHead: number, lengths: Uint32Array, opts: { f16?: boolean } = {}): Past {
  const { B, T, C, D } = heads(qkv, nHead);
  checkLengths('lengths', lengths, B, T);
  const dtype = opts.f16 ? 'f16' : 'f32';
  const flags = pastFlags(dtype, D);
  const gpu = qkv.gpu;
  const k = Tensor.empty(gpu, [B, nHead, T, D], dtype, 'past k');
  const v = Tensor.empty(gpu, [B, nHead, T, D], dtype, 'past v');
  // One thread per 4-byte word of k and of v: two elements when they are halves (D is even then).
  const words = k.byteLength / 4;
  gpu.dispatch({
    kernel: 'attention',
    entry: 'split_past',
    constants: { WG: SPLIT_WG, HD: D },
    flags,
    params: packParams(words, nHead, T, C),
    bindings: [qkv.binding(), k.binding(), v.binding()],
    workgroups: grid(words, SPLIT_WG),
  });
  return { k, v, lengths: Uint32Array.from(lengths) };
}
