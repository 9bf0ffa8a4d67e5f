// moc-group.wgsl — the grouping and merge stages of MoC design B (moc-attention-grouped.wgsl),
// one pipeline per STAGE, all on the GPU so a forward pass never waits for the CPU:
//   ZERO     cursors[hc] = 0                                  one invocation per (head, chunk)
//   COUNT    per routed entry (h, i, j) that counts: cursors[h·C + c] += 1; every other entry's
//            partial slot gets the sentinel lse (no partial)  one invocation per entry
//   SCAN     offs = exclusive scan of the counts, toffs = exclusive scan of ceil(count / BQ)
//            (routed tiles), cursors reset to 0; with TILES also the tile table: grp[tile_off + x]
//            = the (head, chunk) of routed tile x             one workgroup
//   SCATTER  list[offs[h·C + c] + atomicAdd(cursor)] = i·w + j  one invocation per entry
//   MERGE    out[h,i] = Σ_s 2^(lse_s − M)·partial_s / Σ_s 2^(lse_s − M) over slot 0 (the
//            mandatory partial, in `out`) and the routed slots that have a partial
//                                                             one invocation per (row, vec4)
// An entry counts when its chunk is in range, video, of another shot than the query (else it
// is mandatory) and not listed earlier in the query's row (Ω is a set); as design A.
// List order within a (head, chunk) depends on atomics, results do not: rows are independent.
//
// Bindings: @0 params {n, w, chunks, chunk_off, hc, bq, entries, rows, d4 = D/4, tile_off}; @1 routed: array<i32>
// [H, N, w]; @2 plan: array<vec4<i32>> (chunks at chunk_off: start, end, shot, kind);
// @3 grp: array<atomic<u32>>: cursors [hc], offs [hc + 1], toffs [hc + 1], list [entries], (TILES)
// the tile table at tile_off;
// @4 plse: array<f32> [H, N, w + 1]; @5 po: array<vec4<f32>> [H, N, w, D]; @6 out [H, N, D].

const ZERO: u32 = 0u;
const COUNT: u32 = 1u;
const SCAN: u32 = 2u;
const SCATTER: u32 = 3u;
const MERGE: u32 = 4u;
const WG: u32 = 64u;
const NONE: f32 = -3.0e38;                   // lse of a slot without a partial

override STAGE: u32 = 0u;
override TILES: bool = false;                // SCAN also writes the tile table

struct Params { n: u32, w: u32, chunks: u32, chunk_off: u32, hc: u32, bq: u32, entries: u32, rows: u32, d4: u32, tile_off: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> routed: array<i32>;
@group(0) @binding(2) var<storage, read> plan: array<vec4<i32>>;
@group(0) @binding(3) var<storage, read_write> grp: array<atomic<u32>>;
@group(0) @binding(4) var<storage, read_write> plse: array<f32>;
@group(0) @binding(5) var<storage, read> po: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> out: array<vec4<T>>;

var<workgroup> sums: array<vec2<u32>, WG>;

// The chunk of routed entry e (= (h·N + i)·w + j) if it counts (see above), else −1.
fn entry_chunk(e: u32) -> i32 {
  let c = routed[e];
  if (c < 0 || u32(c) >= p.chunks) { return -1; }
  let ch = plan[p.chunk_off + u32(c)];
  if (ch.w == 0) { return -1; }
  let row = e / p.w;
  let i = i32(row % p.n);
  var lo = 0u;                                // the query's chunk: the last with start ≤ i
  var hi = p.chunks;
  while (hi - lo > 1u) {
    let mid = (lo + hi) / 2u;
    if (plan[p.chunk_off + mid].x <= i) { lo = mid; } else { hi = mid; }
  }
  if (ch.z == plan[p.chunk_off + lo].z) { return -1; }
  for (var f = row * p.w; f < e; f++) {
    if (routed[f] == c) { return -1; }
  }
  return c;
}

fn scan_stage(lid: u32) {
  let per = (p.hc + WG - 1u) / WG;
  let s0 = min(lid * per, p.hc);
  let s1 = min(s0 + per, p.hc);
  var own = vec2<u32>(0u);
  for (var x = s0; x < s1; x++) {
    let c = atomicLoad(&grp[x]);
    own += vec2<u32>(c, (c + p.bq - 1u) / p.bq);
  }
  sums[lid] = own;
  for (var off = 1u; off < WG; off *= 2u) {
    workgroupBarrier();
    var add = vec2<u32>(0u);
    if (lid >= off) { add = sums[lid - off]; }
    workgroupBarrier();
    sums[lid] += add;
  }
  var run = sums[lid] - own;
  for (var x = s0; x < s1; x++) {
    let c = atomicLoad(&grp[x]);
    atomicStore(&grp[p.hc + x], run.x);
    atomicStore(&grp[2u * p.hc + 1u + x], run.y);
    let tiles = (c + p.bq - 1u) / p.bq;
    if (TILES) {
      for (var t = 0u; t < tiles; t++) { atomicStore(&grp[p.tile_off + run.y + t], x); }
    }
    run += vec2<u32>(c, tiles);
    atomicStore(&grp[x], 0u);
  }
  if (lid == WG - 1u) {
    atomicStore(&grp[2u * p.hc], run.x);
    atomicStore(&grp[3u * p.hc + 1u], run.y);
  }
}

fn merge(x: u32) {
  let row = x / p.d4;
  let lb = row * (p.w + 1u);
  var mx = plse[lb];
  for (var j = 0u; j < p.w; j++) { mx = max(mx, plse[lb + 1u + j]); }
  var wsum = exp2(plse[lb] - mx);
  var acc = vec4<f32>(out[x]) * wsum;
  for (var j = 0u; j < p.w; j++) {
    let l = plse[lb + 1u + j];
    if (l > NONE) {
      let wj = exp2(l - mx);
      acc += wj * po[(row * p.w + j) * p.d4 + x % p.d4];
      wsum += wj;
    }
  }
  out[x] = vec4<T>(acc / wsum);
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, grid: Grid) {
  let g = linear_group(grid);
  if (STAGE == SCAN) {
    if (g == 0u) { scan_stage(lid); }
    return;
  }
  let x = g * WG + lid;
  if (STAGE == ZERO) {
    if (x < p.hc) { atomicStore(&grp[x], 0u); }
  } else if (STAGE == MERGE) {
    if (x < p.rows * p.d4) { merge(x); }
  } else if (x < p.entries) {
    let c = entry_chunk(x);
    let row = x / p.w;
    let hcx = (row / p.n) * p.chunks + u32(c);
    if (STAGE == COUNT) {
      if (c < 0) { plse[row * (p.w + 1u) + 1u + x % p.w] = NONE; } else { atomicAdd(&grp[hcx], 1u); }
    } else if (c >= 0) {
      let at = atomicLoad(&grp[p.hc + hcx]) + atomicAdd(&grp[hcx], 1u);
      atomicStore(&grp[3u * p.hc + 2u + at], (row % p.n) * p.w + x % p.w);
    }
  }
}
