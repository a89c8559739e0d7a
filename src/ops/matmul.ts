// Batched matrix multiply with optional transposes and a fused bias, and its backward.
import { grid, packParams } from '../gpu/params.ts';
import type { Binding, Dispatch, Gpu } from '../gpu/context.ts';
import { Tensor, record, shapeString, numel, sameShape, type Shape } from '../engine/tensor.ts';
import { sumToShape } from './elementwise.ts';
import { expand } from './movement.ts';

export interface MatmulOptions {
  /** a is stored [..., K, M] and used transposed. */
  transA?: boolean;
  /** b is stored [..., N, K] and used transposed. */
  transB?: boolean;
  /** [N], added to every row of the result. */
  bias?: Tensor;
  /** Forces the forward's kernel (benchmarks, tests); by default the device's kernel class and the shape choose. */
  kernel?: MatmulKernel;
}

/** Rows × columns of C per workgroup of the tiled kernel. */
export type MatmulTile = '128x128' | '128x64' | '64x64';

export interface MatmulKernel {
  /**
   * 'register': the register-blocked kernels without workgroup memory (CPU adapters' family,
   * blocks sized by the device's kernel class); a tile: the workgroup-shared tiled kernel
   * (GPUs' family), which needs op(A)'s and op(B)'s contiguous dimensions and N to be
   * multiples of 4.
   */
  tile: 'register' | MatmulTile;
  /** Tiled only: K is split into this many parts, summed by a second pass (default 1). */
  splits?: number;
  /** Split K only: rows of C per pass (default: as many as 32 MiB of partial sums hold). */
  rowsPerChunk?: number;
}

interface Kernel {
  entry: string;
  /** Rows and columns of C per invocation. */
  tm: number;
  tn: number;
}

// A kernel always binds a bias; without one it gets this never-read quad.
const dummyBias = new WeakMap<Gpu, GPUBuffer>();
function noBias(gpu: Gpu): Binding {
  let buffer = dummyBias.get(gpu);
  if (!buffer) {
    buffer = gpu.device.createBuffer({ label: 'matmul: no bias', size: 16, usage: GPUBufferUsage.STORAGE });
    dummyBias.set(gpu, buffer);
  }
  return { buffer, size: 16 };
}

const NO_DIMS: Shape = Object.freeze([]);

function describeMatmul(a: Tensor, b: Tensor, transA: boolean, transB: boolean, bias: Tensor | undefined): string {
  return `matmul: a ${shapeString(a.shape)}${transA ? 'ᵀ' : ''} and b ${shapeString(b.shape)}${transB ? 'ᵀ' : ''}` + (bias ? ` with bias ${shapeString(bias.shape)}` : '');
}

