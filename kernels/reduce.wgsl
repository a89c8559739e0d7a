// Reductions of a tensor viewed as [outer, r, inner] over its middle dim, giving [outer, inner]:
// sum (times `post`, so also mean), max, min, logsumexp and argmax (first index on ties). The
// op is a pipeline constant (RED_OP), so each op's pipeline has no branch on it. Backward
// passes are composed from elementwise ops in src/ops/reduce.ts.
//
// Every op folds elements into a State; states are combined in any grouping (argmax breaks
// value ties by index, so the grouping does not change which index wins). Results are
// written as 32-bit words: an f32's bits, or argmax's u32 index.
//
// reduce_rows (inner = 1): a workgroup per row, a tree reduction in workgroup memory.
// reduce_cols (inner > 1): a workgroup per 32 adjacent columns of one outer index, 8 invocations
// per column each taking every 8th row (adjacent invocations read adjacent columns), then one
// invocation per column combines its 8 partials.

override RED_OP: u32 = 0u;
override RED_WG: u32 = 64u;

const OP_SUM = 0u;
const OP_MAX = 1u;
const OP_MIN = 2u;
const OP_LOGSUMEXP = 3u;
const OP_ARGMAX = 4u;
const NO_INDEX = 0xffffffffu;
const COLS = 32u;
const SLICES = 8u;

// neg_inf is −∞, passed in: WGSL has no infinite constants.
struct ReduceParams { outer: u32, r: u32, inner: u32, neg_inf: f32, post: f32, _p0: u32, _p1: u32, _p2: u32 }

@group(0) @binding(0) var<uniform> rp: ReduceParams;
@group(0) @binding(1) var<storage, read> red_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> red_out: array<u32>;

// v: the sum, max, min, or logsumexp's running max m with s = Σ exp(x − m); idx: argmax's index.
struct State { v: f32, s: f32, idx: u32 }

fn identity() -> State {
  switch RED_OP {
    case OP_SUM: { return State(0.0, 0.0, NO_INDEX); }
    case OP_MIN: { return State(-rp.neg_inf, 0.0, NO_INDEX); }
    default: { return State(rp.neg_inf, 0.0, NO_INDEX); }
  }
}

// t's elements come after s's.
fn combine(s: State, t: State) -> State {
  switch RED_OP {
    case OP_SUM: { return State(s.v + t.v, 0.0, NO_INDEX); }
    case OP_MAX: { return State(max(s.v, t.v), 0.0, NO_INDEX); }
    case OP_MIN: { return State(min(s.v, t.v), 0.0, NO_INDEX); }
    case OP_LOGSUMEXP: {
      let m = max(s.v, t.v);
      // All −∞ (or nothing yet): exp(−∞ − (−∞)) would be NaN. A +∞ makes the result +∞.
      if (m == rp.neg_inf || m == -rp.neg_inf) { return State(m, 1.0, NO_INDEX); }
      return State(m, s.s * exp(s.v - m) + t.s * exp(t.v - m), NO_INDEX);
    }
    default: {
      let take = t.idx != NO_INDEX && (s.idx == NO_INDEX || t.v > s.v || (t.v == s.v && t.idx < s.idx));
      if (take) { return t; }
      return s;
    }
  }
}

fn fold(s: State, x: f32, i: u32) -> State {
  return combine(s, State(x, 1.0, i));
}

fn finish(s: State) -> u32 {
  switch RED_OP {
    case OP_SUM: { return bitcast<u32>(s.v * rp.post); }
    case OP_LOGSUMEXP: { return bitcast<u32>(s.v + log(s.s)); }
    case OP_ARGMAX: { return s.idx; }
    default: { return bitcast<u32>(s.v); }
  }
}

var<workgroup> rows_part: array<State, RED_WG>;

@compute @workgroup_size(RED_WG)
fn reduce_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= rp.outer) { return; }
  let base = row * rp.r;
  var s = identity();
  for (var i = lid; i < rp.r; i += RED_WG) { s = fold(s, red_x[base + i], i); }
  rows_part[lid] = s;
  for (var k = RED_WG / 2u; k > 0u; k >>= 1u) {
    workgroupBarrier();
    if (lid < k) { rows_part[lid] = combine(rows_part[lid], rows_part[lid + k]); }
  }
  if (lid == 0u) { red_out[row] = finish(rows_part[0]); }
}

var<workgroup> cols_part: array<State, 256>;

@compute @workgroup_size(32, 8)
fn reduce_cols(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_id) l: vec3<u32>) {
  let tiles = (rp.inner + COLS - 1u) / COLS;
  let group = wid.x + wid.y * nwg.x;
  let o = group / tiles;
  if (o >= rp.outer) { return; }
  let col = (group % tiles) * COLS + l.x;
  var s = identity();
  if (col < rp.inner) {
    let base = o * rp.r * rp.inner + col;
    for (var i = l.y; i < rp.r; i += SLICES) { s = fold(s, red_x[base + i * rp.inner], i); }
  }
  cols_part[l.y * COLS + l.x] = s;
  workgroupBarrier();
  if (l.y == 0u && col < rp.inner) {
    var t = cols_part[l.x];
    for (var k = 1u; k < SLICES; k++) { t = combine(t, cols_part[k * COLS + l.x]); }
    red_out[o * rp.inner + col] = finish(t);
  }
}
