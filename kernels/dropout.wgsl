// Dropout's mask applied to a tensor: out[i] = keep(seed, i) ? x[i]·scale : 0. The mask is never
// stored: keep() is a counter-based hash of (seed, i) (PCG's output permutation, applied twice),
// so backward runs this same kernel on the output gradient with the same seed and gets
// gradient = mask·scale, and the same seed gives the same mask on every device.

override WG: u32 = 256u;

//#include <index>

// keep when hash ≥ threshold = round(p·2³²); scale = 1/(1 − p).
struct DropoutParams { n: u32, seed: u32, threshold: u32, scale: f32 }

@group(0) @binding(0) var<uniform> dp: DropoutParams;
@group(0) @binding(1) var<storage, read> dp_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> dp_y: array<f32>;

// PCG's RXS-M-XS output function over one LCG step: a well-mixed bijection of 32-bit words.
fn pcg_hash(v: u32) -> u32 {
  let state = v * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}

@compute @workgroup_size(WG)
fn dropout_apply(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(wid, nwg, lid);
  if (i >= dp.n) { return; }
  let h = pcg_hash(pcg_hash(i) ^ pcg_hash(dp.seed));
  dp_y[i] = select(0.0, dp_x[i] * dp.scale, h >= dp.threshold);
}
