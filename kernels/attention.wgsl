// Causal multi-head attention of new tokens over [a per-example past] + [the new tokens],
// flash-attention style: keys are streamed in tiles with an online softmax, so neither the
// T×T (encoding) nor the T×Tp (prompt over a long past) score matrix is ever stored.
//
// Layouts: qkv [B, T, 3C] (q | k | v, head h at columns h*HD..h*HD+HD-1 of each third);
// past k, v [B, H, Tp, HD] (f32, or f16 with the past_f16 flag: see PastWord); lens [2B] = past
// lengths then new lengths; out [B, T, C]; lse [B, H, T] (natural-log logsumexp of the scaled
// scores, saved for the backward).
//
// Work split (forward and dq): a workgroup takes QB queries and streams tiles of KT = WG·KPT
// keys. Scores: thread i owns keys i, i + WG, ... of the tile and dots them with all QB queries
// (read from shared memory, the same address for every thread), so each load feeds KPT or QB
// dot products. Weighted sums: thread (c, g) owns the 4 head dims 4c..4c+3 for all QB queries
// over the tile's keys of group g; the groups' partial sums are added in a fixed order at the
// end. Every value is handled as vec4 so each memory access moves 4 floats: a software
// rasterizer (llvmpipe) pays per access and per lane, and on a GPU this is the usual
// broadcast/coalesced register-blocked pattern.
//
// On GPUs the forward also splits each query block's keys into chunks of their own workgroups
// (past_split, merged by attn_merge), so few new tokens still fill the device.
//
// Batch invariance: every example walks its keys in tiles that start at 0 of its own past and
// 0 of its own new tokens, and keys a query cannot see contribute exact zeros (rescale factor
// exactly 1, probability exactly 0), so an example's result does not depend on the padded
// sizes of the batch it runs in.

override WG: u32 = 64u;
override HD: u32 = 64u;
// Queries per workgroup in forward and dq: 4 or 8.
override QB: u32 = 8u;
// vec4 chunks of a head row (the last one zero-padded), and of a row of QB scores.
override HD4: u32 = (HD + 3u) / 4u;
override QV: u32 = QB / 4u;
// Keys per thread in the score phase, keys per tile. More keys per thread reuse each q load more
// (register blocking, for GPUs) but on llvmpipe partly filled tiles then cost as much as full
// ones, and 1 measured fastest there for pasts of 128-1000. Changing it changes rounding, so an
// example's result stays batch-independent only on one setting.
override KPT: u32 = 1u;
override KT: u32 = WG * KPT;
// Row maxima are reduced in two steps: NPART partial maxima per row, each over QB threads.
override NPART: u32 = WG / QB;
// Key groups of the weighted-sum phase, and keys per group.
override KG: u32 = WG / HD4;
override KPG: u32 = (KT + KG - 1u) / KG;
// dk/dv: new keys per workgroup and queries per tile.
override KV_KB: u32 = 8u;
override KV_QT: u32 = 32u;
override KV_NPT: u32 = (KV_KB * HD + WG - 1u) / WG;

// Private accumulators are sized for the largest QB and KV_NPT the op selects.
const MAX_QB: u32 = 8u;
const MAX_KPT: u32 = 4u;
const MAX_NPT: u32 = 16u;
// Stands in for -inf (WGSL has no infinity literal); only ever compared against, never exponentiated.
const NEG: f32 = -3.0e38;
// Shared key/value tiles of the dk/dv kernel use a row stride of HD + 1 so the threads of a dot product hit different banks.
const PAD: u32 = 1u;

