// Scaled dot-product attention as torch.nn.functional.scaled_dot_product_attention (no dropout),
// composed from batched matmul, softmax and a mask, so its gradient comes from those pieces.
// GPT-2's fused attention over a cached past is ops/attention.ts.
import { Tensor, tensor, shapeString } from '../tensor/tensor.ts';
import { add, scale } from './elementwise.ts';
import { matmul } from './matmul.ts';
import { softmax } from './softmax.ts';
import { expand, boolMaskBias } from './movement.ts';

/** What a masked-out score becomes: finite (WGSL compilers may assume no infinities), and exp() of it is exactly 0. */
const MASKED = -1e30;

export interface AttentionOptions {
  /** Query i attends to keys j ≤ i only (torch's is_causal: the top-left-aligned lower triangle, also when T ≠ S). */
  causal?: boolean;
  /**
   * torch's attn_mask, broadcastable to [..., T, S], by dtype as in torch: a u32 mask is
   * boolean (nonzero = takes part); an f32 mask is added to the scaled scores (its gradient
   * flows). Unlike torch, a query that may attend to no key gets uniform weights, not NaN.
   */
  mask?: Tensor;
  /** Multiplies q·kᵀ; default 1/√D. */
  scale?: number;
}

/** softmax(q·kᵀ·scale + mask)·v for q [..., T, D], k [..., S, D], v [..., S, Dv]: [..., T, Dv], batch dims broadcast. */
export function scaledDotProductAttention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor {
  const describe = () => `scaledDotProductAttention: q ${shapeString(q.shape)}, k ${shapeString(k.shape)}, v ${shapeString(v.shape)}`;
  if (q.shape.length < 2 || k.shape.length < 2 || v.shape.length < 2) throw new RangeError(`${describe()}: each needs at least 2 dims`);
  const D = q.shape.at(-1)!;
  if (k.shape.at(-1) !== D) throw new RangeError(`${describe()}: q and k have different feature sizes`);
  if (k.shape.at(-2) !== v.shape.at(-2)) throw new RangeError(`${describe()}: k and v have different sequence lengths`);
  if (opts.causal && opts.mask) throw new RangeError(`${describe()}: give causal or mask, not both (as torch)`);
  const factor = opts.scale ?? 1 / Math.sqrt(D);
  if (!Number.isFinite(factor)) throw new RangeError(`${describe()}: scale ${factor} is not finite`);

  const temporaries: Tensor[] = [];
  const keep = (t: Tensor) => (temporaries.push(t), t);
  const scores = keep(matmul(q, k, { transB: true }));
  let logits = keep(scale(scores, factor));
  const [T, S] = logits.shape.slice(-2) as [number, number];
  if (opts.causal) {
    const bias = new Float32Array(T * S);
    for (let i = 0; i < T; i++) bias.fill(MASKED, i * S + i + 1, (i + 1) * S);
    const rows = keep(logits.reshape([logits.size / Math.max(T * S, 1), T, S]));
    const masked = keep(add(rows, keep(tensor(q.gpu, bias, [T, S], { label: 'causal mask' }))));
    logits = keep(masked.reshape(logits.shape));
  } else if (opts.mask) {
    const mask = opts.mask;
    if (mask.dtype !== 'u32' && mask.dtype !== 'f32') throw new TypeError(`${describe()}: mask must be u32 (boolean) or f32 (additive), not ${mask.dtype}`);
    const bias = mask.dtype === 'u32' ? keep(boolMaskBias(mask)) : mask;
    // Added flat: the add kernel broadcasts up to 4 dims; expand takes any.
    const full = keep(expand(bias, logits.shape));
    const masked = keep(add(keep(logits.reshape([logits.size])), keep(full.reshape([full.size]))));
    logits = keep(masked.reshape(logits.shape));
  }
  const weights = keep(softmax(logits));
  const out = matmul(weights, v);
  // Without autodiff nothing refers to the pieces; with it, tidy() frees them after backward.
  if (!out.requiresGrad) for (const t of temporaries) t.dispose();
  return out;
}
