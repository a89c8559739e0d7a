// GELU, tanh approximation (Hugging Face's gelu_new), and its backward. Elementwise.
//
// Each has a vec4 entry point, used when the length is a multiple of 4 (always, for GPT-2),
// and a scalar one for other lengths.

override GELU_WG: u32 = 256u;

const GELU_K: f32 = 0.7978845608028654; // √(2/π)
const GELU_A: f32 = 0.044715;

// ½(1 + tanh(u)) = σ(2u) = 1/(1 + e^(−2u)), so gelu(x) = x/(1 + e^(−2u)). This form has no
// tanh to overflow (exp(±∞) gives x or −0, never NaN), and keeps full relative precision in
// the negative tail where 1 + tanh(u) would cancel to 0.
fn gelu_u(x: vec4<f32>) -> vec4<f32> {
  return GELU_K * (x + GELU_A * x * x * x);
}

fn gelu_value(x: vec4<f32>) -> vec4<f32> {
  return x / (1.0 + exp(-2.0 * gelu_u(x)));
}

// With s = σ(2u):  d/dx gelu = s + x·s·(1 − s)·2K·(1 + 3A·x²).
fn gelu_slope(x: vec4<f32>) -> vec4<f32> {
  let u = gelu_u(x);
  let e = exp(-2.0 * u);
  let s = 1.0 / (1.0 + e);
  // 1 − s without cancellation on either side: e·s = σ(−2u) is exact where s is near 1.
  let one_minus_s = select(1.0 - s, e * s, u >= vec4(0.0));
  let term = x * s * one_minus_s * (2.0 * GELU_K) * (1.0 + 3.0 * GELU_A * x * x);
  // Past |u| = 40 the term is below f32 resolution, and there e = ∞ or x² = ∞ would make it ∞·0 = NaN.
  return s + select(term, vec4(0.0), abs(u) > vec4(40.0));
}

struct GeluParams { n: u32, _p0: u32, _p1: u32, _p2: u32 }

fn gelu_index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
  return (wid.x + wid.y * nwg.x) * GELU_WG + lid;
}

@group(0) @binding(0) var<uniform> gf4: GeluParams;
@group(0) @binding(1) var<storage, read> gf4_x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> gf4_y: array<vec4<f32>>;

// n counts vec4s here.
@compute @workgroup_size(GELU_WG)
fn gelu_forward4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
  let i = gelu_index(wid, nwg, lid);
  if (i >= gf4.n) { return; }
  gf4_y[i] = gelu_value(gf4_x[i]);
}

@group(0) @binding(0) var<uniform> gf1: GeluParams;
@group(0) @binding(1) var<storage, read> gf1_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> gf1_y: array<f32>;

@compute @workgroup_size(GELU_WG)
fn gelu_forward1(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
  let i = gelu_index(wid, nwg, lid);
  if (i >= gf1.n) { return; }
  gf1_y[i] = gelu_value(vec4(gf1_x[i])).x;
}

@group(0) @binding(0) var<uniform> gb4: GeluParams;
@group(0) @binding(1) var<storage, read> gb4_x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> gb4_dy: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> gb4_dx: array<vec4<f32>>;

@compute @workgroup_size(GELU_WG)
fn gelu_backward4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_index) lid: u32) {
  let i = gelu_index(wid, nwg, lid);
  if (i >= gb4.n) { return; }
  gb4_dx[i] = gb4_dy[i] * gelu_slope(gb4_x[i]);
}

@group(0) @binding(0) var<uniform> gb1: GeluParams;
@group(0) @binding(1) var<storage, read> gb1_x: array<f32>;
@group(0) @binding(2) var<storage, read> gb1_dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> gb1_dx: array<f32>;

@compute @workgroup_size(GELU_WG)
fn gelu_backward1(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_index) lid: u32) {
  let i = gelu_index(wid, nwg, lid);
  if (i >= gb1.n) { return; }
  gb1_dx[i] = gb1_dy[i] * gelu_slope(vec4(gb1_x[i])).x;
}
