// moc-attention.wgsl — MoC sparse attention (MOC.md §3; §5 design A), fused: keys are read
// straight from k and v through a per-workgroup key list, never gathered into copies. Built on
// moc-attention-core.wgsl (prepended by the wrapper: the key-tile loop, tile overrides, qs/kp/vs).
//
//   out[h,i] = softmax(q[h,i]·k[h,Ω]ᵀ·scale)·v[h,Ω],   Ω(i) = tokens of M(i) ∪ R(i)
//
// Bindings: @0 params {n, groups, scale_log2, chunks, seg_off, range_off, chunk_off, tiles};
// @1 q, @2 k, @3 v: [H, N, D] as array<vec4<T>>; @4 out [H, N, D];
// @5 plan: array<vec4<i32>>, records built by the wrapper (moc-plan.ts, mocPlan):
//     tiles  [T] (q0, q1, seg, 0)          a query tile: tokens q0..q1-1 of one segment
//     segs   [S] (range0, nranges, shot, nkeys)  a run of consecutive chunks of one shot
//     ranges [R] (start, end, vstart, 0)    merged token ranges of the segment's mandatory chunks;
//                                           vstart: first position in the mandatory key list
//     chunks [C] (start, end, shot, kind)   kind 0 text, 1 video
// @6 routed: array<i32> [H, N, RW]: routed chunk indices. −1, out-of-range and mandatory entries
//     are skipped and duplicates count once (Ω is a set).
//
// Geometry: one workgroup per (head, query tile): groups = H·T workgroups on a 2D grid,
// head-major. A tile never spans two segments, so its queries share M(i), which depends only on
// the query's shot. Key lists (core `attend`), one after the other:
//   1. mandatory: the segment's nkeys keys; key p → token through `ranges`; no masks.
//   2. routed, in batches of WG entries of the tile's routed table rt [BQ·RW] (workgroup memory):
//      invocation e keeps entry e when its chunk is valid, not mandatory and seen first at e,
//      and collects the rows that route that chunk as a bit mask (umask); an inclusive scan of
//      the kept chunks' lengths gives each entry its start in the batch's key list (ustart).
//      Key p → entry u by binary search over ustart; row r's score for a key of entry u is
//      masked unless bit r of umask[u] is set.
//
// Assumes (the wrapper checks): the core's tile limits, BQ ≤ 64 (two mask words), RW ≥ 1 when
// any tile has routed entries (a width-0 table runs list 1 only).

override RW: u32 = 0u;                      // routed width (slots per query)
override RT_LEN: u32 = max(BQ * RW, 1u);
override MW: u32 = (BQ + 31u) / 32u;         // mask words per union entry
override UM_LEN: u32 = WG * MW;
override US_LEN: u32 = WG + 1u;

struct Params {
  n: u32, groups: u32, scale_log2: f32, chunks: u32,
  seg_off: u32, range_off: u32, chunk_off: u32, tiles: u32,
}

@group(0) @binding(0) var<uniform> p: Params;    // @1..@5: q, k, v, out, plan (the core)
@group(0) @binding(6) var<storage, read> routed: array<i32>;

var<workgroup> rt: array<i32, RT_LEN>;       // routed table of the tile's rows, −1 past q1
var<workgroup> scan: array<u32, WG>;         // scan scratch, then the batch's total at [WG−1]
var<workgroup> ustart: array<u32, US_LEN>;   // start of entry u in the batch's key list
var<workgroup> utok: array<u32, WG>;         // first token of entry u's chunk
var<workgroup> umask: array<u32, UM_LEN>;    // rows of the tile that route entry u's chunk

var<private> hbase: u32;                     // first row of the head
var<private> q0: u32;                        // first token of the tile
var<private> r0: u32;                        // the segment's mandatory ranges
var<private> nr: u32;
var<private> in_batch: bool;                 // the current key list is a routed batch

fn row_token(r: u32) -> u32 { return q0 + r; }

fn key_token(pos: u32) -> vec2<u32> {
  if (!in_batch) { return vec2<u32>(range_token(pos, r0, nr), 0u); }
  var lo = 0u;
  var hi = WG;
  while (hi - lo > 1u) {
    let mid = (lo + hi) / 2u;
    if (ustart[mid] <= pos) { lo = mid; } else { hi = mid; }
  }
  return vec2<u32>(utok[lo] + pos - ustart[lo], lo);
}

fn key_visible(u: u32, row: u32) -> bool {
  return ((umask[u * MW + row / 32u] >> (row % 32u)) & 1u) != 0u;
}

fn store_out(row: u32, c4: u32, x: vec4<f32>) { out[(hbase + q0 + row) * D4 + c4] = vec4<T>(x); }

fn store_lse(row: u32, lse: f32) {}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, grid: Grid) {
  let g = linear_group(grid);
  if (g >= p.groups) { return; }
  let h = g / p.tiles;
  let tile = plan[g % p.tiles];
  let first = u32(tile.x);
  q0 = first;
  let rows = u32(tile.y) - first;             // (private q0 reads count as non-uniform)
  let seg = plan[p.seg_off + u32(tile.z)];
  r0 = u32(seg.x);
  nr = u32(seg.y);
  let shot = seg.z;
  let base = h * p.n;
  hbase = base;

  load_q(base, rows, p.scale_log2, lid);
  let nent = rows * RW;                       // routed entries of this tile
  for (var e = lid; e < BQ * RW; e += WG) {
    var c = -1;
    if (e < nent) { c = routed[(base + q0) * RW + e]; }
    rt[e] = c;
  }

  var acc = acc_new();
  in_batch = false;
  attend(&acc, base, u32(seg.w), false, false, 0u, lid);

  let nbatch = (nent + WG - 1u) / WG;
  for (var batch = 0u; batch < nbatch; batch++) {
    // Next batch of routed entries: keep first occurrences of valid, non-mandatory chunks.
    workgroupBarrier();                                  // rt written; last list done with ustart, umask
    let e = batch * WG + lid;
    var len = 0u;
    var first_tok = 0u;
    var mask = array<u32, 2>();
    var c = -1;
    if (e < nent) { c = rt[e]; }
    if (c >= 0 && u32(c) < p.chunks) {
      let ch = plan[p.chunk_off + u32(c)];
      if (ch.w != 0 && ch.z != shot) {
        var first = true;
        for (var f = 0u; f < nent; f++) {
          if (rt[f] == c) {
            if (f < e) { first = false; break; }
            let row = f / max(RW, 1u);
            mask[row / 32u] |= 1u << (row % 32u);
          }
        }
        if (first) {
          len = u32(ch.y - ch.x);
          first_tok = u32(ch.x);
        }
      }
    }
    scan[lid] = len;
    for (var off = 1u; off < WG; off *= 2u) {
      workgroupBarrier();
      var add = 0u;
      if (lid >= off) { add = scan[lid - off]; }
      workgroupBarrier();
      scan[lid] += add;
    }
    ustart[lid + 1u] = scan[lid];
    if (lid == 0u) { ustart[0] = 0u; }
    utok[lid] = first_tok;
    for (var w = 0u; w < MW; w++) { umask[lid * MW + w] = mask[w]; }
    let count = workgroupUniformLoad(&scan[WG - 1u]);  // barrier: the batch's lists are complete
    in_batch = true;
    attend(&acc, base, count, true, false, 0u, lid);
  }

  finish(&acc, rows, lid);
}
