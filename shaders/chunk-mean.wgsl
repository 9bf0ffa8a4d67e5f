// chunk-mean.wgsl — MoC key descriptors: desc[h, c, :] = mean of x[h, t, :] over t in chunk c.
//
// Bindings: @0 params {H, N, D, C}, @1 x: array<T> [H, N, D] (keys; also used for query means),
// @2 chunk_start: array<i32> [C], @3 chunk_end: array<i32> [C] (exclusive; a valid table:
// contiguous, non-empty, within N), @4 desc: array<f32> [H, C, D].
// Geometry: one workgroup per (head, chunk), linear group g = h·C + c over a 2D grid; thread
// `lid` owns columns d = lid, lid + WG, … and sums its column over the chunk's tokens in token
// order, in f32, then divides by the chunk length.
// Determinism: each column is summed in the same order whatever the chunk, so two chunks with
// bitwise-equal keys and the same length get bitwise-equal descriptors (routing ties rely on it).

override WG: u32 = 64u;

struct Params { H: u32, N: u32, D: u32, C: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<T>;
@group(0) @binding(2) var<storage, read> chunk_start: array<i32>;
@group(0) @binding(3) var<storage, read> chunk_end: array<i32>;
@group(0) @binding(4) var<storage, read_write> desc: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, grid: Grid) {
  let g = linear_group(grid);
  if (g >= p.H * p.C) { return; }
  let h = g / p.C;
  let c = g % p.C;
  let t0 = u32(chunk_start[c]);
  let t1 = u32(chunk_end[c]);
  let len = f32(t1 - t0);
  for (var d = lid; d < p.D; d += WG) {
    var s = 0.0;
    for (var t = t0; t < t1; t++) {
      s += f32(x[(h * p.N + t) * p.D + d]);
    }
    desc[g * p.D + d] = s / len;
  }
}
