// elementwise.wgsl — out[i] = op(a[i], b[i mod len(b)]) for binary ops, op(a[i]) for unary ops.
//
// Bindings: @0 params {n, nb}, @1 a: array<T> [n], @2 b: array<T> [nb] (broadcast by wrapping
// the flat index, so a row vector of the last dimension broadcasts over rows; unary ops ignore
// it), @3 out: array<T> [n].
// Geometry: one invocation per element, WG threads per workgroup, a 2D grid of workgroups.
// Specialised by `override OP`: 0 add, 1 mul, 2 gelu (tanh form), 3 silu, 4 sub.

override OP: u32 = 0u;
override WG: u32 = 256u;

struct Params { n: u32, nb: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<T>;
@group(0) @binding(2) var<storage, read> b: array<T>;
@group(0) @binding(3) var<storage, read_write> out: array<T>;

fn gelu(x: f32) -> f32 {
  return 0.5 * x * (1.0 + safe_tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, grid: Grid) {
  let i = flat_index(lid, grid, WG);
  if (i >= p.n) { return; }
  let x = f32(a[i]);
  let y = f32(b[i % p.nb]);
  var r: f32;
  switch OP {
    case 0u: { r = x + y; }
    case 1u: { r = x * y; }
    case 2u: { r = gelu(x); }
    case 3u: { r = x / (1.0 + exp(-x)); }
    default: { r = x - y; }
  }
  out[i] = T(r);
}
