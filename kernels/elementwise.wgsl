// Elementwise ops. The file has two halves:
//  - built in as 'elementwise' (flag `op` unset): scale, fill, broadcast_to, where and
//    sum_to_shape (the reduction a broadcast input's gradient needs);
//  - with flag `op` set, the templates of the table-driven ops of src/ops/elementwise.ts: each
//    op's kernel is this file resolved with `op` and `unary` or `binary`, followed by its own
//    forward and gradient functions (op_forward, op_grad / op_grad_a, op_grad_b) generated
//    from the op table. Forward and backward entries sit side by side.
//
// Strided kernels take the output shape collapsed (adjacent dims that every operand walks alike
// merged, size-1 dims dropped), innermost dim first, with each operand's stride per dim (0
// where it is broadcast): at most 8 dims.

override WG: u32 = 256u;

struct Strided {
  n: u32, rank: u32, value: f32, rank2: u32,
  dims: array<vec4<u32>, 2>,
  sa: array<vec4<u32>, 2>,
  sb: array<vec4<u32>, 2>,
  sc: array<vec4<u32>, 2>,
}

// Launches of one element (or vec4) per invocation: the count, and a scalar operand.
struct Flat { n: u32, value: f32, _p0: u32, _p1: u32 }

//#include <index>

fn at8(v: array<vec4<u32>, 2>, d: u32) -> u32 {
  return v[d / 4u][d % 4u];
}

@group(0) @binding(0) var<uniform> st: Strided;

// The offsets of output element i in operands a, b and c.
fn strided_offsets(i: u32) -> vec3<u32> {
  var rest = i;
  var o = vec3<u32>(0u);
  for (var d = 0u; d < st.rank; d++) {
    let size = at8(st.dims, d);
    let c = rest % size;
    rest = rest / size;
    o += c * vec3<u32>(at8(st.sa, d), at8(st.sb, d), at8(st.sc, d));
  }
  return o;
}

@group(0) @binding(0) var<uniform> fl: Flat;

//#if op
// Helpers the op table's expressions use.

// torch.pow on reals: x^0 = 1, and a negative base takes integer exponents only.
fn pow_real(x: f32, y: f32) -> f32 {
  if (y == 0.0) { return 1.0; }
  let m = pow(abs(x), y);
  if (x >= 0.0) { return m; }
  // A NaN, as torch gives (a NaN constant would be rejected at shader creation; x < 0 here).
  if (y != round(y)) { return sqrt(x); }
  return select(m, -m, fract(y * 0.5) != 0.0);
}

// erf, which WGSL lacks: its Maclaurin series to x¹¹ below |x| = 0.5 (terms past it are under
// 2e-8, and the series keeps the relative accuracy near 0 that the other form loses to
// cancellation), Abramowitz & Stegun 7.1.26 (absolute error ≤ 1.5e-7) above.
fn erf_f(x: f32) -> f32 {
  let a = abs(x);
  if (a < 0.5) {
    let x2 = x * x;
    return 1.1283791670955126 * x * (1.0 + x2 * (-1.0 / 3.0 + x2 * (0.1 + x2 * (-1.0 / 42.0 + x2 * (1.0 / 216.0 - x2 / 1320.0)))));
  }
  let t = 1.0 / (1.0 + 0.3275911 * a);
  let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  return sign(x) * (1.0 - poly * exp(-a * a));
}

// 1 / (1 + e^-x): saturates to 0 or 1 without NaN (exp overflows to inf, 1/inf = 0).
fn sigmoid_f(x: f32) -> f32 {
  return 1.0 / (1.0 + exp(-x));
}

//#if unary
@group(0) @binding(1) var<storage, read> un_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> un_y: array<f32>;
@group(0) @binding(1) var<storage, read> un_x4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> un_y4: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(wid, nwg, lid);
  if (i >= fl.n) { return; }
  un_y[i] = op_forward(un_x[i]);
}

@compute @workgroup_size(WG)
fn forward4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(wid, nwg, lid);
  if (i >= fl.n) { return; }
  let x = un_x4[i];
  un_y4[i] = vec4<f32>(op_forward(x.x), op_forward(x.y), op_forward(x.z), op_forward(x.w));
}

