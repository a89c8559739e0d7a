// 2-D max and average pooling over [N, C, H, W] (torch.nn.functional.max_pool2d, avg_pool2d
// with count_include_pad = True, ceil_mode = False), forward and backward side by side.
//
// Forward: one invocation per output element walks its window. Backward gathers rather than
// scatters: one invocation per input element sums the gradients of the few windows that contain
// it (at most ⌈k/s⌉ per dim), in output order, so there are no float atomics and results do not
// depend on scheduling. Max pooling keeps the window's argmax (the first maximum in row-major
// window order, PyTorch's tie rule) for its backward.

override WG: u32 = 256u;

//#include <index>

// Sizes of one plane (h × w in, oh × ow out); n counts the launch's elements (output elements
// forward, input elements backward); k, s, p the window, stride and padding per dim.
struct PoolParams {
  n: u32, h: u32, w: u32, oh: u32,
  ow: u32, kh: u32, kw: u32, sh: u32,
  sw: u32, ph: u32, pw: u32, _p0: u32,
}

@group(0) @binding(0) var<uniform> pf: PoolParams;
@group(0) @binding(1) var<storage, read> pf_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> pf_y: array<f32>;
// Max pooling only: the argmax's index inside its plane (y·w + x).
@group(0) @binding(3) var<storage, read_write> pf_argmax: array<u32>;

// The window of output element r of a plane: its top-left corner in input coordinates (padding
// makes it negative).
fn window_origin(r: u32) -> vec2<i32> {
  let oy = r / pf.ow;
  let ox = r % pf.ow;
  return vec2<i32>(i32(oy * pf.sh) - i32(pf.ph), i32(ox * pf.sw) - i32(pf.pw));
}

@compute @workgroup_size(WG)
fn max_pool_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(wid, nwg, lid);
  if (i >= pf.n) { return; }
  let plane_out = pf.oh * pf.ow;
  let base = (i / plane_out) * pf.h * pf.w;
  let o = window_origin(i % plane_out);
  // Padding is at most half the window (checked on the host), so every window holds an input
  // element: the first one seeds the maximum and padding's −inf never wins.
  var found = false;
  var best = 0.0;
  var at = 0u;
  for (var ky = 0u; ky < pf.kh; ky++) {
    let y = o.x + i32(ky);
    if (y < 0 || y >= i32(pf.h)) { continue; }
    for (var kx = 0u; kx < pf.kw; kx++) {
      let x = o.y + i32(kx);
      if (x < 0 || x >= i32(pf.w)) { continue; }
      let idx = u32(y) * pf.w + u32(x);
      let v = pf_x[base + idx];
      // Strictly greater: a tie keeps the first maximum.
      if (!found || v > best) {
        found = true;
        best = v;
        at = idx;
      }
    }
  }
  pf_y[i] = best;
  pf_argmax[i] = at;
}

@compute @workgroup_size(WG)
fn avg_pool_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(wid, nwg, lid);
  if (i >= pf.n) { return; }
  let plane_out = pf.oh * pf.ow;
  let base = (i / plane_out) * pf.h * pf.w;
  let o = window_origin(i % plane_out);
  var s = 0.0;
  for (var ky = 0u; ky < pf.kh; ky++) {
    let y = o.x + i32(ky);
    if (y < 0 || y >= i32(pf.h)) { continue; }
    for (var kx = 0u; kx < pf.kw; kx++) {
      let x = o.y + i32(kx);
      if (x < 0 || x >= i32(pf.w)) { continue; }
      s += pf_x[base + u32(y) * pf.w + u32(x)];
    }
  }
  // count_include_pad: padding counts in the divisor (the window never passes the padded edge).
  pf_y[i] = s / f32(pf.kh * pf.kw);
}

@group(0) @binding(0) var<uniform> pb: PoolParams;
@group(0) @binding(1) var<storage, read> pb_dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> pb_dx: array<f32>;
@group(0) @binding(3) var<storage, read> pb_argmax: array<u32>;

// The outputs whose windows hold input coordinate c along one dim: [first, last], empty when
// first > last. Window o covers o·s − p .. o·s − p + k − 1.
fn covering(c: u32, k: u32, s: u32, p: u32, count: u32) -> vec2<i32> {
  let hi = i32(c + p);
  let lo = hi - i32(k) + 1;
  let first = select(0, (lo + i32(s) - 1) / i32(s), lo > 0);
  let last = min(hi / i32(s), i32(count) - 1);
  return vec2<i32>(first, last);
}

// Input element j: its index in its plane, where its plane's outputs start, and the output
// rows and columns (first..last, inclusive) whose windows hold it.
struct Cover { idx: u32, out_base: u32, first: vec2<i32>, last: vec2<i32> }

fn cover(j: u32) -> Cover {
  let plane_in = pb.h * pb.w;
  let idx = j % plane_in;
  let ry = covering(idx / pb.w, pb.kh, pb.sh, pb.ph, pb.oh);
  let rx = covering(idx % pb.w, pb.kw, pb.sw, pb.pw, pb.ow);
  return Cover(idx, (j / plane_in) * pb.oh * pb.ow, vec2<i32>(ry.x, rx.x), vec2<i32>(ry.y, rx.y));
}

@compute @workgroup_size(WG)
fn max_pool_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_index) lid: u32) {
  let j = flat_index(wid, nwg, lid);
  if (j >= pb.n) { return; }
  let c = cover(j);
  var g = 0.0;
  for (var oy = c.first.x; oy <= c.last.x; oy++) {
    for (var ox = c.first.y; ox <= c.last.y; ox++) {
      let o = c.out_base + u32(oy) * pb.ow + u32(ox);
      if (pb_argmax[o] == c.idx) { g += pb_dy[o]; }
    }
  }
  pb_dx[j] = g;
}

@compute @workgroup_size(WG)
fn avg_pool_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_index) lid: u32) {
  let j = flat_index(wid, nwg, lid);
  if (j >= pb.n) { return; }
  let c = cover(j);
  var g = 0.0;
  for (var oy = c.first.x; oy <= c.last.x; oy++) {
    for (var ox = c.first.y; ox <= c.last.y; ox++) {
      g += pb_dy[c.out_base + u32(oy) * pb.ow + u32(ox)];
    }
  }
  pb_dx[j] = g / f32(pb.kh * pb.kw);
}