// The past's elements. With the past_f16 flag they are half precision, which halves the memory
// of cached pasts; the kernels widen them to f32 as they load them, so every score and sum stays
// f32. Devices with shader-f16 store them as vec2<f16>, others as u32 words of two halves
// (pack2x16float, which every device has); both forms store pairs of head dims, so HD is even.
//#if past_f16
//#if f16
alias PastWord = vec2<f16>;
fn past_pair(w: PastWord) -> vec2<f32> { return vec2<f32>(w); }
fn past_word(x: vec2<f32>) -> PastWord { return vec2<f16>(x); }
//#else
alias PastWord = u32;
fn past_pair(w: PastWord) -> vec2<f32> { return unpack2x16float(w); }
fn past_word(x: vec2<f32>) -> PastWord { return pack2x16float(x); }
//#endif
const PAST_PER_WORD: u32 = 2u;

// Past elements a..a+3 (a even) from their words a/2 and a/2 + 1, those from the n-th on as 0
// (as the f32 loads give them).
fn attn_past4(lo: PastWord, hi: PastWord, n: u32) -> vec4<f32> {
  return select(vec4<f32>(0.0), vec4<f32>(past_pair(lo), past_pair(hi)), vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(n));
}
//#else
alias PastWord = f32;
const PAST_PER_WORD: u32 = 1u;
//#endif

struct AttnParams {
  batch: u32, heads: u32, t_new: u32, t_past: u32,
  c: u32, n_blocks: u32, scale: f32,
  // Forward with past_split: the chunks each query block's keys are split into (see attn_merge).
  chunks: u32,
}

//#include <index>

// How many of the 4 dims of chunk c exist.
fn attn_dims(c: u32) -> u32 {
  return min(4u, HD - c * 4u);
}

// ---------------------------------------------------------------------------------------------
// Forward: one workgroup per (b, h, block of QB queries).

@group(0) @binding(0) var<uniform> fw_p: AttnParams;
@group(0) @binding(1) var<storage, read> fw_qkv: array<f32>;
@group(0) @binding(2) var<storage, read> fw_pk: array<PastWord>;
@group(0) @binding(3) var<storage, read> fw_pv: array<PastWord>;
@group(0) @binding(4) var<storage, read> fw_lens: array<u32>;
@group(0) @binding(5) var<storage, read_write> fw_out: array<f32>;
@group(0) @binding(6) var<storage, read_write> fw_lse: array<f32>;

var<workgroup> fw_q: array<vec4<f32>, QB * HD4>;
// Probabilities of the tile: [key][QV].
var<workgroup> fw_s: array<vec4<f32>, KT * QV>;
//#if subgroups
// Row maxima of the tile per subgroup [subgroup][QV] (subgroups have at least 4 invocations).
var<workgroup> fw_pm: array<vec4<f32>, (WG / 4u) * QV>;
//#else
// Row maxima of the tile per thread [WG][QV], then per part [NPART][QV].
var<workgroup> fw_tm: array<vec4<f32>, WG * QV>;
var<workgroup> fw_pm: array<vec4<f32>, NPART * QV>;
//#endif
var<workgroup> fw_red: array<vec4<f32>, KG * QB * HD4>;
var<workgroup> fw_lred: array<vec4<f32>, KG * QV>;
var<workgroup> fw_len: vec2<u32>;

fn fw_qkv4(a: u32, n: u32) -> vec4<f32> {
  return vec4<f32>(select(0.0, fw_qkv[a], n > 0u), select(0.0, fw_qkv[a + 1u], n > 1u),
                   select(0.0, fw_qkv[a + 2u], n > 2u), select(0.0, fw_qkv[a + 3u], n > 3u));
}

fn fw_pk4(a: u32, n: u32) -> vec4<f32> {
//#if past_f16
  return attn_past4(fw_pk[a / 2u], fw_pk[a / 2u + 1u], n);
//#else
  return vec4<f32>(select(0.0, fw_pk[a], n > 0u), select(0.0, fw_pk[a + 1u], n > 1u),
                   select(0.0, fw_pk[a + 2u], n > 2u), select(0.0, fw_pk[a + 3u], n > 3u));
//#endif
}

