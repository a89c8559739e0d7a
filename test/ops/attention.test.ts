// Attention against float64 (forward, gradient, finite differences), batch invariance, pasts.
//
// Every distinct pipeline (kernel variant × head dim HD × query block QB × device) is a
// separate shader compile, seconds each on llvmpipe/lavapipe with a cold cache, and running
// the cases is cheap: so this file checks each variant that ships once, on the sizes that take
// its size-dependent paths, and lets cases share pipelines (same HD and QB: T ≤ 4 gives QB 4,
// else 8). What each variant and size is here for:
// - f32 past / no past, CPU kernel class (the test device): HD 8 (whole vec4 chunks), 5 and 7
//   (last chunk of 1 and 3 dims), 64 (GPT-2's; QB·HD4 > WG), 80 (KG·KPG > KT: the last key
//   group runs past the 64-key tile, idle threads with wg ≥ KG, the dk/dv kernel's 16-query
//   tiles and 10 values per thread); QB 4 and 8; ragged pasts over several 64-key tiles (Tp
//   600) and new tokens over several (T 70, and T 270 in the backward).
// - subgroups (row maxima): QB 4 and 8 with an f32 past, against float64 and bit for bit
//   against the fallback; HD 80 compiles far faster than small HDs on lavapipe, and the
//   subgroup code does not depend on HD.
// - f16 past, packed in u32 words (the test device where it lacks shader-f16, as llvmpipe
//   does) and native vec2<f16> (the feature device): forward, qkv gradient and splitPast at
//   HD 64 on both; the packed form also with HD 6 (a last chunk of one word), which the
//   shared attn_past4 handles alike for both forms.
// - past split across workgroups (GPU kernel class, attn_merge): f32 at HD 8 and 64 over
//   pasts of several 256-key chunks; f16 in the batch-invariance test; f16 with subgroups.
// - bitwise batch invariance (output and gradient): the f32 and the f16 past, each in both
//   kernel classes; f32 at HD 8 with the example alone in a 4-query block and batched in an
//   8-query one (padding changes the block), f16 at HD 64 (8-query blocks, shared with its
//   gradient test).
import { describe, it, expect, beforeAll, type TestContext } from 'vitest';
import { testGpu, randn, asF32, asF16, expectClose, finiteDifferences, withKernelFeatures, withKernelClass } from '../helpers.ts';
import { tensor, tidy, f16Bits, f16Values, type DType } from '../../src/tensor/tensor.ts';
import { attention, splitPast, type Past } from '../../src/ops/attention.ts';
import type { Gpu } from '../../src/gpu/context.ts';
import { leakCheck } from '../../src/tensor/memory.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});

interface Case {
  B: number;
  H: number;
  D: number;
  T: number;
  Tp: number;
  pastLengths?: number[];
  newLengths?: number[];
}

interface RefPast {
  k: Float64Array;
  v: Float64Array;
  lengths: number[];
}

/** float64 reference: out [B, T, C] and the attention weights' logsumexp per (b, h, t). */
function refAttention(qkv: Float64Array, c: Case, past?: RefPast): { out: Float64Array; lse: Float64Array } {
  const { B, H, D, T, Tp } = c;
  const C = H * D;
  const newLengths = c.newLengths ?? Array(B).fill(T);
  const out = new Float64Array(B * T * C);
  const lse = new Float64Array(B * H * T);
  const scale = 1 / Math.sqrt(D);
  for (let b = 0; b < B; b++) {
    const lp = past ? past.lengths[b]! : 0;
    for (let h = 0; h < H; h++) {
      for (let t = 0; t < T; t++) {
        const q = (d: number) => qkv[(b * T + t) * 3 * C + h * D + d]!;
        const keys: { k: (d: number) => number; v: (d: number) => number }[] = [];
        for (let j = 0; j < lp; j++) {
          const a = ((b * H + h) * Tp + j) * D;
          keys.push({ k: (d) => past!.k[a + d]!, v: (d) => past!.v[a + d]! });
        }
        for (let s = 0; s <= t && s < newLengths[b]!; s++) {
          const a = (b * T + s) * 3 * C + h * D;
          keys.push({ k: (d) => qkv[a + C + d]!, v: (d) => qkv[a + 2 * C + d]! });
        }
        const scores = keys.map(({ k }) => {
          let dot = 0;
          for (let d = 0; d < D; d++) dot += q(d) * k(d);
          return dot * scale;
        });
        const m = Math.max(...scores);
        const w = scores.map((s) => Math.exp(s - m));
        const sum = w.reduce((x, y) => x + y, 0);
        lse[(b * H + h) * T + t] = m + Math.log(sum);
        for (let d = 0; d < D; d++) {
          let acc = 0;
          keys.forEach(({ v }, i) => (acc += (w[i]! / sum) * v(d)));
          out[(b * T + t) * C + h * D + d] = keys.length ? acc : 0;
        }
      }
    }
  }
  return { out, lse };
}