/**
 * op(a)·op(b) (+ bias), where op transposes the last two dims when asked, as torch.matmul.
 * a: [..., M, K] (or [..., K, M] with transA); b: [..., K, N] (or [..., N, K] with transB).
 * The batch dims broadcast (e.g. [2, 1, 5, 4]·[3, 4, 6] is [2, 3, 5, 6]); equal batches and a
 * 2-D operand shared across the other's batch run directly, other broadcasts copy the operands
 * out to the full batch first. A 1-D a is a row [1, K] and a 1-D b a column [K, 1], their
 * dim dropped from the result (two vectors give their dot product, shape []).
 * Returns [..., M, N].
 */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  const transA = opts.transA ?? false;
  const transB = opts.transB ?? false;
  const bias = opts.bias;
  if (a.shape.length < 2 || b.shape.length < 2) return matmulVectors(a, b, opts);
  if (a.dtype !== 'f32' || b.dtype !== 'f32' || (bias && bias.dtype !== 'f32')) throw new TypeError(`${describeMatmul(a, b, transA, transB, bias)}: operands must be f32`);
  const ar = a.shape[a.shape.length - 2]!;
  const ac = a.shape[a.shape.length - 1]!;
  const br = b.shape[b.shape.length - 2]!;
  const bc = b.shape[b.shape.length - 1]!;
  const M = transA ? ac : ar;
  const K = transA ? ar : ac;
  const Kb = transB ? bc : br;
  const N = transB ? br : bc;
  if (K !== Kb) throw new RangeError(`${describeMatmul(a, b, transA, transB, bias)}: inner dimensions ${K} and ${Kb} differ`);
  // Slicing a tensor's (frozen) shape takes V8's slow path: most matmuls are 2-D and slice nothing.
  const aBatch = a.shape.length === 2 ? NO_DIMS : a.shape.slice(0, -2);
  const bBatch = b.shape.length === 2 ? NO_DIMS : b.shape.slice(0, -2);
  let batchShape: Shape;
  if (sameShape(aBatch, bBatch) || bBatch.length === 0) batchShape = aBatch;
  else if (aBatch.length === 0) batchShape = bBatch;
  else return matmulBroadcast(a, b, aBatch, bBatch, opts);
  if (bias && !(bias.shape.length === 1 && bias.shape[0] === N)) throw new RangeError(`${describeMatmul(a, b, transA, transB, bias)}: bias must be [${N}]`);

  const batch = numel(batchShape);
  const out = Tensor.empty(a.gpu, batchShape.length === 0 ? [M, N] : [...batchShape, M, N], 'f32', 'matmul');
  if (out.size > 0) {
    // A batch of row-major A times a shared B is one tall matmul.
    const fold = !transA && bBatch.length === 0;
    dispatchMatmul(a, b, bias, out, {
      transA,
      transB,
      m: fold ? batch * M : M,
      n: N,
      k: K,
      batch: fold ? 1 : batch,
      aBatch: aBatch.length === 0 ? 0 : M * K,
      bBatch: bBatch.length === 0 ? 0 : K * N,
    }, opts.kernel);
  }

  const inputs = bias ? [a, b, bias] : [a, b];
  return record(out, inputs, (g, needs) => {
    const rows = numel(g.shape) / Math.max(N, 1);
    return [
      needs[0] ? gradA(a, b, g, transA, transB) : null,
      needs[1] ? gradB(a, b, g, transA, transB, rows) : null,
      ...(bias ? [needs[2] ? sumRows(g, rows, N) : null] : []),
    ];
  });
}

/** Disposes views and copies made for a matmul once nothing records them for autodiff (tidy() frees them otherwise). */
function release(out: Tensor, temporaries: Tensor[]): Tensor {
  if (!out.requiresGrad) for (const t of temporaries) t.dispose();
  return out;
}

/** torch.matmul's 1-D operands: a row vector a, a column vector b. */
function matmulVectors(a: Tensor, b: Tensor, opts: MatmulOptions): Tensor {
  if (a.shape.length === 0 || b.shape.length === 0 || opts.transA || opts.transB) {
    throw new RangeError(`${describeMatmul(a, b, opts.transA ?? false, opts.transB ?? false, opts.bias)}: operands need at least 1 dim, and 2 to be transposed`);
  }
  const rowA = a.shape.length === 1;
  const colB = b.shape.length === 1;
  const a2 = rowA ? a.reshape([1, a.shape[0]!]) : a;
  const b2 = colB ? b.reshape([b.shape[0]!, 1]) : b;
  const product = matmul(a2, b2, opts);
  const shape = product.shape.filter((_, i, all) => !(rowA && i === all.length - 2) && !(colB && i === all.length - 1));
  const out = product.reshape(shape);
  return release(out, [product, ...(rowA ? [a2] : []), ...(colB ? [b2] : [])]);
}