fn fw_pv4(a: u32, n: u32) -> vec4<f32> {
//#if past_f16
  return attn_past4(fw_pv[a / 2u], fw_pv[a / 2u + 1u], n);
//#else
  return vec4<f32>(select(0.0, fw_pv[a], n > 0u), select(0.0, fw_pv[a + 1u], n > 1u),
                   select(0.0, fw_pv[a + 2u], n > 2u), select(0.0, fw_pv[a + 3u], n > 3u));
//#endif
}

// Where an invocation stands in its workgroup (and subgroup), for the forward's row maxima.
struct AttnIds {
  @builtin(local_invocation_index) lid: u32,
//#if subgroups
  @builtin(subgroup_id) subgroup: u32,
  @builtin(num_subgroups) subgroups: u32,
  @builtin(subgroup_invocation_id) lane: u32,
//#endif
}

@compute @workgroup_size(WG)
fn attn_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, ids: AttnIds) {
  let lid = ids.lid;
//#if past_split
  let gc = flat_group(wid, nwg);
  if (gc >= fw_p.batch * fw_p.heads * fw_p.n_blocks * fw_p.chunks) { return; }
  let chunk = gc % fw_p.chunks;
  let g = gc / fw_p.chunks;
//#else
  let g = flat_group(wid, nwg);
  if (g >= fw_p.batch * fw_p.heads * fw_p.n_blocks) { return; }
//#endif
  let bh = g / fw_p.n_blocks;
  let t0 = (g % fw_p.n_blocks) * QB;
  let h = bh % fw_p.heads;
  let b = bh / fw_p.heads;
  let T = fw_p.t_new;
  let C = fw_p.c;

  if (lid == 0u) { fw_len = vec2<u32>(fw_lens[b], fw_lens[fw_p.batch + b]); }
  // q pre-scaled, so a score is a plain dot product.
  for (var i = lid; i < QB * HD4; i += WG) {
    let t = t0 + i / HD4;
    let c = i % HD4;
    fw_q[i] = select(vec4<f32>(0.0), fw_qkv4((b * T + t) * 3u * C + h * HD + c * 4u, attn_dims(c)) * fw_p.scale, t < T);
  }
  let len = workgroupUniformLoad(&fw_len);
  let n_past = len.x;
  // New keys beyond the block's last query are invisible to all of its queries.
  let n_new = min(len.y, min(t0 + QB, T));
  let past_tiles = (n_past + KT - 1u) / KT;
  let tiles = past_tiles + (n_new + KT - 1u) / KT;
//#if past_split
  // Chunk c < chunks - 1 takes past tiles c·CHUNK_TILES.. (none where this example's past is
  // shorter); the last chunk takes the new tokens.
  let last_chunk = chunk + 1u == fw_p.chunks;
  let tile_begin = select(min(chunk * CHUNK_TILES, past_tiles), past_tiles, last_chunk);
  let tile_end = select(min((chunk + 1u) * CHUNK_TILES, past_tiles), tiles, last_chunk);
//#else
  let tile_begin = 0u;
  let tile_end = tiles;
//#endif

  // Weighted-sum phase role of this thread.
  let wc = lid % HD4;
  let wg = lid / HD4;
  var acc: array<vec4<f32>, MAX_QB>;
  var lsum: array<vec4<f32>, 2>;
  // Every thread tracks the running row maxima (identically), so they need no shared copy.
  var m: array<vec4<f32>, 2>;
  for (var r = 0u; r < QB; r++) { acc[r] = vec4<f32>(0.0); }
  for (var r = 0u; r < QV; r++) {
    lsum[r] = vec4<f32>(0.0);
    m[r] = vec4<f32>(NEG);
  }

  for (var tile = tile_begin; tile < tile_end; tile++) {
    let is_past = tile < past_tiles;
    let base = select((tile - past_tiles) * KT, tile * KT, is_past);
    let cnt = min(KT, select(n_new, n_past, is_past) - base);

    // Scores of keys lid + k·WG against every query of the block: sc[k·QV + r/4][r%4].
    var sc: array<vec4<f32>, MAX_KPT * 2u>;
    for (var k = 0u; k < KPT * QV; k++) { sc[k] = vec4<f32>(0.0); }
    for (var c = 0u; c < HD4; c++) {
      var k4: array<vec4<f32>, MAX_KPT>;
      for (var k = 0u; k < KPT; k++) {
        let j = base + k * WG + lid;
        k4[k] = vec4<f32>(0.0);
        if (k * WG + lid < cnt) {
          if (is_past) {
            k4[k] = fw_pk4((bh * fw_p.t_past + j) * HD + c * 4u, attn_dims(c));
          } else {
            k4[k] = fw_qkv4((b * T + j) * 3u * C + C + h * HD + c * 4u, attn_dims(c));
          }
        }
      }
      for (var r = 0u; r < QB; r++) {
        let q = fw_q[r * HD4 + c];
        for (var k = 0u; k < KPT; k++) { sc[k * QV + r / 4u][r % 4u] += dot(q, k4[k]); }
      }
    }
    var tmax: array<vec4<f32>, 2>;
    for (var r = 0u; r < QV; r++) { tmax[r] = vec4<f32>(NEG); }
    for (var k = 0u; k < KPT; k++) {
      let j = k * WG + lid;
      for (var r = 0u; r < QB; r++) {
        if (!(j < cnt && (is_past || base + j <= t0 + r))) { sc[k * QV + r / 4u][r % 4u] = NEG; }
      }
      for (var r = 0u; r < QV; r++) { tmax[r] = max(tmax[r], sc[k * QV + r]); }
    }
//#if subgroups
    // A subgroup's maxima in one op each, one partial per subgroup: a barrier fewer. Maxima are
    // exact in any order, so both variants give the same bits.
    for (var r = 0u; r < QV; r++) {
      let sm = subgroupMax(tmax[r]);
      if (ids.lane == 0u) { fw_pm[ids.subgroup * QV + r] = sm; }
    }
    workgroupBarrier();
    let parts = ids.subgroups;
//#else
    for (var r = 0u; r < QV; r++) { fw_tm[lid * QV + r] = tmax[r]; }
    workgroupBarrier();
    {
      let r = lid % QB;
      let part = lid / QB;
      var pm = NEG;
      for (var e = 0u; e < QB; e++) { pm = max(pm, fw_tm[(part * QB + e) * QV + r / 4u][r % 4u]); }
      fw_pm[part * QV + r / 4u][r % 4u] = pm;
    }
    workgroupBarrier();
    let parts = NPART;
//#endif
    var alpha: array<vec4<f32>, 2>;
    for (var r = 0u; r < QV; r++) {
      var mt = vec4<f32>(NEG);
      for (var part = 0u; part < parts; part++) { mt = max(mt, fw_pm[part * QV + r]); }
      let mn = max(m[r], mt);
      // Exactly 1 when nothing new is visible, so such tiles leave the row bit-for-bit unchanged.
      alpha[r] = select(exp(m[r] - mn), vec4<f32>(1.0), mn == m[r]);
      m[r] = mn;
    }
    for (var k = 0u; k < KPT; k++) {
      for (var r = 0u; r < QV; r++) {
        let s = sc[k * QV + r];
        fw_s[(k * WG + lid) * QV + r] = select(exp(s - m[r]), vec4<f32>(0.0), s == vec4<f32>(NEG));
      }
    }
    workgroupBarrier();
    if (wg < KG) {
      for (var r = 0u; r < QV; r++) {
        lsum[r] *= alpha[r];
        acc[r * 4u] *= alpha[r].x;
        acc[r * 4u + 1u] *= alpha[r].y;
        acc[r * 4u + 2u] *= alpha[r].z;
        acc[r * 4u + 3u] *= alpha[r].w;
      }
      // A loop bound rather than a branch: a software rasterizer skips loop trips, not masked-off code.
      let jn = min(KPG, max(cnt, wg * KPG) - wg * KPG);
      for (var jj = 0u; jj < jn; jj++) {
        let j = wg * KPG + jj;
        {
          var v4: vec4<f32>;
          if (is_past) {
            v4 = fw_pv4((bh * fw_p.t_past + base + j) * HD + wc * 4u, attn_dims(wc));
          } else {
            v4 = fw_qkv4((b * T + base + j) * 3u * C + 2u * C + h * HD + wc * 4u, attn_dims(wc));
          }
          for (var r = 0u; r < QV; r++) {
            let p = fw_s[j * QV + r];
            lsum[r] += p;
            acc[r * 4u] += p.x * v4;
            acc[r * 4u + 1u] += p.y * v4;
            acc[r * 4u + 2u] += p.z * v4;
            acc[r * 4u + 3u] += p.w * v4;
          }
        }
      }
    }
    workgroupBarrier();
  }

  if (wg < KG) {
    for (var r = 0u; r < QB; r++) { fw_red[(wg * QB + r) * HD4 + wc] = acc[r]; }
    if (wc == 0u) {
      for (var r = 0u; r < QV; r++) { fw_lred[wg * QV + r] = lsum[r]; }
    }
  }
  workgroupBarrier();
  for (var i = lid; i < QB * HD4; i += WG) {
    let r = i / HD4;
    let c = i % HD4;
    let t = t0 + r;
    if (t < T) {
      var o = vec4<f32>(0.0);
      var l = 0.0;
      for (var k = 0u; k < KG; k++) {
        o += fw_red[(k * QB + r) * HD4 + c];
        l += fw_lred[k * QV + r / 4u][r % 4u];
      }
//#if past_split
      // The chunk's unnormalised sums and its row maximum and sum, for attn_merge.
      let row = (bh * fw_p.chunks + chunk) * T + t;
      for (var e = 0u; e < attn_dims(c); e++) { fw_out[row * HD + c * 4u + e] = o[e]; }
      if (c == 0u) {
        fw_lse[2u * row] = m[r / 4u][r % 4u];
        fw_lse[2u * row + 1u] = l;
      }
//#else
      // A query that sees no key outputs 0.
      o = select(o / l, vec4<f32>(0.0), l == 0.0);
      let a = (b * T + t) * C + h * HD + c * 4u;
      for (var e = 0u; e < attn_dims(c); e++) { fw_out[a + e] = o[e]; }
      if (c == 0u) { fw_lse[bh * T + t] = select(m[r / 4u][r % 4u] + log(l), 0.0, l == 0.0); }
//#endif
    }
  }
}

