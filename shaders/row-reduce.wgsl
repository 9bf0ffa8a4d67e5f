// row-reduce.wgsl — the 'workgroup' row layout of the row kernels (norm.wgsl, softmax.wgsl),
// prepended to their source: one workgroup of WG invocations per row (a 2D grid of workgroups,
// linearised), invocation `lid` striding over the row (j = lid, lid + WG, …), partial results
// combined by a tree reduction in workgroup memory. WG must be a power of two. The 'invocation'
// layout, row-serial.wgsl, defines the same four functions (src/engine/kernels/row-layout.ts).

override WG: u32 = 256u;

var<workgroup> partial: array<f32, WG>;

// The row of this invocation, uniform across the workgroup (≥ rows past the end: return).
fn row_index(lid: u32, grid: Grid) -> u32 {
  return linear_group(grid);
}

// This invocation's first element of the row, and the step to its next.
fn row_first(lid: u32) -> u32 {
  return lid;
}

fn row_step() -> u32 {
  return WG;
}

// Max (take_max) or sum of `v` over the row's invocations, returned to every one. Call in
// uniform control flow.
fn row_reduce(v: f32, lid: u32, take_max: bool) -> f32 {
  partial[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) {
      let a = partial[lid];
      let b = partial[lid + s];
      partial[lid] = select(a + b, max(a, b), take_max);
    }
    workgroupBarrier();
  }
  let r = partial[0];
  workgroupBarrier(); // a following call overwrites partial[0]
  return r;
}
