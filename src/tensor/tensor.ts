// GPU tensors with reverse-mode autodiff.
//
// A tensor owns (a reference to) a GPU buffer. Ops that see an input requiring grad record a
// node: the inputs and a backward function. backward() walks those nodes in reverse
// topological order. Memory: tensors created inside tidy() are disposed when it returns,
// except the ones it returns or keep()s; leaf gradients belong to their leaf.
import { getFloat16, setFloat16 } from '@petamoriken/float16';
import type { Gpu, Binding } from '../gpu/context.ts';
import type { BufferPool } from '../gpu/pool.ts';
import { packParams, grid } from '../gpu/params.ts';

/** f16: IEEE half precision, for data kept compactly (e.g. cached keys/values); kernels compute in f32. */
export type DType = 'f32' | 'u32' | 'f16';
export type Shape = readonly number[];

export const BYTES_PER_ELEMENT: Record<DType, number> = { f32: 4, u32: 4, f16: 2 };

/** A tensor's elements on the host as stored on the GPU: f16 as its bit patterns. */
export type RawData = Float32Array | Uint32Array | Uint16Array;

/** The f16 bit patterns of values, each rounded to the nearest half (ties to even). */
export function f16Bits(values: ArrayLike<number>): Uint16Array {
  const bits = new Uint16Array(values.length);
  const view = new DataView(bits.buffer);
  for (let i = 0; i < values.length; i++) setFloat16(view, 2 * i, values[i]!, true);
  return bits;
}

/** The values of f16 bit patterns. */
export function f16Values(bits: Uint16Array): Float32Array {
  const view = new DataView(bits.buffer, bits.byteOffset, bits.byteLength);
  return Float32Array.from({ length: bits.length }, (_, i) => getFloat16(view, 2 * i, true));
}

/**
 * The GPU memory behind one or more tensors (reshape shares it): a pooled buffer, returned to
 * its pool when the last tensor lets go, or a range of a caller's buffer (fromGpuBuffer),
 * which the engine never reuses or destroys.
 */
class Storage {
  refs = 1;
  constructor(
    readonly gpu: Gpu,
    /** The pool the buffer returns to; null for a caller's buffer. */
    readonly pool: BufferPool | null,
    readonly buffer: GPUBuffer,
    readonly byteLength: number,
    readonly offset = 0,
  ) {}
  release(): void {
    if (--this.refs === 0) this.pool?.release(this.buffer);
  }
}

/** A tensor's buffer range; its label, read only by error messages, is made when asked for. */
class TensorBinding implements Binding {
  constructor(
    readonly buffer: GPUBuffer,
    readonly offset: number,
    readonly size: number,
    private readonly tensor: Tensor,
  ) {}
  get label(): string {
    return `${this.tensor.label ?? 'tensor'} ${shapeString(this.tensor.shape)}`;
  }
}

/** Where a tensor's data lies: `size` bytes of `buffer` from byte `offset`. */
export interface BufferRange {
  buffer: GPUBuffer;
  offset: number;
  size: number;
}

/** Computes the gradients of a node's inputs from the gradient of its output; null where not needed. */
export type BackwardFn = (gradOutput: Tensor, needsGrad: readonly boolean[]) => (Tensor | null)[];

interface Node {
  inputs: readonly Tensor[];
  backward: BackwardFn;
}

export function numel(shape: Shape): number {
  let n = 1;
  for (let i = 0; i < shape.length; i++) n *= shape[i]!;
  return n;
}

