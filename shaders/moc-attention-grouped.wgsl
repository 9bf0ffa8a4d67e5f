// moc-attention-grouped.wgsl — MoC sparse attention, MOC.md §5 design B (MoBA style), fused:
// queries grouped by routed chunk, one partial result per (query, key list), merged by
// log-sum-exp in moc-group.wgsl (stage MERGE). Keys are read in place; only query indices are
// gathered. Built on moc-attention-core.wgsl (prepended by the wrapper).
//
// Bindings: @0 params {n, groups, scale_log2, chunks, seg_off, range_off, chunk_off, tiles,
//   mand_groups, w, hc, list_off, split_off, tile_off, shr_off}; @1 q, @2 k, @3 v: [H, N, D] as
//   array<vec4<T>>; @4 out [H, N, D]: the mandatory partial (normalised), merged in place later;
// @5 plan: the records of moc-attention.wgsl (tiles, segs, ranges, chunks), then splits [S]
//   at split_off (main start, main end, rest range0, rest nranges: mocPlan);
// @6 grp: array<u32>, the grouping built by moc-group.wgsl: [0, hc) cursors (unused here),
//   offs [hc + 1] at hc (first list entry of (head, chunk) hc = h·C + c), toffs [hc + 1] at
//   2·hc + 1 (first routed tile of (h, c)), then the list at list_off: entries i·w + j (query i
//   routes the chunk in slot j), grouped by (h, c); variants also: the (h, c) of each routed
//   tile at tile_off, and ('grouped-shared') w shared chunks per mandatory tile at shr_off;
// @7 po: array<vec4<f32>> [H, N, w, D]: routed partials (normalised); @8 plse: array<f32>
//   [H, N, w + 1]: log2-sum-exp of each partial in scaled log2 units, slot 0 mandatory, slot
//   1 + j routed slot j (moc-group.wgsl's COUNT stage writes the sentinel to slots with none).
//
// Geometry: groups = mand_groups + (an upper bound on the routed tiles); g < mand_groups = H·T:
// a mandatory tile (head g / T, plan tile g % T) against the segment's mandatory keys, exactly
// design A's list 1. Otherwise routed tile x = g − mand_groups: the (h, c) with
// toffs[hc] ≤ x < toffs[hc + 1] (binary search; past the last tile the workgroup exits), rows =
// up to BQ of (h, c)'s list entries from offs[hc] + (x − toffs[hc])·BQ, keys = chunk c's tokens.
//
// VARIANT (a pipeline constant; the wrapper's design names), same results up to f32 rounding:
//   GROUPED 'grouped': as above; every key goes through key_token.
//   DIRECT  'grouped-direct': a mandatory tile walks its segment's main range (the shot's caption
//           and frames, about 90 % of its keys) as a direct list: consecutive tokens addressed as
//           flash-attention.wgsl does, no per-key lookup or tag; then the other mandatory ranges
//           (other captions) through range_token. A routed tile walks its chunk as a direct list
//           and reads its (h, c) from the tile table (tile_off, written by the SCAN stage) instead
//           of binary-searching toffs.
//   SHARED  'grouped-shared': as DIRECT, and a mandatory tile also walks, as direct lists, the
//           routed chunks that every row of the tile routes (up to w at shr_off + g·w, NO_CHUNK
//           ends the list; moc-attention-share.wgsl found them and removed their entries from the
//           table the grouping reads, so they are neither grouped nor merged). The wrapper aligns
//           this variant's tiles to chunks where that costs (almost) no extra tiles, so a tile
//           holds one frame's queries, which mostly route the same chunks.

struct Params {
  n: u32, groups: u32, scale_log2: f32, chunks: u32,
  seg_off: u32, range_off: u32, chunk_off: u32, tiles: u32,
  mand_groups: u32, w: u32, hc: u32, list_off: u32,
  split_off: u32, tile_off: u32, shr_off: u32, pad: u32,
}

const GROUPED: u32 = 0u;
const DIRECT: u32 = 1u;
const SHARED: u32 = 2u;
const NO_CHUNK: u32 = 0xffffffffu;

override VARIANT: u32 = GROUPED;

@group(0) @binding(0) var<uniform> p: Params;    // @1..@5: q, k, v, out, plan (the core)
@group(0) @binding(6) var<storage, read> grp: array<u32>;
@group(0) @binding(7) var<storage, read_write> po: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read_write> plse: array<f32>;

var<workgroup> rowq: array<u32, BQ>;         // token of each row (routed tiles)
var<workgroup> rows_slot: array<u32, BQ>;    // routed slot of each row

