// Packs a kernel's uniform `Params` struct. Kernels declare Params with 4-byte scalar fields
// only (u32, i32, f32), so the layout is simply the fields in order.

/** Marks a value to be written as f32 rather than u32. */
export interface F32 {
  f32: number;
}

export function f32(value: number): F32 {
  return { f32: value };
}

export function packParams(...fields: (number | F32)[]): ArrayBuffer {
  // Uniform structs are sized in multiples of 16 bytes.
  const bytes = Math.max(16, Math.ceil((fields.length * 4) / 16) * 16);
  const view = new DataView(new ArrayBuffer(bytes));
  fields.forEach((field, i) => {
    if (typeof field === 'number') {
      if (!Number.isInteger(field) || field < 0 || field > 0xffffffff) throw new RangeError(`u32 kernel parameter ${i} is ${field}`);
      view.setUint32(i * 4, field, true);
    } else {
      view.setFloat32(i * 4, field.f32, true);
    }
  });
  return view.buffer;
}

/** Workgroups covering `count` invocations of `perGroup` each, folded into 2-D past the per-dimension limit. */
export function grid(count: number, perGroup: number, maxPerDimension = 65535): [number, number] {
  const groups = Math.ceil(count / perGroup);
  if (groups <= maxPerDimension) return [groups, 1];
  return [maxPerDimension, Math.ceil(groups / maxPerDimension)];
}
