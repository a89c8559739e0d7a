// Causal multi-head attention of new tokens over [a per-example past] + [the new tokens],
// flash-attention style: keys are streamed in tiles with an online softmax, so neither the
// T×T (encoding) nor the T×Tp (prompt over a long past) score matrix is ever stored.
//
// Layouts: qkv [B, T, 3C] (q | k | v, head h at columns h*HD..h*HD+HD-1 of each third);
// past k, v [B, H, Tp, HD]; lens [2B] = past lengths then new lengths; out [B, T, C];
// lse [B, H, T] (natural-log logsumexp of the scaled scores, saved for the backward).
//
// Batch invariance: every example walks its keys in tiles that start at 0 of its own past and
// 0 of its own new tokens, and keys a query cannot see contribute exact zeros (rescale factor
// exactly 1, probability exactly 0), so an example's result does not depend on the padded
// sizes of the batch it runs in.

override WG: u32 = 64u;
override HD: u32 = 64u;
// Forward and dq: queries per workgroup and keys per tile.
override QB: u32 = 8u;
override KB: u32 = 32u;
// Each thread owns up to NPT of a workgroup's QB×HD outputs (private array bound below).
override NPT: u32 = (QB * HD + WG - 1u) / WG;
// dk/dv: new keys per workgroup and queries per tile.
override KV_KB: u32 = 8u;
override KV_QT: u32 = 32u;
override KV_NPT: u32 = (KV_KB * HD + WG - 1u) / WG;

// Private accumulators are sized for the largest NPT the op selects.
const MAX_NPT: u32 = 16u;
// Stands in for -inf (WGSL has no infinity literal); only ever compared against, never exponentiated.
const NEG: f32 = -3.0e38;
// Shared key/value tiles use a row stride of HD + 1 so the threads of a score dot product hit different banks.
const PAD: u32 = 1u;

struct AttnParams {
  batch: u32, heads: u32, t_new: u32, t_past: u32,
  c: u32, n_blocks: u32, scale: f32, _p0: u32,
}

fn attn_flat_group(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return wid.x + wid.y * nwg.x;
}

// ---------------------------------------------------------------------------------------------
// Forward: one workgroup per (b, h, block of QB queries).

@group(0) @binding(0) var<uniform> fw_p: AttnParams;
@group(0) @binding(1) var<storage, read> fw_qkv: array<f32>;
@group(0) @binding(2) var<storage, read> fw_pk: array<f32>;
@group(0) @binding(3) var<storage, read> fw_pv: array<f32>;
@group(0) @binding(4) var<storage, read> fw_lens: array<u32>;
@group(0) @binding(5) var<storage, read_write> fw_out: array<f32>;
@group(0) @binding(6) var<storage, read_write> fw_lse: array<f32>;

var<workgroup> fw_q: array<f32, QB * HD>;
var<workgroup> fw_k: array<f32, KB * (HD + PAD)>;
var<workgroup> fw_v: array<f32, KB * HD>;
var<workgroup> fw_s: array<f32, QB * KB>;
var<workgroup> fw_m: array<f32, QB>;
var<workgroup> fw_l: array<f32, QB>;
var<workgroup> fw_alpha: array<f32, QB>;
var<workgroup> fw_len: vec2<u32>;