// Past split (GPUs): with few new tokens, one workgroup per (example, head) is too few to keep
// a GPU's memory busy, so attn_forward with past_split streams each CHUNK_TILES tiles of the
// past (and, last, the new tokens) in a workgroup of its own, storing per chunk the
// unnormalised weighted sums o_c, the row maximum m_c and the row sum l_c; attn_merge then
// gives out = Σ e^(m_c − M) o_c / L and lse = M + log L, L = Σ e^(m_c − M) l_c, M = max m_c,
// summing the chunks in order. Chunks start at fixed positions of an example's own past, and a
// chunk past its end (m_c = NEG, l_c = 0, o_c = 0) adds exact zeros, so an example's result
// does not depend on the padded past of the batch it runs in.
const CHUNK_TILES: u32 = 4u;

struct MergeParams {
  batch: u32, heads: u32, t_new: u32, c: u32,
  chunks: u32, _p0: u32, _p1: u32, _p2: u32,
}

@group(0) @binding(0) var<uniform> mg_p: MergeParams;
@group(0) @binding(1) var<storage, read> mg_o: array<f32>;
@group(0) @binding(2) var<storage, read> mg_ml: array<f32>;
@group(0) @binding(3) var<storage, read_write> mg_out: array<f32>;
@group(0) @binding(4) var<storage, read_write> mg_lse: array<f32>;

