// row-serial.wgsl — the 'invocation' row layout of the row kernels (norm.wgsl, softmax.wgsl),
// prepended to their source instead of row-reduce.wgsl: one invocation per row, WG rows per
// workgroup (a 2D grid of workgroups, linearised), each invocation walking its whole row, so no
// workgroup memory and no barriers. For WebGPU on the CPU (SwiftShader), where a barrier makes
// every invocation a coroutine and costs far more than the arithmetic of a row.

override WG: u32 = 64u;

// The row of this invocation (≥ rows past the end: return).
fn row_index(lid: u32, grid: Grid) -> u32 {
  return flat_index(lid, grid, WG);
}

// This invocation's first element of the row, and the step to its next: all of it.
fn row_first(lid: u32) -> u32 {
  return 0u;
}

fn row_step() -> u32 {
  return 1u;
}

// The row's max or sum is this invocation's own.
fn row_reduce(v: f32, lid: u32, take_max: bool) -> f32 {
  return v;
}
