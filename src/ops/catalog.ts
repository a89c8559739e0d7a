// Every public op, with what it computes, how its gradient is made, its dtypes and notes: the
// source of docs/ops.md (scripts/ops-doc.ts writes it; a test fails when the file is stale or
// when an op module exports a function this catalog does not describe). The elementwise rows
// come from the same table that generates their kernels, so the doc cannot drift from them.
import { BINARY_TABLE, UNARY_TABLE } from './elementwise.ts';

export interface OpDoc {
  name: string;
  /** The section of docs/ops.md it is listed in. */
  group: string;
  /** Call form and what it computes. */
  forward: string;
  /** How its gradient is made ('none' where it has none). */
  backward: string;
  /** The dtypes it takes and gives. */
  dtypes: string;
  notes?: string;
}

const F32 = 'f32 → f32';

function tableGrad(grad: string | ((...args: never[]) => unknown)): string {
  return typeof grad === 'string' ? `\`${grad}\`` : 'composed from ops';
}

const UNARY_NOTES: Partial<Record<keyof typeof UNARY_TABLE, string>> = {
  abs: 'gradient 0 at 0, as torch',
  relu: 'gradient 0 at 0, as torch',
  tanh: 'input clamped to ±15, where tanh is ±1 in f32',
  erf: 'a series below |x| = 0.5, Abramowitz & Stegun 7.1.26 above (absolute error ≤ 1.5e-7)',
};

const BINARY_NOTES: Partial<Record<keyof typeof BINARY_TABLE, string>> = {
  pow: 'a negative base takes integer exponents only (NaN otherwise); 0^0 = 1; gradients masked as torch',
  maximum: 'ties split the gradient equally, as torch',
  minimum: 'ties split the gradient equally, as torch',
};

function elementwiseDocs(): OpDoc[] {
  const unary = Object.entries(UNARY_TABLE).map(([name, def]): OpDoc => ({
    name,
    group: 'Elementwise',
    forward: `\`${name}(x)\` = \`${def.wgsl}\``,
    backward: `\`${def.grad}\` (x input, y output, g output gradient)`,
    dtypes: F32,
    ...(UNARY_NOTES[name as keyof typeof UNARY_TABLE] ? { notes: UNARY_NOTES[name as keyof typeof UNARY_TABLE]! } : {}),
  }));
  const binary = Object.entries(BINARY_TABLE).map(([name, def]): OpDoc => {
    const comparison = def.grad === null;
    const note = BINARY_NOTES[name as keyof typeof BINARY_TABLE];
    return {
      name,
      group: comparison ? 'Comparisons' : 'Elementwise',
      forward: `\`${name}(a, b)\` = \`${def.wgsl}\` (x = a, y = b; b a tensor or a number; NumPy broadcasting up to 8 dims)`,
      backward: comparison ? 'none (a 0/1 mask)' : `a: ${tableGrad(def.grad.a)}; b: ${tableGrad(def.grad.b)} (z output), summed over broadcast dims`,
      dtypes: comparison ? 'f32 → f32 0/1' : F32,
      ...(note ? { notes: note } : {}),
    };
  });
  return [...unary, ...binary];
}