export function sameShape(x: Shape, y: Shape): boolean {
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

export function shapeString(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

let gradEnabled = true;
const scopes: Set<Tensor>[] = [];

export class Tensor {
  readonly shape: Shape;
  readonly dtype: DType;
  readonly size: number;
  requiresGrad: boolean;
  grad: Tensor | null = null;
  /** How this tensor was computed, when it depends on something requiring grad. */
  node: Node | null = null;
  label: string | undefined;
  private storage: Storage | null;
  private bound: Binding | null = null;

  constructor(storage: Storage, shape: Shape, dtype: DType, requiresGrad = false) {
    const size = numel(shape);
    if (size * BYTES_PER_ELEMENT[dtype] > storage.byteLength) {
      throw new RangeError(`shape ${shapeString(shape)} does not fit a ${storage.byteLength}-byte buffer`);
    }
    this.storage = storage;
    // Another tensor's shape is frozen already and is shared: ops make their outputs in their
    // inputs' shapes on every launch, and a copy and freeze costs as much as the pool's acquire.
    this.shape = Object.isFrozen(shape) ? shape : Object.freeze([...shape]);
    this.dtype = dtype;
    this.size = size;
    this.requiresGrad = requiresGrad;
    scopes.at(-1)?.add(this);
  }

  get gpu(): Gpu {
    return this.live().gpu;
  }

  get disposed(): boolean {
    return this.storage === null;
  }

  get byteLength(): number {
    return this.size * BYTES_PER_ELEMENT[this.dtype];
  }

  /** The tensor's buffer range, for binding to a kernel (made once: ops bind tensors on every launch). */
  binding(): Binding {
    const s = this.live();
    // Storage bindings come in whole 4-byte words; an odd count of halves has its buffer's padding in the last.
    this.bound ??= new TensorBinding(s.buffer, s.offset, Math.ceil(this.byteLength / 4) * 4, this);
    return this.bound;
  }

  /**
   * Where the data lies on the GPU, for a renderer or another WebGPU library to read or bind
   * (no copy). Valid until the tensor is disposed: a pooled buffer is then handed to other
   * tensors. Row-major, elements of BYTES_PER_ELEMENT[dtype] bytes; `size` counts the data's
   * bytes, not the buffer's.
   */
  bufferRange(): BufferRange {
    const s = this.live();
    return { buffer: s.buffer, offset: s.offset, size: this.byteLength };
  }

  /** The same data with another shape (no copy); gradients flow through. */
  reshape(shape: Shape): Tensor {
    const resolved = resolveShape(shape, this.size);
    const s = this.live();
    s.refs++;
    const out = new Tensor(s, resolved, this.dtype);
    return record(out, [this], (g) => [g.reshape(this.shape)]);
  }

  /** Copies the data to the host (f16 widened to f32). The only operation that waits on the GPU. */
  async read(): Promise<Float32Array | Uint32Array> {
    const raw = await this.readRaw();
    return raw instanceof Uint16Array ? f16Values(raw) : raw;
  }

  /** Copies the data to the host as stored, f16 as bit patterns: for keeping it on the host and write()ing it back. */
  async readRaw(): Promise<RawData> {
    this.needsUsage(GPUBufferUsage.COPY_SRC, 'COPY_SRC', 'read()');
    return new RAW_ARRAY[this.dtype]((await this.gpu.read(this.binding())).slice(0, this.byteLength));
  }

  async readF32(): Promise<Float32Array> {
    if (this.dtype !== 'f32') throw new TypeError(`readF32 on a ${this.dtype} tensor`);
    return (await this.read()) as Float32Array;
  }

  /** Overwrites the contents from host data of the same size, as stored (f16 as bit patterns). */
  write(data: RawData): void {
    if (data.length !== this.size) throw new RangeError(`write of ${data.length} values into a tensor of ${this.size}`);
    if (data.BYTES_PER_ELEMENT !== BYTES_PER_ELEMENT[this.dtype]) {
      throw new TypeError(`write of ${data.BYTES_PER_ELEMENT}-byte elements into a ${this.dtype} tensor`);
    }
    this.needsUsage(GPUBufferUsage.COPY_DST, 'COPY_DST', 'write()');
    this.gpu.write(this.binding(), data);
  }

  /** A clear error where a caller's buffer (fromGpuBuffer) lacks a usage this operation needs; pooled buffers have them all. */
  private needsUsage(flag: number, name: string, operation: string): void {
    const s = this.live();
    if (s.pool === null && (s.buffer.usage & flag) === 0) {
      throw new TypeError(`${operation} on ${this.label ?? 'a tensor'} ${shapeString(this.shape)}: its GPUBuffer was created without GPUBufferUsage.${name}`);
    }
  }

  /** Returns the buffer to the pool (a caller's buffer is left as it is). Using the tensor afterwards throws. */
  dispose(): void {
    if (!this.storage) return;
    this.storage.release();
    this.storage = null;
    this.bound = null;
    this.node = null;
    this.grad?.dispose();
    this.grad = null;
    for (const scope of scopes) scope.delete(this);
  }

  /** Reverse-mode autodiff from this scalar (or with an explicit output gradient). */
  backward(gradOutput?: Tensor): void {
    backward(this, gradOutput);
  }

  private live(): Storage {
    if (!this.storage) throw new Error(`${this.label ?? 'tensor'} ${shapeString(this.shape)} was used after dispose()`);
    return this.storage;
  }

  /** @internal Allocates an uninitialised tensor (from the pool the device allocates from now: see capture.ts). */
  static empty(gpu: Gpu, shape: Shape, dtype: DType = 'f32', label?: string): Tensor {
    const bytes = numel(shape) * BYTES_PER_ELEMENT[dtype];
    const pool = gpu.allocator;
    const t = new Tensor(new Storage(gpu, pool, pool.acquire(bytes, label), bytes), shape, dtype);
    t.label = label;
    if (gpu.poison && t.size > 0) t.write(new RAW_ARRAY[dtype](t.size).fill(POISON[dtype]));
    return t;
  }
}

/** A NaN as each dtype stores it (u32 holds an f32 NaN's bits, as kernels may reinterpret them). */
const POISON: Record<DType, number> = { f32: NaN, u32: 0x7fc00000, f16: 0x7e00 };

/** The host array type of each dtype's stored elements. */
const RAW_ARRAY = { f32: Float32Array, u32: Uint32Array, f16: Uint16Array } as const satisfies Record<DType, unknown>;

function resolveShape(shape: Shape, size: number): number[] {
  const out = [...shape];
  const infer = out.indexOf(-1);
  if (infer >= 0) out[infer] = size / numel(out.filter((d) => d !== -1));
  if (numel(out) !== size || !out.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new RangeError(`cannot reshape ${size} elements to ${shapeString(shape)}`);
  }
  return out;
}

/** A tensor filled from host values (rounded to f16 for an f16 tensor). */
export function tensor(gpu: Gpu, data: ArrayLike<number>, shape: Shape, options: { dtype?: DType; requiresGrad?: boolean; label?: string } = {}): Tensor {
  const dtype = options.dtype ?? 'f32';
  if (data.length !== numel(shape)) {
    throw new RangeError(`${data.length} values do not fill shape ${shapeString(shape)}`);
  }
  const t = Tensor.empty(gpu, shape, dtype, options.label);
  t.requiresGrad = options.requiresGrad ?? false;
  if (t.size > 0) t.write(dtype === 'f16' ? f16Bits(data) : dtype === 'u32' ? Uint32Array.from(data) : Float32Array.from(data));
  return t;
}

/** A tensor filled from data as readRaw() returns it (f16 as bit patterns), without conversion. */
export function rawTensor(gpu: Gpu, data: RawData, shape: Shape, dtype: DType, label?: string): Tensor {
  const t = Tensor.empty(gpu, shape, dtype, label);
  t.write(data);
  return t;
}

export interface GpuBufferOptions {
  dtype?: DType;
  /** Byte offset of the data in the buffer: a multiple of the device's minStorageBufferOffsetAlignment (256 on most). */
  offset?: number;
  requiresGrad?: boolean;
  label?: string;
}

/**
 * A tensor over a caller's GPUBuffer, without a copy: ops read and write the buffer itself.
 * The buffer needs GPUBufferUsage.STORAGE; COPY_SRC as well for read() and COPY_DST for
 * write(). The engine never pools, reuses or destroys it: disposing the tensor leaves the
 * buffer and its contents to the caller, who must keep it alive while the tensor is used.
 */
export function fromGpuBuffer(gpu: Gpu, buffer: GPUBuffer, shape: Shape, options: GpuBufferOptions = {}): Tensor {
  const dtype = options.dtype ?? 'f32';
  const offset = options.offset ?? 0;
  const what = `fromGpuBuffer(${options.label || buffer.label || 'buffer'}, ${shapeString(shape)}, ${dtype})`;
  if ((buffer.usage & GPUBufferUsage.STORAGE) === 0) {
    throw new TypeError(`${what}: the buffer was created without GPUBufferUsage.STORAGE, which kernels need to bind it`);
  }
  const align = gpu.limits.minStorageBufferOffsetAlignment;
  if (!Number.isInteger(offset) || offset < 0 || offset % align !== 0) {
    throw new RangeError(`${what}: offset ${offset} is not a multiple of this device's minStorageBufferOffsetAlignment (${align} bytes)`);
  }
  if (!shape.every((d) => Number.isInteger(d) && d >= 0)) throw new RangeError(`${what}: a shape holds non-negative integers`);
  // Kernels bind whole 4-byte words, so an odd count of f16 values needs the word's padding too.
  const bound = Math.ceil((numel(shape) * BYTES_PER_ELEMENT[dtype]) / 4) * 4;
  if (offset + bound > buffer.size) {
    throw new RangeError(`${what}: ${bound} bytes from offset ${offset} do not fit the ${buffer.size}-byte buffer`);
  }
  const t = new Tensor(new Storage(gpu, null, buffer, bound, offset), shape, dtype, options.requiresGrad ?? false);
  t.label = options.label;
  return t;
}

/** Records how `out` was computed when grad mode is on and an input requires grad. */
export function record(out: Tensor, inputs: readonly Tensor[], backward: BackwardFn): Tensor {
  if (gradEnabled && inputs.some((t) => t.requiresGrad)) {
    out.requiresGrad = true;
    out.node = { inputs, backward };
  }
  return out;
}

/** Runs fn without recording anything for autodiff. */
export function noGrad<T>(fn: () => T): T {
  const previous = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = previous;
  }
}

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/**
 * Runs fn and disposes every tensor it created, except those in its result (found in arrays,
 * plain objects and Maps, such as a state dict) and those passed to keep(). fn must be
 * synchronous (tensors are tracked by call nesting).
 */
export function tidy<T>(fn: () => T): T {
  const scope = new Set<Tensor>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } finally {
    scopes.pop();
  }
  const survivors = new Set<Tensor>();
  collectTensors(result, survivors);
  for (const t of scope) {
    if (!survivors.has(t)) t.dispose();
  }
  // Survivors now belong to the enclosing scope.
  for (const t of survivors) if (scope.has(t)) scopes.at(-1)?.add(t);
  return result;
}

