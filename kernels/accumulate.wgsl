// Gradient accumulation, the tape's own kernel: out = a + b over two f32 tensors of the same
// size, element by element, in that order (a the gradient so far, b the new one). It lives in
// the engine so backward() needs no op module; nothing differentiates it.

override WG: u32 = 256u;

struct AccumulateParams { n: u32, _p0: u32, _p1: u32, _p2: u32 }

@group(0) @binding(0) var<uniform> acc_p: AccumulateParams;
@group(0) @binding(1) var<storage, read> acc_a: array<f32>;
@group(0) @binding(2) var<storage, read> acc_b: array<f32>;
@group(0) @binding(3) var<storage, read_write> acc_out: array<f32>;

//#include <index>

@compute @workgroup_size(WG)
fn accumulate(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(wid, nwg, lid);
  if (i >= acc_p.n) { return; }
  acc_out[i] = acc_a[i] + acc_b[i];
}
