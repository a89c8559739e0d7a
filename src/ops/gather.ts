// Embedding lookup: rows of a table selected by host-side ids (token ids, positions).
//
// A table may be split into row shards because one storage binding is capped
// (maxStorageBufferBindingSize; 128 MiB on the software adapter, below GPT-2's 154 MB wte).
import type { Gpu } from '../gpu/context.ts';
import { sizeClass } from '../gpu/pool.ts';
import { packParams, grid } from '../gpu/params.ts';
import { Tensor, record, tensor, shapeString } from '../tensor/tensor.ts';

const WG = 256;

/**
 * Row counts of shards that split a [rows, cols] f32 table so each shard's binding is at most
 * `maxBytes` (and its pooled buffer fits maxBufferSize). Shards are as equal as possible.
 */
export function shardRowCounts(rows: number, cols: number, maxBytes: number): number[] {
  const rowBytes = cols * 4;
  if (rowBytes > maxBytes) throw new RangeError(`one row of ${cols} f32 values (${rowBytes} bytes) exceeds the ${maxBytes}-byte shard limit`);
  const maxRows = Math.floor(maxBytes / rowBytes);
  const shards = Math.max(1, Math.ceil(rows / maxRows));
  const base = Math.floor(rows / shards);
  const extra = rows % shards;
  return Array.from({ length: shards }, (_, s) => base + (s < extra ? 1 : 0));
}

/** Splits host data [V, C] into row shards that each fit maxStorageBufferBindingSize. */
export function shardRows(gpu: Gpu, data: Float32Array, rows: number, cols: number, label?: string): Tensor[] {
  if (data.length !== rows * cols) throw new RangeError(`${data.length} values do not fill a [${rows}, ${cols}] table`);
  // The pool rounds buffers up to a size class, which must itself fit maxBufferSize.
  let maxBytes = Math.min(gpu.limits.maxStorageBufferBindingSize, gpu.limits.maxBufferSize);
  while (sizeClass(maxBytes) > gpu.limits.maxBufferSize) maxBytes = Math.floor(maxBytes * 0.9);
  let start = 0;
  return shardRowCounts(rows, cols, maxBytes).map((count, s) => {
    const shard = tensor(gpu, data.subarray(start * cols, (start + count) * cols), [count, cols], {
      label: label === undefined ? undefined : `${label}[shard ${s}]`,
    });
    start += count;
    return shard;
  });
}

/** The inverse of `ids` restricted to rows [start, start + count): CSR offsets, then positions. */
function inverseIndex(ids: Uint32Array, start: number, count: number): Uint32Array {
  const index = new Uint32Array(count + 1 + ids.length);
  const offsets = index.subarray(0, count + 1);
  for (const id of ids) if (id >= start && id < start + count) offsets[id - start + 1]!++;
  for (let r = 0; r < count; r++) offsets[r + 1]! += offsets[r]!;
  const positions = index.subarray(count + 1);
  const fill = offsets.slice(0, count);
  ids.forEach((id, i) => {
    if (id >= start && id < start + count) positions[fill[id - start]!++] = i;
  });
  return index;
}

/**
 * Rows of a table: out[i] = table[ids[i]]. The table [V, C] may be given as row shards
 * (a Tensor[] of [V_s, C] pieces stacked in order). Backward scatter-adds the output gradient
 * into each shard's rows, deterministically (no float atomics).
 */
export function gatherRows(table: Tensor | readonly Tensor[], ids: Uint32Array): Tensor {
  const shards = table instanceof Tensor ? [table] : [...table];
  if (shards.length === 0) throw new RangeError('gatherRows needs at least one table shard');
  const first = shards[0]!;
  const gpu = first.gpu;
  const cols = first.shape[1]!;
  const starts: number[] = [];
  let rows = 0;
  for (const s of shards) {
    if (s.shape.length !== 2 || s.shape[1] !== cols) {
      throw new RangeError(`gatherRows: table shards must be [rows, ${cols}], got ${shapeString(s.shape)}`);
    }
    starts.push(rows);
    rows += s.shape[0]!;
  }
  ids.forEach((id, i) => {
    if (id >= rows) throw new RangeError(`gatherRows: id ${id} at position ${i} is out of range for a table of V = ${rows} rows`);
  });

  const n = ids.length;
  const out = Tensor.empty(gpu, [n, cols]);
  if (n > 0) {
    const idsTensor = tensor(gpu, ids, [n], { dtype: 'u32' });
    shards.forEach((shard, s) => {
      gpu.dispatch({
        kernel: 'gather',
        entry: 'gather_rows',
        params: packParams(n * cols, cols, starts[s]!, shard.shape[0]!),
        bindings: [shard.binding(), idsTensor.binding(), out.binding()],
        workgroups: grid(n * cols, WG),
      });
    });
    // Safe before the dispatches run: any later use of the buffer is encoded after them.
    idsTensor.dispose();
  }

  // The caller may reuse its id array; backward needs the ids of this call.
  const savedIds = ids.slice();
  return record(out, shards, (gradOut, needsGrad) =>
    shards.map((shard, s) => {
      if (!needsGrad[s]) return null;
      const count = shard.shape[0]!;
      const gradShard = Tensor.empty(gpu, shard.shape);
      const index = tensor(gpu, inverseIndex(savedIds, starts[s]!, count), [count + 1 + n], { dtype: 'u32' });
      gpu.dispatch({
        kernel: 'gather',
        entry: 'scatter_add_rows',
        params: packParams(count * cols, cols, count, 0),
        bindings: [gradOut.binding(), index.binding(), gradShard.binding()],
        workgroups: grid(count * cols, WG),
      });
      index.dispose();
      return gradShard;
    }),
  );
}