/** Analytic float64 gradient of sum(out · gout) w.r.t. qkv (the past is constant). */
function refAttentionGrad(qkv: Float64Array, gout: Float64Array, c: Case, past?: RefPast): Float64Array {
  const { B, H, D, T, Tp } = c;
  const C = H * D;
  const newLengths = c.newLengths ?? Array(B).fill(T);
  const { out } = refAttention(qkv, c, past);
  const grad = new Float64Array(qkv.length);
  const scale = 1 / Math.sqrt(D);
  for (let b = 0; b < B; b++) {
    const lp = past ? past.lengths[b]! : 0;
    for (let h = 0; h < H; h++) {
      for (let t = 0; t < T; t++) {
        const qa = (b * T + t) * 3 * C + h * D;
        const oa = (b * T + t) * C + h * D;
        // Keys as (k offset in its array, v offset, array, grad offset of k in qkv or -1 for the past).
        const keys: { k: Float64Array; v: Float64Array; ka: number; va: number; gk: number }[] = [];
        for (let j = 0; j < lp; j++) {
          const a = ((b * H + h) * Tp + j) * D;
          keys.push({ k: past!.k, v: past!.v, ka: a, va: a, gk: -1 });
        }
        for (let s = 0; s <= t && s < newLengths[b]!; s++) {
          const a = (b * T + s) * 3 * C + h * D;
          keys.push({ k: qkv, v: qkv, ka: a + C, va: a + 2 * C, gk: a + C });
        }
        if (!keys.length) continue;
        const scores = keys.map(({ k, ka }) => {
          let dot = 0;
          for (let d = 0; d < D; d++) dot += qkv[qa + d]! * k[ka + d]!;
          return dot * scale;
        });
        const m = Math.max(...scores);
        const w = scores.map((s) => Math.exp(s - m));
        const sum = w.reduce((x, y) => x + y, 0);
        const p = w.map((x) => x / sum);
        let delta = 0;
        for (let d = 0; d < D; d++) delta += gout[oa + d]! * out[oa + d]!;
        keys.forEach(({ k, v, ka, va, gk }, i) => {
          let dp = 0;
          for (let d = 0; d < D; d++) dp += gout[oa + d]! * v[va + d]!;
          const ds = p[i]! * (dp - delta);
          for (let d = 0; d < D; d++) {
            grad[qa + d] += scale * ds * k[ka + d]!;
            if (gk >= 0) {
              grad[gk + d] += scale * ds * qkv[qa + d]!;
              grad[gk + C + d] += p[i]! * gout[oa + d]!;
            }
          }
        });
      }
    }
  }
  return grad;
}

/**
 * Seeded inputs for a case. Keys/values that no query may see (padded new tokens, past rows
 * beyond an example's length) are NaN, so any leak of them shows up. `offset` sets dim 0 of
 * every query and key of every head to it, which adds about offset²/√D to all logits alike:
 * large logits that overflow a naive exp while the weights stay far from one-hot.
 */
function makeInputs(c: Case, seed: number, offset?: number): { qkv: Float64Array; past?: RefPast } {
  const { B, H, D, T, Tp } = c;
  const C = H * D;
  const newLengths = c.newLengths ?? Array(B).fill(T);
  const qkv = asF32(randn(B * T * 3 * C, seed).map((x, i) => (offset !== undefined && i % (3 * C) < 2 * C && i % D === 0 ? offset : x)));
  for (let b = 0; b < B; b++) {
    for (let t = newLengths[b]!; t < T; t++) qkv.fill(NaN, (b * T + t) * 3 * C + C, (b * T + t + 1) * 3 * C);
  }
  if (!c.pastLengths) return { qkv };
  const k = asF32(randn(B * H * Tp * D, seed + 1).map((x, i) => (offset !== undefined && i % D === 0 ? offset : x)));
  const v = asF32(randn(B * H * Tp * D, seed + 2));
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const row = (b * H + h) * Tp;
      k.fill(NaN, (row + c.pastLengths[b]!) * D, (row + Tp) * D);
      v.fill(NaN, (row + c.pastLengths[b]!) * D, (row + Tp) * D);
    }
  }
  return { qkv, past: { k, v, lengths: c.pastLengths } };
}