// One invocation per (example, head, query, head dim).
@compute @workgroup_size(WG)
fn attn_merge(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  let T = mg_p.t_new;
  if (i >= mg_p.batch * mg_p.heads * T * HD) { return; }
  let d = i % HD;
  let bt = i / HD;
  let t = bt % T;
  let bh = bt / T;
  var mx = NEG;
  for (var c = 0u; c < mg_p.chunks; c++) { mx = max(mx, mg_ml[2u * ((bh * mg_p.chunks + c) * T + t)]); }
  var o = 0.0;
  var l = 0.0;
  for (var c = 0u; c < mg_p.chunks; c++) {
    let row = (bh * mg_p.chunks + c) * T + t;
    let w = exp(mg_ml[2u * row] - mx);
    o += w * mg_o[row * HD + d];
    l += w * mg_ml[2u * row + 1u];
  }
  let b = bh / mg_p.heads;
  let h = bh % mg_p.heads;
  // A query that sees no key outputs 0.
  mg_out[(b * T + t) * mg_p.c + h * HD + d] = select(o / l, 0.0, l == 0.0);
  if (d == 0u) { mg_lse[bh * T + t] = select(mx + log(l), 0.0, l == 0.0); }
}

// ---------------------------------------------------------------------------------------------
// Backward, dq: one workgroup per (b, h, block of QB queries), streaming over every key the
// queries see, with the forward's work split. With P = exp(s - lse), dP = dO·v, Δ = dO·O:
// dS = P (dP - Δ), dq = scale Σ dS k. Also stores Δ for the dk/dv kernel.