/** Batch dims that are neither equal nor one side absent: broadcast as torch.matmul. */
function matmulBroadcast(a: Tensor, b: Tensor, aBatch: Shape, bBatch: Shape, opts: MatmulOptions): Tensor {
  const rank = Math.max(aBatch.length, bBatch.length);
  const batch: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = aBatch[aBatch.length - rank + i] ?? 1;
    const db = bBatch[bBatch.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new RangeError(`${describeMatmul(a, b, opts.transA ?? false, opts.transB ?? false, opts.bias)}: batch dims ${shapeString(aBatch)} and ${shapeString(bBatch)} do not broadcast`);
    }
    batch.push(da === 1 ? db : da);
  }
  const matrix = (t: Tensor) => t.shape.slice(-2);
  const withoutLeadingOnes = (s: Shape) => {
    const first = s.findIndex((n) => n !== 1);
    return first < 0 ? [] : s.slice(first);
  };
  const temporaries: Tensor[] = [];
  const flat = (t: Tensor, shape: Shape) => {
    const view = t.reshape(shape);
    temporaries.push(view);
    return view;
  };
  let a2: Tensor;
  let b2: Tensor;
  if (numel(aBatch) === 1 && numel(bBatch) === 1) {
    a2 = flat(a, matrix(a));
    b2 = flat(b, matrix(b));
  } else if (sameShape(withoutLeadingOnes(aBatch), withoutLeadingOnes(bBatch))) {
    // Equal up to leading 1s: one flat batch.
    a2 = flat(a, [numel(aBatch), ...matrix(a)]);
    b2 = flat(b, [numel(bBatch), ...matrix(b)]);
  } else if (numel(bBatch) === 1) {
    a2 = flat(a, [numel(batch), ...matrix(a)]);
    b2 = flat(b, matrix(b));
  } else if (numel(aBatch) === 1) {
    a2 = flat(a, matrix(a));
    b2 = flat(b, [numel(batch), ...matrix(b)]);
  } else {
    // Both broadcast somewhere: copied out to the full batch; expand's gradient sums back over it.
    const full = (t: Tensor) => {
      const copy = expand(t, [...batch, ...matrix(t)]);
      temporaries.push(copy);
      return flat(copy, [numel(batch), ...matrix(t)]);
    };
    a2 = full(a);
    b2 = full(b);
  }
  const product = matmul(a2, b2, opts);
  const out = product.reshape([...batch, ...matrix(product)]);
  return release(out, [product, ...temporaries]);
}

// The backward helpers dispose the views and partial results they make, so a backward pass
// outside tidy() holds no buffers beyond the gradients it returns.

/** Column sums of g viewed as [rows, n]: the bias gradient. */
function sumRows(g: Tensor, rows: number, n: number): Tensor {
  const view = g.reshape([rows, n]);
  const sum = sumToShape(view, [n]);
  view.dispose();
  return sum;
}

/** Sums a batched gradient over the batch of the operand it belongs to when that operand was shared. */
function reduceToShape(grad: Tensor, shape: Shape): Tensor {
  if (grad.size === numel(shape)) return grad;
  const [r, c] = grad.shape.slice(-2) as [number, number];
  const batched = grad.reshape([grad.size / (r * c), r, c]);
  const sum = sumToShape(batched, shape);
  batched.dispose();
  grad.dispose();
  return sum;
}

function gradA(a: Tensor, b: Tensor, g: Tensor, transA: boolean, transB: boolean): Tensor {
  // op(A) = dC·op(B)ᵀ; with transA, A itself is the transpose of that.
  const ga = transA ? matmul(b, g, { transA: transB, transB: true }) : matmul(g, b, { transB: !transB });
  return reduceToShape(ga, a.shape);
}

function gradB(a: Tensor, b: Tensor, g: Tensor, transA: boolean, transB: boolean, rows: number): Tensor {
  // Shared B: fold the batch into the rows so one matmul sums over it.
  const fold = b.shape.length === 2 && a.shape.length > 2 && !transA;
  const x = fold ? a.reshape([rows, a.shape.at(-1)!]) : a;
  const dc = fold ? g.reshape([rows, g.shape.at(-1)!]) : g;
  // op(B) = op(A)ᵀ·dC; with transB, B itself is the transpose of that.
  const gb = transB ? matmul(dc, x, { transA: true, transB: transA }) : matmul(x, dc, { transA: !transA });
  if (fold) {
    x.dispose();
    dc.dispose();
  }
  return reduceToShape(gb, b.shape);
}