const HAND_WRITTEN: OpDoc[] = [
  { name: 'where', group: 'Comparisons', forward: '`where(cond, a, b)`: a where cond ≠ 0, else b (all three broadcast; a, b tensors or numbers)', backward: 'to a and b through the mask; none to cond', dtypes: 'f32 → f32' },
  { name: 'scale', group: 'Elementwise', forward: '`scale(x, factor, shift = 0)` = x·factor + shift', backward: 'g·factor', dtypes: F32 },
  { name: 'gelu', group: 'Elementwise', forward: "`gelu(x, { approximate = 'none' })` as torch: 0.5x(1 + erf(x/√2)); `approximate: 'tanh'` is GPT-2's 0.5x(1 + tanh(√(2/π)(x + 0.044715x³)))", backward: "composed from erf; a hand-written kernel for 'tanh'", dtypes: F32 },
  { name: 'broadcastTo', group: 'Movement', forward: '`broadcastTo(x, shape)`: x repeated along its size-1 or missing leading dims', backward: 'sumToShape', dtypes: F32 },
  { name: 'sumToShape', group: 'Movement', forward: '`sumToShape(g, shape)`: g summed down to a shape it was broadcast from', backward: 'broadcastTo', dtypes: F32 },
  { name: 'zeros', group: 'Creation', forward: '`zeros(gpu, shape, opts?)`', backward: 'leaf (requiresGrad option)', dtypes: 'f32 or u32', notes: 'filled on the GPU' },
  { name: 'ones', group: 'Creation', forward: '`ones(gpu, shape, opts?)`', backward: 'leaf (requiresGrad option)', dtypes: 'f32 or u32', notes: 'filled on the GPU' },
  { name: 'full', group: 'Creation', forward: '`full(gpu, shape, value, opts?)`', backward: 'leaf (requiresGrad option)', dtypes: 'f32 or u32', notes: 'filled on the GPU' },
  { name: 'arange', group: 'Creation', forward: '`arange(gpu, end)` or `arange(gpu, start, end, step = 1)`, as torch.arange', backward: 'leaf', dtypes: 'f32', notes: 'made on the host in float64, rounded once' },
  { name: 'rand', group: 'Creation', forward: '`rand(gpu, shape, { seed })`: uniform in [0, 1)', backward: 'leaf', dtypes: 'f32', notes: 'the same values for the same seed' },
  { name: 'randn', group: 'Creation', forward: '`randn(gpu, shape, { seed })`: standard normal', backward: 'leaf', dtypes: 'f32', notes: 'the same values for the same seed' },
  { name: 'sum', group: 'Reductions', forward: '`sum(x, dim?, keepdim = false)`; dim a number, an array or omitted (all dims, shape [])', backward: 'broadcast of g', dtypes: F32 },
  { name: 'mean', group: 'Reductions', forward: '`mean(x, dim?, keepdim = false)`', backward: 'broadcast of g / count', dtypes: F32 },
  { name: 'max', group: 'Reductions', forward: '`max(x, dim?, keepdim = false)`: the values (torch.amax)', backward: 'to the maxima; ties share it equally, as torch.amax', dtypes: F32 },
  { name: 'min', group: 'Reductions', forward: '`min(x, dim?, keepdim = false)`: the values (torch.amin)', backward: 'to the minima; ties share it equally, as torch.amin', dtypes: F32 },
  { name: 'logsumexp', group: 'Reductions', forward: '`logsumexp(x, dim?, keepdim = false)`, with the max subtracted', backward: 'g·softmax(x)', dtypes: F32 },
  { name: 'argmax', group: 'Reductions', forward: '`argmax(x, dim?, keepdim = false)`: the first index of the maximum (without dim, into the flattened tensor)', backward: 'none', dtypes: 'f32 → u32' },
  { name: 'reshape', group: 'Movement', forward: '`reshape(x, shape)` or the method `x.reshape(shape)` (one implementation; -1 infers one dim): no copy', backward: 'reshape back', dtypes: 'any' },
  { name: 'flatten', group: 'Movement', forward: '`flatten(x, startDim = 0, endDim = -1)`: dims startDim..endDim merged (a 0-d tensor becomes [1]): no copy', backward: 'reshape back', dtypes: 'any' },
  { name: 'squeeze', group: 'Movement', forward: '`squeeze(x, dim?)`: size-1 dims removed, all or those of dim (a number or an array; a listed dim not of size 1 stays): no copy', backward: 'reshape back', dtypes: 'any' },
  { name: 'unsqueeze', group: 'Movement', forward: '`unsqueeze(x, dim)`: a size-1 dim inserted at dim in [-rank - 1, rank]: no copy', backward: 'reshape back', dtypes: 'any' },
  { name: 'permute', group: 'Movement', forward: '`permute(x, dims)`', backward: 'the inverse permutation', dtypes: 'f32', notes: 'materialised: tensors are contiguous' },
  { name: 'transpose', group: 'Movement', forward: '`transpose(x, d0, d1)`', backward: 'transpose back', dtypes: 'f32', notes: 'the last two dims through workgroup-memory tiles' },
  { name: 'expand', group: 'Movement', forward: '`expand(x, shape)`: -1 keeps a dim; new leading dims allowed', backward: 'summed over the expanded dims', dtypes: 'f32' },
  { name: 'narrow', group: 'Movement', forward: '`narrow(x, dim, start, length)`', backward: 'padded back with zeros', dtypes: 'f32' },
  { name: 'pad', group: 'Movement', forward: "`pad(x, pads, value = 0)`, pads in torch.nn.functional.pad's order (last dim first); negative pads crop", backward: 'narrow', dtypes: 'f32' },
  { name: 'cat', group: 'Movement', forward: '`cat(xs, dim)`', backward: 'narrow of each piece', dtypes: 'f32' },
  { name: 'stack', group: 'Movement', forward: '`stack(xs, dim)`', backward: 'narrow of each piece', dtypes: 'f32' },
  { name: 'indexSelect', group: 'Movement', forward: '`indexSelect(x, dim, indices)`, indices a u32 tensor or a Uint32Array', backward: 'a deterministic scatter-add (repeated indices add up)', dtypes: 'f32, u32 indices', notes: 'host indices are range-checked; an out-of-range index in a u32 tensor reads NaN' },
  { name: 'embedding', group: 'Movement', forward: '`embedding(ids, weight)` as torch.nn.functional.embedding: rows of weight [V, C] for ids of any shape → [...ids.shape, C]', backward: "indexSelect's scatter-add into weight (repeated ids add up)", dtypes: 'f32, ids a u32 tensor or a Uint32Array', notes: 'host ids are range-checked (naming the id and V); an id past V in a u32 tensor reads NaN (checking it would wait on the GPU)' },
  { name: 'gatherRows', group: 'Movement', forward: "`gatherRows(table, ids)`: rows of a [V, C] table (or its shards), GPT-2's embedding lookup", backward: 'scatter-add into the table', dtypes: 'f32, Uint32Array ids' },
  { name: 'matmul', group: 'Linear algebra', forward: '`matmul(a, b, opts?)` as torch.matmul: rank ≥ 1, batch dims broadcast; opts transposes and a fused bias', backward: 'matmuls of g with the other operand, summed over broadcast batch dims', dtypes: F32, notes: 'register-blocked kernels on CPU adapters, tiled ones on GPUs' },
  { name: 'conv1d', group: 'Convolution', forward: '`conv1d(x, weight, bias | null, { stride, padding, dilation, groups })` as torch.nn.functional.conv1d: x [N, C, L], weight [O, C/groups, K]', backward: 'input, weight and bias, through conv2d', dtypes: F32, notes: 'conv2d with H = 1; numeric zero padding' },
  { name: 'conv2d', group: 'Convolution', forward: '`conv2d(x, weight, bias | null, { stride, padding, dilation, groups })` as torch.nn.functional.conv2d: x [N, C, H, W], weight [O, C/groups, KH, KW]; stride, padding, dilation a number or [h, w]', backward: 'weight: matmul of g with the columns; input: matmul, then col2im (a gather, no atomics); bias: sum of g', dtypes: F32, notes: 'im2col + matmul (kernels/conv.wgsl); depthwise and channel multipliers via groups; numeric zero padding' },
  { name: 'softmax', group: 'Routines', forward: '`softmax(x, dim = -1)`', backward: 'hand-written kernel (last dim); composed for other dims', dtypes: F32 },
  { name: 'logSoftmax', group: 'Routines', forward: '`logSoftmax(x, dim = -1)` = x − logsumexp(x, dim, keepdim)', backward: 'composed', dtypes: F32 },
  { name: 'batchNorm', group: 'Routines', forward: '`batchNorm(x, runningMean, runningVar, weight?, bias?, { training = false, momentum = 0.1, eps = 1e-5 })` on [N, C] or [N, C, ...], as torch.nn.functional.batch_norm', backward: 'training: a hand-written kernel (dx, dweight, dbias), one workgroup per channel, as the forward; evaluation: composed', dtypes: F32, notes: 'training normalises with the biased batch variance and updates the running tensors in place (the variance unbiased); weight, bias null allowed; running tensors may be null when training' },
  { name: 'dropout', group: 'Routines', forward: '`dropout(x, p, { training = true, seed })`: each element zeroed with probability p, the rest scaled by 1/(1 − p)', backward: 'the same mask and scale (recomputed from the seed, not stored)', dtypes: F32, notes: 'mask: a PCG hash of (seed, index) on the GPU, the same for the same seed; not training or p = 0 gives x as a view (no copy); p = 1 zeros' },
  { name: 'maxPool2d', group: 'Routines', forward: '`maxPool2d(x, { kernelSize, stride = kernelSize, padding = 0 })` on [N, C, H, W] (sizes a number or [h, w]), padding −inf', backward: "to each window's first maximum (PyTorch's tie rule), gathered per input element", dtypes: F32, notes: 'padding at most half the window; dilation 1, ceil_mode false' },
  { name: 'avgPool2d', group: 'Routines', forward: '`avgPool2d(x, { kernelSize, stride = kernelSize, padding = 0 })` on [N, C, H, W]; padding counts in the divisor (count_include_pad = True)', backward: 'g / window size to each input of the window, gathered per input element', dtypes: F32, notes: 'padding at most half the window; ceil_mode false' },
  { name: 'layerNorm', group: 'Routines', forward: '`layerNorm(x, weight, bias, eps = 1e-5)` over the last dim', backward: 'hand-written kernels (dx, dγ, dβ)', dtypes: F32 },
  { name: 'rmsNorm', group: 'Routines', forward: '`rmsNorm(x, weight, eps)` = x·rsqrt(mean(x², -1) + eps)·weight', backward: 'composed', dtypes: F32 },
  { name: 'scaledDotProductAttention', group: 'Routines', forward: '`scaledDotProductAttention(q, k, v, { causal?, mask?, scale? })` on [..., T, D] / [..., S, D], as torch', backward: 'composed (matmul, softmax, mask)', dtypes: 'f32; mask u32 (boolean, 1 = attend) or f32 (additive)', notes: 'a query with no allowed key gets uniform weights, not NaN' },
  { name: 'attention', group: 'Routines', forward: "`attention(qkv, nHead, { past?, newLengths? })`: GPT-2's fused causal attention over a cached past", backward: 'hand-written kernels', dtypes: 'f32 (past f32 or f16)' },
  { name: 'crossEntropy', group: 'Losses', forward: '`crossEntropy(logits, targets, opts?)`: mean over rows; targets a Uint32Array or u32 tensor', backward: 'hand-written kernel', dtypes: 'f32, u32 targets', notes: 'class weights and label ranges need host targets' },
  { name: 'bceWithLogits', group: 'Losses', forward: '`bceWithLogits(logits, targets, { posWeight?, mask? })`: mean', backward: 'hand-written kernel', dtypes: 'f32' },
  { name: 'mseLoss', group: 'Losses', forward: '`mseLoss(a, b)` = mean((a − b)²)', backward: 'composed', dtypes: F32 },
];

