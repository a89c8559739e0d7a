// Classification losses, reduced to a [1] mean on the GPU. Their backward reads the incoming
// gradient inside the kernel, so a training step never waits on the host.
import { packParams, f32, grid } from '../gpu/params.ts';
import type { Gpu } from '../gpu/context.ts';
import { Tensor, record, tensor, shapeString } from '../tensor/tensor.ts';

const WG = 256;

function matrixShape(logits: Tensor, name: string): [number, number] {
  if (logits.shape.length !== 2) throw new RangeError(`${name}: logits must be [B, K], got ${shapeString(logits.shape)}`);
  return [logits.shape[0]!, logits.shape[1]!];
}

/** Sums the first n values of `values` into a new [1] tensor, in a fixed order. */
function sumAll(values: Tensor, n: number): Tensor {
  const out = Tensor.empty(values.gpu, [1]);
  values.gpu.dispatch({
    kernel: 'loss',
    entry: 'sum_all',
    params: packParams(n),
    bindings: [{ ...values.binding(), size: n * 4 }, out.binding()],
    workgroups: [1],
  });
  return out;
}

export interface CrossEntropyOptions {
  weights?: Float32Array;
  columnStart?: Uint32Array;
  columnCount?: Uint32Array;
}

/**
 * Mean cross entropy over the batch, as torch.nn.functional.cross_entropy(logits [N, C], targets):
 * with class weights w, Σ_i w[y_i]·nll_i / Σ_i w[y_i]. Targets are class indices, on the host
 * (Uint32Array) or on the GPU (a u32 tensor of N; then the plain mean, without options, and a
 * target ≥ C, which only the GPU sees, makes the loss and its gradient NaN instead of an error).
 * With columnStart/columnCount (multi-task composite heads), example i uses only logits columns
 * [start[i], start[i] + count[i]) and its label is relative to start[i]; `weights` has one entry
 * per logits column, so example i weighs w[start[i] + y_i]. Returns a [1] tensor.
 */
export function crossEntropy(logits: Tensor, targets: Uint32Array | Tensor, opts: CrossEntropyOptions = {}): Tensor {
  const [rows, cols] = matrixShape(logits, 'crossEntropy');
  const meta = targets instanceof Tensor ? deviceRowMeta(targets, rows, cols, opts) : hostRowMeta(logits.gpu, targets, rows, cols, opts);
  const gpu = logits.gpu;
  const perRow = Tensor.empty(gpu, [2 * rows]);
  gpu.dispatch({
    kernel: 'loss',
    entry: 'ce_rows',
    params: packParams(rows, cols),
    bindings: [logits.binding(), meta.binding(), perRow.binding()],
    workgroups: grid(rows, 1),
  });
  const loss = record(sumAll(perRow, rows), [logits], (gradOut) => {
    const grad = Tensor.empty(gpu, logits.shape);
    gpu.dispatch({
      kernel: 'loss',
      entry: 'ce_backward',
      params: packParams(rows, cols),
      bindings: [gradOut.binding(), logits.binding(), meta.binding(), perRow.binding(), grad.binding()],
      workgroups: grid(rows * cols, WG),
    });
    return [grad];
  });
  // Without a backward to feed, the per-row data can go now: any reuse of its buffers is encoded after these kernels.
  if (!loss.node) {
    meta.dispose();
    perRow.dispose();
  }
  return loss;
}

/** ce_meta (see loss.wgsl) from host labels: every check and the weighted mean's shares made here. */
function hostRowMeta(gpu: Gpu, labels: Uint32Array, rows: number, cols: number, opts: CrossEntropyOptions): Tensor {
  const { weights, columnStart, columnCount } = opts;
  if (labels.length !== rows) throw new RangeError(`crossEntropy: ${labels.length} labels for ${rows} rows of logits`);
  if (weights && weights.length !== cols) throw new RangeError(`crossEntropy: ${weights.length} class weights for ${cols} logits columns`);
  for (const [name, a] of [['columnStart', columnStart], ['columnCount', columnCount]] as const) {
    if (a && a.length !== rows) throw new RangeError(`crossEntropy: ${name} has ${a.length} entries for ${rows} rows`);
  }
  const meta = new Uint32Array(rows * 4);
  const metaF32 = new Float32Array(meta.buffer);
  const rowWeights = new Float64Array(rows);
  let totalWeight = 0;
  for (let i = 0; i < rows; i++) {
    const start = columnStart?.[i] ?? 0;
    const count = columnCount?.[i] ?? cols - start;
    if (count < 1 || start + count > cols) {
      throw new RangeError(`crossEntropy: row ${i} uses columns [${start}, ${start + count}) of ${cols}`);
    }
    if (labels[i]! >= count) throw new RangeError(`crossEntropy: label ${labels[i]} of row ${i} is out of range for ${count} classes`);
    rowWeights[i] = weights ? weights[start + labels[i]!]! : 1;
    totalWeight += rowWeights[i]!;
    meta.set([start, count, labels[i]!], i * 4);
  }
  if (!(totalWeight > 0)) throw new RangeError(`crossEntropy: the batch's class weights sum to ${totalWeight}; the mean is undefined`);
  for (let i = 0; i < rows; i++) metaF32[i * 4 + 3] = rowWeights[i]! / totalWeight;
  return tensor(gpu, meta, [rows * 4], { dtype: 'u32' });
}