function gpuPast(c: Case, past: RefPast | undefined, on = gpu, dtype: DType = 'f32'): Past | undefined {
  if (!past) return undefined;
  const shape = [c.B, c.H, c.Tp, c.D];
  return { k: tensor(on, past.k, shape, { dtype }), v: tensor(on, past.v, shape, { dtype }), lengths: Uint32Array.from(past.lengths) };
}

/** The past as an f16 past holds it; references of f16-past attention are computed from these values. */
function halfPast(past: RefPast): RefPast {
  return { k: asF16(past.k), v: asF16(past.v), lengths: past.lengths };
}

type OnDevice = <T>(ctx: TestContext, body: (device: Gpu) => Promise<T>) => Promise<T | undefined>;

/**
 * The two kernel forms of an f16 past: halves packed in u32 words, on the test device where it
 * lacks shader-f16 (as llvmpipe does: no second device's compiles), else on the feature device
 * with its features off; and native halves on a device with shader-f16 (skipped where no
 * adapter offers it).
 */
const packedHalves: OnDevice = (ctx, body) => (gpu.kernelFeatures.has('shader-f16') ? withKernelFeatures(ctx, [], body) : body(gpu));
const nativeHalves: OnDevice = (ctx, body) => withKernelFeatures(ctx, ['shader-f16'], body);

function opts(c: Case, past: Past | undefined): { past?: Past; newLengths?: Uint32Array } {
  return { ...(past ? { past } : {}), ...(c.newLengths ? { newLengths: Uint32Array.from(c.newLengths) } : {}) };
}

const name = (c: Case) =>
  `B${c.B} H${c.H} D${c.D} T${c.T} Tp${c.Tp}` +
  (c.pastLengths ? ` past[${c.pastLengths}]` : '') +
  (c.newLengths ? ` new[${c.newLengths}]` : '');

describe('attention forward', () => {
  const cases: Case[] = [
    { B: 1, H: 1, D: 8, T: 1, Tp: 0 },
    { B: 1, H: 4, D: 8, T: 1, Tp: 40, pastLengths: [40] },
    { B: 3, H: 4, D: 8, T: 37, Tp: 0, newLengths: [37, 20, 0] },
    { B: 2, H: 2, D: 5, T: 4, Tp: 45, pastLengths: [45, 0], newLengths: [4, 3] },
    { B: 3, H: 3, D: 7, T: 9, Tp: 70, pastLengths: [70, 33, 1], newLengths: [9, 9, 2] },
    { B: 2, H: 2, D: 64, T: 70, Tp: 0, newLengths: [70, 41] },
    { B: 2, H: 1, D: 80, T: 5, Tp: 50, pastLengths: [17, 50] },
    // Several key tiles (KT = 64 keys each) of a ragged past.
    { B: 2, H: 1, D: 8, T: 3, Tp: 600, pastLengths: [600, 257] },
  ];
  for (const c of cases) {
    it(name(c), async () => {
      const { qkv, past } = makeInputs(c, 10 + c.T);
      const out = attention(tensor(gpu, qkv, [c.B, c.T, 3 * c.H * c.D]), c.H, opts(c, gpuPast(c, past)));
      expect(out.shape).toEqual([c.B, c.T, c.H * c.D]);
      expectClose(`attention forward ${name(c)}`, await out.readF32(), refAttention(qkv, c, past).out, { atol: 2e-5, rtol: 1e-4 });
    });
  }

  // The subgroup variant of the row maxima: against float64, and bit for bit against the
  // fallback on the same device (maxima are exact in any order). 8- and 4-query blocks
  // (QV 2 and 1), ragged pasts of one and of three tiles.
  const subgroupCases: Case[] = [cases[6]!, { B: 2, H: 2, D: 80, T: 3, Tp: 130, pastLengths: [130, 65], newLengths: [3, 2] }];
  for (const c of subgroupCases) {
    it(`${name(c)} with subgroups`, async (ctx) => {
      const { qkv, past } = makeInputs(c, 10 + c.T);
      const run = (device: Gpu) => attention(tensor(device, qkv, [c.B, c.T, 3 * c.H * c.D]), c.H, opts(c, gpuPast(c, past, device))).readF32();
      const fast = await withKernelFeatures(ctx, ['subgroups'], run);
      const fallback = await withKernelFeatures(ctx, [], run);
      expectClose(`attention forward subgroups ${name(c)}`, fast!, refAttention(qkv, c, past).out, { atol: 2e-5, rtol: 1e-4 });
      expect(Array.from(fast!)).toEqual(Array.from(fallback!));
    });
  }

  it('stays finite and accurate with large logits', async () => {
    const c: Case = { B: 2, H: 2, D: 8, T: 12, Tp: 530, pastLengths: [530, 9], newLengths: [12, 7] };
    const { qkv, past } = makeInputs(c, 7, 55);
    const ref = refAttention(qkv, c, past);
    expect(Math.min(...ref.lse.filter((x) => x !== 0))).toBeGreaterThan(1000);
    const out = attention(tensor(gpu, qkv, [c.B, c.T, 3 * c.H * c.D]), c.H, opts(c, gpuPast(c, past)));
    // Logits near 1000 carry f32 rounding of ~1e-4, which moves the weights by as much.
    expectClose('attention forward large logits', await out.readF32(), ref.out, { atol: 2e-3, rtol: 1e-3 });
  });

  it('stays finite and accurate with widely spread logits (hundreds apart)', async () => {
    const c: Case = { B: 2, H: 2, D: 8, T: 12, Tp: 530, pastLengths: [530, 9], newLengths: [12, 7] };
    const { qkv, past } = makeInputs(c, 17);
    const C = c.H * c.D;
    qkv.forEach((x, i) => (qkv[i] = i % (3 * C) < 2 * C ? x * 30 : x));
    past!.k.forEach((x, i) => (past!.k[i] = x * 30));
    const ref = refAttention(qkv, c, past);
    const out = attention(tensor(gpu, qkv, [c.B, c.T, 3 * C]), c.H, opts(c, gpuPast(c, past)));
    expectClose('attention forward spread logits', await out.readF32(), ref.out, { atol: 2e-3, rtol: 1e-3 });
  });

  it('outputs 0 for queries that see no key', async () => {
    const c: Case = { B: 2, H: 2, D: 8, T: 3, Tp: 4, pastLengths: [0, 4], newLengths: [0, 0] };
    const { qkv, past } = makeInputs(c, 3);
    const out = await attention(tensor(gpu, qkv, [2, 3, 48]), 2, opts(c, gpuPast(c, past))).readF32();
    expect(Array.from(out.subarray(0, 3 * 16))).toEqual(Array(3 * 16).fill(0));
    expectClose('attention forward empty rows', out, refAttention(qkv, c, past).out);
  });

  it('rejects mismatched shapes and lengths', () => {
    const qkv = tensor(gpu, new Float32Array(2 * 3 * 48), [2, 3, 48]);
    expect(() => attention(qkv, 5)).toThrow(/divisible/);
    expect(() => attention(qkv, 2, { newLengths: Uint32Array.of(4, 1) })).toThrow(/exceeds/);
    const k = tensor(gpu, new Float32Array(2 * 2 * 4 * 8), [2, 2, 4, 8]);
    expect(() => attention(qkv, 2, { past: { k, v: k, lengths: Uint32Array.of(1) } })).toThrow(/entries/);
    expect(() => attention(qkv, 4, { past: { k, v: k, lengths: Uint32Array.of(1, 1) } })).toThrow(/past k\/v/);
  });
});

