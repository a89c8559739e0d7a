// An independent float64 GPT-2 forward for one unpadded sequence of input vectors, used to
// check configurations the PyTorch fixture does not cover (e.g. GPT-2 small's size).
import type { GPT2Config } from '../../src/gpt2/config.ts';
import type { GPT2HostWeights } from '../../src/gpt2/checkpoint.ts';

function layerNorm(x: Float64Array, w: Float32Array, b: Float32Array, eps: number): Float64Array {
  const C = w.length;
  const out = new Float64Array(x.length);
  for (let r = 0; r < x.length / C; r++) {
    const row = x.subarray(r * C, (r + 1) * C);
    const mean = row.reduce((s, v) => s + v, 0) / C;
    const variance = row.reduce((s, v) => s + (v - mean) ** 2, 0) / C;
    const rstd = 1 / Math.sqrt(variance + eps);
    for (let c = 0; c < C; c++) out[r * C + c] = (row[c]! - mean) * rstd * w[c]! + b[c]!;
  }
  return out;
}

/** x [T, IN] · W [IN, OUT] + b */
function linear(x: Float64Array, w: Float32Array, b: Float32Array): Float64Array {
  const OUT = b.length;
  const IN = w.length / OUT;
  const T = x.length / IN;
  const out = new Float64Array(T * OUT);
  for (let t = 0; t < T; t++) {
    const row = out.subarray(t * OUT, (t + 1) * OUT);
    row.set(b);
    for (let i = 0; i < IN; i++) {
      const xi = x[t * IN + i]!;
      if (xi === 0) continue;
      const wrow = w.subarray(i * OUT, (i + 1) * OUT);
      for (let o = 0; o < OUT; o++) row[o]! += xi * wrow[o]!;
    }
  }
  return out;
}

const gelu = (v: number) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));

/** Final hidden states [T, C] of GPT-2 over the token ids (positions 0..T-1). */
export function referenceHidden(config: GPT2Config, w: GPT2HostWeights, ids: number[]): Float64Array {
  const C = config.nEmbd;
  const H = config.nHead;
  const D = C / H;
  const T = ids.length;
  let x = new Float64Array(T * C);
  ids.forEach((id, t) => {
    for (let c = 0; c < C; c++) x[t * C + c] = w.wte[id * C + c]! + w.wpe[t * C + c]!;
  });
  for (const block of w.blocks) {
    const qkv = linear(layerNorm(x, block.ln1.weight, block.ln1.bias, config.layerNormEps), block.attn.cAttnW, block.attn.cAttnB);
    const attended = new Float64Array(T * C);
    for (let h = 0; h < H; h++) {
      for (let t = 0; t < T; t++) {
        const scores: number[] = [];
        for (let s = 0; s <= t; s++) {
          let dot = 0;
          for (let d = 0; d < D; d++) dot += qkv[t * 3 * C + h * D + d]! * qkv[s * 3 * C + C + h * D + d]!;
          scores.push(dot / Math.sqrt(D));
        }
        const max = Math.max(...scores);
        const e = scores.map((v) => Math.exp(v - max));
        const z = e.reduce((a, b) => a + b, 0);
        for (let s = 0; s <= t; s++) {
          for (let d = 0; d < D; d++) attended[t * C + h * D + d]! += (e[s]! / z) * qkv[s * 3 * C + 2 * C + h * D + d]!;
        }
      }
    }
    const proj = linear(attended, block.attn.cProjW, block.attn.cProjB);
    x = x.map((v, i) => v + proj[i]!);
    const fc = linear(layerNorm(x, block.ln2.weight, block.ln2.bias, config.layerNormEps), block.mlp.cFcW, block.mlp.cFcB).map(gelu);
    const out = linear(fc, block.mlp.cProjW, block.mlp.cProjB);
    x = x.map((v, i) => v + out[i]!);
  }
  return layerNorm(x, w.lnF.weight, w.lnF.bias, config.layerNormEps);
}

/** Random GPT-2 weights of any size (N(0, std) approximated cheaply; LayerNorms near identity). */
export function randomWeights(config: GPT2Config, seed: number, std = 0.02): GPT2HostWeights {
  let state = seed >>> 0 || 1;
  const fill = (n: number, scale = std, offset = 0) => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      // xorshift32; the sum of two uniforms is a cheap bell shape, fine for activations.
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      const u1 = (state >>> 0) / 4294967296;
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      const u2 = (state >>> 0) / 4294967296;
      a[i] = offset + (u1 + u2 - 1) * scale * 2.45;
    }
    return a;
  };
  const C = config.nEmbd;
  const ln = () => ({ weight: fill(C, 0.1, 1), bias: fill(C, 0.1) });
  return {
    wte: fill(config.vocabSize * C, 0.1),
    wpe: fill(config.nPositions * C, 0.05),
    lnF: ln(),
    blocks: Array.from({ length: config.nLayer }, () => ({
      ln1: ln(),
      attn: { cAttnW: fill(C * 3 * C), cAttnB: fill(3 * C), cProjW: fill(C * C), cProjB: fill(C) },
      ln2: ln(),
      mlp: { cFcW: fill(C * 4 * C), cFcB: fill(4 * C), cProjW: fill(4 * C * C), cProjB: fill(C) },
    })),
  };
}