/** Exempts tensors from disposal by the enclosing tidy() scopes. */
export function keep<T extends Tensor>(t: T): T {
  for (const scope of scopes) scope.delete(t);
  return t;
}

function collectTensors(value: unknown, into: Set<Tensor>): void {
  if (value instanceof Tensor) into.add(value);
  else if (Array.isArray(value)) for (const v of value) collectTensors(v, into);
  else if (value instanceof Map) for (const v of value.values()) collectTensors(v, into);
  else if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) collectTensors(v, into);
  }
}

/** Workgroup size of kernels/accumulate.wgsl. */
const ACCUMULATE_WG = 256;

/** prev + next, elementwise into a new tensor shaped like prev: how backward() sums the gradients reaching one tensor. */
function accumulate(prev: Tensor, next: Tensor): Tensor {
  if (prev.dtype !== 'f32' || next.dtype !== 'f32') throw new TypeError(`backward: cannot accumulate ${prev.dtype} and ${next.dtype} gradients (f32 only)`);
  const out = Tensor.empty(prev.gpu, prev.shape, 'f32');
  prev.gpu.dispatch({
    kernel: 'accumulate',
    entry: 'accumulate',
    params: packParams(out.size),
    bindings: [prev.binding(), next.binding(), out.binding()],
    workgroups: grid(out.size, ACCUMULATE_WG),
  });
  return out;
}

