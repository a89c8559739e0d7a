// Elementwise arithmetic with broadcasting (up to 4 dims), and the reduction its backward
// needs: summing a gradient down to a broadcast input's shape.
//
// Shapes are right-aligned to 4 dims. A stride of 0 marks a broadcast dimension.

override WG: u32 = 256u;

struct BinaryParams {
  n: u32, op: u32, _p0: u32, _p1: u32,
  d0: u32, d1: u32, d2: u32, d3: u32,
  a0: u32, a1: u32, a2: u32, a3: u32,
  b0: u32, b1: u32, b2: u32, b3: u32,
}

@group(0) @binding(0) var<uniform> bp: BinaryParams;
@group(0) @binding(1) var<storage, read> bin_a: array<f32>;
@group(0) @binding(2) var<storage, read> bin_b: array<f32>;
@group(0) @binding(3) var<storage, read_write> bin_out: array<f32>;

fn linear_index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
  return (wid.x + wid.y * nwg.x) * WG + lid;
}

// op: 0 add, 1 sub, 2 mul, 3 div, 4 take a (broadcasting a to the output shape)
@compute @workgroup_size(WG)
fn binary(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wid, nwg, lid);
  if (i >= bp.n) { return; }
  let i3 = i % bp.d3;
  let i2 = (i / bp.d3) % bp.d2;
  let i1 = (i / (bp.d3 * bp.d2)) % bp.d1;
  let i0 = i / (bp.d3 * bp.d2 * bp.d1);
  let x = bin_a[i0 * bp.a0 + i1 * bp.a1 + i2 * bp.a2 + i3 * bp.a3];
  let y = bin_b[i0 * bp.b0 + i1 * bp.b1 + i2 * bp.b2 + i3 * bp.b3];
  var r: f32;
  switch bp.op {
    case 0u: { r = x + y; }
    case 1u: { r = x - y; }
    case 2u: { r = x * y; }
    case 3u: { r = x / y; }
    default: { r = x; }
  }
  bin_out[i] = r;
}

struct ScaleParams { n: u32, scale: f32, shift: f32, _p: u32 }

@group(0) @binding(0) var<uniform> sp: ScaleParams;
@group(0) @binding(1) var<storage, read> scale_in: array<f32>;
@group(0) @binding(2) var<storage, read_write> scale_out: array<f32>;

// out = x * scale + shift
@compute @workgroup_size(WG)
fn scale(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wid, nwg, lid);
  if (i >= sp.n) { return; }
  scale_out[i] = scale_in[i] * sp.scale + sp.shift;
}

// Sums `src` (full shape d0..d3, row-major) into `dst` whose shape is the full shape with
// the dims flagged in `keep_mask` kept and the others reduced to 1.
struct SumParams {
  n_out: u32, keep_mask: u32, _p0: u32, _p1: u32,
  d0: u32, d1: u32, d2: u32, d3: u32,
}

@group(0) @binding(0) var<uniform> sum_p: SumParams;
@group(0) @binding(1) var<storage, read> sum_src: array<f32>;
@group(0) @binding(2) var<storage, read_write> sum_dst: array<f32>;

fn kept(dim: u32, size: u32) -> u32 {
  return select(1u, size, (sum_p.keep_mask & (1u << dim)) != 0u);
}

@compute @workgroup_size(WG)
fn sum_to_shape(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
  let j = linear_index(wid, nwg, lid);
  if (j >= sum_p.n_out) { return; }
  let full = array<u32, 4>(sum_p.d0, sum_p.d1, sum_p.d2, sum_p.d3);
  let k = array<u32, 4>(kept(0u, sum_p.d0), kept(1u, sum_p.d1), kept(2u, sum_p.d2), kept(3u, sum_p.d3));
  // Coordinates of j in the kept shape; reduced dims start at 0.
  var c = array<u32, 4>(0u, 0u, 0u, 0u);
  var rest = j;
  for (var d = 3i; d >= 0; d--) {
    c[d] = rest % k[d];
    rest = rest / k[d];
  }
  // Iterate over every combination of the reduced dims.
  var reduced_count = 1u;
  for (var d = 0u; d < 4u; d++) { if (k[d] == 1u) { reduced_count *= full[d]; } }
  var acc = 0.0;
  for (var r = 0u; r < reduced_count; r++) {
    var rr = r;
    var idx = 0u;
    for (var d = 0u; d < 4u; d++) {
      var coord = c[d];
      if (k[d] == 1u && full[d] != 1u) {
        // Reduced dims are enumerated last-dim fastest, like the row-major index.
        var inner = 1u;
        for (var e = d + 1u; e < 4u; e++) { if (k[e] == 1u) { inner *= full[e]; } }
        coord = (rr / inner) % full[d];
      }
      idx = idx * full[d] + coord;
    }
    acc += sum_src[idx];
  }
  sum_dst[j] = acc;
}
