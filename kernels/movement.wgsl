// Movement ops on contiguous row-major tensors, which have no strided views: every op that is
// not a pure reshape materialises its output here. Forward and backward of each op are the
// same few copies in other directions:
//   strided_read   out[i] = in[base + Σ (c_d - lo_d)·stride_d], or `fill` where a coordinate
//                  falls outside the input: permute, expand (stride 0), narrow (negative lo),
//                  pad, and their backwards (inverse permute, pad ↔ narrow).
//   strided_write  out[base + Σ c_d·stride_d] = in[i]: cat writes each piece into its slot
//                  (its backward narrows the pieces back out with strided_read); copy_rows4
//                  does the same in vec4s where the rows allow.
//   transpose_tiled  the last two dims swapped through workgroup memory, so both the reads and
//                  the writes of a workgroup are contiguous.
//   index_select / index_add_scan / index_add_csr  rows picked along a dim, and the
//                  deterministic scatter-add of their gradient (no float atomics in WGSL).
//   bool_mask_bias  a 0/1 u32 mask as an additive 0 / -1e30 one (attention).
// Coordinates run over up to 8 dims, right-aligned (leading dims of size 1).

override WG: u32 = 256u;

fn mv_linear(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
  return (wid.x + wid.y * nwg.x) * WG + lid;
}

// ---- strided_read: gather form, with a fill value outside the input's window.

struct ReadParams {
  size: u32, in_base: u32, fill: f32, rank: u32,
  // Per dim (index 8 - rank .. 7): the output's size, the input's element stride, the output
  // coordinate of the input's first element (negative crops), and the input's size.
  shape: array<vec4<u32>, 2>,
  in_stride: array<vec4<u32>, 2>,
  lo: array<vec4<i32>, 2>,
  in_dim: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<uniform> rp: ReadParams;
@group(0) @binding(1) var<storage, read> read_src: array<f32>;
@group(0) @binding(2) var<storage, read_write> read_dst: array<f32>;

@compute @workgroup_size(WG)
fn strided_read(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
  let i = mv_linear(wid, nwg, lid);
  if (i >= rp.size) { return; }
  var rest = i;
  var at = rp.in_base;
  var inside = true;
  for (var d = 7u; d >= 8u - rp.rank; d--) {
    let n = rp.shape[d / 4u][d % 4u];
    let src = i32(rest % n) - rp.lo[d / 4u][d % 4u];
    rest /= n;
    inside = inside && src >= 0 && u32(src) < rp.in_dim[d / 4u][d % 4u];
    at += u32(src) * rp.in_stride[d / 4u][d % 4u];
    if (d == 0u) { break; }
  }
  var v = rp.fill;
  if (inside) { v = read_src[at]; }
  read_dst[i] = v;
}

// ---- strided_write: scatter form, a contiguous input into a window of the output.

struct WriteParams {
  size: u32, out_base: u32, rank: u32, _p: u32,
  shape: array<vec4<u32>, 2>,
  out_stride: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<uniform> wp: WriteParams;
@group(0) @binding(1) var<storage, read> write_src: array<f32>;
@group(0) @binding(2) var<storage, read_write> write_dst: array<f32>;

@compute @workgroup_size(WG)
fn strided_write(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
  let i = mv_linear(wid, nwg, lid);
  if (i >= wp.size) { return; }
  var rest = i;
  var at = wp.out_base;
  for (var d = 7u; d >= 8u - wp.rank; d--) {
    let n = wp.shape[d / 4u][d % 4u];
    at += (rest % n) * wp.out_stride[d / 4u][d % 4u];
    rest /= n;
    if (d == 0u) { break; }
  }
  write_dst[at] = write_src[i];
}

// ---- copy_rows4: strided_write's 2-D window in whole vec4s (cat's pieces when every row
// and offset is a multiple of 4 elements): one division per quad instead of a loop of them.

struct RowsParams { quads: u32, cols4: u32, row4: u32, offset4: u32 }

@group(0) @binding(0) var<uniform> cp4: RowsParams;
@group(0) @binding(1) var<storage, read> rows_src: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> rows_dst: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn copy_rows4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
  let i = mv_linear(wid, nwg, lid);
  if (i >= cp4.quads) { return; }
  rows_dst[cp4.offset4 + (i / cp4.cols4) * cp4.row4 + i % cp4.cols4] = rows_src[i];
}

// ---- transpose_tiled: [batch, rows, cols] -> [batch, cols, rows], 16×16 tiles. The tile row
// is padded to 17 so the column-wise reads of the second half hit different banks.

struct TransposeParams { rows: u32, cols: u32, _p0: u32, _p1: u32 }

@group(0) @binding(0) var<uniform> tp: TransposeParams;
@group(0) @binding(1) var<storage, read> transpose_src: array<f32>;
@group(0) @binding(2) var<storage, read_write> transpose_dst: array<f32>;

var<workgroup> transpose_tile: array<f32, 272>;

@compute @workgroup_size(16, 16)
fn transpose_tiled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let base = wid.z * tp.rows * tp.cols;
  let r = wid.y * 16u + lid.y;
  let c = wid.x * 16u + lid.x;
  if (r < tp.rows && c < tp.cols) { transpose_tile[lid.y * 17u + lid.x] = transpose_src[base + r * tp.cols + c]; }
  workgroupBarrier();
  let out_r = wid.x * 16u + lid.y;
  let out_c = wid.y * 16u + lid.x;
  if (out_r < tp.cols && out_c < tp.rows) { transpose_dst[base + out_r * tp.rows + out_c] = transpose_tile[lid.x * 17u + lid.y]; }
}

