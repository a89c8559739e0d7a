// checkNumerics' kernel (src/tensor/numerics.ts): marks slot `slot` of a flag buffer where any
// of a tensor's f32 values is NaN or ±Inf. It tests the exponent bits, not x != x: a shader
// compiler may assume floats are never NaN and drop such a comparison. Not differentiable.

override WG: u32 = 256u;

struct NumericsParams { n: u32, slot: u32, _p0: u32, _p1: u32 }

@group(0) @binding(0) var<uniform> num_p: NumericsParams;
@group(0) @binding(1) var<storage, read> num_x: array<u32>;
@group(0) @binding(2) var<storage, read_write> num_flags: array<atomic<u32>>;

//#include <index>

@compute @workgroup_size(WG)
fn check(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(wid, nwg, lid);
  if (i >= num_p.n) { return; }
  if ((num_x[i] & 0x7f800000u) == 0x7f800000u) { atomicOr(&num_flags[num_p.slot], 1u); }
}