/** The GPU's gradient of sum(out · gout) w.r.t. qkv, with the past uploaded as `dtype`. */
async function gradOf(c: Case, qkv: Float64Array, gout: Float64Array, past?: RefPast, on = gpu, dtype: DType = 'f32'): Promise<Float32Array> {
  const x = tensor(on, qkv, [c.B, c.T, 3 * c.H * c.D], { requiresGrad: true });
  tidy(() => attention(x, c.H, opts(c, gpuPast(c, past, on, dtype))).backward(tensor(on, gout, [c.B, c.T, c.H * c.D])));
  return x.grad!.readF32();
}

describe('attention backward', () => {
  it('matches finite differences of the reference (with a ragged past and padding)', async () => {
    const c: Case = { B: 2, H: 2, D: 5, T: 4, Tp: 7, pastLengths: [7, 3], newLengths: [4, 2] };
    const { qkv, past } = makeInputs(c, 21);
    const gout = asF32(randn(c.B * c.T * c.H * c.D, 22));
    // Finite differences need finite inputs; the NaN keys are what the mask must drop.
    const finite = qkv.map((x) => (Number.isNaN(x) ? 0 : x));
    const loss = (x: Float64Array) => refAttention(x, c, past).out.reduce((s, o, i) => s + o * gout[i]!, 0);
    const fd = finiteDifferences(loss, finite);
    expectClose('attention reference grad vs finite differences', refAttentionGrad(finite, gout, c, past), fd, { atol: 1e-6, rtol: 1e-5 });
    expectClose('attention backward vs finite differences', await gradOf(c, qkv, gout, past), fd, { atol: 1e-5, rtol: 1e-4 });
  });

  it('matches finite differences without a past (T=11, one empty example)', async () => {
    const c: Case = { B: 3, H: 2, D: 8, T: 11, Tp: 0, newLengths: [11, 6, 0] };
    const { qkv } = makeInputs(c, 31);
    const gout = asF32(randn(c.B * c.T * c.H * c.D, 32));
    const finite = qkv.map((x) => (Number.isNaN(x) ? 0 : x));
    const loss = (x: Float64Array) => refAttention(x, c).out.reduce((s, o, i) => s + o * gout[i]!, 0);
    expectClose('attention backward no past vs finite differences', await gradOf(c, qkv, gout), finiteDifferences(loss, finite), {
      atol: 1e-5,
      rtol: 1e-4,
    });
  });

  const cases: Case[] = [
    { B: 2, H: 2, D: 8, T: 45, Tp: 10, pastLengths: [10, 4], newLengths: [45, 30] },
    { B: 1, H: 1, D: 8, T: 1, Tp: 0 },
    { B: 2, H: 3, D: 64, T: 5, Tp: 40, pastLengths: [40, 13] },
    { B: 1, H: 1, D: 80, T: 20, Tp: 0 },
    { B: 2, H: 1, D: 8, T: 5, Tp: 600, pastLengths: [600, 300], newLengths: [5, 4] },
    { B: 1, H: 2, D: 8, T: 270, Tp: 0 },
  ];
  for (const c of cases) {
    it(`matches the analytic reference: ${name(c)}`, async () => {
      const { qkv, past } = makeInputs(c, 40 + c.T);
      const gout = asF32(randn(c.B * c.T * c.H * c.D, 41));
      const finite = qkv.map((x) => (Number.isNaN(x) ? 0 : x));
      expectClose(`attention backward ${name(c)}`, await gradOf(c, qkv, gout, past), refAttentionGrad(finite, gout, c, past), {
        atol: 2e-5,
        rtol: 1e-4,
      });
    });
  }

  it('stays finite and accurate with large logits', async () => {
    const c: Case = { B: 2, H: 2, D: 8, T: 12, Tp: 30, pastLengths: [30, 9], newLengths: [12, 7] };
    const { qkv, past } = makeInputs(c, 8, 55);
    const gout = asF32(randn(c.B * c.T * c.H * c.D, 9));
    const finite = qkv.map((x) => (Number.isNaN(x) ? 0 : x));
    const ref = refAttentionGrad(finite, gout, c, past);
    const maxRef = Math.max(...ref.map(Math.abs));
    expectClose('attention backward large logits', await gradOf(c, qkv, gout, past), ref, { atol: 2e-3 * maxRef, rtol: 1e-3 });
  });
});

