// Layer normalization over the last dim of a [rows, C] tensor, and its backward.
//
// One workgroup per row: rows run to tens of thousands (B·T) while C is ~10³, so a row fits
// a workgroup's cache and re-reading it is nearly free; DRAM sees each element once.
// Statistics are two-pass (mean, then Σ(x − mean)²) so activations with a large common
// offset do not lose their variance to cancellation, as E[x²] − E[x]² would in f32.

override LN_WG: u32 = 32u;

// The row sums (wg_sum_a, wg_sum_b) are the shared single-barrier reductions.
override RED_WG: u32 = LN_WG;
//#include <row-reduce>

struct LnForwardParams { rows: u32, c: u32, eps: f32, _p0: u32 }

@group(0) @binding(0) var<uniform> lnf: LnForwardParams;
@group(0) @binding(1) var<storage, read> lnf_x: array<f32>;
@group(0) @binding(2) var<storage, read> lnf_gamma: array<f32>;
@group(0) @binding(3) var<storage, read> lnf_beta: array<f32>;
@group(0) @binding(4) var<storage, read_write> lnf_y: array<f32>;
// Per row (mean, rstd): one binding for both, as one op's launch tracks each binding it binds.
@group(0) @binding(5) var<storage, read_write> lnf_stats: array<vec2<f32>>;

// y = (x − mean)·rstd·γ + β, saving mean and rstd = 1/√(var + eps) per row for backward.
@compute @workgroup_size(LN_WG)
fn ln_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              ids: ReduceIds) {
  let lid = ids.lid;
  let row = wid.x + wid.y * nwg.x;
  if (row >= lnf.rows) { return; }
  let c = lnf.c;
  let base = row * c;
  var s = 0.0;
  for (var i = lid; i < c; i += LN_WG) { s += lnf_x[base + i]; }
  let mean = wg_sum_a(s, ids) / f32(c);
  var q = 0.0;
  for (var i = lid; i < c; i += LN_WG) {
    let d = lnf_x[base + i] - mean;
    q += d * d;
  }
  let rstd = 1.0 / sqrt(wg_sum_b(q, ids) / f32(c) + lnf.eps);
  for (var i = lid; i < c; i += LN_WG) {
    lnf_y[base + i] = (lnf_x[base + i] - mean) * rstd * lnf_gamma[i] + lnf_beta[i];
  }
  if (lid == 0u) { lnf_stats[row] = vec2(mean, rstd); }
}

// The same for C a multiple of 4, with vec4 loads (GPT-2's C = 768): lnf4.c counts floats.
@group(0) @binding(0) var<uniform> lnf4: LnForwardParams;
@group(0) @binding(1) var<storage, read> lnf4_x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> lnf4_gamma: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> lnf4_beta: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> lnf4_y: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> lnf4_stats: array<vec2<f32>>;

@compute @workgroup_size(LN_WG)
fn ln_forward4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               ids: ReduceIds) {
  let lid = ids.lid;
  let row = wid.x + wid.y * nwg.x;
  if (row >= lnf4.rows) { return; }
  let c4 = lnf4.c / 4u;
  let base = row * c4;
  var s = vec4(0.0);
  for (var i = lid; i < c4; i += LN_WG) { s += lnf4_x[base + i]; }
  let mean = wg_sum_a(dot(s, vec4(1.0)), ids) / f32(lnf4.c);
  var q = 0.0;
  for (var i = lid; i < c4; i += LN_WG) {
    let d = lnf4_x[base + i] - mean;
    q += dot(d, d);
  }
  let rstd = 1.0 / sqrt(wg_sum_b(q, ids) / f32(lnf4.c) + lnf4.eps);
  for (var i = lid; i < c4; i += LN_WG) {
    lnf4_y[base + i] = (lnf4_x[base + i] - mean) * rstd * lnf4_gamma[i] + lnf4_beta[i];
  }
  if (lid == 0u) { lnf4_stats[row] = vec2(mean, rstd); }
}

struct LnBackwardParams { rows: u32, c: u32, _p0: u32, _p1: u32 }

@group(0) @binding(0) var<uniform> lnb: LnBackwardParams;
@group(0) @binding(1) var<storage, read> lnb_x: array<f32>;
@group(0) @binding(2) var<storage, read> lnb_gamma: array<f32>;
@group(0) @binding(3) var<storage, read> lnb_dy: array<f32>;
@group(0) @binding(4) var<storage, read> lnb_stats: array<vec2<f32>>;
@group(0) @binding(5) var<storage, read_write> lnb_dx: array<f32>;

