// Matrix multiply C = op(A)·op(B) (+ bias per column), batched over workgroup_id.z.
//
// Register tiling: each invocation computes a TM×TN block of C, rows row0..row0+TM-1 and TN/4
// column quads q0 + t·MM_WX, so neighbouring invocations read neighbouring quads of B
// (coalesced on a GPU). On llvmpipe every invocation is a SIMD lane and each load instruction
// becomes a loop over the lanes, so loads, not multiply-adds, bound the speed: a TM×TN block
// loads TM + TN values per k for TM·TN multiply-adds. Every layout comes in two block sizes,
// chosen by the op:
//   16×16 for CPU adapters (256 accumulators are cheap there: spills are plain stack traffic),
//   8×8 for GPUs and small matrices, which keeps a thread within the register file.
// The entry points of a layout differ only in those sizes. The tile loops have constant bounds
// and the arrays constant sizes exactly matching them, so compilers unroll the loops and keep
// the arrays in registers (arrays larger than their loops stay in memory on llvmpipe).
//
// Layouts: mm_nn_* (A [M, K], B [K, N]) and mm_nt_* (A [M, K], B [N, K]) read whole vec4s and
// need K and N to be multiples of 4; mm_general_* takes any sizes and element strides (so any
// transposes) with scalar loads.
//
// Loads clamp their row and column indices into range instead of branching, so a partial
// block recomputes valid elements and only the final stores are guarded. Batch offsets are in
// elements; a batch stride of 0 shares an operand across the batch.

override MM_WX: u32 = 8u;
override MM_WY: u32 = 8u;

struct MatmulParams {
  m: u32, n: u32, k: u32, has_bias: u32,
  a_batch: u32, b_batch: u32, c_batch: u32, _p0: u32,
  // Element strides of op(A)(m, k) and op(B)(k, n); read by the general entry point only.
  a_rs: u32, a_cs: u32, b_rs: u32, b_cs: u32,
}

// c + a.x·b0 + a.y·b1 + a.z·b2 + a.w·b3: a k-quad of one row of A against 4 rows of B.
fn mm_fma4(a: vec4<f32>, b0: vec4<f32>, b1: vec4<f32>, b2: vec4<f32>, b3: vec4<f32>, c: vec4<f32>) -> vec4<f32> {
  return fma(vec4<f32>(a.w), b3, fma(vec4<f32>(a.z), b2, fma(vec4<f32>(a.y), b1, fma(vec4<f32>(a.x), b0, c))));
}

// ---- Fast paths: every row of A, B and C is whole vec4s.

@group(0) @binding(0) var<uniform> nn16_p: MatmulParams;
@group(0) @binding(1) var<storage, read> nn16_a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> nn16_b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> nn16_bias: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> nn16_c: array<vec4<f32>>;

@compute @workgroup_size(MM_WX, MM_WY)
fn mm_nn_16x16(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let p = nn16_p;
  let n4 = p.n / 4u;
  let k4 = p.k / 4u;
  let row0 = (wid.y * MM_WY + lid.y) * 16u;
  let q0 = wid.x * MM_WX * 4u + lid.x;
  let a_base = (wid.z * p.a_batch) / 4u;
  let b_base = (wid.z * p.b_batch) / 4u;
  var a_at: array<u32, 16>;
  for (var r = 0u; r < 16u; r++) { a_at[r] = a_base + min(row0 + r, p.m - 1u) * k4; }
  var quad: array<u32, 4>;
  for (var t = 0u; t < 4u; t++) { quad[t] = min(q0 + t * MM_WX, n4 - 1u); }
  var acc: array<array<vec4<f32>, 4>, 16>;
  for (var kk = 0u; kk < k4; kk++) {
    // b[i][t]: row 4kk+i of op(B), column quad t.
    var b: array<array<vec4<f32>, 4>, 4>;
    for (var i = 0u; i < 4u; i++) {
      for (var t = 0u; t < 4u; t++) { b[i][t] = nn16_b[b_base + (4u * kk + i) * n4 + quad[t]]; }
    }
    for (var r = 0u; r < 16u; r++) {
      let a = nn16_a[a_at[r] + kk];
      for (var t = 0u; t < 4u; t++) { acc[r][t] = mm_fma4(a, b[0][t], b[1][t], b[2][t], b[3][t], acc[r][t]); }
    }
  }
  // Without a bias the op binds a dummy quad (bindings cannot be empty); index 0 keeps it in range.
  let use_bias = p.has_bias != 0u;
  var bias: array<vec4<f32>, 4>;
  for (var t = 0u; t < 4u; t++) { bias[t] = select(vec4<f32>(0.0), nn16_bias[select(0u, quad[t], use_bias)], use_bias); }
  let c_base = (wid.z * p.c_batch) / 4u;
  for (var r = 0u; r < 16u; r++) {
    if (row0 + r < p.m) {
      for (var t = 0u; t < 4u; t++) {
        if (q0 + t * MM_WX < n4) { nn16_c[c_base + (row0 + r) * n4 + q0 + t * MM_WX] = acc[r][t] + bias[t]; }
      }
    }
  }
}

