// Matrix multiply C = op(A)·op(B) (+ bias per column), batched over workgroup_id.z.
//
// Each invocation computes a 4×8 block of C: rows row0..row0+3 and two column quads, q0 and
// q0 + MM_WX, so neighbouring invocations read neighbouring quads of B (coalesced on a GPU).
// Register tiling matters most on llvmpipe, where every invocation is a SIMD lane and each
// loaded component costs a scalar load per lane: a 4×8 block loads 12 values per k for 32
// multiply-adds. The code is written out straight-line for the same reason (no dynamically
// indexed private arrays).
//
// Loads clamp their row and column indices into range instead of branching, so a partial
// block recomputes valid elements and only the final stores are guarded. Batch offsets are
// in elements; a batch stride of 0 shares an operand across the batch.

override MM_WX: u32 = 8u;
override MM_WY: u32 = 8u;

struct MatmulParams {
  m: u32, n: u32, k: u32, has_bias: u32,
  a_batch: u32, b_batch: u32, c_batch: u32, _p0: u32,
  // Element strides of op(A)(m, k) and op(B)(k, n); read by the general entry point only.
  a_rs: u32, a_cs: u32, b_rs: u32, b_cs: u32,
}

// ---- Fast paths: A row-major [M, K]; K and N multiples of 4, so every row is whole vec4s.
// mm_nn: B is [K, N].

@group(0) @binding(0) var<uniform> nn_p: MatmulParams;
@group(0) @binding(1) var<storage, read> nn_a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> nn_b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> nn_bias: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> nn_c: array<vec4<f32>>;