@group(0) @binding(0) var<uniform> dq_p: AttnParams;
@group(0) @binding(1) var<storage, read> dq_qkv: array<f32>;
@group(0) @binding(2) var<storage, read> dq_pk: array<PastWord>;
@group(0) @binding(3) var<storage, read> dq_pv: array<PastWord>;
@group(0) @binding(4) var<storage, read> dq_lens: array<u32>;
@group(0) @binding(5) var<storage, read> dq_o: array<f32>;
@group(0) @binding(6) var<storage, read> dq_go: array<f32>;
@group(0) @binding(7) var<storage, read> dq_lse: array<f32>;
@group(0) @binding(8) var<storage, read_write> dq_grad: array<f32>;
@group(0) @binding(9) var<storage, read_write> dq_delta: array<f32>;

var<workgroup> dq_q: array<vec4<f32>, QB * HD4>;
var<workgroup> dq_do: array<vec4<f32>, QB * HD4>;
// dS of the tile: [key][QV].
var<workgroup> dq_ds: array<vec4<f32>, KT * QV>;
var<workgroup> dq_rlse: array<f32, QB>;
var<workgroup> dq_rdelta: array<f32, QB>;
var<workgroup> dq_red: array<vec4<f32>, KG * QB * HD4>;
var<workgroup> dq_len: vec2<u32>;

fn dq_qkv4(a: u32, n: u32) -> vec4<f32> {
  return vec4<f32>(select(0.0, dq_qkv[a], n > 0u), select(0.0, dq_qkv[a + 1u], n > 1u),
                   select(0.0, dq_qkv[a + 2u], n > 2u), select(0.0, dq_qkv[a + 3u], n > 3u));
}

fn dq_go4(a: u32, n: u32) -> vec4<f32> {
  return vec4<f32>(select(0.0, dq_go[a], n > 0u), select(0.0, dq_go[a + 1u], n > 1u),
                   select(0.0, dq_go[a + 2u], n > 2u), select(0.0, dq_go[a + 3u], n > 3u));
}

fn dq_pk4(a: u32, n: u32) -> vec4<f32> {
//#if past_f16
  return attn_past4(dq_pk[a / 2u], dq_pk[a / 2u + 1u], n);
//#else
  return vec4<f32>(select(0.0, dq_pk[a], n > 0u), select(0.0, dq_pk[a + 1u], n > 1u),
                   select(0.0, dq_pk[a + 2u], n > 2u), select(0.0, dq_pk[a + 3u], n > 3u));
//#endif
}

