// One Adam step for one parameter tensor, in place. The bias corrections depend only on the
// step count, so the host folds them into step_size = lr / (1 − β1^t) and
// inv_sqrt_bc2 = 1 / √(1 − β2^t), the same arrangement as torch.optim.Adam. 1 − β is also
// computed on the host: in f32, 1 − 0.999 would be off by 1e-5 relative.

override WG: u32 = 256u;

struct AdamParams {
  n: u32, beta1: f32, beta2: f32, eps: f32,
  one_minus_beta1: f32, one_minus_beta2: f32, step_size: f32, inv_sqrt_bc2: f32,
}

@group(0) @binding(0) var<uniform> ap: AdamParams;
@group(0) @binding(1) var<storage, read_write> adam_param: array<f32>;
@group(0) @binding(2) var<storage, read> adam_grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> adam_m: array<f32>;
@group(0) @binding(4) var<storage, read_write> adam_v: array<f32>;

@compute @workgroup_size(WG)
fn adam_step(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid;
  if (i >= ap.n) { return; }
  let g = adam_grad[i];
  let m = ap.beta1 * adam_m[i] + ap.one_minus_beta1 * g;
  let v = ap.beta2 * adam_v[i] + ap.one_minus_beta2 * g * g;
  adam_m[i] = m;
  adam_v[i] = v;
  adam_param[i] -= ap.step_size * m / (sqrt(v) * ap.inv_sqrt_bc2 + ap.eps);
}