// dx = op_grad(x, y, g): x the input, y the output, g the output's gradient.
@group(0) @binding(1) var<storage, read> ub_x: array<f32>;
@group(0) @binding(2) var<storage, read> ub_y: array<f32>;
@group(0) @binding(3) var<storage, read> ub_g: array<f32>;
@group(0) @binding(4) var<storage, read_write> ub_dx: array<f32>;
@group(0) @binding(1) var<storage, read> ub_x4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> ub_y4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> ub_g4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> ub_dx4: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(wid, nwg, lid);
  if (i >= fl.n) { return; }
  ub_dx[i] = op_grad(ub_x[i], ub_y[i], ub_g[i]);
}

@compute @workgroup_size(WG)
fn backward4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(wid, nwg, lid);
  if (i >= fl.n) { return; }
  let x = ub_x4[i];
  let y = ub_y4[i];
  let g = ub_g4[i];
  ub_dx4[i] = vec4<f32>(op_grad(x.x, y.x, g.x), op_grad(x.y, y.y, g.y), op_grad(x.z, y.z, g.z), op_grad(x.w, y.w, g.w));
}
//#endif

//#if binary
@group(0) @binding(1) var<storage, read> bin_a: array<f32>;
@group(0) @binding(2) var<storage, read> bin_b: array<f32>;
@group(0) @binding(3) var<storage, read_write> bin_out: array<f32>;
@group(0) @binding(1) var<storage, read> bin_a4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> bin_b4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> bin_out4: array<vec4<f32>>;

// a and b of the output's shape.
@compute @workgroup_size(WG)
fn same(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(wid, nwg, lid);
  if (i >= fl.n) { return; }
  bin_out[i] = op_forward(bin_a[i], bin_b[i]);
}

@compute @workgroup_size(WG)
fn same4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(wid, nwg, lid);
  if (i >= fl.n) { return; }
  let a = bin_a4[i];
  let b = bin_b4[i];
  bin_out4[i] = vec4<f32>(op_forward(a.x, b.x), op_forward(a.y, b.y), op_forward(a.z, b.z), op_forward(a.w, b.w));
}

// b a number (Flat.value).
@group(0) @binding(2) var<storage, read_write> bsc_out: array<f32>;
@group(0) @binding(2) var<storage, read_write> bsc_out4: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn scalar(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(wid, nwg, lid);
  if (i >= fl.n) { return; }
  bsc_out[i] = op_forward(bin_a[i], fl.value);
}

@compute @workgroup_size(WG)
fn scalar4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(wid, nwg, lid);
  if (i >= fl.n) { return; }
  let a = bin_a4[i];
  let b = fl.value;
  bsc_out4[i] = vec4<f32>(op_forward(a.x, b), op_forward(a.y, b), op_forward(a.z, b), op_forward(a.w, b));
}

// a and b broadcast to the output's shape.
@compute @workgroup_size(WG)
fn strided(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(wid, nwg, lid);
  if (i >= st.n) { return; }
  let o = strided_offsets(i);
  bin_out[i] = op_forward(bin_a[o.x], bin_b[o.y]);
}

// a and b broadcast to an output of at most 2 collapsed dims whose rows (the innermost dim) are
// a multiple of 4 long and walked by each operand with stride 1 (a vec4 load) or 0 (its one
// value, splat): x along the row in vec4s, y and z over blocks of ROWS rows that each
// invocation walks, so no invocation divides (a software adapter divides lane by lane, and the
// general loop's divisions cost several times the memory traffic on llvmpipe), and an operand
// repeated over the rows is loaded once per invocation. Which operand is splat is fixed per pipeline.
override A_SPLAT: bool = false;
override B_SPLAT: bool = false;
const ROWS = 8u;

@compute @workgroup_size(WG)
fn rows4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
  let inner4 = st.dims[0].x / 4u;
  let col4 = wid.x * WG + lid;
  if (col4 >= inner4) { return; }
  let rows = select(1u, st.dims[0].y, st.rank > 1u);
  let first = (wid.y + wid.z * nwg.y) * ROWS;
  let last = min(first + ROWS, rows);
  for (var row = first; row < last; row++) {
    // Where the row starts in a and b (element offsets; a row stride of 0 repeats one row).
    let ra = row * st.sa[0].y;
    let rb = row * st.sb[0].y;
    var a: vec4<f32>;
    if (A_SPLAT) { a = vec4<f32>(bin_a4[ra / 4u][ra % 4u]); } else { a = bin_a4[ra / 4u + col4]; }
    var b: vec4<f32>;
    if (B_SPLAT) { b = vec4<f32>(bin_b4[rb / 4u][rb % 4u]); } else { b = bin_b4[rb / 4u + col4]; }
    bin_out4[row * inner4 + col4] = vec4<f32>(op_forward(a.x, b.x), op_forward(a.y, b.y), op_forward(a.z, b.z), op_forward(a.w, b.w));
  }
}

