// trace-scores.wgsl — routing-trace mean scores for the visualization:
//   score[h, σ(a), σ(b)] = φ_h(Q_a) · φ_h(K_b) = Σ_d q_mean[h, a, d] · desc[h, b, d]
// (the mean over chunk a's queries of their routing score against chunk b, since the score is
// linear in q), σ = to_stream, so the result is in stream order.
//
// Bindings: @0 params {H, C, D}, @1 q_mean: array<f32> [H, C, D], @2 desc: array<f32> [H, C, D],
// @3 to_stream: array<i32> [C], @4 score: array<f32> [H, C, C].
// Geometry: one invocation per output, index (h·C + a)·C + b over a 2D grid of WG-wide groups;
// f32 sums in increasing d.

override WG: u32 = 64u;

struct Params { H: u32, C: u32, D: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q_mean: array<f32>;
@group(0) @binding(2) var<storage, read> desc: array<f32>;
@group(0) @binding(3) var<storage, read> to_stream: array<i32>;
@group(0) @binding(4) var<storage, read_write> score: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = linear_group(wid, nwg) * WG + lid;
  if (idx >= p.H * p.C * p.C) { return; }
  let b = idx % p.C;
  let ha = idx / p.C; // h·C + a
  let h = ha / p.C;
  let a = ha % p.C;
  let qa = ha * p.D;
  let kb = (h * p.C + b) * p.D;
  var s = 0.0;
  for (var d = 0u; d < p.D; d++) { s += q_mean[qa + d] * desc[kb + d]; }
  score[(h * p.C + u32(to_stream[a])) * p.C + u32(to_stream[b])] = s;
}
