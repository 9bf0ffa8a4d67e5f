// copy.wgsl — out[i] = src[i] for i < n, 16 bytes at a time (bit-exact for every dtype).
//
// Bindings: @0 params {n}: the number of vec4<u32> words to copy; @1 src: array<vec4<u32>>;
// @2 out: array<vec4<u32>>. The engine pads buffers to 16 bytes, so whole words never overrun.
// Geometry: one invocation per 16-byte word, WG per workgroup, a 2D (grid2d) grid of workgroups.
// Also the bandwidth probe of `bench kernels`: one read and one write of every byte.

override WG: u32 = 256u;

struct Params { n: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> out: array<vec4<u32>>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, grid: Grid) {
  let i = flat_index(lid, grid, WG);
  if (i < p.n) { out[i] = src[i]; }
}
