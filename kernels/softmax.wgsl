// Softmax along the last dim of a [rows, n] tensor, and its backward.
//
// One workgroup per row. The max is subtracted before exp so large logits do not overflow.
// Each invocation re-reads only the elements it wrote itself, so the row is fetched from
// memory once and the re-reads hit cache.

override SM_WG: u32 = 32u;

// The row max (wg_max_a) and sum (wg_sum_b) are the shared single-barrier reductions.
override RED_WG: u32 = SM_WG;
//#include <row-reduce>

struct SmParams { rows: u32, n: u32, _p0: u32, _p1: u32 }

@group(0) @binding(0) var<uniform> smf: SmParams;
@group(0) @binding(1) var<storage, read> smf_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> smf_y: array<f32>;

@compute @workgroup_size(SM_WG)
fn softmax_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   ids: ReduceIds) {
  let lid = ids.lid;
  let row = wid.x + wid.y * nwg.x;
  if (row >= smf.rows) { return; }
  let n = smf.n;
  let base = row * n;
  // The lowest finite f32 rather than −inf, so rows of −inf (masked) give exp(−inf) = 0, not NaN.
  var m = -0x1.fffffep+127f;
  for (var i = lid; i < n; i += SM_WG) { m = max(m, smf_x[base + i]); }
  m = wg_max_a(m, ids);
  var s = 0.0;
  for (var i = lid; i < n; i += SM_WG) {
    let e = exp(smf_x[base + i] - m);
    smf_y[base + i] = e;
    s += e;
  }
  let inv = 1.0 / wg_sum_b(s, ids);
  for (var i = lid; i < n; i += SM_WG) { smf_y[base + i] *= inv; }
}

@group(0) @binding(0) var<uniform> smb: SmParams;
@group(0) @binding(1) var<storage, read> smb_y: array<f32>;
@group(0) @binding(2) var<storage, read> smb_dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> smb_dx: array<f32>;

// dx = y ⊙ (dy − Σ dy·y)
@compute @workgroup_size(SM_WG)
fn softmax_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    ids: ReduceIds) {
  let lid = ids.lid;
  let row = wid.x + wid.y * nwg.x;
  if (row >= smb.rows) { return; }
  let n = smb.n;
  let base = row * n;
  var s = 0.0;
  for (var i = lid; i < n; i += SM_WG) { s += smb_dy[base + i] * smb_y[base + i]; }
  s = wg_sum_b(s, ids);
  for (var i = lid; i < n; i += SM_WG) { smb_dx[base + i] = smb_y[base + i] * (smb_dy[base + i] - s); }
}