describe('attention with a past', () => {
  it('splitPast of n tokens + m new tokens equals full causal attention over n + m', async () => {
    const H = 4;
    const D = 8;
    const C = H * D;
    const B = 3;
    const n = 40;
    const m = 5;
    const textLengths = [40, 17, 0];
    const text = asF32(randn(B * n * 3 * C, 51));
    const prompt = asF32(randn(B * m * 3 * C, 52));
    // Each example's full sequence: its real text tokens, then the prompt, right-padded to n + m.
    const full = new Float64Array(B * (n + m) * 3 * C);
    for (let b = 0; b < B; b++) {
      const L = textLengths[b]!;
      full.set(text.subarray(b * n * 3 * C, (b * n + L) * 3 * C), b * (n + m) * 3 * C);
      full.set(prompt.subarray(b * m * 3 * C, (b + 1) * m * 3 * C), (b * (n + m) + L) * 3 * C);
    }
    const fullLengths = Uint32Array.from(textLengths, (L) => L + m);
    const expected = await attention(tensor(gpu, full, [B, n + m, 3 * C]), H, { newLengths: fullLengths }).readF32();

    const lengths = Uint32Array.from(textLengths);
    const past = splitPast(tensor(gpu, text, [B, n, 3 * C]), H, lengths);
    expect(past.k.shape).toEqual([B, H, n, D]);
    const got = await attention(tensor(gpu, prompt, [B, m, 3 * C]), H, { past }).readF32();
    const want = new Float64Array(B * m * C);
    for (let b = 0; b < B; b++) {
      want.set(expected.subarray((b * (n + m) + textLengths[b]!) * C, (b * (n + m) + textLengths[b]! + m) * C), b * m * C);
    }
    expectClose('attention with past vs full causal', got, want, { atol: 1e-6, rtol: 1e-5 });
  });

  it('splitPast lays out the keys and values of every head', async () => {
    const [B, T, H, D] = [2, 3, 3, 5];
    const C = H * D;
    const qkv = asF32(randn(B * T * 3 * C, 61));
    const past = splitPast(tensor(gpu, qkv, [B, T, 3 * C]), H, Uint32Array.of(3, 1));
    const k = new Float64Array(B * H * T * D);
    const v = new Float64Array(B * H * T * D);
    for (let b = 0; b < B; b++)
      for (let h = 0; h < H; h++)
        for (let t = 0; t < T; t++)
          for (let d = 0; d < D; d++) {
            const i = ((b * H + h) * T + t) * D + d;
            k[i] = qkv[(b * T + t) * 3 * C + C + h * D + d]!;
            v[i] = qkv[(b * T + t) * 3 * C + 2 * C + h * D + d]!;
          }
    expect(Array.from(await past.k.readF32())).toEqual(Array.from(k));
    expect(Array.from(await past.v.readF32())).toEqual(Array.from(v));
    expect(Array.from(past.lengths)).toEqual([3, 1]);
  });

  // The f32 past on the test device and the packed f16 past (see packedHalves); with the CPU
  // adapters' kernels and with the GPU class's past split across workgroups in chunks of 256
  // keys (there the padded past of the batch has more chunks than the example's own). The f32
  // example alone has 3 new tokens (a 4-query block) and 9 batched (8-query blocks); the f16
  // one 5, with HD 64, sharing the pipelines of the f16 gradient test below.
  const pastForms: { dtype: DType; name: string; on: OnDevice; D: number; Ta: number }[] = [
    { dtype: 'f32', name: 'test device', on: (_ctx, body) => body(gpu), D: 8, Ta: 3 },
    { dtype: 'f16', name: 'packed f16', on: packedHalves, D: 64, Ta: 5 },
  ];
  const layouts = [
    { kernelClass: undefined, pastAlone: 13, pastBatch: 37 },
    { kernelClass: 'gpu' as const, pastAlone: 200, pastBatch: 530 },
  ];
  for (const { kernelClass, pastAlone: Pa, pastBatch: Pb } of layouts) {
    for (const { dtype, name: form, on, D, Ta } of pastForms) {
      const classNote = kernelClass ? `, ${kernelClass} kernel class` : '';
      it(`gives an example bitwise the same output and gradient alone as in a padded batch (${dtype} past, ${form}${classNote})`, async (ctx) => {
        await on(ctx, (device) =>
          withKernelClass(device, kernelClass, async () => {
            const H = 2;
            const C = H * D;
            // Example 0 alone: past Pa, Ta new tokens. In the batch: past padded to Pb, new padded to 9.
            const alone: Case = { B: 1, H, D, T: Ta, Tp: Pa, pastLengths: [Pa] };
            const batch: Case = { B: 3, H, D, T: 9, Tp: Pb, pastLengths: [Pb, Pa, 0], newLengths: [9, Ta, 6] };
            const b = 1;
            const a = makeInputs(alone, 71);
            const big = makeInputs(batch, 72);
            for (let h = 0; h < H; h++) {
              big.past!.k.set(a.past!.k.subarray(h * Pa * D, (h + 1) * Pa * D), (b * H + h) * Pb * D);
              big.past!.v.set(a.past!.v.subarray(h * Pa * D, (h + 1) * Pa * D), (b * H + h) * Pb * D);
            }
            big.qkv.set(a.qkv, b * 9 * 3 * C);
            const gAlone = asF32(randn(Ta * C, 73));
            const gBatch = asF32(randn(3 * 9 * C, 74));
            // Padded rows carry no gradient, as a masked loss would give them.
            gBatch.fill(0, b * 9 * C, (b + 1) * 9 * C);
            gBatch.set(gAlone, b * 9 * C);

            const run = async (c: Case, inputs: { qkv: Float64Array; past?: RefPast }, gout: Float64Array) => {
              const x = tensor(device, inputs.qkv, [c.B, c.T, 3 * C], { requiresGrad: true });
              const out = tidy(() => {
                const y = attention(x, H, opts(c, gpuPast(c, inputs.past, device, dtype)));
                y.backward(tensor(device, gout, [c.B, c.T, C]));
                return y;
              });
              return { out: await out.readF32(), grad: await x.grad!.readF32() };
            };
            const one = await run(alone, a, gAlone);
            const many = await run(batch, big, gBatch);
            expect(Array.from(many.out.subarray(b * 9 * C, (b * 9 + Ta) * C))).toEqual(Array.from(one.out));
            expect(Array.from(many.grad.subarray(b * 9 * 3 * C, (b * 9 + Ta) * 3 * C))).toEqual(Array.from(one.grad));
            const refPast = dtype === 'f16' ? halfPast(a.past!) : a.past;
            expectClose(`attention alone vs reference (${dtype} past, ${form}${classNote})`, one.out, refAttention(a.qkv, alone, refPast).out, { atol: 2e-5, rtol: 1e-4 });
          }),
        );
      });
    }
  }
});

