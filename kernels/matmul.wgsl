// Matrix multiply C = op(A)·op(B) (+ bias per column), batched over workgroup_id.z, in two
// families: register-blocked kernels without workgroup memory (mm_nn_*, mm_nt_*, mm_general_*:
// what CPU adapters run fastest, and a GPU's fallback for sizes off the vec4 grid), and
// workgroup-shared tiles for GPUs (mm_tiled, mm_split_sum: see that section).
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

// ---- GPU path: workgroup-shared tiles (real GPUs; the op chooses this family by adapter class).
//
// A workgroup of 16×16 invocations computes a BM×BN tile of C, each invocation a TM×TN block:
// TM consecutive rows (lid.y·TM + r) and TN/4 column quads lid.x + 16·q, so each row of 16
// invocations stores 256 contiguous bytes. K advances BK at a time: the workgroup copies the
// BM×BK slice of op(A) and the BK×BN slice of op(B) into workgroup memory, every invocation
// loading whole vec4s along its operand's contiguous dimension (neighbouring invocations read
// neighbouring 16-byte words in every transpose layout, so the reads coalesce), and then each
// k costs an invocation TM/4 + TN/4 vec4 reads of workgroup memory for TM·TN multiply-adds.
// The next slice's global loads are issued before the current slice is multiplied, so their
// latency overlaps the arithmetic.
//
// Workgroup memory is k-major, as the multiply reads it: tile_a[k][m] and tile_b[k][n] in vec4s
// along m and n. An operand stored with k contiguous (A untransposed, B transposed) is
// transposed on its way in by scalar stores; its rows get one vec4 of padding, which spreads
// those stores over the memory banks.
//
// Flags pick the block (tile_8x8: 128×128 tiles, tile_8x4: 128×64, else 64×64, all within
// 16 KiB of workgroup memory, WebGPU's default limit) and the layout (trans_a, trans_b).
// Every block sums each output's products in the order k = 0, 1, ... with fma, so the tile
// choice, which depends on M, never changes a result's bits.
//
// Split K: workgroup_id.z = batch entry · splits + split; split s sums k in
// [s·k_split, (s+1)·k_split) into its own slice of a partial C (bias left out), and
// mm_split_sum adds the slices in order and the bias. The op derives the split from N and K
// only, so a row's result does not depend on how many rows are multiplied with it; it bounds
// the partials' memory by computing tall matrices a chunk of rows at a time.
//
// The op ensures op(A)'s and op(B)'s contiguous dimensions and N are multiples of 4, so a
// vec4 is wholly inside or wholly outside its matrix; outside ones load as zeros.

//#if tile_8x8
const TM = 8u;
const TN = 8u;
const BK = 8u;
//#else
//#if tile_8x4
const TM = 8u;
const TN = 4u;
const BK = 16u;
//#else
const TM = 4u;
const TN = 4u;
const BK = 16u;
//#endif
//#endif
const BM = 16u * TM;
const BN = 16u * TN;
const TQ = TN / 4u;
//#if trans_a
const A_ROW = BM / 4u;
//#else
const A_ROW = BM / 4u + 1u;
//#endif
//#if trans_b
const B_ROW = BN / 4u + 1u;
//#else
const B_ROW = BN / 4u;
//#endif
// vec4s of each operand's slice loaded per invocation.
const A_LOADS = BM * BK / 1024u;
const B_LOADS = BN * BK / 1024u;

struct TiledParams {
  m: u32, n: u32, k: u32, has_bias: u32,
  a_batch: u32, b_batch: u32, c_batch: u32, splits: u32,
  // k per split: a multiple of 16, so of BK.
  k_split: u32,
  // The rows of C this dispatch computes: row0 .. row0 + rows - 1, stored at row - row0 of the
  // output (a split's partial slices hold a chunk of rows at a time).
  row0: u32, rows: u32, _p0: u32,
}

