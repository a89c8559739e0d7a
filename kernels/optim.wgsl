// Optimizer steps, one parameter tensor in place per launch (Adam/AdamW and SGD), and what
// global-norm gradient clipping needs: partial sums of squares of a gradient, and scaling a
// gradient in place.
//
// Adam/AdamW: the bias corrections depend only on the step count, so the host folds them into
// step_size = lr / (1 − β1^t) and inv_sqrt_bc2 = 1 / √(1 − β2^t), the same arrangement as
// torch.optim.AdamW. 1 − β is also computed on the host: in f32, 1 − 0.999 would be off by
// 1e-5 relative. So is decay = 1 − lr·weight_decay (1 for plain Adam: p·1 is exact) and
// grad_scale, the clipping factor (1 without clipping: g·1 is exact).
//
// What changes from step to step (learning rate, bias corrections, the clipping factor, SGD's
// first-step momentum) is read from a storage array the host writes before the step, not from
// the uniforms: a step's launches are then the same every time, so a captured step
// (src/engine/capture.ts) can replay them.

override WG: u32 = 256u;

struct AdamParams {
  n: u32, beta1: f32, beta2: f32, eps: f32,
  one_minus_beta1: f32, one_minus_beta2: f32,
  // This parameter's entry of adam_scalars.
  slot: u32, _p0: u32,
}

// Per parameter: step_size, inv_sqrt_bc2, decay, grad_scale.
struct AdamScalars { step_size: f32, inv_sqrt_bc2: f32, decay: f32, grad_scale: f32 }

@group(0) @binding(0) var<uniform> ap: AdamParams;
@group(0) @binding(1) var<storage, read_write> adam_param: array<f32>;
@group(0) @binding(2) var<storage, read> adam_grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> adam_m: array<f32>;
@group(0) @binding(4) var<storage, read_write> adam_v: array<f32>;
@group(0) @binding(5) var<storage, read> adam_scalars: array<AdamScalars>;

// torch.optim.AdamW's order: decay the parameter, then the Adam update with the (clipped) gradient.
@compute @workgroup_size(WG)
fn adam_step(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid;
  if (i >= ap.n) { return; }
  let k = adam_scalars[ap.slot];
  let g = adam_grad[i] * k.grad_scale;
  let m = ap.beta1 * adam_m[i] + ap.one_minus_beta1 * g;
  let v = ap.beta2 * adam_v[i] + ap.one_minus_beta2 * g * g;
  adam_m[i] = m;
  adam_v[i] = v;
  adam_param[i] = adam_param[i] * k.decay - k.step_size * m / (sqrt(v) * k.inv_sqrt_bc2 + ap.eps);
}

// torch.optim.SGD: g ← s·g + wd·p; buf ← keep·buf + gain·g (keep 0 and gain 1 on the first
// step: buf = g; later keep = momentum, gain = 1 − dampening); the step direction is
// g + momentum·buf with Nesterov, buf without. Without momentum there is no buffer: d = g.
struct SgdParams {
  n: u32, momentum: f32, weight_decay: f32,
  // 0: no momentum, 1: heavy ball, 2: Nesterov.
  mode: u32,
  slot: u32, _p0: u32, _p1: u32, _p2: u32,
}

// Per parameter: lr, keep, gain, grad_scale.
struct SgdScalars { lr: f32, keep: f32, gain: f32, grad_scale: f32 }

@group(0) @binding(0) var<uniform> sgp: SgdParams;
@group(0) @binding(1) var<storage, read_write> sgd_param: array<f32>;
@group(0) @binding(2) var<storage, read> sgd_grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> sgd_buf: array<f32>;
@group(0) @binding(4) var<storage, read> sgd_scalars: array<SgdScalars>;

@compute @workgroup_size(WG)
fn sgd_step(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid;
  if (i >= sgp.n) { return; }
  let k = sgd_scalars[sgp.slot];
  let p = sgd_param[i];
  let g = sgd_grad[i] * k.grad_scale + sgp.weight_decay * p;
  var d = g;
  if (sgp.mode != 0u) {
    let b = k.keep * sgd_buf[i] + k.gain * g;
    sgd_buf[i] = b;
    d = select(b, g + sgp.momentum * b, sgp.mode == 2u);
  }
  sgd_param[i] = p - k.lr * d;
}

// Workgroup w sums g² over elements [w·SUMSQ_SPAN, (w+1)·SUMSQ_SPAN) into partial[offset + w],
// always in the same order; the host adds the partials in float64.
const SUMSQ_PER_THREAD: u32 = 64u;

struct SumSqParams { n: u32, offset: u32, _p0: u32, _p1: u32 }

@group(0) @binding(0) var<uniform> sp: SumSqParams;
@group(0) @binding(1) var<storage, read> sumsq_grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> sumsq_partial: array<f32>;

var<workgroup> sumsq_red: array<f32, WG>;

@compute @workgroup_size(WG)
fn grad_sumsq(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
  let group = wid.x + wid.y * nwg.x;
  let start = group * WG * SUMSQ_PER_THREAD;
  // A grid folded into 2-D has spare workgroups past the last span: they must write nothing.
  if (start >= sp.n) { return; }
  var acc = 0.0;
  for (var k = 0u; k < SUMSQ_PER_THREAD; k++) {
    let i = start + k * WG + lid;
    if (i < sp.n) {
      let g = sumsq_grad[i];
      acc += g * g;
    }
  }
  sumsq_red[lid] = acc;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { sumsq_red[lid] += sumsq_red[lid + s]; }
    workgroupBarrier();
  }
  if (lid == 0u) { sumsq_partial[sp.offset + group] = sumsq_red[0]; }
}

// clip_grad_norm_'s in-place scaling, g ← g·factor. It follows a readback of the norm, so it is
// never part of a captured step and the factor can be a uniform.
struct ScaleParams { n: u32, factor: f32, _p0: u32, _p1: u32 }

@group(0) @binding(0) var<uniform> scp: ScaleParams;
@group(0) @binding(1) var<storage, read_write> scale_grad: array<f32>;

@compute @workgroup_size(WG)
fn grad_scale(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid;
  if (i >= scp.n) { return; }
  scale_grad[i] = scale_grad[i] * scp.factor;
}
