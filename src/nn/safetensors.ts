// The safetensors format, web-standard only (no fs): an 8-byte little-endian header length,
// a JSON header { name: { dtype, shape, data_offsets: [begin, end] }, __metadata__? }, then
// the raw little-endian tensor data, with offsets relative to the end of the header.
// The one reader and writer of the package, on host arrays (no GPU): GPT-2's checkpoints and
// the Node edge read headers and tensors with it; state-dict.ts puts tensors through it.
import { setFloat16 } from '@petamoriken/float16';

/** Bytes per element of every dtype the format defines; sizes are checked even for dtypes we cannot read. */
const DTYPE_SIZE: Readonly<Record<string, number>> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, F8_E4M3: 1, F8_E5M2: 1,
  I64: 8, I32: 4, I16: 2, I8: 1, U64: 8, U32: 4, U16: 2, U8: 1, BOOL: 1,
};

/** The dtypes `read` converts to Float32Array. */
export type ReadableDtype = 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'U32' | 'U8';
const READABLE: ReadonlySet<string> = new Set<ReadableDtype>(['F32', 'F16', 'BF16', 'I64', 'I32', 'U32', 'U8']);
/** The integer dtypes `readIntegers` keeps exactly, as u32. */
export const INTEGER_DTYPES: ReadonlySet<string> = new Set(['I64', 'I32', 'U32', 'U8']);

export interface TensorEntry {
  readonly dtype: string;
  readonly shape: readonly number[];
  /** Absolute byte range in the file. */
  readonly begin: number;
  readonly end: number;
}

export interface SafetensorsHeader {
  /** Where the data section starts (8 + header length). */
  readonly dataStart: number;
  readonly metadata: Readonly<Record<string, string>>;
  readonly entries: ReadonlyMap<string, TensorEntry>;
}

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Header length from the first 8 bytes; `fileSize` bounds it so a non-safetensors file fails here. */
export function headerLength(first8: Uint8Array, fileSize: number, name: string): number {
  if (first8.length < 8 || fileSize < 8) throw new Error(`${name}: not a safetensors file (only ${fileSize} bytes)`);
  const n = new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true);
  if (n < 2n || n > BigInt(fileSize - 8)) {
    throw new Error(`${name}: not a safetensors file, or truncated (header length ${n} does not fit in a file of ${fileSize} bytes)`);
  }
  return Number(n);
}

/**
 * Parses and checks the header. `head` must hold at least the first 8 + header-length bytes;
 * `fileSize` is the whole file's size, so every tensor's range can be checked without its data.
 */
export function parseHeader(head: Uint8Array, fileSize: number, name: string): SafetensorsHeader {
  const n = headerLength(head, fileSize, name);
  if (head.length < 8 + n) throw new Error(`${name}: need ${8 + n} header bytes, got ${head.length}`);
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(head.subarray(8, 8 + n)));
  } catch (e) {
    throw new Error(`${name}: not a safetensors file (header is not valid JSON: ${(e as Error).message})`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new Error(`${name}: not a safetensors file (header is not a JSON object)`);
  }
  const dataStart = 8 + n;
  const metadata: Record<string, string> = {};
  const entries = new Map<string, TensorEntry>();
  for (const [key, value] of Object.entries(json as Record<string, unknown>)) {
    if (key === '__metadata__') {
      if (value === null || typeof value !== 'object') throw new Error(`${name}: __metadata__ is not an object`);
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) metadata[k] = String(v);
      continue;
    }
    entries.set(key, checkEntry(key, value, dataStart, fileSize, name));
  }
  return { dataStart, metadata, entries };
}

function checkEntry(key: string, value: unknown, dataStart: number, fileSize: number, name: string): TensorEntry {
  const v = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown } | null;
  const where = `${name}: tensor ${key}`;
  if (v === null || typeof v !== 'object') throw new Error(`${where}: header entry is not an object`);
  if (typeof v.dtype !== 'string') throw new Error(`${where}: missing dtype`);
  const isIndex = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 0;
  if (!Array.isArray(v.shape) || !v.shape.every(isIndex)) throw new Error(`${where}: bad shape ${JSON.stringify(v.shape)}`);
  const off = v.data_offsets;
  if (!Array.isArray(off) || off.length !== 2 || !off.every(isIndex) || off[0] > off[1]) {
    throw new Error(`${where}: bad data_offsets ${JSON.stringify(off)}`);
  }
  const shape = v.shape as number[];
  const [b, e] = off as [number, number];
  const size = DTYPE_SIZE[v.dtype];
  if (size !== undefined && e - b !== numel(shape) * size) {
    throw new Error(`${where}: ${e - b} data bytes do not match ${v.dtype} shape [${shape.join(', ')}]`);
  }
  if (dataStart + e > fileSize) {
    throw new Error(`${name}: truncated (tensor ${key} ends at byte ${dataStart + e}, but the file has only ${fileSize} bytes)`);
  }
  return { dtype: v.dtype, shape, begin: dataStart + b, end: dataStart + e };
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

