// trace-counts.wgsl — routing-trace counts for the visualization, written sparsely:
//   n[h, σ(a), σ(b)] = #{(i, j) : token i in chunk a, routed[h, i, j] = b}
// listed only where n > 0, with σ = to_stream (internal chunk id → stream chunk id), so rows
// and columns are in stream order.
//
// Output words (out: array<atomic<u32>>, plain values written with atomicStore):
//   out[0]   words used after it; must be 0 before the dispatch. Each workgroup with at least
//            one route reserves its row with one atomicAdd, so rows follow in any order.
//   a row:   r = h·C + σ(a), m = its entry count, then m words σ(b) << 16 | n in increasing σ(b).
// Capacity: 1 + H·C·(C + 2) words always suffices (a row has at most C entries).
// Bounds (the caller guarantees them): n < 65 536, and C ≤ MAXC so σ(b) < 65 536.
//
// Bindings: @0 params {H, N, K, C}, @1 routed: array<i32> [H, N, K] (internal chunk ids, −1
// unused), @2 chunk_start, @3 chunk_end: array<i32> [C] (internal table), @4 to_stream:
// array<i32> [C], @5 out (above).
// Geometry: one workgroup per (head, query chunk a), linear group g = h·C + a over a 2D grid.
// The row n[h, σ(a), :] is accumulated in workgroup atomics indexed by σ(b); then thread t owns
// the stream ids [t·S, (t+1)·S), S = ⌈C / WG⌉, counts its nonzero entries, an exclusive scan of
// those counts gives each thread its offset in the row, and it writes its entries in order.

override WG: u32 = 64u;
override MAXC: u32 = 1024u;

struct Params { H: u32, N: u32, K: u32, C: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> routed: array<i32>;
@group(0) @binding(2) var<storage, read> chunk_start: array<i32>;
@group(0) @binding(3) var<storage, read> chunk_end: array<i32>;
@group(0) @binding(4) var<storage, read> to_stream: array<i32>;
@group(0) @binding(5) var<storage, read_write> out: array<atomic<u32>>;

var<workgroup> row: array<atomic<u32>, MAXC>;
var<workgroup> offset: array<u32, WG>; // per thread: its entries, then (scanned) its first slot
var<workgroup> first: u32; // word of the row's first entry in `out`

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, grid: Grid) {
  let g = linear_group(grid);
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
    if (r >= 0) { atomicAdd(&row[u32(to_stream[r])], 1u); }
  }
  workgroupBarrier();

  let span = (p.C + WG - 1u) / WG;
  let s0 = min(lid * span, p.C);
  let s1 = min(s0 + span, p.C);
  var mine = 0u;
  for (var b = s0; b < s1; b++) {
    if (atomicLoad(&row[b]) > 0u) { mine++; }
  }
  offset[lid] = mine;
  workgroupBarrier();
  if (lid == 0u) {
    var m = 0u;
    for (var t = 0u; t < WG; t++) {
      let c = offset[t];
      offset[t] = m;
      m += c;
    }
    var at = 0u;
    if (m > 0u) {
      at = 1u + atomicAdd(&out[0], m + 2u);
      atomicStore(&out[at], h * p.C + u32(to_stream[a]));
      atomicStore(&out[at + 1u], m);
    }
    first = at + 2u; // unused when the row is empty: no thread has entries then
  }
  workgroupBarrier();
  var o = first + offset[lid];
  for (var b = s0; b < s1; b++) {
    let n = atomicLoad(&row[b]);
    if (n > 0u) {
      atomicStore(&out[o], (b << 16u) | n);
      o++;
    }
  }
}
