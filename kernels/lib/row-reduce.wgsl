// Workgroup-wide sum and max for kernels that give a row to a workgroup (layernorm, softmax).
// The including kernel declares `RED_WG`, its workgroup size, and passes a `ReduceIds` to its
// entry points.
//
// A reduction takes a single barrier: each invocation (with subgroups: each subgroup, from one
// subgroup reduction) stores its partial, then every invocation combines all partials itself
// (broadcast reads, in the same order everywhere, so all agree bit for bit). With the 32-wide
// workgroups the ops use, that is cheaper than a tree's log2(RED_WG) barrier-separated steps.
// Each array is written once per invocation, so no barrier is needed after reading it: a
// kernel uses each of red_a and red_b (wg_sum_a or wg_max_a, wg_sum_b) once per row.
var<workgroup> red_a: array<f32, RED_WG>;
var<workgroup> red_b: array<f32, RED_WG>;

// Where an invocation stands in its workgroup (and subgroup), for the reductions.
struct ReduceIds {
  @builtin(local_invocation_index) lid: u32,
//#if subgroups
  @builtin(subgroup_id) subgroup: u32,
  @builtin(num_subgroups) subgroups: u32,
  @builtin(subgroup_invocation_id) lane: u32,
//#endif
}

//#if subgroups
fn wg_sum_a(v: f32, ids: ReduceIds) -> f32 {
  let part = subgroupAdd(v);
  if (ids.lane == 0u) { red_a[ids.subgroup] = part; }
  workgroupBarrier();
  var total = 0.0;
  for (var k = 0u; k < ids.subgroups; k++) { total += red_a[k]; }
  return total;
}

fn wg_max_a(v: f32, ids: ReduceIds) -> f32 {
  let part = subgroupMax(v);
  if (ids.lane == 0u) { red_a[ids.subgroup] = part; }
  workgroupBarrier();
  var m = red_a[0];
  for (var k = 1u; k < ids.subgroups; k++) { m = max(m, red_a[k]); }
  return m;
}

fn wg_sum_b(v: f32, ids: ReduceIds) -> f32 {
  let part = subgroupAdd(v);
  if (ids.lane == 0u) { red_b[ids.subgroup] = part; }
  workgroupBarrier();
  var total = 0.0;
  for (var k = 0u; k < ids.subgroups; k++) { total += red_b[k]; }
  return total;
}
//#else
fn wg_sum_a(v: f32, ids: ReduceIds) -> f32 {
  red_a[ids.lid] = v;
  workgroupBarrier();
  var total = 0.0;
  for (var k = 0u; k < RED_WG; k++) { total += red_a[k]; }
  return total;
}

fn wg_max_a(v: f32, ids: ReduceIds) -> f32 {
  red_a[ids.lid] = v;
  workgroupBarrier();
  var m = red_a[0];
  for (var k = 1u; k < RED_WG; k++) { m = max(m, red_a[k]); }
  return m;
}

fn wg_sum_b(v: f32, ids: ReduceIds) -> f32 {
  red_b[ids.lid] = v;
  workgroupBarrier();
  var total = 0.0;
  for (var k = 0u; k < RED_WG; k++) { total += red_b[k]; }
  return total;
}
//#endif