@compute @workgroup_size(MM_WX, MM_WY)
fn mm_nn(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let p = nn_p;
  let n4 = p.n / 4u;
  let k4 = p.k / 4u;
  let row0 = (wid.y * MM_WY + lid.y) * 4u;
  let a_base = (wid.z * p.a_batch) / 4u;
  let ar0 = a_base + min(row0, p.m - 1u) * k4;
  let ar1 = a_base + min(row0 + 1u, p.m - 1u) * k4;
  let ar2 = a_base + min(row0 + 2u, p.m - 1u) * k4;
  let ar3 = a_base + min(row0 + 3u, p.m - 1u) * k4;
  let q0 = wid.x * MM_WX * 2u + lid.x;
  let q1 = q0 + MM_WX;
  let j0 = min(q0, n4 - 1u);
  let j1 = min(q1, n4 - 1u);
  let b_base = (wid.z * p.b_batch) / 4u;
  var br = b_base;
  var c00 = vec4<f32>(0.0);
  var c01 = vec4<f32>(0.0);
  var c10 = vec4<f32>(0.0);
  var c11 = vec4<f32>(0.0);
  var c20 = vec4<f32>(0.0);
  var c21 = vec4<f32>(0.0);
  var c30 = vec4<f32>(0.0);
  var c31 = vec4<f32>(0.0);
  for (var kk = 0u; kk < k4; kk++) {
    let a0 = nn_a[ar0 + kk];
    let a1 = nn_a[ar1 + kk];
    let a2 = nn_a[ar2 + kk];
    let a3 = nn_a[ar3 + kk];
    let bx0 = nn_b[br + j0];
    let bx1 = nn_b[br + j1];
    c00 = fma(vec4<f32>(a0.x), bx0, c00);
    c01 = fma(vec4<f32>(a0.x), bx1, c01);
    c10 = fma(vec4<f32>(a1.x), bx0, c10);
    c11 = fma(vec4<f32>(a1.x), bx1, c11);
    c20 = fma(vec4<f32>(a2.x), bx0, c20);
    c21 = fma(vec4<f32>(a2.x), bx1, c21);
    c30 = fma(vec4<f32>(a3.x), bx0, c30);
    c31 = fma(vec4<f32>(a3.x), bx1, c31);
    br += n4;
    let by0 = nn_b[br + j0];
    let by1 = nn_b[br + j1];
    c00 = fma(vec4<f32>(a0.y), by0, c00);
    c01 = fma(vec4<f32>(a0.y), by1, c01);
    c10 = fma(vec4<f32>(a1.y), by0, c10);
    c11 = fma(vec4<f32>(a1.y), by1, c11);
    c20 = fma(vec4<f32>(a2.y), by0, c20);
    c21 = fma(vec4<f32>(a2.y), by1, c21);
    c30 = fma(vec4<f32>(a3.y), by0, c30);
    c31 = fma(vec4<f32>(a3.y), by1, c31);
    br += n4;
    let bz0 = nn_b[br + j0];
    let bz1 = nn_b[br + j1];
    c00 = fma(vec4<f32>(a0.z), bz0, c00);
    c01 = fma(vec4<f32>(a0.z), bz1, c01);
    c10 = fma(vec4<f32>(a1.z), bz0, c10);
    c11 = fma(vec4<f32>(a1.z), bz1, c11);
    c20 = fma(vec4<f32>(a2.z), bz0, c20);
    c21 = fma(vec4<f32>(a2.z), bz1, c21);
    c30 = fma(vec4<f32>(a3.z), bz0, c30);
    c31 = fma(vec4<f32>(a3.z), bz1, c31);
    br += n4;
    let bw0 = nn_b[br + j0];
    let bw1 = nn_b[br + j1];
    c00 = fma(vec4<f32>(a0.w), bw0, c00);
    c01 = fma(vec4<f32>(a0.w), bw1, c01);
    c10 = fma(vec4<f32>(a1.w), bw0, c10);
    c11 = fma(vec4<f32>(a1.w), bw1, c11);
    c20 = fma(vec4<f32>(a2.w), bw0, c20);
    c21 = fma(vec4<f32>(a2.w), bw1, c21);
    c30 = fma(vec4<f32>(a3.w), bw0, c30);
    c31 = fma(vec4<f32>(a3.w), bw1, c31);
    br += n4;
  }
  // Without a bias the op binds a dummy quad (bindings cannot be empty); index 0 keeps it in range.
  let use_bias = p.has_bias != 0u;
  let bias0 = select(vec4<f32>(0.0), nn_bias[select(0u, j0, use_bias)], use_bias);
  let bias1 = select(vec4<f32>(0.0), nn_bias[select(0u, j1, use_bias)], use_bias);
  let c_base = (wid.z * p.c_batch) / 4u;
  if (row0 < p.m) {
    let o = c_base + row0 * n4;
    if (q0 < n4) { nn_c[o + q0] = c00 + bias0; }
    if (q1 < n4) { nn_c[o + q1] = c01 + bias1; }
  }
  if (row0 + 1u < p.m) {
    let o = c_base + (row0 + 1u) * n4;
    if (q0 < n4) { nn_c[o + q0] = c10 + bias0; }
    if (q1 < n4) { nn_c[o + q1] = c11 + bias1; }
  }
  if (row0 + 2u < p.m) {
    let o = c_base + (row0 + 2u) * n4;
    if (q0 < n4) { nn_c[o + q0] = c20 + bias0; }
    if (q1 < n4) { nn_c[o + q1] = c21 + bias1; }
  }
  if (row0 + 3u < p.m) {
    let o = c_base + (row0 + 3u) * n4;
    if (q0 < n4) { nn_c[o + q0] = c30 + bias0; }
    if (q1 < n4) { nn_c[o + q1] = c31 + bias1; }
  }
}

// mm_nt: B is [N, K], used transposed.

@group(0) @binding(0) var<uniform> nt_p: MatmulParams;
@group(0) @binding(1) var<storage, read> nt_a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> nt_b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> nt_bias: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> nt_c: array<vec4<f32>>;

// One quad of C from a quad of A along k and the same k-quad of the 4 B rows that make a column quad.
fn nt_quad(a: vec4<f32>, b0: vec4<f32>, b1: vec4<f32>, b2: vec4<f32>, b3: vec4<f32>) -> vec4<f32> {
  return vec4<f32>(dot(a, b0), dot(a, b1), dot(a, b2), dot(a, b3));
}

