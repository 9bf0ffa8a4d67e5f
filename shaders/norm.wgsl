// norm.wgsl — layer norm or RMS norm over the last dimension of x [rows, dim].
//
// Bindings: @0 params {rows, dim, eps}, @1 x: array<T> [rows, dim], @2 weight: array<T> [dim],
// @3 bias: array<T> [dim], @4 out: array<T> [rows, dim]. When HAS_WEIGHT / HAS_BIAS is false the
// wrapper binds x in that slot and the kernel never reads it.
// Geometry: the row layout prepended to this source — row-reduce.wgsl (one workgroup per row,
// invocations striding over it, partial f32 sums combined by a tree reduction in workgroup
// memory) or row-serial.wgsl (one invocation per row) — gives each invocation its row, its
// elements j = row_first(lid), + row_step(), …, and row_reduce; any dim ≥ 1 works.
// Specialised by `override MODE`:
//   0 layer norm: y = (x − mean) / sqrt(var + eps), var biased (÷ dim), two passes over the row
//     (mean, then squared deviations) for accuracy;
//   1 RMS norm:   y = x / sqrt(mean(x²) + eps) (the same code with mean fixed at 0);
// then out = y · weight (HAS_WEIGHT) + bias (HAS_BIAS).

override MODE: u32 = 0u;
override HAS_WEIGHT: bool = false;
override HAS_BIAS: bool = false;

struct Params { rows: u32, dim: u32, eps: f32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<T>;
@group(0) @binding(2) var<storage, read> weight: array<T>;
@group(0) @binding(3) var<storage, read> bias: array<T>;
@group(0) @binding(4) var<storage, read_write> out: array<T>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, grid: Grid) {
  let row = row_index(lid, grid);
  if (row >= p.rows) { return; } // uniform in the workgroup layout: the whole workgroup leaves together
  let base = row * p.dim;
  let n = f32(p.dim);

  var mean = 0.0;
  if (MODE == 0u) {
    var s = 0.0;
    for (var j = row_first(lid); j < p.dim; j += row_step()) { s += f32(x[base + j]); }
    mean = row_reduce(s, lid, false) / n;
  }
  var q = 0.0;
  for (var j = row_first(lid); j < p.dim; j += row_step()) {
    let d = f32(x[base + j]) - mean;
    q += d * d;
  }
  let inv = inverseSqrt(row_reduce(q, lid, false) / n + p.eps);

  for (var j = row_first(lid); j < p.dim; j += row_step()) {
    var y = (f32(x[base + j]) - mean) * inv;
    if (HAS_WEIGHT) { y *= f32(weight[j]); }
    if (HAS_BIAS) { y += f32(bias[j]); }
    out[base + j] = T(y);
  }
}
