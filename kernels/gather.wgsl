// Row gather from a (possibly row-sharded) table, and its backward: a scatter-add of the
// output gradient into the table rows, made deterministic by inverting the index on the host.

override WG: u32 = 256u;

//#include <index>

// One dispatch per shard: each output row is written by the shard holding its id.
struct GatherParams { n: u32, cols: u32, row_start: u32, row_count: u32 }

@group(0) @binding(0) var<uniform> gp: GatherParams;
@group(0) @binding(1) var<storage, read> gather_table: array<f32>;
@group(0) @binding(2) var<storage, read> gather_ids: array<u32>;
@group(0) @binding(3) var<storage, read_write> gather_out: array<f32>;

@compute @workgroup_size(WG)
fn gather_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(wid, nwg, lid);
  if (i >= gp.n) { return; }
  let row = gather_ids[i / gp.cols] - gp.row_start;
  // Unsigned wrap-around makes ids below row_start fail this test too.
  if (row >= gp.row_count) { return; }
  gather_out[i] = gather_table[row * gp.cols + i % gp.cols];
}

// `scatter_index` holds, for the shard's rows, CSR offsets (row_count + 1 of them, relative to
// the start of the positions) followed by the output positions that read each row, ascending.
// Each (row, column) sums its contributions in that order, so results do not depend on scheduling.
struct ScatterParams { n: u32, cols: u32, row_count: u32, _p: u32 }

@group(0) @binding(0) var<uniform> sp: ScatterParams;
@group(0) @binding(1) var<storage, read> scatter_grad_out: array<f32>;
@group(0) @binding(2) var<storage, read> scatter_index: array<u32>;
@group(0) @binding(3) var<storage, read_write> scatter_grad_table: array<f32>;

@compute @workgroup_size(WG)
fn scatter_add_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(wid, nwg, lid);
  if (i >= sp.n) { return; }
  let row = i / sp.cols;
  let col = i % sp.cols;
  let base = sp.row_count + 1u;
  let end = scatter_index[row + 1u];
  var acc = 0.0;
  for (var k = scatter_index[row]; k < end; k++) {
    acc += scatter_grad_out[scatter_index[base + k] * sp.cols + col];
  }
  scatter_grad_table[i] = acc;
}