function backward(root: Tensor, gradOutput?: Tensor): void {
  if (!root.requiresGrad) throw new Error('backward() on a tensor that does not require grad');
  if (!gradOutput && root.size !== 1) throw new Error(`backward() needs an explicit gradient for shape ${shapeString(root.shape)}`);
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  // Iterative post-order DFS: deep graphs (many layers) must not overflow the JS stack.
  const stack: [Tensor, boolean][] = [[root, false]];
  while (stack.length) {
    const [t, expanded] = stack.pop()!;
    if (expanded) {
      order.push(t);
      continue;
    }
    if (seen.has(t)) continue;
    seen.add(t);
    stack.push([t, true]);
    for (const input of t.node?.inputs ?? []) if (input.requiresGrad && !seen.has(input)) stack.push([input, false]);
  }

  const grads = new Map<Tensor, Tensor>();
  grads.set(root, gradOutput ?? tensor(root.gpu, [1], root.shape));
  noGrad(() => {
    for (let i = order.length - 1; i >= 0; i--) {
      const t = order[i]!;
      const g = grads.get(t);
      if (!g) continue;
      if (!t.node) {
        accumulateLeaf(t, g);
        continue;
      }
      const needs = t.node.inputs.map((x) => x.requiresGrad);
      const inputGrads = t.node.backward(g, needs);
      t.node.inputs.forEach((x, k) => {
        const gx = inputGrads[k];
        if (!gx || !needs[k]) return;
        if (gx.size !== x.size) {
          throw new Error(`backward produced a gradient of shape ${shapeString(gx.shape)} for an input of shape ${shapeString(x.shape)}`);
        }
        const prev = grads.get(x);
        grads.set(x, prev ? accumulate(prev, gx) : gx);
      });
    }
  });
}

function accumulateLeaf(leaf: Tensor, g: Tensor): void {
  // A view, so the leaf owns its own reference even when g is shared with another input.
  const grad = g.reshape(leaf.shape);
  if (leaf.grad) {
    const sum = accumulate(leaf.grad, grad);
    leaf.grad.dispose();
    leaf.grad = keep(sum);
  } else {
    leaf.grad = keep(grad);
  }
}