@group(0) @binding(0) var<uniform> tiled_p: TiledParams;
@group(0) @binding(1) var<storage, read> tiled_a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> tiled_b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> tiled_bias: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> tiled_c: array<vec4<f32>>;

var<workgroup> tile_a: array<vec4<f32>, BK * A_ROW>;
var<workgroup> tile_b: array<vec4<f32>, BK * B_ROW>;

// The i-th vec4 an invocation loads of op(A)'s slice at k0 (in the stored layout), zero outside
// A or past k_end.
fn tiled_load_a(i: u32, t: u32, m0: u32, k0: u32, k_end: u32, base: u32) -> vec4<f32> {
  let p = tiled_p;
  let idx = t + 256u * i;
//#if trans_a
  // A is [K, M]: quads along m.
  let k = k0 + idx / (BM / 4u);
  let m = m0 + 4u * (idx % (BM / 4u));
  let ok = k < k_end && m < p.m;
  return select(vec4<f32>(0.0), tiled_a[select(base, base + (k * p.m + m) / 4u, ok)], ok);
//#else
  // A is [M, K]: quads along k.
  let m = m0 + idx / (BK / 4u);
  let k = k0 + 4u * (idx % (BK / 4u));
  let ok = m < p.m && k < k_end;
  return select(vec4<f32>(0.0), tiled_a[select(base, base + (m * p.k + k) / 4u, ok)], ok);
//#endif
}

fn tiled_store_a(i: u32, t: u32, v: vec4<f32>) {
  let idx = t + 256u * i;
//#if trans_a
  tile_a[(idx / (BM / 4u)) * A_ROW + idx % (BM / 4u)] = v;
//#else
  let m = idx / (BK / 4u);
  let k = 4u * (idx % (BK / 4u));
  for (var j = 0u; j < 4u; j++) { tile_a[(k + j) * A_ROW + m / 4u][m % 4u] = v[j]; }
//#endif
}

fn tiled_load_b(i: u32, t: u32, n0: u32, k0: u32, k_end: u32, base: u32) -> vec4<f32> {
  let p = tiled_p;
  let idx = t + 256u * i;
//#if trans_b
  // B is [N, K]: quads along k.
  let n = n0 + idx / (BK / 4u);
  let k = k0 + 4u * (idx % (BK / 4u));
  let ok = n < p.n && k < k_end;
  return select(vec4<f32>(0.0), tiled_b[select(base, base + (n * p.k + k) / 4u, ok)], ok);
//#else
  // B is [K, N]: quads along n.
  let k = k0 + idx / (BN / 4u);
  let n = n0 + 4u * (idx % (BN / 4u));
  let ok = k < k_end && n < p.n;
  return select(vec4<f32>(0.0), tiled_b[select(base, base + (k * p.n + n) / 4u, ok)], ok);
//#endif
}

fn tiled_store_b(i: u32, t: u32, v: vec4<f32>) {
  let idx = t + 256u * i;
//#if trans_b
  let n = idx / (BK / 4u);
  let k = 4u * (idx % (BK / 4u));
  for (var j = 0u; j < 4u; j++) { tile_b[(k + j) * B_ROW + n / 4u][n % 4u] = v[j]; }
//#else
  tile_b[(idx / (BN / 4u)) * B_ROW + idx % (BN / 4u)] = v;
//#endif
}