fn dq_pv4(a: u32, n: u32) -> vec4<f32> {
//#if past_f16
  return attn_past4(dq_pv[a / 2u], dq_pv[a / 2u + 1u], n);
//#else
  return vec4<f32>(select(0.0, dq_pv[a], n > 0u), select(0.0, dq_pv[a + 1u], n > 1u),
                   select(0.0, dq_pv[a + 2u], n > 2u), select(0.0, dq_pv[a + 3u], n > 3u));
//#endif
}

@compute @workgroup_size(WG)
fn attn_backward_dq(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) lid: u32) {
  let g = flat_group(wid, nwg);
  if (g >= dq_p.batch * dq_p.heads * dq_p.n_blocks) { return; }
  let bh = g / dq_p.n_blocks;
  let t0 = (g % dq_p.n_blocks) * QB;
  let h = bh % dq_p.heads;
  let b = bh / dq_p.heads;
  let T = dq_p.t_new;
  let C = dq_p.c;

  if (lid == 0u) { dq_len = vec2<u32>(dq_lens[b], dq_lens[dq_p.batch + b]); }
  for (var i = lid; i < QB * HD4; i += WG) {
    let t = t0 + i / HD4;
    let c = i % HD4;
    let inside = t < T;
    dq_q[i] = select(vec4<f32>(0.0), dq_qkv4((b * T + t) * 3u * C + h * HD + c * 4u, attn_dims(c)) * dq_p.scale, inside);
    dq_do[i] = select(vec4<f32>(0.0), dq_go4((b * T + t) * C + h * HD + c * 4u, attn_dims(c)), inside);
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
  let past_tiles = (n_past + KT - 1u) / KT;
  let tiles = past_tiles + (n_new + KT - 1u) / KT;

  let wc = lid % HD4;
  let wg = lid / HD4;
  var acc: array<vec4<f32>, MAX_QB>;
  for (var r = 0u; r < QB; r++) { acc[r] = vec4<f32>(0.0); }

  for (var tile = 0u; tile < tiles; tile++) {
    let is_past = tile < past_tiles;
    let base = select((tile - past_tiles) * KT, tile * KT, is_past);
    let cnt = min(KT, select(n_new, n_past, is_past) - base);

    // Scores and dO·v of keys lid + k·WG against every query: [k·QV + r/4][r%4].
    var sc: array<vec4<f32>, MAX_KPT * 2u>;
    var dp: array<vec4<f32>, MAX_KPT * 2u>;
    for (var k = 0u; k < KPT * QV; k++) {
      sc[k] = vec4<f32>(0.0);
      dp[k] = vec4<f32>(0.0);
    }
    for (var c = 0u; c < HD4; c++) {
      var k4: array<vec4<f32>, MAX_KPT>;
      var v4: array<vec4<f32>, MAX_KPT>;
      for (var k = 0u; k < KPT; k++) {
        let j = base + k * WG + lid;
        k4[k] = vec4<f32>(0.0);
        v4[k] = vec4<f32>(0.0);
        if (k * WG + lid < cnt) {
          if (is_past) {
            let a = (bh * dq_p.t_past + j) * HD + c * 4u;
            k4[k] = dq_pk4(a, attn_dims(c));
            v4[k] = dq_pv4(a, attn_dims(c));
          } else {
            let a = (b * T + j) * 3u * C + h * HD + c * 4u;
            k4[k] = dq_qkv4(a + C, attn_dims(c));
            v4[k] = dq_qkv4(a + 2u * C, attn_dims(c));
          }
        }
      }
      for (var r = 0u; r < QB; r++) {
        let q = dq_q[r * HD4 + c];
        let go = dq_do[r * HD4 + c];
        for (var k = 0u; k < KPT; k++) {
          sc[k * QV + r / 4u][r % 4u] += dot(q, k4[k]);
          dp[k * QV + r / 4u][r % 4u] += dot(go, v4[k]);
        }
      }
    }
    for (var k = 0u; k < KPT; k++) {
      let j = k * WG + lid;
      for (var r = 0u; r < QB; r++) {
        var ds = 0.0;
        if (j < cnt && (is_past || base + j <= t0 + r)) {
          ds = exp(sc[k * QV + r / 4u][r % 4u] - dq_rlse[r]) * (dp[k * QV + r / 4u][r % 4u] - dq_rdelta[r]);
        }
        sc[k * QV + r / 4u][r % 4u] = ds;
      }
      for (var r = 0u; r < QV; r++) { dq_ds[j * QV + r] = sc[k * QV + r]; }
    }
    workgroupBarrier();
    if (wg < KG) {
      // A loop bound rather than a branch: a software rasterizer skips loop trips, not masked-off code.
      let jn = min(KPG, max(cnt, wg * KPG) - wg * KPG);
      for (var jj = 0u; jj < jn; jj++) {
        let j = wg * KPG + jj;
        {
          var k4: vec4<f32>;
          if (is_past) {
            k4 = dq_pk4((bh * dq_p.t_past + base + j) * HD + wc * 4u, attn_dims(wc));
          } else {
            k4 = dq_qkv4((b * T + base + j) * 3u * C + C + h * HD + wc * 4u, attn_dims(wc));
          }
          for (var r = 0u; r < QV; r++) {
            let ds = dq_ds[j * QV + r];
            acc[r * 4u] += ds.x * k4;
            acc[r * 4u + 1u] += ds.y * k4;
            acc[r * 4u + 2u] += ds.z * k4;
            acc[r * 4u + 3u] += ds.w * k4;
          }
        }
      }
    }
    workgroupBarrier();
  }

  if (wg < KG) {
    for (var r = 0u; r < QB; r++) { dq_red[(wg * QB + r) * HD4 + wc] = acc[r]; }
  }
  workgroupBarrier();
  for (var i = lid; i < QB * HD4; i += WG) {
    let r = i / HD4;
    let c = i % HD4;
    let t = t0 + r;
    if (t < T) {
      var o = vec4<f32>(0.0);
      for (var k = 0u; k < KG; k++) { o += dq_red[(k * QB + r) * HD4 + c]; }
      let a = (b * T + t) * 3u * C + h * HD + c * 4u;
      for (var e = 0u; e < attn_dims(c); e++) { dq_grad[a + e] = o[e] * dq_p.scale; }
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
  let g = flat_group(wid, nwg);
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
// The keys and values of qkv in the past layout [B, H, T, HD], one past word of each per thread.

struct SplitParams { words: u32, heads: u32, t: u32, c: u32 }

@group(0) @binding(0) var<uniform> sp_p: SplitParams;
@group(0) @binding(1) var<storage, read> sp_qkv: array<f32>;
@group(0) @binding(2) var<storage, read_write> sp_k: array<PastWord>;
@group(0) @binding(3) var<storage, read_write> sp_v: array<PastWord>;

// The past word of qkv's elements from a on.
fn sp_word(a: u32) -> PastWord {
//#if past_f16
  return past_word(vec2<f32>(sp_qkv[a], sp_qkv[a + 1u]));
//#else
  return sp_qkv[a];
//#endif
}

@compute @workgroup_size(WG)
fn split_past(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(wid, nwg, lid);
  if (i >= sp_p.words) { return; }
  let e = i * PAST_PER_WORD;
  let d = e % HD;
  let t = (e / HD) % sp_p.t;
  let bh = e / (HD * sp_p.t);
  let a = ((bh / sp_p.heads) * sp_p.t + t) * 3u * sp_p.c + (bh % sp_p.heads) * HD + d;
  sp_k[i] = sp_word(a + sp_p.c);
  sp_v[i] = sp_word(a + 2u * sp_p.c);
}