@group(0) @binding(0) var<uniform> nn8_p: MatmulParams;
@group(0) @binding(1) var<storage, read> nn8_a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> nn8_b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> nn8_bias: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> nn8_c: array<vec4<f32>>;

@compute @workgroup_size(MM_WX, MM_WY)
fn mm_nn_8x8(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let p = nn8_p;
  let n4 = p.n / 4u;
  let k4 = p.k / 4u;
  let row0 = (wid.y * MM_WY + lid.y) * 8u;
  let q0 = wid.x * MM_WX * 2u + lid.x;
  let a_base = (wid.z * p.a_batch) / 4u;
  let b_base = (wid.z * p.b_batch) / 4u;
  var a_at: array<u32, 8>;
  for (var r = 0u; r < 8u; r++) { a_at[r] = a_base + min(row0 + r, p.m - 1u) * k4; }
  var quad: array<u32, 2>;
  for (var t = 0u; t < 2u; t++) { quad[t] = min(q0 + t * MM_WX, n4 - 1u); }
  var acc: array<array<vec4<f32>, 2>, 8>;
  for (var kk = 0u; kk < k4; kk++) {
    // b[i][t]: row 4kk+i of op(B), column quad t.
    var b: array<array<vec4<f32>, 2>, 4>;
    for (var i = 0u; i < 4u; i++) {
      for (var t = 0u; t < 2u; t++) { b[i][t] = nn8_b[b_base + (4u * kk + i) * n4 + quad[t]]; }
    }
    for (var r = 0u; r < 8u; r++) {
      let a = nn8_a[a_at[r] + kk];
      for (var t = 0u; t < 2u; t++) { acc[r][t] = mm_fma4(a, b[0][t], b[1][t], b[2][t], b[3][t], acc[r][t]); }
    }
  }
  // Without a bias the op binds a dummy quad (bindings cannot be empty); index 0 keeps it in range.
  let use_bias = p.has_bias != 0u;
  var bias: array<vec4<f32>, 2>;
  for (var t = 0u; t < 2u; t++) { bias[t] = select(vec4<f32>(0.0), nn8_bias[select(0u, quad[t], use_bias)], use_bias); }
  let c_base = (wid.z * p.c_batch) / 4u;
  for (var r = 0u; r < 8u; r++) {
    if (row0 + r < p.m) {
      for (var t = 0u; t < 2u; t++) {
        if (q0 + t * MM_WX < n4) { nn8_c[c_base + (row0 + r) * n4 + q0 + t * MM_WX] = acc[r][t] + bias[t]; }
      }
    }
  }
}

@group(0) @binding(0) var<uniform> nt16_p: MatmulParams;
@group(0) @binding(1) var<storage, read> nt16_a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> nt16_b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> nt16_bias: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> nt16_c: array<vec4<f32>>;

@compute @workgroup_size(MM_WX, MM_WY)
fn mm_nt_16x16(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let p = nt16_p;
  let n4 = p.n / 4u;
  let k4 = p.k / 4u;
  let row0 = (wid.y * MM_WY + lid.y) * 16u;
  let q0 = wid.x * MM_WX * 4u + lid.x;
  let a_base = (wid.z * p.a_batch) / 4u;
  let b_base = (wid.z * p.b_batch) / 4u;
  var a_at: array<u32, 16>;
  for (var r = 0u; r < 16u; r++) { a_at[r] = a_base + min(row0 + r, p.m - 1u) * k4; }
  var quad: array<u32, 4>;
  for (var t = 0u; t < 4u; t++) { quad[t] = min(q0 + t * MM_WX, n4 - 1u); }
  var acc: array<array<vec4<f32>, 4>, 16>;
  for (var kk = 0u; kk < k4; kk++) {
    // b[i][t]: row 4kk+i of op(B), column quad t.
    var b: array<array<vec4<f32>, 4>, 4>;
    for (var t = 0u; t < 4u; t++) {
      // Column 4·quad+j of op(B) is row 4·quad+j of B; its k-quad transposes into b[·][t][j].
      for (var j = 0u; j < 4u; j++) {
        let v = nt16_b[b_base + (4u * quad[t] + j) * k4 + kk];
        b[0][t][j] = v.x;
        b[1][t][j] = v.y;
        b[2][t][j] = v.z;
        b[3][t][j] = v.w;
      }
    }
    for (var r = 0u; r < 16u; r++) {
      let a = nt16_a[a_at[r] + kk];
      for (var t = 0u; t < 4u; t++) { acc[r][t] = mm_fma4(a, b[0][t], b[1][t], b[2][t], b[3][t], acc[r][t]); }
    }
  }
  // Without a bias the op binds a dummy quad (bindings cannot be empty); index 0 keeps it in range.
  let use_bias = p.has_bias != 0u;
  var bias: array<vec4<f32>, 4>;
  for (var t = 0u; t < 4u; t++) { bias[t] = select(vec4<f32>(0.0), nt16_bias[select(0u, quad[t], use_bias)], use_bias); }
  let c_base = (wid.z * p.c_batch) / 4u;
  for (var r = 0u; r < 16u; r++) {
    if (row0 + r < p.m) {
      for (var t = 0u; t < 4u; t++) {
        if (q0 + t * MM_WX < n4) { nt16_c[c_base + (row0 + r) * n4 + q0 + t * MM_WX] = acc[r][t] + bias[t]; }
      }
    }
  }
}

