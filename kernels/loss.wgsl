// Losses over logits: softmax cross entropy (per-row log-sum-exp with max subtraction) and
// BCE with logits (softplus form), each reduced to a scalar mean in a fixed order. Everything
// that depends only on host data (labels, class weights, masks, the mean's denominator) is
// folded into per-row or per-element coefficients on the host.

override WG: u32 = 256u;

var<workgroup> loss_red: array<f32, WG>;

//#include <index>

// Both tree reductions below assume WG is a power of two.
fn loss_reduce_sum(lid: u32, value: f32) -> f32 {
  loss_red[lid] = value;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { loss_red[lid] += loss_red[lid + s]; }
    workgroupBarrier();
  }
  let total = loss_red[0];
  workgroupBarrier();
  return total;
}

fn loss_reduce_max(lid: u32, value: f32) -> f32 {
  loss_red[lid] = value;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { loss_red[lid] = max(loss_red[lid], loss_red[lid + s]); }
    workgroupBarrier();
  }
  let total = loss_red[0];
  workgroupBarrier();
  return total;
}

// ce_meta holds 4 words per row: column start, column count, label (relative to start), and
// the row's share of the mean, w[y] / Σw, as f32 bits.
struct CeParams { rows: u32, cols: u32, _p0: u32, _p1: u32 }

@group(0) @binding(0) var<uniform> cep: CeParams;
@group(0) @binding(1) var<storage, read> ce_logits: array<f32>;
@group(0) @binding(2) var<storage, read> ce_meta: array<u32>;
// [0, rows): the row's weighted loss; [rows, 2·rows): its log-sum-exp, kept for backward.
@group(0) @binding(3) var<storage, read_write> ce_rows_out: array<f32>;

// One workgroup per row.
@compute @workgroup_size(WG)
fn ce_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= cep.rows) { return; }
  let start = ce_meta[row * 4u];
  let count = ce_meta[row * 4u + 1u];
  let label = ce_meta[row * 4u + 2u];
  let share = bitcast<f32>(ce_meta[row * 4u + 3u]);
  let base = row * cep.cols + start;
  var m = -3.0e38;
  for (var j = lid; j < count; j += WG) { m = max(m, ce_logits[base + j]); }
  let row_max = loss_reduce_max(lid, m);
  var acc = 0.0;
  for (var j = lid; j < count; j += WG) { acc += exp(ce_logits[base + j] - row_max); }
  let lse = row_max + log(loss_reduce_sum(lid, acc));
  if (lid == 0u) {
    ce_rows_out[row] = share * (lse - ce_logits[base + label]);
    ce_rows_out[cep.rows + row] = lse;
  }
}

// ce_meta for targets that are already on the GPU (u32 class indices): the whole row, the plain
// mean. A target out of range gets label 0 (no read past the row) and a NaN share, so the loss
// and its gradient come out NaN rather than silently wrong.
struct CeTargetParams { rows: u32, cols: u32, share: f32, _p0: u32 }

@group(0) @binding(0) var<uniform> ctp: CeTargetParams;
@group(0) @binding(1) var<storage, read> ct_targets: array<u32>;
@group(0) @binding(2) var<storage, read_write> ct_meta: array<u32>;

const CE_NAN_BITS: u32 = 0x7fc00000u;

@compute @workgroup_size(WG)
fn ce_meta_from_targets(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                        @builtin(local_invocation_index) lid: u32) {
  let row = flat_index(wid, nwg, lid);
  if (row >= ctp.rows) { return; }
  let label = ct_targets[row];
  let valid = label < ctp.cols;
  ct_meta[row * 4u] = 0u;
  ct_meta[row * 4u + 1u] = ctp.cols;
  ct_meta[row * 4u + 2u] = select(0u, label, valid);
  ct_meta[row * 4u + 3u] = select(CE_NAN_BITS, bitcast<u32>(ctp.share), valid);
}

