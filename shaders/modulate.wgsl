// modulate.wgsl — adaLN modulation and gated residual, with per-shot parameters chosen by each
// token's segment (shot) index, so every shot can have its own timestep (as in LCT).
//
// OP 0, modulate:        out[n, d] = x[n, d] · (1 + scale[seg[n], d]) + shift[seg[n], d]
// OP 1, gated residual:  out[n, d] = res[n, d] + gate[seg[n], d] · x[n, d]
// Bindings: @0 params {rows, dim, segs, a_ld, a_off, b_ld, b_off},
//   @1 x: array<T> [rows, dim],
//   @2 ta: array<T>, the shot table shift (OP 0) or gate (OP 1): element (s, d) at s·a_ld + a_off + d,
//   @3 tb: array<T>, OP 0: the shot table scale, element (s, d) at s·b_ld + b_off + d;
//                    OP 1: res [rows, dim] (not read when IN_PLACE: the wrapper binds x there),
//   @4 seg: array<i32> [rows], each in [0, segs),
//   @5 out: array<T> [rows, dim]; OP 1 with IN_PLACE reads res from out (out = res += gate·x).
// A shot table is [segs, dim] (ld = dim, off = 0) or one chunk of the adaLN output [segs, k·dim]
// (ld = k·dim, off = chunk·dim), so the model never copies chunks out.
// Geometry: one invocation per output element, WG per workgroup, a 2D grid of workgroups.
// A segment index outside [0, segs) writes NaN to its row, so a bad layout cannot pass unseen.

override OP: u32 = 0u;
override IN_PLACE: bool = false;
override WG: u32 = 256u;

struct Params { rows: u32, dim: u32, segs: u32, a_ld: u32, a_off: u32, b_ld: u32, b_off: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<T>;
@group(0) @binding(2) var<storage, read> ta: array<T>;
@group(0) @binding(3) var<storage, read> tb: array<T>;
@group(0) @binding(4) var<storage, read> seg: array<i32>;
@group(0) @binding(5) var<storage, read_write> out: array<T>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, grid: Grid) {
  let i = flat_index(lid, grid, WG);
  if (i >= p.rows * p.dim) { return; }
  let n = i / p.dim;
  let d = i - n * p.dim;
  let s = seg[n];
  if (s < 0 || u32(s) >= p.segs) {
    out[i] = T(nan_f32());
    return;
  }
  let a = f32(ta[u32(s) * p.a_ld + p.a_off + d]);
  let xv = f32(x[i]);
  if (OP == 0u) {
    let scale = f32(tb[u32(s) * p.b_ld + p.b_off + d]);
    out[i] = T(xv * (1.0 + scale) + a);
  } else {
    var r: f32;
    if (IN_PLACE) { r = f32(out[i]); } else { r = f32(tb[i]); }
    out[i] = T(r + a * xv);
  }
}