// A table of all 65536 half-precision values: a lookup per element is far faster than
// decoding bit fields, which matters for a 124M-parameter F16 checkpoint.
let f16Table: Float32Array | null = null;
function halfTable(): Float32Array {
  if (f16Table) return f16Table;
  f16Table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0) f16Table[h] = sign * mant * 2 ** -24;
    else if (exp === 31) f16Table[h] = mant ? NaN : sign * Infinity;
    else f16Table[h] = sign * (1 + mant / 1024) * 2 ** (exp - 15);
  }
  return f16Table;
}

/** Converts one tensor's raw bytes to float32. */
export function decodeTensor(bytes: Uint8Array, dtype: string, where: string): Float32Array {
  if (!READABLE.has(dtype)) throw new Error(`${where}: unsupported dtype ${dtype} (supported: ${[...READABLE].join(', ')})`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const size = DTYPE_SIZE[dtype]!;
  const n = bytes.byteLength / size;
  const out = new Float32Array(n);
  switch (dtype as ReadableDtype) {
    case 'F32':
      // One byte copy into an aligned array; the data in the file need not be 4-byte aligned.
      if (LITTLE_ENDIAN) new Uint8Array(out.buffer).set(bytes);
      else for (let i = 0; i < n; i++) out[i] = view.getFloat32(4 * i, true);
      break;
    case 'F16': {
      const table = halfTable();
      for (let i = 0; i < n; i++) out[i] = table[view.getUint16(2 * i, true)]!;
      break;
    }
    case 'BF16': {
      // bfloat16 is the top half of a float32.
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) bits[i] = view.getUint16(2 * i, true) << 16;
      break;
    }
    case 'I64':
      for (let i = 0; i < n; i++) out[i] = Number(view.getBigInt64(8 * i, true));
      break;
    case 'I32':
      for (let i = 0; i < n; i++) out[i] = view.getInt32(4 * i, true);
      break;
    case 'U32':
      for (let i = 0; i < n; i++) out[i] = view.getUint32(4 * i, true);
      break;
    case 'U8':
      out.set(bytes);
      break;
  }
  return out;
}

/**
 * One integer tensor's raw bytes, exactly, as u32 (what the engine's integer tensors hold): a
 * value below 0 or from 2^32 on is an error naming it, never a silent wrap.
 */
