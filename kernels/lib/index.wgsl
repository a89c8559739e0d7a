// Flat indices over a grid that params.ts grid() folds into 2-D past the per-dimension limit.
// The including kernel declares `WG`, its workgroup size.

// The workgroup's number in the flattened grid.
fn flat_group(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return wid.x + wid.y * nwg.x;
}

// The invocation's number in the flattened grid.
fn flat_index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
  return flat_group(wid, nwg) * WG + lid;
}
