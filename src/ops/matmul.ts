// Batched matrix multiply with optional transposes and a fused bias, and its backward.
import { grid, packParams } from '../gpu/params.ts';
import type { Binding, Dispatch, Gpu } from '../gpu/context.ts';
import { Tensor, record, shapeString, numel, sameShape, type Shape } from '../tensor/tensor.ts';
import { broadcastDims, sumToShape } from './elementwise.ts';
import { expand } from './movement.ts';
import { registerKernel } from '../gpu/registry.ts';

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

/** The register-blocked family's kernel name (its WGSL is generated at the end of this file). */
const REGISTER_KERNEL = 'matmul_register';

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
  // A 1-D operand has nothing to transpose; the other one may still be (F.linear of a vector).
  if (a.shape.length === 0 || b.shape.length === 0 || (opts.transA && a.shape.length < 2) || (opts.transB && b.shape.length < 2)) {
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
  const batch = broadcastDims(aBatch, bBatch);
  if (!batch) {
    throw new RangeError(`${describeMatmul(a, b, opts.transA ?? false, opts.transB ?? false, opts.bias)}: batch dims ${shapeString(aBatch)} and ${shapeString(bBatch)} do not broadcast`);
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
  (['general', 'nt', 'nn'] as const).map((layout) => [layout, { 8: blockedKernel(layout, 8), 16: blockedKernel(layout, 16) }]),
) as Record<'general' | 'nt' | 'nn', Record<8 | 16, Kernel>>;

function blockedKernel(layout: string, size: number): Kernel {
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
    kernel: REGISTER_KERNEL,
    entry: kernel.entry,
    constants,
    params: packParams(m, n, k, bias ? 1 : 0, d.aBatch, d.bBatch, m * n, 0, aRs, aCs, bRs, bCs),
    bindings: [a.binding(), b.binding(), bias ? bias.binding() : noBias(a.gpu), out.binding()],
    workgroups: [Math.ceil(n / (wx * kernel.tn)), Math.ceil(m / (wy * kernel.tm)), d.batch],
  });
}

// The register-blocked matmul kernels (kernel 'matmul_register'), generated from one template per
// layout and registered at load: without workgroup memory, what CPU adapters run fastest, and a
// GPU's fallback for sizes off the vec4 grid (the GPU's tiled family is kernels/matmul.wgsl).
//
// Register tiling: each invocation computes a TM×TN block of C, rows row0..row0+TM-1 and TN/4
// column quads q0 + t·MM_WX, so neighbouring invocations read neighbouring quads of B
// (coalesced on a GPU). On llvmpipe every invocation is a SIMD lane and each load instruction
// becomes a loop over the lanes, so loads, not multiply-adds, bound the speed: a TM×TN block
// loads TM + TN values per k for TM·TN multiply-adds. Every layout comes in two block sizes,
// chosen by the op:
//   16×16 for CPU adapters (256 accumulators are cheap there: spills are plain stack traffic),
//   8×8 for GPUs and small matrices, which keeps a thread within the register file.
// The entry points of a layout differ only in those sizes, so each layout is one template below. The tile loops have constant bounds
// and the arrays constant sizes exactly matching them, so compilers unroll the loops and keep
// the arrays in registers (arrays larger than their loops stay in memory on llvmpipe).
//
// Layouts: mm_nn_* (A [M, K], B [K, N]) and mm_nt_* (A [M, K], B [N, K]) read whole vec4s and
// need K and N to be multiples of 4; mm_general_* takes any sizes and element strides (so any
// transposes) with scalar loads.
//
// Loads clamp their row and column indices into range instead of branching, so a partial
// block recomputes valid elements and only the final stores are guarded. Batch offsets are in
// elements; a batch stride of 0 shares an operand across the batch.