@compute @workgroup_size(WG)
fn attn_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
  let g = attn_flat_group(wid, nwg);
  if (g >= fw_p.batch * fw_p.heads * fw_p.n_blocks) { return; }
  let bh = g / fw_p.n_blocks;
  let t0 = (g % fw_p.n_blocks) * QB;
  let h = bh % fw_p.heads;
  let b = bh / fw_p.heads;
  let T = fw_p.t_new;
  let C = fw_p.c;

  if (lid == 0u) { fw_len = vec2<u32>(fw_lens[b], fw_lens[fw_p.batch + b]); }
  // q pre-scaled, so a score is a plain dot product.
  for (var i = lid; i < QB * HD; i += WG) {
    let t = t0 + i / HD;
    fw_q[i] = select(0.0, fw_qkv[(b * T + t) * 3u * C + h * HD + i % HD] * fw_p.scale, t < T);
  }
  if (lid < QB) {
    fw_m[lid] = NEG;
    fw_l[lid] = 0.0;
  }
  let len = workgroupUniformLoad(&fw_len);
  let n_past = len.x;
  // New keys beyond the block's last query are invisible to all of its queries.
  let n_new = min(len.y, min(t0 + QB, T));
  let past_tiles = (n_past + KB - 1u) / KB;
  let tiles = past_tiles + (n_new + KB - 1u) / KB;

  var acc: array<f32, MAX_NPT>;
  for (var k = 0u; k < NPT; k++) { acc[k] = 0.0; }

  for (var tile = 0u; tile < tiles; tile++) {
    let is_past = tile < past_tiles;
    let base = select((tile - past_tiles) * KB, tile * KB, is_past);
    let cnt = min(KB, select(n_new, n_past, is_past) - base);
    for (var i = lid; i < KB * HD; i += WG) {
      let j = i / HD;
      let d = i % HD;
      var kx = 0.0;
      var vx = 0.0;
      if (j < cnt) {
        if (is_past) {
          let a = (bh * fw_p.t_past + base + j) * HD + d;
          kx = fw_pk[a];
          vx = fw_pv[a];
        } else {
          let a = (b * T + base + j) * 3u * C + h * HD + d;
          kx = fw_qkv[a + C];
          vx = fw_qkv[a + 2u * C];
        }
      }
      fw_k[j * (HD + PAD) + d] = kx;
      fw_v[i] = vx;
    }
    workgroupBarrier();
    for (var i = lid; i < QB * KB; i += WG) {
      let r = i / KB;
      let j = i % KB;
      var s = NEG;
      if (j < cnt && (is_past || base + j <= t0 + r)) {
        var dot = 0.0;
        for (var d = 0u; d < HD; d++) { dot += fw_q[r * HD + d] * fw_k[j * (HD + PAD) + d]; }
        s = dot;
      }
      fw_s[i] = s;
    }
    workgroupBarrier();
    if (lid < QB) {
      var mt = NEG;
      for (var j = 0u; j < cnt; j++) { mt = max(mt, fw_s[lid * KB + j]); }
      let mo = fw_m[lid];
      let mn = max(mo, mt);
      // Exactly 1 when nothing new is visible, so such tiles leave the row bit-for-bit unchanged.
      fw_alpha[lid] = select(exp(mo - mn), 1.0, mn == mo);
      fw_m[lid] = mn;
    }
    workgroupBarrier();
    for (var i = lid; i < QB * KB; i += WG) {
      let s = fw_s[i];
      fw_s[i] = select(exp(s - fw_m[i / KB]), 0.0, s == NEG);
    }
    workgroupBarrier();
    for (var k = 0u; k < NPT; k++) {
      let i = lid + k * WG;
      if (i < QB * HD) {
        let r = i / HD;
        let d = i % HD;
        var a = acc[k] * fw_alpha[r];
        for (var j = 0u; j < cnt; j++) { a += fw_s[r * KB + j] * fw_v[j * HD + d]; }
        acc[k] = a;
      }
    }
    if (lid < QB) {
      var l = fw_l[lid] * fw_alpha[lid];
      for (var j = 0u; j < cnt; j++) { l += fw_s[lid * KB + j]; }
      fw_l[lid] = l;
    }
    workgroupBarrier();
  }

  for (var k = 0u; k < NPT; k++) {
    let i = lid + k * WG;
    let t = t0 + i / HD;
    if (i < QB * HD && t < T) {
      let l = fw_l[i / HD];
      // A query that sees no key outputs 0.
      fw_out[(b * T + t) * C + h * HD + i % HD] = select(acc[k] / l, 0.0, l == 0.0);
    }
  }
  if (lid < QB && t0 + lid < T) {
    let l = fw_l[lid];
    fw_lse[bh * T + t0 + lid] = select(fw_m[lid] + log(l), 0.0, l == 0.0);
  }
}

// ---------------------------------------------------------------------------------------------
// Backward, dq: one workgroup per (b, h, block of QB queries), streaming over every key the
// queries see. With P = exp(s - lse), dP = dO·v, Δ = dO·O: dS = P (dP - Δ), dq = scale Σ dS k.
// Also stores Δ for the dk/dv kernel.

