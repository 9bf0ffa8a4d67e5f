// moc-attention-share.wgsl — the first pass of MoC design B's 'grouped-shared' variant
// (moc-attention-grouped.wgsl, VARIANT SHARED): per mandatory tile (head h, plan tile t, one
// workgroup), the routed chunks that every row of the tile routes. The tile walks those itself,
// as direct key lists beside its mandatory keys, so their entries must not be grouped: this pass
// also writes the table the grouping stages (moc-group.wgsl) read instead of `routed`, with
// every entry of a shared chunk replaced by −1. Tiles cover every token, so every entry is
// written. A chunk counts as in moc-group.wgsl: in range, video, of another shot than the tile
// (all rows of a tile share their shot) — so Ω(i) is unchanged, only how it is walked.
//
// Bindings: @0 params {n, tiles, seg_off, chunk_off, chunks, shr_off, groups}; @1 routed:
// array<i32> [H, N, RW]; @2 plan: array<vec4<i32>> (moc-attention.wgsl's records); @3 grp:
// array<u32>, the shared chunks of mandatory tile g = h·T + t at shr_off + g·RW, in
// row 0's slot order, NO_CHUNK after the last; @4 rf: array<i32> [H, N, RW], the filtered table.
// Geometry: groups = H·T workgroups of WG invocations.

const WG: u32 = 64u;
const NO_CHUNK: u32 = 0xffffffffu;

override RW: u32 = 1u;                       // routed width (≥ 1)
override BQ: u32 = 64u;                      // rows per tile at most

struct Params { n: u32, tiles: u32, seg_off: u32, chunk_off: u32, chunks: u32, shr_off: u32, groups: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> routed: array<i32>;
@group(0) @binding(2) var<storage, read> plan: array<vec4<i32>>;
@group(0) @binding(3) var<storage, read_write> grp: array<u32>;
@group(0) @binding(4) var<storage, read_write> rf: array<i32>;

var<workgroup> ent: array<i32, BQ * RW>;     // the tile's entries
var<workgroup> keep: array<atomic<u32>, RW>; // row 0's slot j: a chunk every row routes so far

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, grid: Grid) {
  let g = linear_group(grid);
  if (g >= p.groups) { return; }
  let tile = plan[g % p.tiles];
  let shot = plan[p.seg_off + u32(tile.z)].z;
  let rows = u32(tile.y - tile.x);
  let e0 = ((g / p.tiles) * p.n + u32(tile.x)) * RW;  // first entry of the tile
  let ne = rows * RW;
  for (var x = lid; x < ne; x += WG) { ent[x] = routed[e0 + x]; }
  workgroupBarrier();
  // candidates: row 0's entries that count, first occurrences only
  for (var j = lid; j < RW; j += WG) {
    let c = ent[j];
    var ok = c >= 0 && u32(c) < p.chunks;
    if (ok) {
      let ch = plan[p.chunk_off + u32(c)];
      ok = ch.w != 0 && ch.z != shot;
    }
    for (var f = 0u; f < j; f++) { ok = ok && ent[f] != c; }
    atomicStore(&keep[j], select(0u, 1u, ok));
  }
  workgroupBarrier();
  // drop a candidate that some row lacks
  for (var x = lid + RW; x < ne; x += WG) {
    let j = x % RW;
    if (atomicLoad(&keep[j]) != 0u) {
      let r0 = x - j;
      var found = false;
      for (var f = 0u; f < RW; f++) { found = found || ent[r0 + f] == ent[j]; }
      if (!found) { atomicStore(&keep[j], 0u); }
    }
  }
  workgroupBarrier();
  if (lid == 0u) {
    var n = 0u;
    for (var j = 0u; j < RW; j++) {
      if (atomicLoad(&keep[j]) != 0u) {
        grp[p.shr_off + g * RW + n] = u32(ent[j]);
        n++;
      }
    }
    for (; n < RW; n++) { grp[p.shr_off + g * RW + n] = NO_CHUNK; }
  }
  for (var x = lid; x < ne; x += WG) {
    let c = ent[x];
    var hit = false;
    for (var j = 0u; j < RW; j++) { hit = hit || (atomicLoad(&keep[j]) != 0u && ent[j] == c); }
    rf[e0 + x] = select(c, -1, hit);
  }
}
