// moc-route.wgsl — MoC routing (MOC.md §3): for every (head, video query) the top-K candidate
// chunks by raw dot-product score against the chunk descriptors.
//
// Bindings: @0 params {H, N, D, C, K, causal, groups_per_head, q0}, @1 q: array<T> [H, N, D],
// @2 desc: array<f32> [H, C, D] (chunk-mean.wgsl), @3 chunk_start: array<i32> [C] (a valid,
// contiguous table starting at 0), @4 chunk_kind: array<i32> [C] (0 text, 1 video),
// @5 chunk_shot: array<i32> [C], @6 routed: array<i32> [H, N, K].
// Geometry: one invocation per (head, query i ≥ q0); a workgroup holds WG queries of one head
// (linear group g: h = g / groups_per_head). Rows of queries before q0 are not written (a
// cached prefix, dit.ts). Descriptors are read in tiles of TC chunks straight from
// global memory (every thread of the workgroup reads the same address: a broadcast); each
// thread reads q[h, i, d] once per tile and accumulates TC scores in registers, d in order, in
// f32. There is no workgroup memory and no barrier, so a thread stops at its own causal limit.
// Rules: query i in chunk ci = c(i), shot si. Text queries route nothing. Candidate b: video,
// shot[b] != si (so not mandatory), and b < ci when causal. The running top-K (K ≤ MAX_K) is an
// insertion list visited in increasing b with a strict `>`: equal scores keep the lower chunk
// index first. Output in descending score order, unused slots -1.
// Assumes K ≥ 1 (the wrapper skips K = 0).
// No workgroup-memory tile on purpose: the reads it would share are broadcasts already, and on
// SwiftShader a tiled variant (16 × D f32 in workgroup memory) took 1.4 s to compile at D = 64
// and 6 s at D = 320, against 0.4 s for this one.

override WG: u32 = 64u;
const TC: u32 = 16u;
const MAX_K: u32 = 16u;

struct Params { H: u32, N: u32, D: u32, C: u32, K: u32, causal: u32, groups_per_head: u32, q0: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<T>;
@group(0) @binding(2) var<storage, read> desc: array<f32>;
@group(0) @binding(3) var<storage, read> chunk_start: array<i32>;
@group(0) @binding(4) var<storage, read> chunk_kind: array<i32>;
@group(0) @binding(5) var<storage, read> chunk_shot: array<i32>;
@group(0) @binding(6) var<storage, read_write> routed: array<i32>;

// The chunk holding token t: the largest c with chunk_start[c] ≤ t.
fn chunk_of(t: u32) -> u32 {
  var lo = 0u;
  var hi = p.C;
  while (hi - lo > 1u) {
    let mid = (lo + hi) / 2u;
    if (u32(chunk_start[mid]) <= t) { lo = mid; } else { hi = mid; }
  }
  return lo;
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, grid: Grid) {
  let g = linear_group(grid);
  let h = g / p.groups_per_head;
  let i = p.q0 + (g % p.groups_per_head) * WG + lid;
  if (h >= p.H || i >= p.N) { return; }
  let D = p.D;
  let ci = chunk_of(i);
  let si = chunk_shot[ci];
  let obase = (h * p.N + i) * p.K;
  if (chunk_kind[ci] != 1) { // text queries route nothing
    for (var j = 0u; j < p.K; j++) { routed[obase + j] = -1; }
    return;
  }
  let qbase = (h * p.N + i) * D;
  let climit = select(p.C, ci, p.causal != 0u); // candidates b < climit
  var best_s: array<f32, MAX_K>;
  var best_c: array<i32, MAX_K>;
  var n = 0u;

  for (var c0 = 0u; c0 < climit; c0 += TC) {
    let nt = min(TC, climit - c0);
    var s: array<f32, TC>;
    for (var j = 0u; j < TC; j++) { s[j] = 0.0; }
    for (var d = 0u; d < D; d++) {
      let qd = f32(q[qbase + d]);
      for (var j = 0u; j < TC; j++) {
        let b = min(c0 + j, p.C - 1u); // past the tile's end: a valid address, score unused
        s[j] += qd * desc[(h * p.C + b) * D + d];
      }
    }
    for (var j = 0u; j < nt; j++) {
      let b = c0 + j;
      if (chunk_kind[b] != 1 || chunk_shot[b] == si) { continue; }
      let sc = s[j];
      var pos: u32;
      if (n < p.K) {
        pos = n;
        n++;
      } else if (sc > best_s[p.K - 1u]) {
        pos = p.K - 1u;
      } else {
        continue;
      }
      while (pos > 0u && sc > best_s[pos - 1u]) {
        best_s[pos] = best_s[pos - 1u];
        best_c[pos] = best_c[pos - 1u];
        pos--;
      }
      best_s[pos] = sc;
      best_c[pos] = i32(b);
    }
  }

  for (var j = 0u; j < p.K; j++) {
    routed[obase + j] = select(-1, best_c[j], j < n);
  }
}