@group(0) @binding(0) var<uniform> dq_p: AttnParams;
@group(0) @binding(1) var<storage, read> dq_qkv: array<f32>;
@group(0) @binding(2) var<storage, read> dq_pk: array<f32>;
@group(0) @binding(3) var<storage, read> dq_pv: array<f32>;
@group(0) @binding(4) var<storage, read> dq_lens: array<u32>;
@group(0) @binding(5) var<storage, read> dq_o: array<f32>;
@group(0) @binding(6) var<storage, read> dq_go: array<f32>;
@group(0) @binding(7) var<storage, read> dq_lse: array<f32>;
@group(0) @binding(8) var<storage, read_write> dq_grad: array<f32>;
@group(0) @binding(9) var<storage, read_write> dq_delta: array<f32>;

var<workgroup> dq_q: array<f32, QB * HD>;
var<workgroup> dq_do: array<f32, QB * HD>;
var<workgroup> dq_k: array<f32, KB * (HD + PAD)>;
var<workgroup> dq_v: array<f32, KB * (HD + PAD)>;
var<workgroup> dq_ds: array<f32, QB * KB>;
var<workgroup> dq_rlse: array<f32, QB>;
var<workgroup> dq_rdelta: array<f32, QB>;
var<workgroup> dq_len: vec2<u32>;