@compute @workgroup_size(MM_WX, MM_WY)
fn mm_nt(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let p = nt_p;
  let n4 = p.n / 4u;
  let k4 = p.k / 4u;
  let row0 = (wid.y * MM_WY + lid.y) * 4u;
  let a_base = (wid.z * p.a_batch) / 4u;
  let ar0 = a_base + min(row0, p.m - 1u) * k4;
  let ar1 = a_base + min(row0 + 1u, p.m - 1u) * k4;
  let ar2 = a_base + min(row0 + 2u, p.m - 1u) * k4;
  let ar3 = a_base + min(row0 + 3u, p.m - 1u) * k4;
  let q0 = wid.x * MM_WX * 2u + lid.x;
  let q1 = q0 + MM_WX;
  let j0 = min(q0, n4 - 1u);
  let j1 = min(q1, n4 - 1u);
  let b_base = (wid.z * p.b_batch) / 4u;
  // B is [N, K]: column quad j is rows 4j..4j+3.
  let b00 = b_base + 4u * j0 * k4;
  let b01 = b00 + k4;
  let b02 = b01 + k4;
  let b03 = b02 + k4;
  let b10 = b_base + 4u * j1 * k4;
  let b11 = b10 + k4;
  let b12 = b11 + k4;
  let b13 = b12 + k4;
  var c00 = vec4<f32>(0.0);
  var c01 = vec4<f32>(0.0);
  var c10 = vec4<f32>(0.0);
  var c11 = vec4<f32>(0.0);
  var c20 = vec4<f32>(0.0);
  var c21 = vec4<f32>(0.0);
  var c30 = vec4<f32>(0.0);
  var c31 = vec4<f32>(0.0);
  for (var kk = 0u; kk < k4; kk++) {
    let a0 = nt_a[ar0 + kk];
    let a1 = nt_a[ar1 + kk];
    let a2 = nt_a[ar2 + kk];
    let a3 = nt_a[ar3 + kk];
    let b00 = nt_b[b00 + kk];
    let b01 = nt_b[b01 + kk];
    let b02 = nt_b[b02 + kk];
    let b03 = nt_b[b03 + kk];
    c00 += nt_quad(a0, b00, b01, b02, b03);
    c10 += nt_quad(a1, b00, b01, b02, b03);
    c20 += nt_quad(a2, b00, b01, b02, b03);
    c30 += nt_quad(a3, b00, b01, b02, b03);
    let b10 = nt_b[b10 + kk];
    let b11 = nt_b[b11 + kk];
    let b12 = nt_b[b12 + kk];
    let b13 = nt_b[b13 + kk];
    c01 += nt_quad(a0, b10, b11, b12, b13);
    c11 += nt_quad(a1, b10, b11, b12, b13);
    c21 += nt_quad(a2, b10, b11, b12, b13);
    c31 += nt_quad(a3, b10, b11, b12, b13);
  }
  // Without a bias the op binds a dummy quad (bindings cannot be empty); index 0 keeps it in range.
  let use_bias = p.has_bias != 0u;
  let bias0 = select(vec4<f32>(0.0), nt_bias[select(0u, j0, use_bias)], use_bias);
  let bias1 = select(vec4<f32>(0.0), nt_bias[select(0u, j1, use_bias)], use_bias);
  let c_base = (wid.z * p.c_batch) / 4u;
  if (row0 < p.m) {
    let o = c_base + row0 * n4;
    if (q0 < n4) { nt_c[o + q0] = c00 + bias0; }
    if (q1 < n4) { nt_c[o + q1] = c01 + bias1; }
  }
  if (row0 + 1u < p.m) {
    let o = c_base + (row0 + 1u) * n4;
    if (q0 < n4) { nt_c[o + q0] = c10 + bias0; }
    if (q1 < n4) { nt_c[o + q1] = c11 + bias1; }
  }
  if (row0 + 2u < p.m) {
    let o = c_base + (row0 + 2u) * n4;
    if (q0 < n4) { nt_c[o + q0] = c20 + bias0; }
    if (q1 < n4) { nt_c[o + q1] = c21 + bias1; }
  }
  if (row0 + 3u < p.m) {
    let o = c_base + (row0 + 3u) * n4;
    if (q0 < n4) { nt_c[o + q0] = c30 + bias0; }
    if (q1 < n4) { nt_c[o + q1] = c31 + bias1; }
  }
}

// ---- General path: any shapes, any strides (transposes), scalar loads.

@group(0) @binding(0) var<uniform> gen_p: MatmulParams;
@group(0) @binding(1) var<storage, read> gen_a: array<f32>;
@group(0) @binding(2) var<storage, read> gen_b: array<f32>;
@group(0) @binding(3) var<storage, read> gen_bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> gen_c: array<f32>;

// Bias for columns 4q..4q+3, each clamped into range; zero without a bias.
fn gen_bias4(q: u32) -> vec4<f32> {
  let use_bias = gen_p.has_bias != 0u;
  let last = select(0u, gen_p.n - 1u, use_bias);
  let v = vec4<f32>(gen_bias[min(4u * q, last)], gen_bias[min(4u * q + 1u, last)],
                    gen_bias[min(4u * q + 2u, last)], gen_bias[min(4u * q + 3u, last)]);
  return select(vec4<f32>(0.0), v, use_bias);
}