/** Indices where a stored half is neither of the two halves nearest the f32 value WGSL may round it to. */
function notRoundedToHalf(stored: Float32Array, values: Float64Array): string[] {
  const bad: string[] = [];
  values.forEach((x, i) => {
    const nearest = asF16([x])[0]!;
    // The half on x's other side of `nearest` (past it when x is exactly a half: then only x is allowed).
    const bits = f16Bits([nearest])[0]! + (Math.abs(x) > Math.abs(nearest) ? 1 : -1);
    const other = x === nearest ? x : f16Values(Uint16Array.of(bits))[0]!;
    if (stored[i] !== nearest && stored[i] !== other) bad.push(`[${i}] ${x} stored as ${stored[i]}`);
  });
  return bad;
}

describe('attention with an f16 past', () => {
  // HD 6 ends in a half chunk of 4 dims (one past word); 70, 300 and 100 past keys are not
  // whole 64-key tiles; 9 queries are not whole 8-query blocks, 3 fill a 4-query block but one.
  const wide: Case = { B: 2, H: 1, D: 64, T: 3, Tp: 300, pastLengths: [300, 129], newLengths: [3, 1] };
  const partial: Case = { B: 2, H: 2, D: 6, T: 9, Tp: 70, pastLengths: [70, 33], newLengths: [9, 4] };
  const backward: Case = { B: 2, H: 2, D: 64, T: 5, Tp: 100, pastLengths: [100, 37] };
  const halfForms = [
    { name: 'packed f16', on: packedHalves, forward: [wide, partial] },
    { name: 'native f16', on: nativeHalves, forward: [wide] },
  ];
  for (const form of halfForms) {
    for (const c of form.forward) {
      it(`forward (${form.name}) matches float64 over the rounded past: ${name(c)}`, async (ctx) => {
        await form.on(ctx, async (device) => {
          const { qkv, past } = makeInputs(c, 80 + c.T);
          const half = halfPast(past!);
          const p = gpuPast(c, half, device, 'f16')!;
          expect(p.k.byteLength).toBe(c.B * c.H * c.Tp * c.D * 2);
          const out = attention(tensor(device, qkv, [c.B, c.T, 3 * c.H * c.D]), c.H, opts(c, p));
          const ref = refAttention(qkv, c, half).out;
          expectClose(`attention forward, f16 past (${form.name}) ${name(c)}`, await out.readF32(), ref, { atol: 2e-5, rtol: 1e-4 });
        });
      });
    }
    it(`qkv gradient (${form.name}) matches float64 over the rounded past: ${name(backward)}`, async (ctx) => {
      await form.on(ctx, async (device) => {
        const c = backward;
        const { qkv, past } = makeInputs(c, 90 + c.T);
        const half = halfPast(past!);
        const gout = asF32(randn(c.B * c.T * c.H * c.D, 91));
        const finite = qkv.map((x) => (Number.isNaN(x) ? 0 : x));
        expectClose(`attention backward, f16 past (${form.name}) ${name(c)}`, await gradOf(c, qkv, gout, half, device, 'f16'), refAttentionGrad(finite, gout, c, half), {
          atol: 2e-5,
          rtol: 1e-4,
        });
      });
    });

    it(`splitPast (${form.name}) rounds every key and value to a nearest half, which attention then reads`, async (ctx) => {
      await form.on(ctx, async (device) => {
        const [B, T, H, D] = [2, 7, 2, 64];
        const C = H * D;
        const qkv = asF32(randn(B * T * 3 * C, 95, 3));
        const lengths = Uint32Array.of(7, 4);
        const past = splitPast(tensor(device, qkv, [B, T, 3 * C]), H, lengths, { f16: true });
        expect(past.k.dtype).toBe('f16');
        const f32Past = splitPast(tensor(device, qkv, [B, T, 3 * C]), H, lengths);
        const k = await past.k.read();
        const v = await past.v.read();
        expect(notRoundedToHalf(k as Float32Array, asF32(await f32Past.k.readF32()))).toEqual([]);
        expect(notRoundedToHalf(v as Float32Array, asF32(await f32Past.v.readF32()))).toEqual([]);

        const c: Case = { B, H, D, T: 3, Tp: T, pastLengths: [7, 4] };
        const newQkv = asF32(randn(B * c.T * 3 * C, 96));
        const out = attention(tensor(device, newQkv, [B, c.T, 3 * C]), H, { past });
        const ref = refAttention(newQkv, c, { k: Float64Array.from(k), v: Float64Array.from(v), lengths: [7, 4] }).out;
        expectClose(`attention over a split f16 past (${form.name})`, await out.readF32(), ref, { atol: 2e-5, rtol: 1e-4 });
      });
    });
  }

  it('rejects an odd head dim and a past with k and v of different dtypes', () => {
    const qkv = tensor(gpu, new Float32Array(2 * 3 * 30), [2, 3, 30]);
    expect(() => splitPast(qkv, 2, Uint32Array.of(3, 3), { f16: true })).toThrow(/even head dim, got 5/);
    const shape = [2, 2, 4, 5];
    const half = tensor(gpu, new Float32Array(80), shape, { dtype: 'f16' });
    expect(() => attention(qkv, 2, { past: { k: half, v: half, lengths: Uint32Array.of(1, 1) } })).toThrow(/even head dim/);
    const qkv8 = tensor(gpu, new Float32Array(2 * 3 * 48), [2, 3, 48]);
    const k = tensor(gpu, new Float32Array(2 * 2 * 4 * 8), [2, 2, 4, 8], { dtype: 'f16' });
    const v = tensor(gpu, new Float32Array(2 * 2 * 4 * 8), [2, 2, 4, 8]);
    expect(() => attention(qkv8, 2, { past: { k, v, lengths: Uint32Array.of(1, 1) } })).toThrow(/k is f16 but v is f32/);
  });
});