/** Every public op, grouped as docs/ops.md lists them. */
export function opCatalog(): OpDoc[] {
  return [...elementwiseDocs(), ...HAND_WRITTEN];
}

const GROUPS = ['Creation', 'Elementwise', 'Comparisons', 'Reductions', 'Movement', 'Linear algebra', 'Convolution', 'Routines', 'Losses'];

function cell(text: string): string {
  return text.replace(/\|/g, '\\|');
}

/** docs/ops.md: the catalog as Markdown tables, one per group. */
export function opsMarkdown(ops: readonly OpDoc[] = opCatalog()): string {
  const lines = [
    '# Ops',
    '',
    '<!-- Generated by scripts/ops-doc.ts from src/ops/catalog.ts; test/ops/catalog.test.ts fails when it is stale. -->',
    '',
    "Every public op of the engine: PyTorch's names in camelCase and PyTorch's semantics, NumPy broadcasting, negative dims",
    'allowed. Each is exported from `gpt2-prompt` and `gpt2-prompt/engine`, takes and returns `Tensor`s, and records its',
    "backward for `backward()`. Forward expressions are the WGSL the kernels are generated from. Your own WGSL kernels join",
    'these through `customOp` (docs/custom-kernels.md).',
  ];
  for (const group of GROUPS) {
    const rows = ops.filter((op) => op.group === group);
    if (rows.length === 0) continue;
    lines.push('', `## ${group}`, '', '| op | forward | backward | dtypes | notes |', '| --- | --- | --- | --- | --- |');
    for (const op of rows) lines.push(`| \`${op.name}\` | ${cell(op.forward)} | ${cell(op.backward)} | ${cell(op.dtypes)} | ${cell(op.notes ?? '')} |`);
  }
  return lines.join('\n') + '\n';
}