@group(0) @binding(0) var<uniform> nt8_p: MatmulParams;
@group(0) @binding(1) var<storage, read> nt8_a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> nt8_b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> nt8_bias: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> nt8_c: array<vec4<f32>>;

@compute @workgroup_size(MM_WX, MM_WY)
fn mm_nt_8x8(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let p = nt8_p;
  let n4 = p.n / 4u;
  let k4 = p.k / 4u;
  let row0 = (wid.y * MM_WY + lid.y) * 8u;
  let q0 = wid.x * MM_WX * 2u + lid.x;
  let a_base = (wid.z * p.a_batch) / 4u;
  let b_base = (wid.z * p.b_batch) / 4u;
  var a_at: array<u32, 8>;
  for (var r = 0u; r < 8u; r++) { a_at[r] = a_base + min(row0 + r, p.m - 1u) * k4; }
  var quad: array<u32, 2>;
  for (var t = 0u; t < 2u; t++) { quad[t] = min(q0 + t * MM_WX, n4 - 1u); }
  var acc: array<array<vec4<f32>, 2>, 8>;
  for (var kk = 0u; kk < k4; kk++) {
    // b[i][t]: row 4kk+i of op(B), column quad t.
    var b: array<array<vec4<f32>, 2>, 4>;
    for (var t = 0u; t < 2u; t++) {
      // Column 4·quad+j of op(B) is row 4·quad+j of B; its k-quad transposes into b[·][t][j].
      for (var j = 0u; j < 4u; j++) {
        let v = nt8_b[b_base + (4u * quad[t] + j) * k4 + kk];
        b[0][t][j] = v.x;
        b[1][t][j] = v.y;
        b[2][t][j] = v.z;
        b[3][t][j] = v.w;
      }
    }
    for (var r = 0u; r < 8u; r++) {
      let a = nt8_a[a_at[r] + kk];
      for (var t = 0u; t < 2u; t++) { acc[r][t] = mm_fma4(a, b[0][t], b[1][t], b[2][t], b[3][t], acc[r][t]); }
    }
  }
  // Without a bias the op binds a dummy quad (bindings cannot be empty); index 0 keeps it in range.
  let use_bias = p.has_bias != 0u;
  var bias: array<vec4<f32>, 2>;
  for (var t = 0u; t < 2u; t++) { bias[t] = select(vec4<f32>(0.0), nt8_bias[select(0u, quad[t], use_bias)], use_bias); }
  let c_base = (wid.z * p.c_batch) / 4u;
  for (var r = 0u; r < 8u; r++) {
    if (row0 + r < p.m) {
      for (var t = 0u; t < 2u; t++) {
        if (q0 + t * MM_WX < n4) { nt8_c[c_base + (row0 + r) * n4 + q0 + t * MM_WX] = acc[r][t] + bias[t]; }
      }
    }
  }
}

// ---- General path: any shapes and strides (transposes, odd K or N), scalar loads.

@group(0) @binding(0) var<uniform> gen16_p: MatmulParams;
@group(0) @binding(1) var<storage, read> gen16_a: array<f32>;
@group(0) @binding(2) var<storage, read> gen16_b: array<f32>;
@group(0) @binding(3) var<storage, read> gen16_bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> gen16_c: array<f32>;

