// softmax.wgsl — numerically stable softmax over the last dimension of x [rows, dim].
//
// Bindings: @0 params {rows, dim}, @1 x: array<T> [rows, dim], @2 out: array<T> [rows, dim].
// Geometry: the row layout prepended to this source — row-reduce.wgsl (one workgroup per row,
// partial results combined by a tree reduction in workgroup memory) or row-serial.wgsl (one
// invocation per row). Three passes over the row, each invocation walking its elements
// j = row_first(lid), + row_step(), …:
//   m = max_j x[j]  →  s = Σ_j exp(x[j] − m)  →  out[j] = exp(x[j] − m) / s,
// the max and the sum combined by row_reduce, so any dim ≥ 1 works. Arithmetic is f32 whatever T is.
// Assumes finite inputs: mask with a large negative number (e.g. −1e4 for f16), not −inf, since
// WGSL lets implementations assume no infinities.

struct Params { rows: u32, dim: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<T>;
@group(0) @binding(2) var<storage, read_write> out: array<T>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, grid: Grid) {
  let row = row_index(lid, grid);
  if (row >= p.rows) { return; } // uniform in the workgroup layout: the whole workgroup leaves together
  let base = row * p.dim;

  var m = -0x1.fffffep+127f; // lowest f32; invocations past the row's end keep it
  for (var j = row_first(lid); j < p.dim; j += row_step()) { m = max(m, f32(x[base + j])); }
  m = row_reduce(m, lid, true);

  var s = 0.0;
  for (var j = row_first(lid); j < p.dim; j += row_step()) { s += exp(f32(x[base + j]) - m); }
  let inv = 1.0 / row_reduce(s, lid, false);

  for (var j = row_first(lid); j < p.dim; j += row_step()) {
    out[base + j] = T(exp(f32(x[base + j]) - m) * inv);
  }
}