interface Dims {
  transA: boolean;
  transB: boolean;
  m: number;
  n: number;
  k: number;
  batch: number;
  /** Elements between consecutive batch entries of a and b; 0 when shared. */
  aBatch: number;
  bBatch: number;
}

/** The register-blocked kernels by layout and block size, made once: a dispatch builds no names. */
const REGISTER_KERNELS = Object.fromEntries(
  (['general', 'nt', 'nn'] as const).map((layout) => [layout, { 8: registerKernel(layout, 8), 16: registerKernel(layout, 16) }]),
) as Record<'general' | 'nt' | 'nn', Record<8 | 16, Kernel>>;

function registerKernel(layout: string, size: number): Kernel {
  return { entry: `mm_${layout}_${size}x${size}`, tm: size, tn: size };
}

/** The workgroup-shape constants, one object per shape, so pipeline lookups see the same object each time. */
const workgroupConstants = new Map<number, Readonly<{ MM_WX: number; MM_WY: number }>>();
function constantsFor(wx: number, wy: number): Readonly<{ MM_WX: number; MM_WY: number }> {
  let c = workgroupConstants.get(wx * 1024 + wy);
  if (!c) workgroupConstants.set(wx * 1024 + wy, (c = Object.freeze({ MM_WX: wx, MM_WY: wy })));
  return c;
}

function chooseKernel(d: Dims, cpu: boolean): Kernel {
  // Whole 16-byte rows throughout: every row and batch offset is then a multiple of 4 elements.
  const vec4Rows = !d.transA && d.k > 0 && d.k % 4 === 0 && d.n % 4 === 0;
  const layout = !vec4Rows ? 'general' : d.transB ? 'nt' : 'nn';
  // Large blocks would mostly compute clamped duplicates on small matrices.
  const size = cpu && d.m >= 32 && d.n >= 64 ? 16 : 8;
  return REGISTER_KERNELS[layout][size];
}

/** The workgroup constants of bestCpuWorkgroup, found once per grid of blocks (training repeats its shapes every step). */
const cpuWorkgroups = new Map<number, Readonly<{ MM_WX: number; MM_WY: number }>>();
function cpuWorkgroup(rowBlocks: number, colBlocks: number): Readonly<{ MM_WX: number; MM_WY: number }> {
  const key = rowBlocks * 65536 + colBlocks;
  let found = cpuWorkgroups.get(key);
  if (!found) cpuWorkgroups.set(key, (found = constantsFor(...bestCpuWorkgroup(rowBlocks, colBlocks))));
  return found;
}

/**
 * A CPU adapter's workgroup shape (invocations across × down) for a C of rowBlocks × colBlocks
 * register blocks: up to 16 invocations, shaped so the fewest blocks past C's edge are
 * computed (they only recompute clamped duplicates). For the 40-row matmuls of a prompt
 * step (B 8 × P 5) a 16×1 shape computes 48 rows where 8×2 computed 64: 1.2-1.8× faster.
 */
function bestCpuWorkgroup(rowBlocks: number, colBlocks: number): [number, number] {
  let best: [number, number] = [1, 1];
  let bestBlocks = Infinity;
  for (let wy = 1; wy <= 16; wy *= 2) {
    for (let wx = 1; wx * wy <= 16; wx *= 2) {
      if (wx >= 2 * colBlocks || wy >= 2 * rowBlocks) continue;
      const blocks = Math.ceil(rowBlocks / wy) * wy * Math.ceil(colBlocks / wx) * wx;
      // Ties go to fuller workgroups (fewer of them to schedule), then to 8×2, the shape measured
      // best on large matrices.
      const better = wx * wy > best[0] * best[1] || (wx * wy === best[0] * best[1] && wx === 8);
      if (blocks < bestBlocks || (blocks === bestBlocks && better)) {
        best = [wx, wy];
        bestBlocks = blocks;
      }
    }
  }
  return best;
}

