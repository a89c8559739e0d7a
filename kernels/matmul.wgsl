// Matrix multiply C = op(A)·op(B) (+ bias per column), batched over workgroup_id.z, with
// workgroup-shared tiles for GPUs (mm_tiled, mm_split_sum). The register-blocked kernels that
// CPU adapters run (mm_nn_*, mm_nt_*, mm_general_*) are generated from a template in
// src/ops/matmul.ts and registered as the kernel 'matmul_register'.
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