// The gradient of a (grad_a) or b (grad_b) at the output's shape, from x = a, y = b, z = the
// output, g = its gradient; summed down to the operand's shape afterwards.
@group(0) @binding(3) var<storage, read> bg_z: array<f32>;
@group(0) @binding(4) var<storage, read> bg_g: array<f32>;
@group(0) @binding(5) var<storage, read_write> bg_out: array<f32>;

//#if grad_a
@compute @workgroup_size(WG)
fn grad_a(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(wid, nwg, lid);
  if (i >= st.n) { return; }
  let o = strided_offsets(i);
  bg_out[i] = op_grad_a(bin_a[o.x], bin_b[o.y], bg_z[i], bg_g[i]);
}
//#endif

//#if grad_b
@compute @workgroup_size(WG)
fn grad_b(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(wid, nwg, lid);
  if (i >= st.n) { return; }
  let o = strided_offsets(i);
  bg_out[i] = op_grad_b(bin_a[o.x], bin_b[o.y], bg_z[i], bg_g[i]);
}
//#endif
//#endif
//#else
@group(0) @binding(1) var<storage, read> scale_in: array<f32>;
@group(0) @binding(2) var<storage, read_write> scale_out: array<f32>;

struct ScaleParams { n: u32, scale: f32, shift: f32, _p: u32 }
@group(0) @binding(0) var<uniform> sp: ScaleParams;

// out = x * scale + shift
@compute @workgroup_size(WG)
fn scale(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(wid, nwg, lid);
  if (i >= sp.n) { return; }
  scale_out[i] = scale_in[i] * sp.scale + sp.shift;
}

// Every 32-bit word of out set to `bits` (an f32's or a u32's): read as u32, so no float path can alter them.
struct FillParams { n: u32, bits: u32, _p0: u32, _p1: u32 }
@group(0) @binding(0) var<uniform> fp: FillParams;
@group(0) @binding(1) var<storage, read_write> fill_out: array<u32>;

@compute @workgroup_size(WG)
fn fill(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(wid, nwg, lid);
  if (i >= fp.n) { return; }
  fill_out[i] = fp.bits;
}

// out = a broadcast to the output's shape (strides sa).
@compute @workgroup_size(WG)
fn broadcast_to(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(wid, nwg, lid);
  if (i >= st.n) { return; }
  scale_out[i] = scale_in[strided_offsets(i).x];
}

// out = cond != 0 ? a : b, all three broadcast (strides sa, sb, sc).
@group(0) @binding(1) var<storage, read> where_cond: array<f32>;
@group(0) @binding(2) var<storage, read> where_a: array<f32>;
@group(0) @binding(3) var<storage, read> where_b: array<f32>;
@group(0) @binding(4) var<storage, read_write> where_out: array<f32>;

@compute @workgroup_size(WG)
fn where_select(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(wid, nwg, lid);
  if (i >= st.n) { return; }
  let o = strided_offsets(i);
  where_out[i] = select(where_b[o.z], where_a[o.y], where_cond[o.x] != 0.0);
}

// Sums src into the output, one invocation per output element: the kept dims are `dims`
// (rank of them) with src strides `sa`; the summed dims are `sb` (rank2 of them) with src
// strides `sc`; n is the count of output elements.
@compute @workgroup_size(WG)
fn sum_to_shape(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
  let j = flat_index(wid, nwg, lid);
  if (j >= st.n) { return; }
  let base = strided_offsets(j).x;
  var count = 1u;
  for (var d = 0u; d < st.rank2; d++) { count *= at8(st.sb, d); }
  var acc = 0.0;
  for (var r = 0u; r < count; r++) {
    var rest = r;
    var offset = base;
    for (var d = 0u; d < st.rank2; d++) {
      let size = at8(st.sb, d);
      offset += (rest % size) * at8(st.sc, d);
      rest = rest / size;
    }
    acc += scale_in[offset];
  }
  scale_out[j] = acc;
}
//#endif