/** The tiled kernel's tiles: the flag that selects each, and its rows and columns of C. */
const TILES: Record<MatmulTile, { flags: string[]; rows: number; cols: number }> = {
  '128x128': { flags: ['tile_8x8'], rows: 128, cols: 128 },
  '128x64': { flags: ['tile_8x4'], rows: 128, cols: 64 },
  '64x64': { flags: ['tile_4x4'], rows: 64, cols: 64 },
};

/**
 * Workgroups that fill a large GPU: two per SM of a 132-SM H200. The tiled kernel takes the
 * largest tile that still makes this many; not yet tuned on the GPU (bench/matmul.ts --sweep
 * times every tile and split there).
 */
const FILL_WORKGROUPS = 264;

/** Whether the tiled kernel takes these operands: whole vec4s along every row it reads and writes. */
function tiledFits(d: Dims): boolean {
  const aContiguous = d.transA ? d.m : d.k;
  const bContiguous = d.transB ? d.k : d.n;
  return aContiguous % 4 === 0 && bContiguous % 4 === 0 && d.n % 4 === 0;
}

/**
 * How many parts the tiled kernel splits K into on a GPU: a few when N is narrow and K long
 * (GPT-2's mlp down and dX have N 768, K 3072 and 2304), where a row of tiles is short and
 * each tile long. It depends on N and K only, never on M: a row's sum must not change with
 * how many rows are multiplied with it (a text's outputs do not depend on its batch).
 */
function gpuSplits(d: Dims): number {
  return d.n <= 1024 ? Math.max(1, Math.min(4, Math.floor(d.k / 1024))) : 1;
}

function gpuTile(d: Dims, splits: number): MatmulTile {
  for (const tile of ['128x128', '128x64'] as const) {
    const { rows, cols } = TILES[tile];
    if (Math.ceil(d.m / rows) * Math.ceil(d.n / cols) * d.batch * splits >= FILL_WORKGROUPS) return tile;
  }
  return '64x64';
}

function dispatchMatmul(a: Tensor, b: Tensor, bias: Tensor | undefined, out: Tensor, d: Dims, forced?: MatmulKernel): void {
  const gpuClass = a.gpu.kernelClass === 'gpu';
  if (forced && forced.tile !== 'register') {
    if (!tiledFits(d)) {
      throw new RangeError(`matmul: the ${forced.tile} tiled kernel needs op(A)'s and op(B)'s contiguous dimensions and N to be multiples of 4 (M ${d.m}, N ${d.n}, K ${d.k})`);
    }
    dispatchTiled(a, b, bias, out, d, { tile: forced.tile, splits: forced.splits ?? 1, rowsPerChunk: forced.rowsPerChunk });
  } else if (!forced && gpuClass && tiledFits(d)) {
    const splits = gpuSplits(d);
    dispatchTiled(a, b, bias, out, d, { tile: gpuTile(d, splits), splits });
  } else {
    dispatchRegister(a, b, bias, out, d, !gpuClass);
  }
}

/** K per split: a multiple of 16, so every tile's slices start on a vec4 and the split does not depend on the tile. */
function kPerSplit(k: number, splits: number): number {
  return Math.max(16, Math.ceil(Math.ceil(k / splits) / 16) * 16);
}

/** Bytes of split-K partials held at once: taller matrices are computed a chunk of rows at a time. */
const PARTIAL_BYTES = 32 << 20;

