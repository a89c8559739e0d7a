// Convolution (conv1d, conv2d) as im2col + matmul, and the col2im of its input gradient.
//
// conv2d on x [N, C, H, W] with a weight [O, C/G, KH, KW] is, per sample, the matmul
// W [G, O/G, C/G·KH·KW] · col [G, C/G·KH·KW, HO·WO], where row (c, ky, kx) of col holds the
// input pixels that kernel tap meets at each output position (zero outside the input: padding).
// Unfolding first lets the register-blocked and tiled matmuls do the multiply-adds (the
// forward and both gradients), so convolutions get what tuning matmul gets; the input's
// gradient is a matmul followed by col2im, which adds each pixel's taps back. col2im gathers rather than scatters (no float atomics in WGSL): an
// input pixel finds the few (tap, position) pairs that read it, so every output is written
// once, in a fixed order.

override WG: u32 = 64u;
override RED_WG: u32 = WG;
//#include <row-reduce>

// Every entry point runs on a grid [positions / WG, rows, N]: the workgroup's y and z give a
// row's coordinates, so an invocation divides only to split its position into (y, x), which
// matters on CPU adapters, where integer division is scalar and costs more than the copy.
//
// Spatial sizes of input (h, w), kernel (kh, kw) and output (ho, wo); stride, zero padding and
// dilation per axis; n the samples and o the output channels (bias entry points).
struct ConvParams {
  c: u32, h: u32, w: u32, o: u32,
  kh: u32, kw: u32, ho: u32, wo: u32,
  stride_h: u32, stride_w: u32, pad_h: u32, pad_w: u32,
  dil_h: u32, dil_w: u32, n: u32, _p0: u32,
}

@group(0) @binding(0) var<uniform> ic: ConvParams;
@group(0) @binding(1) var<storage, read> ic_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> ic_col: array<f32>;

// col[n, (c·KH + ky)·KW + kx, oy·WO + ox] = x[n, c, oy·sh − ph + ky·dh, ox·sw − pw + kx·dw], 0
// outside. Grid [HO·WO / WG, C·KH·KW, N].
@compute @workgroup_size(WG)
fn im2col(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let positions = ic.ho * ic.wo;
  let l = gid.x;
  if (l >= positions) { return; }
  let row = wid.y;
  let taps = ic.kh * ic.kw;
  let tap = row % taps;
  let nc = wid.z * ic.c + row / taps;
  let y = i32((l / ic.wo) * ic.stride_h + (tap / ic.kw) * ic.dil_h) - i32(ic.pad_h);
  let x = i32((l % ic.wo) * ic.stride_w + (tap % ic.kw) * ic.dil_w) - i32(ic.pad_w);
  let inside = y >= 0 && y < i32(ic.h) && x >= 0 && x < i32(ic.w);
  // Outside the input the index is clamped to 0 (in range) and the value discarded.
  let at = select(0u, (nc * ic.h + u32(y)) * ic.w + u32(x), inside);
  ic_col[(wid.z * ic.c * taps + row) * positions + l] = select(0.0, ic_x[at], inside);
}

@group(0) @binding(0) var<uniform> ci: ConvParams;
@group(0) @binding(1) var<storage, read> ci_col: array<f32>;
@group(0) @binding(2) var<storage, read_write> ci_dx: array<f32>;

// dx[n, c, y, x] = Σ over taps (ky, kx) and positions (oy, ox) with oy·sh − ph + ky·dh = y and
// ox·sw − pw + kx·dw = x of dcol[n, (c·KH + ky)·KW + kx, oy·WO + ox]. Grid [H·W / WG, C, N].
@compute @workgroup_size(WG)
fn col2im(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let p = gid.x;
  if (p >= ci.h * ci.w) { return; }
  let x = i32(p % ci.w);
  let y = i32(p / ci.w);
  let nc = wid.z * ci.c + wid.y;
  let positions = ci.ho * ci.wo;
  let taps = ci.kh * ci.kw;
  var s = 0.0;
  for (var ky = 0u; ky < ci.kh; ky++) {
    let ty = y + i32(ci.pad_h) - i32(ky * ci.dil_h);
    let oy = ty / i32(ci.stride_h);
    if (ty < 0 || oy * i32(ci.stride_h) != ty || oy >= i32(ci.ho)) { continue; }
    for (var kx = 0u; kx < ci.kw; kx++) {
      let tx = x + i32(ci.pad_w) - i32(kx * ci.dil_w);
      let ox = tx / i32(ci.stride_w);
      if (tx < 0 || ox * i32(ci.stride_w) != tx || ox >= i32(ci.wo)) { continue; }
      s += ci_col[((nc * taps) + ky * ci.kw + kx) * positions + u32(oy) * ci.wo + u32(ox)];
    }
  }
  ci_dx[nc * ci.h * ci.w + p] = s;
}

// The bias, one value per output channel, added to the matmul's [N, O, HO·WO] product: a
// broadcast the general elementwise kernel would index through 8 dims of divisions.
@group(0) @binding(0) var<uniform> cb: ConvParams;
@group(0) @binding(1) var<storage, read> cb_y: array<f32>;
@group(0) @binding(2) var<storage, read> cb_bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> cb_out: array<f32>;

// Grid [HO·WO / WG, O, N].
@compute @workgroup_size(WG)
fn bias_add(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let positions = cb.ho * cb.wo;
  if (gid.x >= positions) { return; }
  let i = (wid.z * cb.o + wid.y) * positions + gid.x;
  cb_out[i] = cb_y[i] + cb_bias[wid.y];
}

@group(0) @binding(0) var<uniform> cg: ConvParams;
@group(0) @binding(1) var<storage, read> cg_dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> cg_dbias: array<f32>;

// dbias[o] = Σ over samples and positions of dy[n, o, ·]: a workgroup per channel, each
// invocation summing a strided share, then one workgroup sum. Grid [O, 1, 1].
@compute @workgroup_size(WG)
fn bias_backward(@builtin(workgroup_id) wid: vec3<u32>, ids: ReduceIds) {
  let o = wid.x;
  let positions = cg.ho * cg.wo;
  var s = 0.0;
  for (var n = 0u; n < cg.n; n++) {
    let base = (n * cg.o + o) * positions;
    for (var l = ids.lid; l < positions; l += WG) { s += cg_dy[base + l]; }
  }
  let total = wg_sum_a(s, ids);
  if (ids.lid == 0u) { cg_dbias[o] = total; }
}
