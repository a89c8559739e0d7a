// Batch normalisation in training (torch.nn.functional.batch_norm, training=True) over x viewed
// as [N, C, S] (S the product of the dims after C), forward and backward side by side, and the
// batch counter nn.BatchNorm1d/2d keep. Evaluation (normalising with the running statistics) is
// composed of elementwise ops in src/ops/batchnorm.ts.
//
// One workgroup per channel walks the channel's N·S values: one launch does what the
// composition of reductions and elementwise ops did in ~10 forward and ~15 backward launches,
// which is what a small CNN's step (a batch of small feature maps) pays for. Large feature maps
// (N·S in the millions, few channels) would want a channel split across workgroups. Statistics are two-pass (mean, then Σ(x − mean)²), as layernorm's. The forward
// also updates the running statistics in place (momentum; the variance unbiased by M/(M − 1))
// and keeps the mean and 1/√(var + eps) per channel for the backward:
//   dx = w·invstd/M · (M·dy − Σdy − x̂·Σ(dy·x̂)),  dw = Σ(dy·x̂),  db = Σdy,  x̂ = (x − mean)·invstd.
// Sums run in a fixed order (per invocation, then the partials in index order by everyone), so
// the results do not depend on scheduling.

override WG: u32 = 64u;

// n, c, s: x's [N, C, S]; flags: 1 = weight given, 2 = bias given, 4 = running mean given, 8 = running variance given.
struct BatchNormParams { n: u32, c: u32, s: u32, flags: u32, eps: f32, momentum: f32, unbias: f32, _p0: u32 }

@group(0) @binding(0) var<uniform> bn: BatchNormParams;
@group(0) @binding(1) var<storage, read> bn_x: array<f32>;
// Absent weight or bias: x is bound in their place; the flags keep its values out of the result.
@group(0) @binding(2) var<storage, read> bn_weight: array<f32>;
@group(0) @binding(3) var<storage, read> bn_bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> bn_y: array<f32>;
// [2C]: each channel's mean, then its 1/√(var + eps).
@group(0) @binding(5) var<storage, read_write> bn_stats: array<f32>;
@group(0) @binding(6) var<storage, read_write> bn_running_mean: array<f32>;
@group(0) @binding(7) var<storage, read_write> bn_running_var: array<f32>;

var<workgroup> bn_part: array<f32, WG>;

// The workgroup's total of v (a barrier before the partials are read and one after, so the
// next call can reuse the array).
fn bn_sum(v: f32, lid: u32) -> f32 {
  bn_part[lid] = v;
  workgroupBarrier();
  var total = 0.0;
  for (var k = 0u; k < WG; k++) { total += bn_part[k]; }
  workgroupBarrier();
  return total;
}

// The flat index of the j-th value (0 ≤ j < N·S) of channel ch.
fn bn_at(ch: u32, j: u32) -> u32 {
  return ((j / bn.s) * bn.c + ch) * bn.s + j % bn.s;
}

@compute @workgroup_size(WG)
fn bn_forward_train(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let ch = wid.x;
  let m = bn.n * bn.s;
  var acc = 0.0;
  for (var j = lid; j < m; j += WG) { acc += bn_x[bn_at(ch, j)]; }
  let mean = bn_sum(acc, lid) / f32(m);
  var dev = 0.0;
  for (var j = lid; j < m; j += WG) {
    let d = bn_x[bn_at(ch, j)] - mean;
    dev += d * d;
  }
  let variance = bn_sum(dev, lid) / f32(m);
  let invstd = inverseSqrt(variance + bn.eps);
  let w = select(1.0, bn_weight[ch], (bn.flags & 1u) != 0u);
  let b = select(0.0, bn_bias[ch], (bn.flags & 2u) != 0u);
  for (var j = lid; j < m; j += WG) {
    let i = bn_at(ch, j);
    bn_y[i] = (bn_x[i] - mean) * invstd * w + b;
  }
  if (lid == 0u) {
    bn_stats[ch] = mean;
    bn_stats[bn.c + ch] = invstd;
    if ((bn.flags & 4u) != 0u) { bn_running_mean[ch] = (1.0 - bn.momentum) * bn_running_mean[ch] + bn.momentum * mean; }
    if ((bn.flags & 8u) != 0u) { bn_running_var[ch] = (1.0 - bn.momentum) * bn_running_var[ch] + bn.momentum * variance * bn.unbias; }
  }
}

// Backward: the forward's params, x and weight (bindings 0–2); dy, the forward's statistics;
// writes dx, and dweight and dbias [C].
@group(0) @binding(3) var<storage, read> bb_dy: array<f32>;
@group(0) @binding(4) var<storage, read> bb_stats: array<f32>;
@group(0) @binding(5) var<storage, read_write> bb_dx: array<f32>;
@group(0) @binding(6) var<storage, read_write> bb_dweight: array<f32>;
@group(0) @binding(7) var<storage, read_write> bb_dbias: array<f32>;

@compute @workgroup_size(WG)
fn bn_backward_train(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let ch = wid.x;
  let m = bn.n * bn.s;
  let mean = bb_stats[ch];
  let invstd = bb_stats[bn.c + ch];
  var sdy = 0.0;
  var sdyx = 0.0;
  for (var j = lid; j < m; j += WG) {
    let i = bn_at(ch, j);
    sdy += bb_dy[i];
    sdyx += bb_dy[i] * (bn_x[i] - mean) * invstd;
  }
  let sum_dy = bn_sum(sdy, lid);
  let sum_dyx = bn_sum(sdyx, lid);
  let w = select(1.0, bn_weight[ch], (bn.flags & 1u) != 0u);
  let k = w * invstd / f32(m);
  for (var j = lid; j < m; j += WG) {
    let i = bn_at(ch, j);
    bb_dx[i] = k * (f32(m) * bb_dy[i] - sum_dy - (bn_x[i] - mean) * invstd * sum_dyx);
  }
  if (lid == 0u) {
    bb_dweight[ch] = sum_dyx;
    bb_dbias[ch] = sum_dy;
  }
}

// num_batches_tracked += 1, in place (nn.BatchNorm1d/2d in training). Counting on the GPU keeps
// a training step from waiting to read the counter, and the count stays in the tensor a state
// dict saves and loads (u32 here, torch's int64 in a file). Binding 0 is the params slot, which
// this entry has none of.
@group(0) @binding(1) var<storage, read_write> bn_count: array<u32>;

@compute @workgroup_size(1)
fn count_batch() {
  bn_count[0] = bn_count[0] + 1u;
}
