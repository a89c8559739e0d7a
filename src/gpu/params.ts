// Packs a kernel's uniform `Params` struct. Kernels declare Params with 4-byte scalar fields
// only (u32, i32, f32), so the layout is simply the fields in order.

/** Marks a value to be written as f32 rather than u32. */
export interface F32 {
  f32: number;
}

export function f32(value: number): F32 {
  return { f32: value };
}

const f32Bits = new Float32Array(1);
const f32Word = new Uint32Array(f32Bits.buffer);

/**
 * The Params struct as words. A small typed array of its own (V8 keeps it on the heap, no
 * separate backing store): packed once per dispatch, it is the launch path's commonest allocation.
 */
export function packParams(...fields: (number | F32)[]): Uint32Array<ArrayBuffer> {
  // Uniform structs are sized in multiples of 16 bytes.
  const words = new Uint32Array(Math.max(4, Math.ceil(fields.length / 4) * 4));
  for (let i = 0; i < fields.length; i++) {
    const field = fields[i]!;
    if (typeof field === 'number') {
      if (!Number.isInteger(field) || field < 0 || field > 0xffffffff) throw new RangeError(`u32 kernel parameter ${i} is ${field}`);
      words[i] = field;
    } else {
      f32Bits[0] = field.f32;
      words[i] = f32Word[0]!;
    }
  }
  return words;
}

/** Workgroups covering `count` invocations of `perGroup` each, folded into 2-D past the per-dimension limit. */
export function grid(count: number, perGroup: number, maxPerDimension = 65535): [number, number] {
  const groups = Math.ceil(count / perGroup);
  if (groups <= maxPerDimension) return [groups, 1];
  return [maxPerDimension, Math.ceil(groups / maxPerDimension)];
}