@group(0) @binding(0) var<uniform> ceb: CeParams;
@group(0) @binding(1) var<storage, read> ceb_grad_out: array<f32>;
@group(0) @binding(2) var<storage, read> ceb_logits: array<f32>;
@group(0) @binding(3) var<storage, read> ceb_meta: array<u32>;
@group(0) @binding(4) var<storage, read> ceb_rows: array<f32>;
@group(0) @binding(5) var<storage, read_write> ceb_grad: array<f32>;

// d/dx_j = g · share · (softmax_j − [j = label]) inside the row's column range, 0 outside it.
@compute @workgroup_size(WG)
fn ce_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(wid, nwg, lid);
  if (i >= ceb.rows * ceb.cols) { return; }
  let row = i / ceb.cols;
  // Unsigned wrap-around sends columns left of the range out of it too.
  let rel = i % ceb.cols - ceb_meta[row * 4u];
  var d = 0.0;
  if (rel < ceb_meta[row * 4u + 1u]) {
    let p = exp(ceb_logits[i] - ceb_rows[ceb.rows + row]);
    let share = bitcast<f32>(ceb_meta[row * 4u + 3u]);
    d = ceb_grad_out[0] * share * (p - select(0.0, 1.0, rel == ceb_meta[row * 4u + 2u]));
  }
  ceb_grad[i] = d;
}

// softplus(z) = log(1 + e^z) without overflow; log1p by the log(w)·u/(w − 1) correction.
fn loss_softplus(z: f32) -> f32 {
  let u = exp(-abs(z));
  let w = 1.0 + u;
  let log1p_u = select(log(w) * u / (w - 1.0), u, w == 1.0);
  return max(z, 0.0) + log1p_u;
}

fn loss_sigmoid(x: f32) -> f32 {
  let e = exp(-abs(x));
  return select(e / (1.0 + e), 1.0 / (1.0 + e), x >= 0.0);
}

// bce_coef holds per element (a, b) = mask·(pw·y, 1 − y) / Σmask, so that the element's share
// of the mean is a·softplus(−x) + b·softplus(x).
struct BceParams { n: u32, _p0: u32, _p1: u32, _p2: u32 }

@group(0) @binding(0) var<uniform> bcep: BceParams;
@group(0) @binding(1) var<storage, read> bce_logits: array<f32>;
@group(0) @binding(2) var<storage, read> bce_coef: array<vec2<f32>>;
@group(0) @binding(3) var<storage, read_write> bce_terms: array<f32>;

@compute @workgroup_size(WG)
fn bce_terms_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(wid, nwg, lid);
  if (i >= bcep.n) { return; }
  let x = bce_logits[i];
  let c = bce_coef[i];
  bce_terms[i] = c.x * loss_softplus(-x) + c.y * loss_softplus(x);
}

@group(0) @binding(0) var<uniform> bceb: BceParams;
@group(0) @binding(1) var<storage, read> bceb_grad_out: array<f32>;
@group(0) @binding(2) var<storage, read> bceb_logits: array<f32>;
@group(0) @binding(3) var<storage, read> bceb_coef: array<vec2<f32>>;
@group(0) @binding(4) var<storage, read_write> bceb_grad: array<f32>;

// d/dx = g · (b·σ(x) − a·σ(−x)).
@compute @workgroup_size(WG)
fn bce_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(wid, nwg, lid);
  if (i >= bceb.n) { return; }
  let x = bceb_logits[i];
  let c = bceb_coef[i];
  bceb_grad[i] = bceb_grad_out[0] * (c.y * loss_sigmoid(x) - c.x * loss_sigmoid(-x));
}

struct SumParams { n: u32, _p0: u32, _p1: u32, _p2: u32 }

@group(0) @binding(0) var<uniform> sum_p: SumParams;
@group(0) @binding(1) var<storage, read> sum_in: array<f32>;
@group(0) @binding(2) var<storage, read_write> sum_out: array<f32>;

// A single workgroup, so the summation order is fixed and the result reproducible.
@compute @workgroup_size(WG)
fn sum_all(@builtin(local_invocation_index) lid: u32) {
  var acc = 0.0;
  for (var j = lid; j < sum_p.n; j += WG) { acc += sum_in[j]; }
  let total = loss_reduce_sum(lid, acc);
  if (lid == 0u) { sum_out[0] = total; }
}
