// common.wgsl — helpers shared by every kernel; prepended after the dtype preamble.
//
// The preamble (src/engine/shaders.ts) defines `alias T = f32;` (or f16 with `enable f16;`), the
// storage type of float tensors. Arithmetic and accumulation are always f32.

// The workgroup builtins of an entry point, `fn main(@builtin(local_invocation_index) lid: u32,
// grid: Grid)`: both uniform, so an index made from them may guard a barrier.
struct Grid {
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
}

// Linear workgroup index for a 2D dispatch grid (see grid2d in engine.ts).
fn linear_group(grid: Grid) -> u32 {
  return grid.wid.x + grid.wid.y * grid.nwg.x;
}

// Flat index of invocation `lid` when every workgroup of the grid holds `wg` invocations.
fn flat_index(lid: u32, grid: Grid, wg: u32) -> u32 {
  return linear_group(grid) * wg + lid;
}

// tanh that does not overflow for large |x| (WGSL's tanh may return NaN there on some drivers).
fn safe_tanh(x: f32) -> f32 {
  let c = clamp(x, -15.0, 15.0);
  let e = exp(2.0 * c);
  return (e - 1.0) / (e + 1.0);
}

// A quiet NaN, for rows a kernel must mark as wrong. Made from a runtime value: constant-folding
// a NaN is a shader error.
fn nan_f32() -> f32 {
  var bits = 0x7fc00000u;
  return bitcast<f32>(bits);
}
