// rope.wgsl — 3D rotary position embedding, interleaved pairs, on x [H, N, D] (queries or keys).
//
// Bindings: @0 params {heads, tokens, dim, dt, dy, log2_theta},
//   @1 x: array<T> [H, N, D] (not read when IN_PLACE: the wrapper binds pos there),
//   @2 pos: array<i32> [N, 3], the (t, y, x) position of each token,
//   @3 out: array<T> [H, N, D] (read and written when IN_PLACE).
// Convention (the PyTorch reference must match it exactly):
//   the head dim splits into three contiguous parts, [0, dt) for t, [dt, dt+dy) for y and
//   [dt+dy, D) for x, of even sizes d_a (dx = D − dt − dy). In part a, starting at o_a, pair
//   i = 0 … d_a/2 − 1 is the adjacent elements (o_a + 2i, o_a + 2i + 1) and turns by
//     φ = pos[n, a] · θ^(−2i / d_a)
//   out[o+2i]   = x[o+2i] · cos φ − x[o+2i+1] · sin φ
//   out[o+2i+1] = x[o+2i] · sin φ + x[o+2i+1] · cos φ
//   i.e. per part: torch.view_as_complex(x.reshape(..., d_a/2, 2)) * torch.polar(1, φ), with
//   φ = pos[:, a, None] * theta ** (-torch.arange(0, d_a, 2) / d_a); the same frequencies for
//   every head.
// Geometry: one invocation per pair (H·N·D/2 of them), WG per workgroup, a 2D grid.
// φ is computed in f32 (so its own error is a few ulp of |φ|); sin and cos come from `sincos`
// below, not WGSL's sin/cos, which are only bounded to 2^-11 (and SwiftShader is that coarse).

override IN_PLACE: bool = false;
override WG: u32 = 256u;

struct Params { heads: u32, tokens: u32, dim: u32, dt: u32, dy: u32, log2_theta: f32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<T>;
@group(0) @binding(2) var<storage, read> pos: array<i32>;
@group(0) @binding(3) var<storage, read_write> out: array<T>;

// (sin φ, cos φ) to about 1e-7 on every implementation, for |φ| up to ~1e4: φ = r + k·π/2 with
// |r| ≤ π/4 (π/2 split in three parts, Cody–Waite), Taylor polynomials in r, then quadrant k.
fn sincos(phi: f32) -> vec2<f32> {
  let k = round(phi * 0.6366197723675814);
  let r = ((phi - k * 1.5703125) - k * 4.837512969970703125e-4) - k * 7.54978995489188216e-8;
  let r2 = r * r;
  let s = r * (1.0 + r2 * (-1.0 / 6.0 + r2 * (1.0 / 120.0 + r2 * (-1.0 / 5040.0 + r2 / 362880.0))));
  let c = 1.0 + r2 * (-0.5 + r2 * (1.0 / 24.0 + r2 * (-1.0 / 720.0 + r2 * (1.0 / 40320.0 - r2 / 3628800.0))));
  switch (i32(k) & 3) {
    case 0: { return vec2(s, c); }
    case 1: { return vec2(c, -s); }
    case 2: { return vec2(-s, -c); }
    default: { return vec2(-c, s); }
  }
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let half = p.dim / 2u;
  let k = linear_group(wid, nwg) * WG + lid; // pair index over [H, N, D/2]
  if (k >= p.heads * p.tokens * half) { return; }
  let row = k / half; // h·N + n
  let n = row % p.tokens;
  let e = 2u * (k - row * half); // first element of the pair within the head dim

  var axis = 2u;
  var start = p.dt + p.dy;
  var size = p.dim - start;
  if (e < p.dt) { axis = 0u; start = 0u; size = p.dt; }
  else if (e < p.dt + p.dy) { axis = 1u; start = p.dt; size = p.dy; }

  let freq = exp2(-f32(e - start) / f32(size) * p.log2_theta); // θ^(−2i/d_a), e − start = 2i
  let sc = sincos(f32(pos[n * 3u + axis]) * freq);
  let s = sc.x;
  let c = sc.y;

  let i0 = row * p.dim + e;
  var a: f32;
  var b: f32;
  if (IN_PLACE) { a = f32(out[i0]); b = f32(out[i0 + 1u]); }
  else { a = f32(x[i0]); b = f32(x[i0 + 1u]); }
  out[i0] = T(a * c - b * s);
  out[i0 + 1u] = T(a * s + b * c);
}