@compute @workgroup_size(WG)
fn attn_backward_dq(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) lid: u32) {
  let g = attn_flat_group(wid, nwg);
  if (g >= dq_p.batch * dq_p.heads * dq_p.n_blocks) { return; }
  let bh = g / dq_p.n_blocks;
  let t0 = (g % dq_p.n_blocks) * QB;
  let h = bh % dq_p.heads;
  let b = bh / dq_p.heads;
  let T = dq_p.t_new;
  let C = dq_p.c;

  if (lid == 0u) { dq_len = vec2<u32>(dq_lens[b], dq_lens[dq_p.batch + b]); }
  for (var i = lid; i < QB * HD; i += WG) {
    let t = t0 + i / HD;
    let inside = t < T;
    dq_q[i] = select(0.0, dq_qkv[(b * T + t) * 3u * C + h * HD + i % HD] * dq_p.scale, inside);
    dq_do[i] = select(0.0, dq_go[(b * T + t) * C + h * HD + i % HD], inside);
  }
  if (lid < QB) {
    let t = t0 + lid;
    var delta = 0.0;
    var lse = 0.0;
    if (t < T) {
      let row = (b * T + t) * C + h * HD;
      for (var d = 0u; d < HD; d++) { delta += dq_go[row + d] * dq_o[row + d]; }
      lse = dq_lse[bh * T + t];
      dq_delta[bh * T + t] = delta;
    }
    dq_rdelta[lid] = delta;
    dq_rlse[lid] = lse;
  }
  let len = workgroupUniformLoad(&dq_len);
  let n_past = len.x;
  let n_new = min(len.y, min(t0 + QB, T));
  let past_tiles = (n_past + KB - 1u) / KB;
  let tiles = past_tiles + (n_new + KB - 1u) / KB;

  var acc: array<f32, MAX_NPT>;
  for (var k = 0u; k < NPT; k++) { acc[k] = 0.0; }

  for (var tile = 0u; tile < tiles; tile++) {
    let is_past = tile < past_tiles;
    let base = select((tile - past_tiles) * KB, tile * KB, is_past);
    let cnt = min(KB, select(n_new, n_past, is_past) - base);
    for (var i = lid; i < KB * HD; i += WG) {
      let j = i / HD;
      let d = i % HD;
      var kx = 0.0;
      var vx = 0.0;
      if (j < cnt) {
        if (is_past) {
          let a = (bh * dq_p.t_past + base + j) * HD + d;
          kx = dq_pk[a];
          vx = dq_pv[a];
        } else {
          let a = (b * T + base + j) * 3u * C + h * HD + d;
          kx = dq_qkv[a + C];
          vx = dq_qkv[a + 2u * C];
        }
      }
      dq_k[j * (HD + PAD) + d] = kx;
      dq_v[j * (HD + PAD) + d] = vx;
    }
    workgroupBarrier();
    for (var i = lid; i < QB * KB; i += WG) {
      let r = i / KB;
      let j = i % KB;
      var ds = 0.0;
      if (j < cnt && (is_past || base + j <= t0 + r)) {
        var s = 0.0;
        var dp = 0.0;
        for (var d = 0u; d < HD; d++) {
          s += dq_q[r * HD + d] * dq_k[j * (HD + PAD) + d];
          dp += dq_do[r * HD + d] * dq_v[j * (HD + PAD) + d];
        }
        ds = exp(s - dq_rlse[r]) * (dp - dq_rdelta[r]);
      }
      dq_ds[i] = ds;
    }
    workgroupBarrier();
    for (var k = 0u; k < NPT; k++) {
      let i = lid + k * WG;
      if (i < QB * HD) {
        let r = i / HD;
        let d = i % HD;
        var a = acc[k];
        for (var j = 0u; j < cnt; j++) { a += dq_ds[r * KB + j] * dq_k[j * (HD + PAD) + d]; }
        acc[k] = a;
      }
    }
    workgroupBarrier();
  }

  for (var k = 0u; k < NPT; k++) {
    let i = lid + k * WG;
    let t = t0 + i / HD;
    if (i < QB * HD && t < T) {
      dq_grad[(b * T + t) * 3u * C + h * HD + i % HD] = acc[k] * dq_p.scale;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Backward, dk and dv of the new keys: one workgroup per (b, h, block of KV_KB new keys),
// streaming over the queries that see them (t ≥ s). dv = Σ_t P dO, dk = scale Σ_t dS q.
// Keys no query sees (padding) get zeros.

@group(0) @binding(0) var<uniform> kv_p: AttnParams;
@group(0) @binding(1) var<storage, read> kv_qkv: array<f32>;
@group(0) @binding(2) var<storage, read> kv_lens: array<u32>;
@group(0) @binding(3) var<storage, read> kv_go: array<f32>;
@group(0) @binding(4) var<storage, read> kv_lse: array<f32>;
@group(0) @binding(5) var<storage, read> kv_delta: array<f32>;
@group(0) @binding(6) var<storage, read_write> kv_grad: array<f32>;

var<workgroup> kv_k: array<f32, KV_KB * (HD + PAD)>;
var<workgroup> kv_v: array<f32, KV_KB * (HD + PAD)>;
var<workgroup> kv_q: array<f32, KV_QT * (HD + PAD)>;
var<workgroup> kv_do: array<f32, KV_QT * (HD + PAD)>;
var<workgroup> kv_pr: array<f32, KV_KB * KV_QT>;
var<workgroup> kv_ds: array<f32, KV_KB * KV_QT>;
var<workgroup> kv_len: u32;

@compute @workgroup_size(WG)
fn attn_backward_dkv(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_index) lid: u32) {
  let g = attn_flat_group(wid, nwg);
  if (g >= kv_p.batch * kv_p.heads * kv_p.n_blocks) { return; }
  let bh = g / kv_p.n_blocks;
  let s0 = (g % kv_p.n_blocks) * KV_KB;
  let h = bh % kv_p.heads;
  let b = bh / kv_p.heads;
  let T = kv_p.t_new;
  let C = kv_p.c;

  if (lid == 0u) { kv_len = kv_lens[kv_p.batch + b]; }
  let n_new = workgroupUniformLoad(&kv_len);
  // Keys of this block that exist (s < n_new); others stay zero.
  let nk = min(KV_KB, max(n_new, s0) - s0);
  for (var i = lid; i < KV_KB * HD; i += WG) {
    let j = i / HD;
    let d = i % HD;
    var kx = 0.0;
    var vx = 0.0;
    if (j < nk) {
      let a = (b * T + s0 + j) * 3u * C + h * HD + d;
      kx = kv_qkv[a + C];
      vx = kv_qkv[a + 2u * C];
    }
    kv_k[j * (HD + PAD) + d] = kx;
    kv_v[j * (HD + PAD) + d] = vx;
  }
  // Queries s0..T-1 (every query at or after a key sees it, padded queries included).
  let first = select(T, s0, nk > 0u);
  let tiles = (T - first + KV_QT - 1u) / KV_QT;

  var dk: array<f32, MAX_NPT>;
  var dv: array<f32, MAX_NPT>;
  for (var k = 0u; k < KV_NPT; k++) {
    dk[k] = 0.0;
    dv[k] = 0.0;
  }

  for (var tile = 0u; tile < tiles; tile++) {
    let tb = first + tile * KV_QT;
    let cnt = min(KV_QT, T - tb);
    workgroupBarrier();
    for (var i = lid; i < KV_QT * HD; i += WG) {
      let r = i / HD;
      let d = i % HD;
      var qx = 0.0;
      var gx = 0.0;
      if (r < cnt) {
        let t = tb + r;
        qx = kv_qkv[(b * T + t) * 3u * C + h * HD + d] * kv_p.scale;
        gx = kv_go[(b * T + t) * C + h * HD + d];
      }
      kv_q[r * (HD + PAD) + d] = qx;
      kv_do[r * (HD + PAD) + d] = gx;
    }
    workgroupBarrier();
    for (var i = lid; i < KV_KB * KV_QT; i += WG) {
      let j = i / KV_QT;
      let r = i % KV_QT;
      let t = tb + r;
      var pr = 0.0;
      var ds = 0.0;
      if (j < nk && r < cnt && s0 + j <= t) {
        var s = 0.0;
        var dp = 0.0;
        for (var d = 0u; d < HD; d++) {
          s += kv_q[r * (HD + PAD) + d] * kv_k[j * (HD + PAD) + d];
          dp += kv_do[r * (HD + PAD) + d] * kv_v[j * (HD + PAD) + d];
        }
        pr = exp(s - kv_lse[bh * T + t]);
        ds = pr * (dp - kv_delta[bh * T + t]);
      }
      kv_pr[i] = pr;
      kv_ds[i] = ds;
    }
    workgroupBarrier();
    for (var k = 0u; k < KV_NPT; k++) {
      let i = lid + k * WG;
      if (i < KV_KB * HD) {
        let j = i / HD;
        let d = i % HD;
        var a = dk[k];
        var c = dv[k];
        for (var r = 0u; r < cnt; r++) {
          a += kv_ds[j * KV_QT + r] * kv_q[r * (HD + PAD) + d];
          c += kv_pr[j * KV_QT + r] * kv_do[r * (HD + PAD) + d];
        }
        dk[k] = a;
        dv[k] = c;
      }
    }
  }

  for (var k = 0u; k < KV_NPT; k++) {
    let i = lid + k * WG;
    let s = s0 + i / HD;
    if (i < KV_KB * HD && s < T) {
      let a = (b * T + s) * 3u * C + h * HD + i % HD;
      // q was pre-scaled, so dk already carries the scale.
      kv_grad[a + C] = dk[k];
      kv_grad[a + 2u * C] = dv[k];
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The keys and values of qkv in the past layout [B, H, T, HD].

struct SplitParams { n: u32, heads: u32, t: u32, c: u32 }

@group(0) @binding(0) var<uniform> sp_p: SplitParams;
@group(0) @binding(1) var<storage, read> sp_qkv: array<f32>;
@group(0) @binding(2) var<storage, read_write> sp_k: array<f32>;
@group(0) @binding(3) var<storage, read_write> sp_v: array<f32>;

@compute @workgroup_size(WG)
fn split_past(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
  let i = attn_flat_group(wid, nwg) * WG + lid;
  if (i >= sp_p.n) { return; }
  let d = i % HD;
  let t = (i / HD) % sp_p.t;
  let bh = i / (HD * sp_p.t);
  let a = ((bh / sp_p.heads) * sp_p.t + t) * 3u * sp_p.c + (bh % sp_p.heads) * HD + d;
  sp_k[i] = sp_qkv[a + sp_p.c];
  sp_v[i] = sp_qkv[a + 2u * sp_p.c];
}
