// row-reduce.wgsl — the workgroup tree reduction shared by the one-workgroup-per-row kernels
// (norm.wgsl, softmax.wgsl), prepended to their source. WG must be a power of two.

override WG: u32 = 256u;

var<workgroup> partial: array<f32, WG>;

// Max (take_max) or sum of `v` over the workgroup, returned to every invocation. Call in uniform
// control flow.
fn workgroup_reduce(v: f32, lid: u32, take_max: bool) -> f32 {
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