// On GPUs the past is streamed in chunks by workgroups of their own and merged (attn_merge):
// that form, forced on this adapter, against float64 over ragged pasts of several chunks.
describe('attention with the past split across workgroups (GPU kernel class)', () => {
  const cases: Case[] = [
    { B: 3, H: 2, D: 8, T: 5, Tp: 600, pastLengths: [600, 257, 0], newLengths: [5, 4, 0] },
    { B: 2, H: 2, D: 64, T: 9, Tp: 300, pastLengths: [3, 300], newLengths: [9, 2] },
  ];
  for (const c of cases) {
    it(`forward and backward: ${name(c)}`, () =>
      withKernelClass(gpu, 'gpu', async () => {
        const { qkv, past } = makeInputs(c, 90 + c.T);
        const out = attention(tensor(gpu, qkv, [c.B, c.T, 3 * c.H * c.D]), c.H, opts(c, gpuPast(c, past)));
        expectClose(`attention forward, past split ${name(c)}`, await out.readF32(), refAttention(qkv, c, past).out, { atol: 2e-5, rtol: 1e-4 });
        const gout = asF32(randn(c.B * c.T * c.H * c.D, 91));
        const finite = qkv.map((x) => (Number.isNaN(x) ? 0 : x));
        expectClose(`attention backward, past split ${name(c)}`, await gradOf(c, qkv, gout, past), refAttentionGrad(finite, gout, c, past), { atol: 2e-5, rtol: 1e-4 });
      }));
  }

  it('with subgroups and a native f16 past, against float64 over the rounded past', (ctx) =>
    withKernelFeatures(ctx, ['shader-f16', 'subgroups'], (device) =>
      withKernelClass(device, 'gpu', async () => {
        const c = cases[1]!;
        const { qkv, past } = makeInputs(c, 95);
        const out = attention(tensor(device, qkv, [c.B, c.T, 3 * c.H * c.D]), c.H, opts(c, gpuPast(c, past, device, 'f16')));
        expectClose(`attention forward, past split, f16 + subgroups ${name(c)}`, await out.readF32(), refAttention(qkv, c, halfPast(past!)).out, { atol: 2e-5, rtol: 1e-4 });
      }),
    ));
});

describe('attention memory', () => {
  it('frees its lengths and row statistics when nothing will run backward', async () => {
    const c: Case = { B: 2, H: 2, D: 8, T: 3, Tp: 5 };
    const qkv = tensor(gpu, randn(c.B * c.T * 3 * c.H * c.D, 71), [c.B, c.T, 3 * c.H * c.D]);
    const past: Past = {
      k: tensor(gpu, randn(c.B * c.H * c.Tp * c.D, 72), [c.B, c.H, c.Tp, c.D]),
      v: tensor(gpu, randn(c.B * c.H * c.Tp * c.D, 73), [c.B, c.H, c.Tp, c.D]),
      lengths: new Uint32Array([5, 2]),
    };
    const before = gpu.memory().inUse;
    await leakCheck(() => attention(qkv, c.H, { past }).dispose());
    expect(gpu.memory().inUse).toBe(before);
    for (const t of [qkv, past.k, past.v]) t.dispose();
  });
});