/** The bindings of one register-blocked entry point, named with its prefix. */
function registerBindings(prefix: string, element: string): string {
  return [
    `@group(0) @binding(0) var<uniform> ${prefix}_p: MatmulParams;`,
    `@group(0) @binding(1) var<storage, read> ${prefix}_a: array<${element}>;`,
    `@group(0) @binding(2) var<storage, read> ${prefix}_b: array<${element}>;`,
    `@group(0) @binding(3) var<storage, read> ${prefix}_bias: array<${element}>;`,
    `@group(0) @binding(4) var<storage, read_write> ${prefix}_c: array<${element}>;`,
    '',
    '@compute @workgroup_size(MM_WX, MM_WY)',
  ].join('\n');
}

/** mm_nn_SxS or mm_nt_SxS: vec4 loads; the layouts differ only in how a k-quad of op(B) is read. */
function vec4Entry(layout: 'nn' | 'nt', s: number): string {
  const p = `${layout}${s}`;
  const t = s / 4;
  const loadB =
    layout === 'nn'
      ? `    for (var i = 0u; i < 4u; i++) {
      for (var t = 0u; t < ${t}u; t++) { b[i][t] = ${p}_b[b_base + (4u * kk + i) * n4 + quad[t]]; }
    }`
      : `    for (var t = 0u; t < ${t}u; t++) {
      // Column 4·quad+j of op(B) is row 4·quad+j of B; its k-quad transposes into b[·][t][j].
      for (var j = 0u; j < 4u; j++) {
        let v = ${p}_b[b_base + (4u * quad[t] + j) * k4 + kk];
        b[0][t][j] = v.x;
        b[1][t][j] = v.y;
        b[2][t][j] = v.z;
        b[3][t][j] = v.w;
      }
    }`;
  return `${registerBindings(p, 'vec4<f32>')}
fn mm_${layout}_${s}x${s}(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let p = ${p}_p;
  let n4 = p.n / 4u;
  let k4 = p.k / 4u;
  let row0 = (wid.y * MM_WY + lid.y) * ${s}u;
  let q0 = wid.x * MM_WX * ${t}u + lid.x;
  let a_base = (wid.z * p.a_batch) / 4u;
  let b_base = (wid.z * p.b_batch) / 4u;
  var a_at: array<u32, ${s}>;
  for (var r = 0u; r < ${s}u; r++) { a_at[r] = a_base + min(row0 + r, p.m - 1u) * k4; }
  var quad: array<u32, ${t}>;
  for (var t = 0u; t < ${t}u; t++) { quad[t] = min(q0 + t * MM_WX, n4 - 1u); }
  var acc: array<array<vec4<f32>, ${t}>, ${s}>;
  for (var kk = 0u; kk < k4; kk++) {
    // b[i][t]: row 4kk+i of op(B), column quad t.
    var b: array<array<vec4<f32>, ${t}>, 4>;
${loadB}
    for (var r = 0u; r < ${s}u; r++) {
      let a = ${p}_a[a_at[r] + kk];
      for (var t = 0u; t < ${t}u; t++) { acc[r][t] = mm_fma4(a, b[0][t], b[1][t], b[2][t], b[3][t], acc[r][t]); }
    }
  }
  // Without a bias the op binds a dummy quad (bindings cannot be empty); index 0 keeps it in range.
  let use_bias = p.has_bias != 0u;
  var bias: array<vec4<f32>, ${t}>;
  for (var t = 0u; t < ${t}u; t++) { bias[t] = select(vec4<f32>(0.0), ${p}_bias[select(0u, quad[t], use_bias)], use_bias); }
  let c_base = (wid.z * p.c_batch) / 4u;
  for (var r = 0u; r < ${s}u; r++) {
    if (row0 + r < p.m) {
      for (var t = 0u; t < ${t}u; t++) {
        if (q0 + t * MM_WX < n4) { ${p}_c[c_base + (row0 + r) * n4 + q0 + t * MM_WX] = acc[r][t] + bias[t]; }
      }
    }
  }
}
`;
}