export function decodeIntegers(bytes: Uint8Array, dtype: string, where: string): Uint32Array {
  if (!INTEGER_DTYPES.has(dtype)) throw new Error(`${where}: ${dtype} is not an integer dtype (integers: ${[...INTEGER_DTYPES].join(', ')})`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = bytes.byteLength / DTYPE_SIZE[dtype]!;
  const out = new Uint32Array(n);
  const outOfRange = (i: number, v: bigint | number) =>
    new RangeError(`${where}: ${dtype} value ${v} (element ${i}) does not fit a u32 tensor (0 ≤ value < 2^32)`);
  for (let i = 0; i < n; i++) {
    switch (dtype) {
      case 'I64': {
        const v = view.getBigInt64(8 * i, true);
        if (v < 0n || v >= 2n ** 32n) throw outOfRange(i, v);
        out[i] = Number(v);
        break;
      }
      case 'I32': {
        const v = view.getInt32(4 * i, true);
        if (v < 0) throw outOfRange(i, v);
        out[i] = v;
        break;
      }
      case 'U32':
        out[i] = view.getUint32(4 * i, true);
        break;
      default:
        out[i] = bytes[i]!;
    }
  }
  return out;
}

/** A parsed safetensors file over its bytes; tensors are converted one at a time, on demand. */
export class SafetensorsFile {
  readonly metadata: Readonly<Record<string, string>>;
  readonly entries: ReadonlyMap<string, TensorEntry>;

  constructor(readonly bytes: Uint8Array, readonly name: string) {
    const header = parseHeader(bytes, bytes.byteLength, name);
    this.metadata = header.metadata;
    this.entries = header.entries;
  }

  has(tensor: string): boolean {
    return this.entries.has(tensor);
  }

  entry(tensor: string): TensorEntry {
    const e = this.entries.get(tensor);
    if (!e) throw new Error(`${this.name}: no tensor named ${tensor}`);
    return e;
  }

  /** The tensor as float32 (integers are converted exactly up to 2^24). */
  read(tensor: string): Float32Array {
    const e = this.entry(tensor);
    return decodeTensor(this.bytes.subarray(e.begin, e.end), e.dtype, `${this.name}: tensor ${tensor}`);
  }

  /** An integer tensor exactly, as u32 (see decodeIntegers). */
  readIntegers(tensor: string): Uint32Array {
    const e = this.entry(tensor);
    return decodeIntegers(this.bytes.subarray(e.begin, e.end), e.dtype, `${this.name}: tensor ${tensor}`);
  }
}

export function parseSafetensors(bytes: Uint8Array, name = 'safetensors data'): SafetensorsFile {
  return new SafetensorsFile(bytes, name);
}

export type WritableDtype = 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'U32' | 'U8';

export interface TensorToWrite {
  dtype: WritableDtype;
  shape: number[];
  data: ArrayLike<number>;
}

function f32ToBf16(x: number, scratch: DataView): number {
  scratch.setFloat32(0, x, true);
  const bits = scratch.getUint32(0, true);
  if (Number.isNaN(x)) return 0x7fc0;
  // Round to nearest, ties to even, on the 16 dropped bits.
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

/** The values each integer dtype holds exactly (I64: as far as a double is exact). */
const INTEGER_RANGE: Partial<Record<WritableDtype, readonly [number, number]>> = {
  I64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  I32: [-(2 ** 31), 2 ** 31 - 1],
  U32: [0, 2 ** 32 - 1],
  U8: [0, 255],
};

/**
 * Serializes tensors (in the given key order: a Map keeps any order, an object puts
 * integer-like keys first) with 8-byte aligned data, as the reference writer does.
 */
export function encodeSafetensors(tensors: Readonly<Record<string, TensorToWrite>> | ReadonlyMap<string, TensorToWrite>, metadata?: Record<string, string>): Uint8Array {
  const list: [string, TensorToWrite][] = tensors instanceof Map ? [...tensors] : Object.entries(tensors as Record<string, TensorToWrite>);
  // JSON.stringify writes an object's integer-like keys first, so the header is written as entries.
  const parts: string[] = [];
  if (metadata) parts.push(`"__metadata__":${JSON.stringify(metadata)}`);
  let offset = 0;
  for (const [key, t] of list) {
    if (numel(t.shape) !== t.data.length) {
      throw new Error(`encodeSafetensors: tensor ${key} has ${t.data.length} values but shape [${t.shape.join(', ')}]`);
    }
    const range = INTEGER_RANGE[t.dtype];
    if (range) {
      for (let i = 0; i < t.data.length; i++) {
        const v = t.data[i]!;
        if (!Number.isInteger(v) || v < range[0] || v > range[1]) {
          throw new RangeError(`encodeSafetensors: tensor ${key} holds ${v} (element ${i}), not an integer ${t.dtype} can hold`);
        }
      }
    }
    const bytes = t.data.length * DTYPE_SIZE[t.dtype]!;
    parts.push(`${JSON.stringify(key)}:${JSON.stringify({ dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] })}`);
    offset += bytes;
  }
  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  // Space padding (valid JSON whitespace) so the data section starts 8-byte aligned.
  const headerBytes = new Uint8Array(json.length + ((8 - (json.length % 8)) % 8)).fill(0x20);
  headerBytes.set(json);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let p = 8 + headerBytes.length;
  const scratch = new DataView(new ArrayBuffer(4));
  for (const [, t] of list) {
    const d = t.data;
    for (let i = 0; i < d.length; i++) {
      switch (t.dtype) {
        case 'F32': view.setFloat32(p, d[i]!, true); p += 4; break;
        case 'F16': setFloat16(view, p, d[i]!, true); p += 2; break;
        case 'BF16': view.setUint16(p, f32ToBf16(d[i]!, scratch), true); p += 2; break;
        case 'I64': view.setBigInt64(p, BigInt(d[i]!), true); p += 8; break;
        case 'I32': view.setInt32(p, d[i]!, true); p += 4; break;
        case 'U32': view.setUint32(p, d[i]!, true); p += 4; break;
        case 'U8': view.setUint8(p, d[i]!); p += 1; break;
      }
    }
  }
  return out;
}
