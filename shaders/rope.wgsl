// rope.wgsl — rotary position embedding from tables, on x [H, N, D] (queries or keys).
//
// Bindings: @0 params {heads, tokens, dim},
//   @1 x: array<T> [H, N, D] (not read when IN_PLACE: the wrapper binds cos there),
//   @2 cos: array<f32> [N, D], @3 sin: array<f32> [N, D] (signed: −sin φ on even, +sin φ on odd
//      channels; the model builds both, see ropeTables in src/model/dit-state.ts),
//   @4 out: array<T> [H, N, D] (read and written when IN_PLACE).
// Adjacent channels (2i, 2i + 1) form a pair, and every head of token n turns by that token's row
// of the tables:
//   out[e] = x[e] · cos[n, e] + x[e ^ 1] · sin[n, e]
// i.e. out[2i] = x[2i]·cos φ − x[2i+1]·sin φ and out[2i+1] = x[2i+1]·cos φ + x[2i]·sin φ. The
// angles φ (which axis, which frequency, float positions) are the tables' business, so the kernel
// takes whatever convention the model's train/model.py rope_tables uses.
// Geometry: one invocation per pair (H·N·D/2 of them), WG per workgroup, a 2D grid; each pair is
// read and written by its own invocation, so in place is safe.

override IN_PLACE: bool = false;
override WG: u32 = 256u;

struct Params { heads: u32, tokens: u32, dim: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<T>;
@group(0) @binding(2) var<storage, read> cos_t: array<f32>;
@group(0) @binding(3) var<storage, read> sin_t: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<T>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, grid: Grid) {
  let half = p.dim / 2u;
  let k = flat_index(lid, grid, WG); // pair index over [H, N, D/2]
  if (k >= p.heads * p.tokens * half) { return; }
  let row = k / half; // h·N + n
  let e = 2u * (k - row * half); // first element of the pair within the head dim
  let t = (row % p.tokens) * p.dim + e; // the token's table entry
  let i0 = row * p.dim + e;
  var a: f32;
  var b: f32;
  if (IN_PLACE) { a = f32(out[i0]); b = f32(out[i0 + 1u]); }
  else { a = f32(x[i0]); b = f32(x[i0 + 1u]); }
  out[i0] = T(a * cos_t[t] + b * sin_t[t]);
  out[i0 + 1u] = T(b * cos_t[t + 1u] + a * sin_t[t + 1u]);
}
