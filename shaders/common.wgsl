// common.wgsl — helpers shared by every kernel; prepended after the dtype preamble.
//
// The preamble (src/engine/shaders.ts) defines `alias T = f32;` (or f16 with `enable f16;`), the
// storage type of float tensors. Arithmetic and accumulation are always f32.

// Linear workgroup index for a 2D dispatch grid (see grid2d in engine.ts).
fn linear_group(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return wid.x + wid.y * nwg.x;
}

// tanh that does not overflow for large |x| (WGSL's tanh may return NaN there on some drivers).
fn safe_tanh(x: f32) -> f32 {
  let c = clamp(x, -15.0, 15.0);
  let e = exp(2.0 * c);
  return (e - 1.0) / (e + 1.0);
}
