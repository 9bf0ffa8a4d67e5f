// gather-rows.wgsl — out[r, :] = src[idx[r], :]: a row gather, e.g. the head split
// [N, 3·H·D] → [H, N, D] and merge [H, N, D] → [N, H·D] of attention, each an index map of rows of D.
//
// Bindings: @0 params {rows, width, src_rows}, @1 src: array<T> [src_rows, width],
//   @2 idx: array<i32> [rows], @3 out: array<T> [rows, width].
// Values are moved, not computed: bit-exact. An index outside [0, src_rows) writes NaN to its
// row, so a bad map cannot pass unseen.
// Geometry: one invocation per output element, WG per workgroup, a 2D grid of workgroups.

override WG: u32 = 256u;

struct Params { rows: u32, width: u32, src_rows: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<T>;
@group(0) @binding(2) var<storage, read> idx: array<i32>;
@group(0) @binding(3) var<storage, read_write> out: array<T>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, grid: Grid) {
  let i = flat_index(lid, grid, WG);
  if (i >= p.rows * p.width) { return; }
  let r = i / p.width;
  let s = idx[r];
  if (s < 0 || u32(s) >= p.src_rows) {
    out[i] = T(nan_f32());
    return;
  }
  out[i] = src[u32(s) * p.width + (i - r * p.width)];
}
