// Convolution (conv1d, conv2d) as im2col + matmul, and the col2im of its input gradient.
//
// conv2d on x [N, C, H, W] with a weight [O, C/G, KH, KW] is, per sample, the matmul
// W [G, O/G, C/G·KH·KW] · col [G, C/G·KH·KW, HO·WO], where row (c, ky, kx) of col holds the
// input pixels that kernel tap meets at each output position (zero outside the input: padding).
// Unfolding first lets the register-blocked and tiled matmuls do the multiply-adds, which
// measured faster on llvmpipe than a direct kernel (see src/ops/conv.ts); the weight's
// gradient is then a matmul too, and the input's is a matmul followed by col2im, which adds
// each pixel's taps back. col2im gathers rather than scatters (no float atomics in WGSL): an
// input pixel finds the few (tap, position) pairs that read it, so every output is written
// once, in a fixed order.

override WG: u32 = 64u;

// Spatial sizes of input (h, w), kernel (kh, kw) and output (ho, wo); stride, zero padding and
// dilation per axis; `size` the invocations (col's elements for im2col, x's for col2im).
struct ConvParams {
  size: u32, c: u32, h: u32, w: u32,
  kh: u32, kw: u32, ho: u32, wo: u32,
  stride_h: u32, stride_w: u32, pad_h: u32, pad_w: u32,
  dil_h: u32, dil_w: u32, _p0: u32, _p1: u32,
}

fn conv_linear(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
  return (wid.x + wid.y * nwg.x) * WG + lid;
}

@group(0) @binding(0) var<uniform> ic: ConvParams;
@group(0) @binding(1) var<storage, read> ic_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> ic_col: array<f32>;

// col[n, (c·KH + ky)·KW + kx, oy·WO + ox] = x[n, c, oy·sh − ph + ky·dh, ox·sw − pw + kx·dw], 0 outside.
@compute @workgroup_size(WG)
fn im2col(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
  let i = conv_linear(wid, nwg, lid);
  if (i >= ic.size) { return; }
  let positions = ic.ho * ic.wo;
  let taps = ic.kh * ic.kw;
  let l = i % positions;
  let row = i / positions;
  let tap = row % taps;
  let nc = row / taps;
  let y = i32((l / ic.wo) * ic.stride_h + (tap / ic.kw) * ic.dil_h) - i32(ic.pad_h);
  let x = i32((l % ic.wo) * ic.stride_w + (tap % ic.kw) * ic.dil_w) - i32(ic.pad_w);
  let inside = y >= 0 && y < i32(ic.h) && x >= 0 && x < i32(ic.w);
  // Outside the input the index is clamped to 0 (in range) and the value discarded.
  let at = select(0u, (nc * ic.h + u32(y)) * ic.w + u32(x), inside);
  ic_col[i] = select(0.0, ic_x[at], inside);
}

@group(0) @binding(0) var<uniform> ci: ConvParams;
@group(0) @binding(1) var<storage, read> ci_col: array<f32>;
@group(0) @binding(2) var<storage, read_write> ci_dx: array<f32>;

// dx[n, c, y, x] = Σ over taps (ky, kx) and positions (oy, ox) with oy·sh − ph + ky·dh = y and
// ox·sw − pw + kx·dw = x of dcol[n, (c·KH + ky)·KW + kx, oy·WO + ox].
@compute @workgroup_size(WG)
fn col2im(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
  let i = conv_linear(wid, nwg, lid);
  if (i >= ci.size) { return; }
  let x = i32(i % ci.w);
  let y = i32((i / ci.w) % ci.h);
  let nc = i / (ci.w * ci.h);
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
  ci_dx[i] = s;
}