// The same swap by gathering, for CPU adapters: each invocation reads one source column of 4
// consecutive rows and writes them as 4 adjacent outputs. No workgroup memory and no barrier,
// which on llvmpipe cost more than the scattered reads they save.
@compute @workgroup_size(WG)
fn transpose_gather4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let base = wid.z * tp.rows * tp.cols;
  let r = (wid.x * WG + lid) * 4u;
  let c = wid.y;
  if (r >= tp.rows) { return; }
  let n = min(4u, tp.rows - r);
  for (var k = 0u; k < n; k++) {
    transpose_dst[base + c * tp.rows + r + k] = transpose_src[base + (r + k) * tp.cols + c];
  }
}

// ---- index_select along a dim of x viewed as [outer, n, inner]; out is [outer, m, inner].
// An index past n reads `missing` (NaN from the op): the ids live on the GPU, so the host
// cannot check them. (A NaN constant would not compile: WGSL const-evaluates it.)

struct IndexParams { size: u32, n: u32, m: u32, inner: u32, missing: f32, _p0: u32, _p1: u32, _p2: u32 }

@group(0) @binding(0) var<uniform> ip: IndexParams;
@group(0) @binding(1) var<storage, read> select_src: array<f32>;
@group(0) @binding(2) var<storage, read> select_ids: array<u32>;
@group(0) @binding(3) var<storage, read_write> select_dst: array<f32>;

@compute @workgroup_size(WG)
fn index_select(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
  let i = mv_linear(wid, nwg, lid);
  if (i >= ip.size) { return; }
  let e = i % ip.inner;
  let j = (i / ip.inner) % ip.m;
  let o = i / (ip.inner * ip.m);
  let row = select_ids[j];
  var v = ip.missing;
  if (row < ip.n) { v = select_src[(o * ip.n + row) * ip.inner + e]; }
  select_dst[i] = v;
}

// Backward of index_select: dx[o, r, e] = Σ over j with ids[j] = r of dy[o, j, e], summed in
// ascending j, so results do not depend on scheduling. With the ids on the GPU each element scans them all.

struct AddParams { size: u32, n: u32, m: u32, inner: u32 }

@group(0) @binding(0) var<uniform> sp: AddParams;
@group(0) @binding(1) var<storage, read> scan_grad: array<f32>;
@group(0) @binding(2) var<storage, read> scan_ids: array<u32>;
@group(0) @binding(3) var<storage, read_write> scan_dx: array<f32>;

@compute @workgroup_size(WG)
fn index_add_scan(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_index) lid: u32) {
  let i = mv_linear(wid, nwg, lid);
  if (i >= sp.size) { return; }
  let e = i % sp.inner;
  let r = (i / sp.inner) % sp.n;
  let o = i / (sp.inner * sp.n);
  var acc = 0.0;
  for (var j = 0u; j < sp.m; j++) {
    if (scan_ids[j] == r) { acc += scan_grad[(o * sp.m + j) * sp.inner + e]; }
  }
  scan_dx[i] = acc;
}

// With the ids on the host, they are inverted there: `csr_index` holds n + 1 offsets (relative
// to the start of the positions) followed by the positions j that read each row, ascending.

@group(0) @binding(0) var<uniform> cp: AddParams;
@group(0) @binding(1) var<storage, read> csr_grad: array<f32>;
@group(0) @binding(2) var<storage, read> csr_index: array<u32>;
@group(0) @binding(3) var<storage, read_write> csr_dx: array<f32>;

@compute @workgroup_size(WG)
fn index_add_csr(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
  let i = mv_linear(wid, nwg, lid);
  if (i >= cp.size) { return; }
  let e = i % cp.inner;
  let r = (i / cp.inner) % cp.n;
  let o = i / (cp.inner * cp.n);
  let base = cp.n + 1u;
  var acc = 0.0;
  for (var k = csr_index[r]; k < csr_index[r + 1u]; k++) {
    acc += csr_grad[(o * cp.m + csr_index[base + k]) * cp.inner + e];
  }
  csr_dx[i] = acc;
}

// ---- bool_mask_bias: 1 (attend) -> 0, 0 -> -1e30. Finite on purpose: WGSL lets compilers
// assume no infinities, and -1e30 plus any score still underflows exp() to exactly 0.

struct MaskParams { size: u32, _p0: u32, _p1: u32, _p2: u32 }

@group(0) @binding(0) var<uniform> mp: MaskParams;
@group(0) @binding(1) var<storage, read> mask_src: array<u32>;
@group(0) @binding(2) var<storage, read_write> mask_dst: array<f32>;

@compute @workgroup_size(WG)
fn bool_mask_bias(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_index) lid: u32) {
  let i = mv_linear(wid, nwg, lid);
  if (i >= mp.size) { return; }
  mask_dst[i] = select(-1e30, 0.0, mask_src[i] != 0u);
}
