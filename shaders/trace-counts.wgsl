// trace-counts.wgsl — routing-trace counts for the visualization:
//   counts[h, σ(a), σ(b)] = #{(i, j) : token i in chunk a, routed[h, i, j] = b}
// with σ = to_stream (internal chunk id → stream chunk id), so the result is in stream order.
//
// Bindings: @0 params {H, N, K, C}, @1 routed: array<i32> [H, N, K] (internal chunk ids, −1
// unused), @2 chunk_start, @3 chunk_end: array<i32> [C] (internal table), @4 to_stream:
// array<i32> [C], @5 counts: array<u32> [H, C, C] (every entry written).
// Geometry: one workgroup per (head, query chunk a), linear group g = h·C + a over a 2D grid;
// the row counts[h, a, :] is accumulated with workgroup atomics (C ≤ MAXC), then written out.

override WG: u32 = 64u;
override MAXC: u32 = 1024u;

struct Params { H: u32, N: u32, K: u32, C: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> routed: array<i32>;
@group(0) @binding(2) var<storage, read> chunk_start: array<i32>;
@group(0) @binding(3) var<storage, read> chunk_end: array<i32>;
@group(0) @binding(4) var<storage, read> to_stream: array<i32>;
@group(0) @binding(5) var<storage, read_write> counts: array<u32>;

var<workgroup> row: array<atomic<u32>, MAXC>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let g = linear_group(wid, nwg);
  if (g >= p.H * p.C) { return; }
  let h = g / p.C;
  let a = g % p.C;
  for (var b = lid; b < p.C; b += WG) { atomicStore(&row[b], 0u); }
  workgroupBarrier();
  // the slots of chunk a's tokens are contiguous in routed[h, :, :]
  let base = h * p.N * p.K;
  let e1 = u32(chunk_end[a]) * p.K;
  for (var e = u32(chunk_start[a]) * p.K + lid; e < e1; e += WG) {
    let r = routed[base + e];
    if (r >= 0) { atomicAdd(&row[u32(r)], 1u); }
  }
  workgroupBarrier();
  let out = (h * p.C + u32(to_stream[a])) * p.C;
  for (var b = lid; b < p.C; b += WG) { counts[out + u32(to_stream[b])] = atomicLoad(&row[b]); }
}
