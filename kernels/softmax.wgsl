// Softmax along the last dim of a [rows, n] tensor, and its backward.
//
// One workgroup per row. The max is subtracted before exp so large logits do not overflow.
// Each invocation re-reads only the elements it wrote itself, so the row is fetched from
// memory once and the re-reads hit cache.

override SM_WG: u32 = 32u;

// Workgroup reductions take a single barrier: each invocation (with subgroups: each subgroup,
// from one subgroup reduction) stores its partial, then every invocation combines all partials
// itself (broadcast reads, in the same order everywhere, so all agree bit for bit). With the
// 32-wide workgroups the ops use, that is cheaper than a tree's log2(SM_WG) barrier-separated
// steps. Each array is written once per invocation, so no barrier is needed after reading it.
var<workgroup> sm_red_max: array<f32, SM_WG>;
var<workgroup> sm_red_sum: array<f32, SM_WG>;

// Where an invocation stands in its workgroup (and subgroup), for the reductions.
struct SmIds {
  @builtin(local_invocation_index) lid: u32,
//#if subgroups
  @builtin(subgroup_id) subgroup: u32,
  @builtin(num_subgroups) subgroups: u32,
  @builtin(subgroup_invocation_id) lane: u32,
//#endif
}

//#if subgroups
fn sm_max(v: f32, ids: SmIds) -> f32 {
  let part = subgroupMax(v);
  if (ids.lane == 0u) { sm_red_max[ids.subgroup] = part; }
  workgroupBarrier();
  var m = sm_red_max[0];
  for (var k = 1u; k < ids.subgroups; k++) { m = max(m, sm_red_max[k]); }
  return m;
}

fn sm_sum(v: f32, ids: SmIds) -> f32 {
  let part = subgroupAdd(v);
  if (ids.lane == 0u) { sm_red_sum[ids.subgroup] = part; }
  workgroupBarrier();
  var total = 0.0;
  for (var k = 0u; k < ids.subgroups; k++) { total += sm_red_sum[k]; }
  return total;
}
//#else
fn sm_max(v: f32, ids: SmIds) -> f32 {
  sm_red_max[ids.lid] = v;
  workgroupBarrier();
  var m = sm_red_max[0];
  for (var k = 1u; k < SM_WG; k++) { m = max(m, sm_red_max[k]); }
  return m;
}

fn sm_sum(v: f32, ids: SmIds) -> f32 {
  sm_red_sum[ids.lid] = v;
  workgroupBarrier();
  var total = 0.0;
  for (var k = 0u; k < SM_WG; k++) { total += sm_red_sum[k]; }
  return total;
}
//#endif

struct SmParams { rows: u32, n: u32, _p0: u32, _p1: u32 }

@group(0) @binding(0) var<uniform> smf: SmParams;
@group(0) @binding(1) var<storage, read> smf_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> smf_y: array<f32>;

@compute @workgroup_size(SM_WG)
fn softmax_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   ids: SmIds) {
  let lid = ids.lid;
  let row = wid.x + wid.y * nwg.x;
  if (row >= smf.rows) { return; }
  let n = smf.n;
  let base = row * n;
  // The lowest finite f32 rather than −inf, so rows of −inf (masked) give exp(−inf) = 0, not NaN.
  var m = -0x1.fffffep+127f;
  for (var i = lid; i < n; i += SM_WG) { m = max(m, smf_x[base + i]); }
  m = sm_max(m, ids);
  var s = 0.0;
  for (var i = lid; i < n; i += SM_WG) {
    let e = exp(smf_x[base + i] - m);
    smf_y[base + i] = e;
    s += e;
  }
  let inv = 1.0 / sm_sum(s, ids);
  for (var i = lid; i < n; i += SM_WG) { smf_y[base + i] *= inv; }
}

@group(0) @binding(0) var<uniform> smb: SmParams;
@group(0) @binding(1) var<storage, read> smb_y: array<f32>;
@group(0) @binding(2) var<storage, read> smb_dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> smb_dx: array<f32>;

// dx = y ⊙ (dy − Σ dy·y)
@compute @workgroup_size(SM_WG)
fn softmax_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    ids: SmIds) {
  let lid = ids.lid;
  let row = wid.x + wid.y * nwg.x;
  if (row >= smb.rows) { return; }
  let n = smb.n;
  let base = row * n;
  var s = 0.0;
  for (var i = lid; i < n; i += SM_WG) { s += smb_dy[base + i] * smb_y[base + i]; }
  s = sm_sum(s, ids);
  for (var i = lid; i < n; i += SM_WG) { smb_dx[base + i] = smb_y[base + i] * (smb_dy[base + i] - s); }
}