// With x̂ = (x − mean)·rstd and g = dy·γ:  dx = rstd·(g − mean(g) − x̂·mean(g·x̂)).
@compute @workgroup_size(LN_WG)
fn ln_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               ids: ReduceIds) {
  let lid = ids.lid;
  let row = wid.x + wid.y * nwg.x;
  if (row >= lnb.rows) { return; }
  let c = lnb.c;
  let base = row * c;
  let mean = lnb_stats[row].x;
  let rstd = lnb_stats[row].y;
  var acc = vec2(0.0, 0.0);
  for (var i = lid; i < c; i += LN_WG) {
    let xhat = (lnb_x[base + i] - mean) * rstd;
    let g = lnb_dy[base + i] * lnb_gamma[i];
    acc += vec2(g, g * xhat);
  }
  let m = vec2(wg_sum_a(acc.x, ids), wg_sum_b(acc.y, ids)) / f32(c);
  for (var i = lid; i < c; i += LN_WG) {
    let xhat = (lnb_x[base + i] - mean) * rstd;
    let g = lnb_dy[base + i] * lnb_gamma[i];
    lnb_dx[base + i] = rstd * (g - m.x - xhat * m.y);
  }
}

// The same for C a multiple of 4, with vec4 loads: lnb4.c counts floats.
@group(0) @binding(0) var<uniform> lnb4: LnBackwardParams;
@group(0) @binding(1) var<storage, read> lnb4_x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> lnb4_gamma: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> lnb4_dy: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> lnb4_stats: array<vec2<f32>>;
@group(0) @binding(5) var<storage, read_write> lnb4_dx: array<vec4<f32>>;

@compute @workgroup_size(LN_WG)
fn ln_backward4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                ids: ReduceIds) {
  let lid = ids.lid;
  let row = wid.x + wid.y * nwg.x;
  if (row >= lnb4.rows) { return; }
  let c4 = lnb4.c / 4u;
  let base = row * c4;
  let mean = lnb4_stats[row].x;
  let rstd = lnb4_stats[row].y;
  var acc = vec2(0.0, 0.0);
  for (var i = lid; i < c4; i += LN_WG) {
    let xhat = (lnb4_x[base + i] - mean) * rstd;
    let g = lnb4_dy[base + i] * lnb4_gamma[i];
    acc += vec2(dot(g, vec4(1.0)), dot(g, xhat));
  }
  let m = vec2(wg_sum_a(acc.x, ids), wg_sum_b(acc.y, ids)) / f32(lnb4.c);
  for (var i = lid; i < c4; i += LN_WG) {
    let xhat = (lnb4_x[base + i] - mean) * rstd;
    let g = lnb4_dy[base + i] * lnb4_gamma[i];
    lnb4_dx[base + i] = rstd * (g - m.x - xhat * m.y);
  }
}

// dγ = Σ_rows dy·x̂ and dβ = Σ_rows dy, in two deterministic stages: each workgroup sums a
// chunk of rows for LN_WG columns (coalesced across the columns), then the chunks are added.
struct LnParamPartialParams { rows: u32, c: u32, rows_per_chunk: u32, _p0: u32 }

@group(0) @binding(0) var<uniform> lnp: LnParamPartialParams;
@group(0) @binding(1) var<storage, read> lnp_x: array<f32>;
@group(0) @binding(2) var<storage, read> lnp_dy: array<f32>;
@group(0) @binding(3) var<storage, read> lnp_stats: array<vec2<f32>>;
// [2, chunks, C]: dγ partials, then dβ partials.
@group(0) @binding(4) var<storage, read_write> lnp_partial: array<f32>;

@compute @workgroup_size(LN_WG)
fn ln_param_partial(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
                    @builtin(num_workgroups) nwg: vec3<u32>) {
  let col = gid.x;
  let c = lnp.c;
  if (col >= c) { return; }
  let chunk = wid.y;
  let r0 = chunk * lnp.rows_per_chunk;
  let r1 = min(r0 + lnp.rows_per_chunk, lnp.rows);
  var dgamma = 0.0;
  var dbeta = 0.0;
  for (var r = r0; r < r1; r++) {
    let dy = lnp_dy[r * c + col];
    let stats = lnp_stats[r];
    dgamma += dy * (lnp_x[r * c + col] - stats.x) * stats.y;
    dbeta += dy;
  }
  lnp_partial[chunk * c + col] = dgamma;
  lnp_partial[(nwg.y + chunk) * c + col] = dbeta;
}

struct LnParamFinalParams { c: u32, chunks: u32, _p0: u32, _p1: u32 }

@group(0) @binding(0) var<uniform> lnq: LnParamFinalParams;
@group(0) @binding(1) var<storage, read> lnq_partial: array<f32>;
@group(0) @binding(2) var<storage, read_write> lnq_dgamma: array<f32>;
@group(0) @binding(3) var<storage, read_write> lnq_dbeta: array<f32>;

@compute @workgroup_size(LN_WG)
fn ln_param_final(@builtin(global_invocation_id) gid: vec3<u32>) {
  let col = gid.x;
  let c = lnq.c;
  if (col >= c) { return; }
  var dgamma = 0.0;
  var dbeta = 0.0;
  for (var k = 0u; k < lnq.chunks; k++) {
    dgamma += lnq_partial[k * c + col];
    dbeta += lnq_partial[(lnq.chunks + k) * c + col];
  }
  lnq_dgamma[col] = dgamma;
  lnq_dbeta[col] = dbeta;
}