function dispatchTiled(a: Tensor, b: Tensor, bias: Tensor | undefined, out: Tensor, d: Dims, kernel: { tile: MatmulTile; splits: number; rowsPerChunk?: number }): void {
  const { m, n, k } = d;
  if (!Number.isInteger(kernel.splits) || kernel.splits < 1) throw new RangeError(`matmul: splits must be a positive integer, not ${kernel.splits}`);
  const gpu = a.gpu;
  const kSplit = kPerSplit(k, kernel.splits);
  const splits = Math.max(1, Math.ceil(k / kSplit));
  const { flags, rows: tileRows, cols } = TILES[kernel.tile];
  const tiled = (target: Tensor, row0: number, rows: number, hasBias: boolean): Dispatch => ({
    kernel: 'matmul',
    entry: 'mm_tiled',
    flags: [...flags, ...(d.transA ? ['trans_a'] : []), ...(d.transB ? ['trans_b'] : [])],
    params: packParams(m, n, k, hasBias ? 1 : 0, d.aBatch, d.bBatch, rows * n, splits, kSplit, row0, rows, 0),
    bindings: [a.binding(), b.binding(), bias ? bias.binding() : noBias(gpu), target.binding()],
    workgroups: [Math.ceil(n / cols), Math.ceil(rows / tileRows), d.batch * splits],
  });
  if (splits === 1) {
    gpu.dispatch(tiled(out, 0, m, bias !== undefined));
    return;
  }
  if (kernel.rowsPerChunk !== undefined && !(Number.isInteger(kernel.rowsPerChunk) && kernel.rowsPerChunk > 0 && kernel.rowsPerChunk % 4 === 0)) {
    throw new RangeError(`matmul: rowsPerChunk must be a positive multiple of 4, not ${kernel.rowsPerChunk}`);
  }
  const fit = Math.floor(PARTIAL_BYTES / (4 * d.batch * splits * n) / tileRows) * tileRows;
  const chunk = Math.min(m, kernel.rowsPerChunk ?? Math.max(tileRows, fit));
  const partial = Tensor.empty(gpu, [d.batch * splits * chunk * n], 'f32', 'matmul split-K partials');
  for (let row0 = 0; row0 < m; row0 += chunk) {
    const rows = Math.min(chunk, m - row0);
    gpu.dispatch(tiled(partial, row0, rows, false));
    gpu.dispatch({
      kernel: 'matmul',
      entry: 'mm_split_sum',
      params: packParams((rows * n) / 4, splits, n / 4, bias ? 1 : 0, d.batch, (m * n) / 4, (row0 * n) / 4, 0),
      bindings: [partial.binding(), bias ? bias.binding() : noBias(gpu), out.binding()],
      workgroups: grid((d.batch * rows * n) / 4, 256),
    });
  }
  partial.dispose();
}

function dispatchRegister(a: Tensor, b: Tensor, bias: Tensor | undefined, out: Tensor, d: Dims, cpu: boolean): void {
  const { m, n, k } = d;
  const kernel = chooseKernel(d, cpu);
  const constants = cpu ? cpuWorkgroup(Math.ceil(m / kernel.tm), Math.ceil(n / kernel.tn)) : constantsFor(8, 8);
  const wx = constants.MM_WX;
  const wy = constants.MM_WY;
  const [aRs, aCs] = d.transA ? [1, m] : [k, 1];
  const [bRs, bCs] = d.transB ? [1, k] : [n, 1];
  a.gpu.dispatch({
    kernel: 'matmul',
    entry: kernel.entry,
    constants,
    params: packParams(m, n, k, bias ? 1 : 0, d.aBatch, d.bBatch, m * n, 0, aRs, aCs, bRs, bCs),
    bindings: [a.binding(), b.binding(), bias ? bias.binding() : noBias(a.gpu), out.binding()],
    workgroups: [Math.ceil(n / (wx * kernel.tn)), Math.ceil(m / (wy * kernel.tm)), d.batch],
  });
}