fn gen_store4(row: u32, q: u32, v: vec4<f32>, c_base: u32) {
  let n = gen_p.n;
  if (row >= gen_p.m) { return; }
  let o = c_base + row * n + 4u * q;
  if (4u * q < n) { gen_c[o] = v.x; }
  if (4u * q + 1u < n) { gen_c[o + 1u] = v.y; }
  if (4u * q + 2u < n) { gen_c[o + 2u] = v.z; }
  if (4u * q + 3u < n) { gen_c[o + 3u] = v.w; }
}

@compute @workgroup_size(MM_WX, MM_WY)
fn mm_general(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let p = gen_p;
  let row0 = (wid.y * MM_WY + lid.y) * 4u;
  let a_base = wid.z * p.a_batch;
  let ar0 = a_base + min(row0, p.m - 1u) * p.a_rs;
  let ar1 = a_base + min(row0 + 1u, p.m - 1u) * p.a_rs;
  let ar2 = a_base + min(row0 + 2u, p.m - 1u) * p.a_rs;
  let ar3 = a_base + min(row0 + 3u, p.m - 1u) * p.a_rs;
  let q0 = wid.x * MM_WX * 2u + lid.x;
  let q1 = q0 + MM_WX;
  // Offsets of the 8 columns, clamped to the last one; columns past N are never stored.
  let b_base = wid.z * p.b_batch;
  let last = p.n - 1u;
  let bc00 = b_base + min(4u * q0 + 0u, last) * p.b_cs;
  let bc01 = b_base + min(4u * q0 + 1u, last) * p.b_cs;
  let bc02 = b_base + min(4u * q0 + 2u, last) * p.b_cs;
  let bc03 = b_base + min(4u * q0 + 3u, last) * p.b_cs;
  let bc10 = b_base + min(4u * q1 + 0u, last) * p.b_cs;
  let bc11 = b_base + min(4u * q1 + 1u, last) * p.b_cs;
  let bc12 = b_base + min(4u * q1 + 2u, last) * p.b_cs;
  let bc13 = b_base + min(4u * q1 + 3u, last) * p.b_cs;
  var c00 = vec4<f32>(0.0);
  var c01 = vec4<f32>(0.0);
  var c10 = vec4<f32>(0.0);
  var c11 = vec4<f32>(0.0);
  var c20 = vec4<f32>(0.0);
  var c21 = vec4<f32>(0.0);
  var c30 = vec4<f32>(0.0);
  var c31 = vec4<f32>(0.0);
  var a_at = 0u;
  var b_at = 0u;
  for (var k = 0u; k < p.k; k++) {
    let a0 = vec4<f32>(gen_a[ar0 + a_at]);
    let a1 = vec4<f32>(gen_a[ar1 + a_at]);
    let a2 = vec4<f32>(gen_a[ar2 + a_at]);
    let a3 = vec4<f32>(gen_a[ar3 + a_at]);
    let b0 = vec4<f32>(gen_b[bc00 + b_at], gen_b[bc01 + b_at], gen_b[bc02 + b_at], gen_b[bc03 + b_at]);
    let b1 = vec4<f32>(gen_b[bc10 + b_at], gen_b[bc11 + b_at], gen_b[bc12 + b_at], gen_b[bc13 + b_at]);
    c00 = fma(a0, b0, c00);
    c01 = fma(a0, b1, c01);
    c10 = fma(a1, b0, c10);
    c11 = fma(a1, b1, c11);
    c20 = fma(a2, b0, c20);
    c21 = fma(a2, b1, c21);
    c30 = fma(a3, b0, c30);
    c31 = fma(a3, b1, c31);
    a_at += p.a_cs;
    b_at += p.b_rs;
  }
  let bias0 = gen_bias4(q0);
  let bias1 = gen_bias4(q1);
  let c_base = wid.z * p.c_batch;
  gen_store4(row0, q0, c00 + bias0, c_base);
  gen_store4(row0, q1, c01 + bias1, c_base);
  gen_store4(row0 + 1u, q0, c10 + bias0, c_base);
  gen_store4(row0 + 1u, q1, c11 + bias1, c_base);
  gen_store4(row0 + 2u, q0, c20 + bias0, c_base);
  gen_store4(row0 + 2u, q1, c21 + bias1, c_base);
  gen_store4(row0 + 3u, q0, c30 + bias0, c_base);
  gen_store4(row0 + 3u, q1, c31 + bias1, c_base);
}