@compute @workgroup_size(MM_WX, MM_WY)
fn mm_general_16x16(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let p = gen16_p;
  let row0 = (wid.y * MM_WY + lid.y) * 16u;
  let q0 = wid.x * MM_WX * 4u + lid.x;
  let a_base = wid.z * p.a_batch;
  let b_base = wid.z * p.b_batch;
  var a_at: array<u32, 16>;
  for (var r = 0u; r < 16u; r++) { a_at[r] = a_base + min(row0 + r, p.m - 1u) * p.a_rs; }
  // Columns 4·(q0 + t·MM_WX) + j, clamped to the last one; columns past N are never stored.
  var col: array<array<u32, 4>, 4>;
  for (var t = 0u; t < 4u; t++) {
    for (var j = 0u; j < 4u; j++) { col[t][j] = min(4u * (q0 + t * MM_WX) + j, p.n - 1u); }
  }
  var b_at: array<array<u32, 4>, 4>;
  for (var t = 0u; t < 4u; t++) {
    for (var j = 0u; j < 4u; j++) { b_at[t][j] = b_base + col[t][j] * p.b_cs; }
  }
  var acc: array<array<vec4<f32>, 4>, 16>;
  for (var k = 0u; k < p.k; k++) {
    var b: array<vec4<f32>, 4>;
    for (var t = 0u; t < 4u; t++) {
      for (var j = 0u; j < 4u; j++) { b[t][j] = gen16_b[b_at[t][j] + k * p.b_rs]; }
    }
    for (var r = 0u; r < 16u; r++) {
      let a = vec4<f32>(gen16_a[a_at[r] + k * p.a_cs]);
      for (var t = 0u; t < 4u; t++) { acc[r][t] = fma(a, b[t], acc[r][t]); }
    }
  }
  let use_bias = p.has_bias != 0u;
  var bias: array<vec4<f32>, 4>;
  for (var t = 0u; t < 4u; t++) {
    for (var j = 0u; j < 4u; j++) { bias[t][j] = select(0.0, gen16_bias[select(0u, col[t][j], use_bias)], use_bias); }
  }
  let c_base = wid.z * p.c_batch;
  for (var r = 0u; r < 16u; r++) {
    if (row0 + r < p.m) {
      for (var t = 0u; t < 4u; t++) {
        for (var j = 0u; j < 4u; j++) {
          let n = 4u * (q0 + t * MM_WX) + j;
          if (n < p.n) { gen16_c[c_base + (row0 + r) * p.n + n] = acc[r][t][j] + bias[t][j]; }
        }
      }
    }
  }
}

@group(0) @binding(0) var<uniform> gen8_p: MatmulParams;
@group(0) @binding(1) var<storage, read> gen8_a: array<f32>;
@group(0) @binding(2) var<storage, read> gen8_b: array<f32>;
@group(0) @binding(3) var<storage, read> gen8_bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> gen8_c: array<f32>;

@compute @workgroup_size(MM_WX, MM_WY)
fn mm_general_8x8(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let p = gen8_p;
  let row0 = (wid.y * MM_WY + lid.y) * 8u;
  let q0 = wid.x * MM_WX * 2u + lid.x;
  let a_base = wid.z * p.a_batch;
  let b_base = wid.z * p.b_batch;
  var a_at: array<u32, 8>;
  for (var r = 0u; r < 8u; r++) { a_at[r] = a_base + min(row0 + r, p.m - 1u) * p.a_rs; }
  // Columns 4·(q0 + t·MM_WX) + j, clamped to the last one; columns past N are never stored.
  var col: array<array<u32, 4>, 2>;
  for (var t = 0u; t < 2u; t++) {
    for (var j = 0u; j < 4u; j++) { col[t][j] = min(4u * (q0 + t * MM_WX) + j, p.n - 1u); }
  }
  var b_at: array<array<u32, 4>, 2>;
  for (var t = 0u; t < 2u; t++) {
    for (var j = 0u; j < 4u; j++) { b_at[t][j] = b_base + col[t][j] * p.b_cs; }
  }
  var acc: array<array<vec4<f32>, 2>, 8>;
  for (var k = 0u; k < p.k; k++) {
    var b: array<vec4<f32>, 2>;
    for (var t = 0u; t < 2u; t++) {
      for (var j = 0u; j < 4u; j++) { b[t][j] = gen8_b[b_at[t][j] + k * p.b_rs]; }
    }
    for (var r = 0u; r < 8u; r++) {
      let a = vec4<f32>(gen8_a[a_at[r] + k * p.a_cs]);
      for (var t = 0u; t < 2u; t++) { acc[r][t] = fma(a, b[t], acc[r][t]); }
    }
  }
  let use_bias = p.has_bias != 0u;
  var bias: array<vec4<f32>, 2>;
  for (var t = 0u; t < 2u; t++) {
    for (var j = 0u; j < 4u; j++) { bias[t][j] = select(0.0, gen8_bias[select(0u, col[t][j], use_bias)], use_bias); }
  }
  let c_base = wid.z * p.c_batch;
  for (var r = 0u; r < 8u; r++) {
    if (row0 + r < p.m) {
      for (var t = 0u; t < 2u; t++) {
        for (var j = 0u; j < 4u; j++) {
          let n = 4u * (q0 + t * MM_WX) + j;
          if (n < p.n) { gen8_c[c_base + (row0 + r) * p.n + n] = acc[r][t][j] + bias[t][j]; }
        }
      }
    }
  }
}