/** mm_general_SxS: scalar loads through element strides. */
function generalEntry(s: number): string {
  const p = `gen${s}`;
  const t = s / 4;
  return `${registerBindings(p, 'f32')}
fn mm_general_${s}x${s}(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let p = ${p}_p;
  let row0 = (wid.y * MM_WY + lid.y) * ${s}u;
  let q0 = wid.x * MM_WX * ${t}u + lid.x;
  let a_base = wid.z * p.a_batch;
  let b_base = wid.z * p.b_batch;
  var a_at: array<u32, ${s}>;
  for (var r = 0u; r < ${s}u; r++) { a_at[r] = a_base + min(row0 + r, p.m - 1u) * p.a_rs; }
  // Columns 4·(q0 + t·MM_WX) + j, clamped to the last one; columns past N are never stored.
  var col: array<array<u32, 4>, ${t}>;
  for (var t = 0u; t < ${t}u; t++) {
    for (var j = 0u; j < 4u; j++) { col[t][j] = min(4u * (q0 + t * MM_WX) + j, p.n - 1u); }
  }
  var b_at: array<array<u32, 4>, ${t}>;
  for (var t = 0u; t < ${t}u; t++) {
    for (var j = 0u; j < 4u; j++) { b_at[t][j] = b_base + col[t][j] * p.b_cs; }
  }
  var acc: array<array<vec4<f32>, ${t}>, ${s}>;
  for (var k = 0u; k < p.k; k++) {
    var b: array<vec4<f32>, ${t}>;
    for (var t = 0u; t < ${t}u; t++) {
      for (var j = 0u; j < 4u; j++) { b[t][j] = ${p}_b[b_at[t][j] + k * p.b_rs]; }
    }
    for (var r = 0u; r < ${s}u; r++) {
      let a = vec4<f32>(${p}_a[a_at[r] + k * p.a_cs]);
      for (var t = 0u; t < ${t}u; t++) { acc[r][t] = fma(a, b[t], acc[r][t]); }
    }
  }
  let use_bias = p.has_bias != 0u;
  var bias: array<vec4<f32>, ${t}>;
  for (var t = 0u; t < ${t}u; t++) {
    for (var j = 0u; j < 4u; j++) { bias[t][j] = select(0.0, ${p}_bias[select(0u, col[t][j], use_bias)], use_bias); }
  }
  let c_base = wid.z * p.c_batch;
  for (var r = 0u; r < ${s}u; r++) {
    if (row0 + r < p.m) {
      for (var t = 0u; t < ${t}u; t++) {
        for (var j = 0u; j < 4u; j++) {
          let n = 4u * (q0 + t * MM_WX) + j;
          if (n < p.n) { ${p}_c[c_base + (row0 + r) * p.n + n] = acc[r][t][j] + bias[t][j]; }
        }
      }
    }
  }
}
`;
}

registerKernel(
  REGISTER_KERNEL,
  `override MM_WX: u32 = 8u;
override MM_WY: u32 = 8u;

struct MatmulParams {
  m: u32, n: u32, k: u32, has_bias: u32,
  a_batch: u32, b_batch: u32, c_batch: u32, _p0: u32,
  // Element strides of op(A)(m, k) and op(B)(k, n); read by the general entry point only.
  a_rs: u32, a_cs: u32, b_rs: u32, b_cs: u32,
}

// c + a.x·b0 + a.y·b1 + a.z·b2 + a.w·b3: a k-quad of one row of A against 4 rows of B.
fn mm_fma4(a: vec4<f32>, b0: vec4<f32>, b1: vec4<f32>, b2: vec4<f32>, b3: vec4<f32>, c: vec4<f32>) -> vec4<f32> {
  return fma(vec4<f32>(a.w), b3, fma(vec4<f32>(a.z), b2, fma(vec4<f32>(a.y), b1, fma(vec4<f32>(a.x), b0, c))));
}

// ---- Fast paths: every row of A, B and C is whole vec4s.

${[vec4Entry('nn', 16), vec4Entry('nn', 8), vec4Entry('nt', 16), vec4Entry('nt', 8)].join('\n')}
// ---- General path: any shapes and strides (transposes, odd K or N), scalar loads.

${[generalEntry(16), generalEntry(8)].join('\n')}
`,
);