/** ce_meta built on the GPU from a u32 targets tensor: the plain mean, each row's share 1/N. */
function deviceRowMeta(targets: Tensor, rows: number, cols: number, opts: CrossEntropyOptions): Tensor {
  if (opts.weights || opts.columnStart || opts.columnCount) throw new RangeError('crossEntropy: class weights and column ranges need the targets on the host (a Uint32Array)');
  if (targets.dtype !== 'u32') throw new TypeError(`crossEntropy: targets tensor is ${targets.dtype}, not u32 class indices`);
  if (targets.shape.length !== 1 || targets.shape[0] !== rows) throw new RangeError(`crossEntropy: targets ${shapeString(targets.shape)} for ${rows} rows of logits; expected [${rows}]`);
  const meta = Tensor.empty(targets.gpu, [rows * 4], 'u32', 'cross entropy row meta');
  targets.gpu.dispatch({
    kernel: 'loss',
    entry: 'ce_meta_from_targets',
    params: packParams(rows, cols, f32(1 / rows)),
    bindings: [targets.binding(), meta.binding()],
    workgroups: grid(rows, WG),
  });
  return meta;
}
/**
 * Mean BCE-with-logits as torch.nn.BCEWithLogitsLoss(pos_weight=…): the mean over elements of
 * −[pw_k·y·log σ(x) + (1−y)·log(1−σ(x))], computed stably (softplus form). With a mask [B·K]
 * the mean runs only over masked-in elements (Σmask of them); when none are, the loss is 0.
 * Returns [1].
 */
export function bceWithLogits(logits: Tensor, targets: Float32Array, opts: { posWeight?: Float32Array; mask?: Float32Array } = {}): Tensor {
  const [rows, cols] = matrixShape(logits, 'bceWithLogits');
  const n = rows * cols;
  const { posWeight, mask } = opts;
  if (targets.length !== n) throw new RangeError(`bceWithLogits: ${targets.length} targets for ${n} logits`);
  if (posWeight && posWeight.length !== cols) throw new RangeError(`bceWithLogits: ${posWeight.length} pos_weight entries for ${cols} columns`);
  if (mask && mask.length !== n) throw new RangeError(`bceWithLogits: ${mask.length} mask entries for ${n} logits`);
  let denominator = n;
  if (mask) denominator = mask.reduce((s, m) => s + m, 0);
  const inv = denominator > 0 ? 1 / denominator : 0;
  const coef = new Float32Array(2 * n);
  for (let i = 0; i < n; i++) {
    const y = targets[i]!;
    const share = (mask ? mask[i]! : 1) * inv;
    coef[2 * i] = share * (posWeight ? posWeight[i % cols]! : 1) * y;
    coef[2 * i + 1] = share * (1 - y);
  }

  const gpu = logits.gpu;
  const coefT = tensor(gpu, coef, [2 * n]);
  const terms = Tensor.empty(gpu, [n]);
  gpu.dispatch({
    kernel: 'loss',
    entry: 'bce_terms_forward',
    params: packParams(n),
    bindings: [logits.binding(), coefT.binding(), terms.binding()],
    workgroups: grid(n, WG),
  });
  const loss = record(sumAll(terms, n), [logits], (gradOut) => {
    const grad = Tensor.empty(gpu, logits.shape);
    gpu.dispatch({
      kernel: 'loss',
      entry: 'bce_backward',
      params: packParams(n),
      bindings: [gradOut.binding(), logits.binding(), coefT.binding(), grad.binding()],
      workgroups: grid(n, WG),
    });
    return [grad];
  });
  terms.dispose();
  if (!loss.node) coefT.dispose();
  return loss;
}