@compute @workgroup_size(16, 16)
fn mm_tiled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let p = tiled_p;
  let entry = wid.z / p.splits;
  let k_begin = (wid.z % p.splits) * p.k_split;
  let k_end = min(p.k, k_begin + p.k_split);
  let m0 = p.row0 + wid.y * BM;
  let n0 = wid.x * BN;
  let a_base = entry * p.a_batch / 4u;
  let b_base = entry * p.b_batch / 4u;

  var next_a: array<vec4<f32>, A_LOADS>;
  var next_b: array<vec4<f32>, B_LOADS>;
  for (var i = 0u; i < A_LOADS; i++) { next_a[i] = tiled_load_a(i, t, m0, k_begin, k_end, a_base); }
  for (var i = 0u; i < B_LOADS; i++) { next_b[i] = tiled_load_b(i, t, n0, k_begin, k_end, b_base); }
  var acc: array<array<vec4<f32>, TQ>, TM>;
  for (var k0 = k_begin; k0 < k_end; k0 += BK) {
    // Every invocation is done reading the previous slice.
    workgroupBarrier();
    for (var i = 0u; i < A_LOADS; i++) { tiled_store_a(i, t, next_a[i]); }
    for (var i = 0u; i < B_LOADS; i++) { tiled_store_b(i, t, next_b[i]); }
    workgroupBarrier();
    if (k0 + BK < k_end) {
      for (var i = 0u; i < A_LOADS; i++) { next_a[i] = tiled_load_a(i, t, m0, k0 + BK, k_end, a_base); }
      for (var i = 0u; i < B_LOADS; i++) { next_b[i] = tiled_load_b(i, t, n0, k0 + BK, k_end, b_base); }
    }
    for (var k = 0u; k < BK; k++) {
      var a: array<vec4<f32>, TM / 4u>;
      for (var i = 0u; i < TM / 4u; i++) { a[i] = tile_a[k * A_ROW + lid.y * (TM / 4u) + i]; }
      var b: array<vec4<f32>, TQ>;
      for (var q = 0u; q < TQ; q++) { b[q] = tile_b[k * B_ROW + lid.x + 16u * q]; }
      for (var r = 0u; r < TM; r++) {
        let ar = vec4<f32>(a[r / 4u][r % 4u]);
        for (var q = 0u; q < TQ; q++) { acc[r][q] = fma(ar, b[q], acc[r][q]); }
      }
    }
  }

  let n4 = p.n / 4u;
  // Without a bias the op binds a dummy quad (bindings cannot be empty); index 0 keeps it in range.
  let use_bias = p.has_bias != 0u;
  var bias: array<vec4<f32>, TQ>;
  for (var q = 0u; q < TQ; q++) {
    let quad = min(n0 / 4u + lid.x + 16u * q, n4 - 1u);
    bias[q] = select(vec4<f32>(0.0), tiled_bias[select(0u, quad, use_bias)], use_bias);
  }
  let c_base = wid.z * p.c_batch / 4u;
  for (var r = 0u; r < TM; r++) {
    let row = m0 + lid.y * TM + r;
    if (row < p.row0 + p.rows) {
      for (var q = 0u; q < TQ; q++) {
        let quad = n0 / 4u + lid.x + 16u * q;
        if (quad < n4) { tiled_c[c_base + (row - p.row0) * n4 + quad] = acc[r][q] + bias[q]; }
      }
    }
  }
}

struct SplitSumParams {
  // vec4s of one batch entry's partial slice (a chunk of rows), and where they go in C.
  quads: u32, splits: u32, n4: u32, has_bias: u32,
  batch: u32, c_quads: u32, c_offset: u32, _p0: u32,
}

@group(0) @binding(0) var<uniform> sum_p: SplitSumParams;
@group(0) @binding(1) var<storage, read> sum_partial: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> sum_bias: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> sum_c: array<vec4<f32>>;

// C = Σ over splits (in order) of the partial slices, + bias.
@compute @workgroup_size(256)
fn mm_split_sum(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let p = sum_p;
  let i = gid.x + gid.y * groups.x * 256u;
  if (i >= p.quads * p.batch) { return; }
  let entry = i / p.quads;
  let e = i % p.quads;
  var s = sum_partial[entry * p.splits * p.quads + e];
  for (var split = 1u; split < p.splits; split++) { s += sum_partial[(entry * p.splits + split) * p.quads + e]; }
  let use_bias = p.has_bias != 0u;
  sum_c[entry * p.c_quads + p.c_offset + e] = s + select(vec4<f32>(0.0), sum_bias[select(0u, e % p.n4, use_bias)], use_bias);
}