var<private> hbase: u32;                     // first row of the head
var<private> q0: u32;                        // first token (mandatory tiles)
var<private> r0: u32;                        // the segment's mandatory ranges (variants: the rest)
var<private> nr: u32;
var<private> gathered: bool;                 // a routed tile: rows from rowq, keys one chunk
var<private> k0: u32;                        // first token of the routed chunk

fn row_token(r: u32) -> u32 { return select(q0 + r, rowq[r], gathered); }

fn key_token(pos: u32) -> vec2<u32> {
  if (gathered) { return vec2<u32>(k0 + pos, 0u); }
  return vec2<u32>(range_token(pos, r0, nr), 0u);
}

fn key_visible(u: u32, row: u32) -> bool { return true; }

// A mandatory row goes to `out` and lse slot 0, a routed row to its slot of po and plse.
fn store_out(row: u32, c4: u32, x: vec4<f32>) {
  let tok = hbase + row_token(row);
  if (gathered) { po[(tok * p.w + rows_slot[row]) * D4 + c4] = x; } else { out[tok * D4 + c4] = vec4<T>(x); }
}

fn store_lse(row: u32, lse: f32) {
  plse[(hbase + row_token(row)) * (p.w + 1u) + select(0u, 1u + rows_slot[row], gathered)] = lse;
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, grid: Grid) {
  let g = linear_group(grid);
  if (g >= p.groups) { return; }
  let mand = g < p.mand_groups;
  var h: u32;
  var rows: u32;
  var count: u32;                                        // keys through key_token
  var direct = vec2<u32>(0u);                            // variants: first direct list (token, keys)
  var nshared = 0u;
  if (mand) {
    h = g / p.tiles;
    let tile = plan[g % p.tiles];
    let first = u32(tile.x);
    q0 = first;
    rows = u32(tile.y) - first;
    let seg = plan[p.seg_off + u32(tile.z)];
    r0 = u32(seg.x);
    nr = u32(seg.y);
    count = u32(seg.w);
    gathered = false;
    if (VARIANT != GROUPED) {
      let sp = plan[p.split_off + u32(tile.z)];
      direct = vec2<u32>(u32(sp.x), u32(sp.y - sp.x));
      r0 = u32(sp.z);
      nr = u32(sp.w);
      count -= direct.y;
    }
    if (VARIANT == SHARED) {
      while (nshared < p.w && grp[p.shr_off + g * p.w + nshared] != NO_CHUNK) { nshared++; }
    }
  } else {
    let x = g - p.mand_groups;
    let toff = 2u * p.hc + 1u;
    if (x >= grp[toff + p.hc]) { return; }
    var lo = 0u;
    if (VARIANT != GROUPED) {
      lo = grp[p.tile_off + x];
    } else {
      var hi = p.hc;
      while (hi - lo > 1u) {
        let mid = (lo + hi) / 2u;
        if (grp[toff + mid] <= x) { lo = mid; } else { hi = mid; }
      }
    }
    h = lo / p.chunks;
    let ch = plan[p.chunk_off + lo % p.chunks];
    k0 = u32(ch.x);
    count = u32(ch.y - ch.x);
    if (VARIANT != GROUPED) {
      direct = vec2<u32>(u32(ch.x), count);              // (not k0: a private counts as non-uniform)
      count = 0u;
    }
    let first = grp[p.hc + lo] + (x - grp[toff + lo]) * BQ;
    rows = min(BQ, grp[p.hc + lo + 1u] - first);
    for (var r = lid; r < BQ; r += WG) {
      var ent = 0u;
      if (r < rows) { ent = grp[p.list_off + first + r]; }
      rowq[r] = ent / max(p.w, 1u);
      rows_slot[r] = ent % max(p.w, 1u);
    }
    gathered = true;
    workgroupBarrier();                                  // rowq complete before load_q
  }
  let base = h * p.n;
  hbase = base;
  load_q(base, rows, p.scale_log2, lid);
  var acc = acc_new();
  if (VARIANT == GROUPED) {
    attend(&acc, base, count, false, false, 0u, lid);
  } else {
    attend(&acc, base, count, false, false, 0u, lid);   // the other mandatory ranges (none in a routed tile)
    for (var li = 0u; li <= nshared; li++) {            // the direct lists: main range or chunk, shared chunks
      if (li > 0u) {
        let ch = plan[p.chunk_off + grp[p.shr_off + g * p.w + li - 1u]];
        direct = vec2<u32>(u32(ch.x), u32(ch.y - ch.x));
      }
      attend(&acc, base, direct.y, false, true, direct.x, lid);
    }
  }

  finish(&acc, rows, lid);
}
